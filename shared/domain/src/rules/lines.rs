//! Line changes without a webhook (R-PROV-8): a rolling re-read of the mapped companies' lines.
//!
//! Neither PSA can list changed lines across agreements: ConnectWise lists additions per
//! agreement only (and an addition edit need not touch its agreement's `_info.lastUpdated`);
//! Autotask contract services carry no change time, and a unit adjustment
//! (ContractServiceAdjustment) does not touch the contract's `lastModifiedDateTime`. So every
//! incremental pass also re-reads a slice of the mapped companies — their agreements and lines —
//! sized so that each mapped company is re-read at least once per `line_refresh_hours`
//! (partner file `sync.line_refresh_hours`, default [`DEFAULT_REFRESH_HOURS`]). The slice moves
//! on from the company it ended at, so the position stays valid when companies come and go.

use serde::{Deserialize, Serialize};

/// The interval between incremental passes the slice size is computed for: the schedule's
/// `rate(15 minutes)` (template.yaml, `Dispatch`). Passes run more often only read more often.
pub const PASS_INTERVAL_MINUTES: u32 = 15;
/// `sync.line_refresh_hours` when the partner file does not set it.
pub const DEFAULT_REFRESH_HOURS: u32 = 24;
/// The range `sync.line_refresh_hours` must be in (one hour to one week).
pub const REFRESH_HOURS: std::ops::RangeInclusive<u32> = 1..=168;

/// Where the rolling line re-read (R-PROV-8) continues: after this company id (ids compared as
/// strings). Stored with the sync cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineSlice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<String>,
}

/// R-PROV-8: how many of `n` mapped companies one incremental pass re-reads so that each is
/// re-read at least once per `refresh_hours`, with a pass every `pass_minutes`: the passes
/// that fit in the period (at least one) share the companies, rounded up; at least 1 when
/// `n > 0`, at most `n`.
pub fn slice_size(n: usize, refresh_hours: u32, pass_minutes: u32) -> usize {
    if n == 0 {
        return 0;
    }
    let period = u64::from(refresh_hours.max(1)) * 60;
    let passes = (period / u64::from(pass_minutes.max(1))).max(1);
    let passes = usize::try_from(passes).unwrap_or(usize::MAX);
    n.div_ceil(passes).clamp(1, n)
}

/// R-PROV-8: the companies this pass re-reads the lines of — the `size` companies of the sorted,
/// de-duplicated `companies` after `slice.next_after` (wrapping round to the start) — and
/// where the next pass continues. An id that is no longer in the list still places the slice
/// (the next greater id follows it); an empty list leaves the position as it was.
pub fn next_slice<'a>(
    companies: &'a [String],
    slice: &LineSlice,
    size: usize,
) -> (Vec<&'a str>, LineSlice) {
    let n = companies.len();
    let size = size.min(n);
    if size == 0 {
        return (Vec::new(), slice.clone());
    }
    let start = match &slice.next_after {
        Some(after) => companies.partition_point(|c| c.as_str() <= after.as_str()) % n,
        None => 0,
    };
    let taken: Vec<&str> = (0..size)
        .map(|k| companies[(start + k) % n].as_str())
        .collect();
    let next = LineSlice {
        next_after: taken.last().map(|c| (*c).to_owned()),
    };
    (taken, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn ids(range: impl IntoIterator<Item = u32>) -> Vec<String> {
        let mut v: Vec<String> = range.into_iter().map(|i| format!("{i}")).collect();
        v.sort();
        v.dedup();
        v
    }

    /// A small deterministic generator (the crate has no property-test dependency).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % below.max(1)
        }
    }

    // R-PROV-8: the slice size spreads the mapped companies over the passes of one period.
    #[test]
    fn r_prov_8_slice_size_spreads_the_companies_over_the_period() {
        assert_eq!(slice_size(0, 24, 15), 0);
        assert_eq!(slice_size(1, 24, 15), 1);
        assert_eq!(slice_size(1_000, 24, 15), 11, "96 passes a day");
        assert_eq!(slice_size(10_000, 24, 15), 105);
        assert_eq!(slice_size(1_000, 1, 15), 250, "4 passes an hour");
        assert_eq!(slice_size(1_000, 168, 15), 2);
        // a period shorter than one pass: every company every pass
        assert_eq!(slice_size(7, 1, 90), 7);
        assert_eq!(
            slice_size(5, 1, 25),
            3,
            "2 passes of 25 minutes fit in the hour"
        );
    }

    // R-PROV-8 (property): from any position, with any list, every company is re-read within
    // the passes that fit in one refresh period.
    #[test]
    fn r_prov_8_every_company_is_re_read_within_the_period() {
        let mut rng = Lcg(42);
        for _ in 0..500 {
            let n = rng.next(300) as u32 + 1;
            let companies = ids((0..n).map(|i| i * 7 + 1_000));
            let hours = rng.next(168) as u32 + 1;
            let pass = [5, 10, 15, 20, 30, 45, 60, 90][rng.next(8) as usize];
            let passes = ((hours * 60) / pass).max(1) as usize;
            let size = slice_size(companies.len(), hours, pass);
            assert!(size >= 1 && size <= companies.len());
            // any starting position, also one that is not (or no longer) in the list
            let mut slice = LineSlice {
                next_after: match rng.next(3) {
                    0 => None,
                    1 => Some(companies[rng.next(companies.len() as u64) as usize].clone()),
                    _ => Some(format!("{}", rng.next(5_000))),
                },
            };
            let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
            for p in 0..passes {
                let (taken, next) = next_slice(&companies, &slice, size);
                assert_eq!(taken.len(), size);
                for c in taken {
                    seen.entry(c).or_insert(p);
                }
                slice = next;
            }
            assert_eq!(
                seen.len(),
                companies.len(),
                "n={n} hours={hours} pass={pass} size={size}"
            );
        }
    }

    // R-PROV-8 (property): the position stays valid while companies are added and removed:
    // each pass takes `size` distinct listed companies, and a company listed through a whole
    // period (plus the pass a change costs) is re-read in it.
    #[test]
    fn r_prov_8_the_position_survives_companies_added_and_removed() {
        let mut rng = Lcg(7);
        for _ in 0..80 {
            let mut set: BTreeSet<u32> = (0..rng.next(100) as u32).collect();
            let hours = rng.next(12) as u32 + 1;
            let mut slice = LineSlice::default();
            let mut last_read: BTreeMap<String, usize> = BTreeMap::new();
            let mut listed_since: BTreeMap<String, usize> = BTreeMap::new();
            for pass in 0..200usize {
                // churn
                for _ in 0..rng.next(4) {
                    let id = rng.next(200) as u32;
                    if rng.next(2) == 0 {
                        set.insert(id);
                    } else {
                        set.remove(&id);
                    }
                }
                let companies = ids(set.iter().copied());
                listed_since.retain(|c, _| companies.contains(c));
                for c in &companies {
                    listed_since.entry(c.clone()).or_insert(pass);
                }
                let size = slice_size(companies.len(), hours, 15);
                let (taken, next) = next_slice(&companies, &slice, size);
                let distinct: BTreeSet<&str> = taken.iter().copied().collect();
                assert_eq!(distinct.len(), taken.len(), "no company twice in a slice");
                assert_eq!(taken.len(), size.min(companies.len()));
                assert!(taken.iter().all(|c| companies.iter().any(|x| x == c)));
                if companies.is_empty() {
                    assert_eq!(next, slice, "nothing to read: the position is kept");
                }
                for c in &taken {
                    last_read.insert((*c).to_owned(), pass);
                }
                slice = next;
                // a company listed for two periods has been read in the last two periods
                let passes = ((hours * 60) / 15) as usize;
                for (c, since) in &listed_since {
                    if pass >= since + 2 * passes {
                        let read = last_read.get(c).copied().unwrap_or(0);
                        assert!(
                            pass - read < 2 * passes,
                            "{c} not read since pass {read} (now {pass}, hours {hours})"
                        );
                    }
                }
            }
        }
    }

    // R-PROV-8: a cursor stored before the line refresh starts from the first company, and the
    // position is kept with the cursor.
    #[test]
    fn r_prov_8_a_cursor_stored_before_the_line_refresh_reads_back() {
        let old: crate::ports::SyncCursor =
            serde_json::from_str(r#"{"psa_since":null,"platform_since":null,"last_full":null}"#)
                .unwrap();
        assert_eq!(old.lines, LineSlice::default());
        let mut c = old.clone();
        c.lines.next_after = Some("19302".into());
        let back: crate::ports::SyncCursor =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn r_prov_8_the_slice_continues_after_a_removed_company_and_wraps_round() {
        let companies = ids([10, 20, 30, 40]);
        let at = |s: &str| LineSlice {
            next_after: Some(s.into()),
        };
        let (taken, next) = next_slice(&companies, &at("20"), 2);
        assert_eq!(taken, vec!["30", "40"]);
        assert_eq!(next, at("40"));
        let (taken, next) = next_slice(&companies, &next, 3);
        assert_eq!(taken, vec!["10", "20", "30"], "wraps round");
        assert_eq!(next, at("30"));
        // "25" was removed: the slice goes on with the next greater id
        assert_eq!(next_slice(&companies, &at("25"), 1).0, vec!["30"]);
        assert_eq!(next_slice(&companies, &at("99"), 1).0, vec!["10"]);
        assert_eq!(next_slice(&companies, &LineSlice::default(), 9).0.len(), 4);
        assert_eq!(next_slice(&[], &at("10"), 3), (vec![], at("10")));
    }
}
