//! Incremental reads that cannot skip a change (R-PROV-8).
//!
//! A PSA's "changed since" filter compares the vendor's own timestamps, often at whole seconds:
//! a change stamped in the same second as the last one a pass saw, or committed a moment after
//! a later-stamped one became visible, would be missed by a strict `> cursor` query. So each
//! entity (companies, agreements) keeps its own cursor, every incremental read asks again for
//! the [`OVERLAP`] before it, and what an earlier pass already saw — the same record at the same
//! timestamp — is dropped, so the overlap costs a few listed records and no re-planning.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How far back every incremental read looks again before its entity's cursor.
pub const OVERLAP: Duration = Duration::minutes(5);

/// Where an incremental read of one entity left off (R-PROV-8).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EntityCursor {
    /// The latest change timestamp seen.
    pub since: Option<DateTime<Utc>>,
    /// Records seen within [`OVERLAP`] of `since`, by id, with the timestamp they were seen at;
    /// stored grouped by timestamp (one comma-joined list each) so that a bulk change of many
    /// thousand records stays far below DynamoDB's 400 KB item limit, and capped at
    /// [`MAX_SEEN`] (past it a record may be read once more: never missed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", with = "compact")]
    pub seen: BTreeMap<String, DateTime<Utc>>,
}

/// At most this many records are remembered per entity.
pub const MAX_SEEN: usize = 25_000;

/// `seen` on disk: `[[timestamp, "id,id,…"], …]`.
mod compact {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        seen: &BTreeMap<String, DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut by_time: BTreeMap<DateTime<Utc>, Vec<&str>> = BTreeMap::new();
        for (id, at) in seen {
            by_time.entry(*at).or_default().push(id);
        }
        let rows: Vec<(String, String)> = by_time
            .into_iter()
            .map(|(at, ids)| (at.to_rfc3339(), ids.join(",")))
            .collect();
        rows.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, DateTime<Utc>>, D::Error> {
        let rows: Vec<(String, String)> = Vec::deserialize(d)?;
        let mut seen = BTreeMap::new();
        for (at, ids) in rows {
            let at: DateTime<Utc> = at.parse().map_err(serde::de::Error::custom)?;
            for id in ids.split(',').filter(|i| !i.is_empty()) {
                seen.insert(id.to_owned(), at);
            }
        }
        Ok(seen)
    }
}

impl EntityCursor {
    /// R-PROV-8: the instant to ask for changes after: the cursor less the overlap.
    pub fn query_from(&self) -> Option<DateTime<Utc>> {
        self.since.map(|s| s - OVERLAP)
    }

    /// R-PROV-8: whether a record read again in the overlap is new to this cursor (a record
    /// without a timestamp always is).
    pub fn is_new(&self, id: &str, updated_at: Option<DateTime<Utc>>) -> bool {
        match updated_at {
            Some(at) => self.seen.get(id) != Some(&at),
            None => true,
        }
    }

    /// R-PROV-8: the cursor after a pass that saw `records` (id, timestamp): `since` moves to
    /// the latest timestamp, and what lies within the overlap of it is remembered.
    pub fn advance<'a>(
        &self,
        records: impl IntoIterator<Item = (&'a str, Option<DateTime<Utc>>)>,
    ) -> EntityCursor {
        let mut seen = self.seen.clone();
        let mut since = self.since;
        for (id, at) in records {
            if let Some(at) = at {
                since = since.max(Some(at));
                seen.insert(id.to_owned(), at);
            }
        }
        if let Some(s) = since {
            let from = s - OVERLAP;
            seen.retain(|_, at| *at >= from);
        }
        if seen.len() > MAX_SEEN {
            // Keep the latest: those are the ones the next read's overlap certainly returns.
            let mut by_age: Vec<(String, DateTime<Utc>)> = seen.into_iter().collect();
            by_age.sort_by_key(|e| std::cmp::Reverse(e.1));
            by_age.truncate(MAX_SEEN);
            seen = by_age.into_iter().collect();
        }
        EntityCursor { since, seen }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap() + Duration::seconds(s.into())
    }

    // R-PROV-8: a change in the same second as the cursor is read (the query goes back by the
    // overlap) and one already seen is not planned twice.
    #[test]
    fn r_prov_8_the_same_second_is_read_again_and_what_was_seen_is_dropped() {
        let c = EntityCursor::default().advance([("a", Some(t(10)))]);
        assert_eq!(c.since, Some(t(10)));
        assert_eq!(c.query_from(), Some(t(10) - OVERLAP));
        assert!(!c.is_new("a", Some(t(10))), "seen at that timestamp");
        assert!(c.is_new("b", Some(t(10))), "same second, another record");
        assert!(c.is_new("a", Some(t(11))), "changed again");
        assert!(c.is_new("a", None));
    }

    // R-PROV-8: a bulk change of 10,000 records in one second stays a small stored cursor.
    #[test]
    fn r_prov_8_a_bulk_change_is_stored_compactly_and_reads_back_the_same() {
        let ids: Vec<String> = (100_000..110_000).map(|i| i.to_string()).collect();
        let c = EntityCursor::default().advance(ids.iter().map(|i| (i.as_str(), Some(t(5)))));
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.len() < 100_000, "{} bytes", json.len());
        let back: EntityCursor = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        assert!(!back.is_new("100042", Some(t(5))));
    }

    #[test]
    fn r_prov_8_seen_records_are_kept_only_within_the_overlap() {
        let c = EntityCursor::default()
            .advance([("old", Some(t(0))), ("x", Some(t(100)))])
            .advance([("new", Some(t(0) + OVERLAP + Duration::seconds(1)))]);
        assert!(!c.seen.contains_key("old"), "{c:?}");
        assert!(c.seen.contains_key("x") && c.seen.contains_key("new"));
        // an earlier timestamp never moves the cursor back
        let back = c.advance([("late", Some(t(1)))]);
        assert_eq!(back.since, c.since);
    }
}
