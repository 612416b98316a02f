//! The period ledger and the publish history on DynamoDB (R-USE-6, R-USE-8).
//!
//! - `PUBLISH#slot`: an automatic publish's claim — `owner` and `until` (epoch seconds, the
//!   store's wall clock), then `done`. Claimed by a conditional update: absent, or not done
//!   and (expired or the same owner). Given back by deleting it (only by its owner).
//! - `PUBLISHED`: `last`, the greatest slot done (ISO dates compare as strings).
//! - `HISTORY#started_at#run`: one operation each; the ten newest are read, older ones deleted.

use super::{decode, encode, pk, s, store_err, DynamoStore, Item, Keyed, LOG_SYSTEM};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{NaiveDate, Utc};
use domain::ports::{CompanyPublish, PublishLedger, PublishRecord, HISTORY_LEN};
use domain::{PortError, PortResult, System};

/// A history item stays well under DynamoDB's 400 KB.
const HISTORY_ITEM_BYTES: usize = 300 * 1024;

fn slot_key(slot: NaiveDate) -> String {
    format!("PUBLISH#{}", slot.format("%Y-%m-%d"))
}

fn history_key(rec: &PublishRecord) -> String {
    format!(
        "HISTORY#{}#{}",
        rec.started_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        rec.run_id
    )
}

/// The record as stored: when it is too big for one item, companies are left out — those that
/// neither failed nor changed a line first — and counted in `omitted`.
fn fitted(rec: &PublishRecord) -> PortResult<Item> {
    let item = |r: &PublishRecord| {
        encode(
            "publish history",
            &Keyed {
                pk: String::new(),
                sk: String::new(),
                gsi1pk: None,
                gsi1sk: None,
                gsi2pk: None,
                gsi2sk: None,
                version: 0,
                data: r,
            },
        )
    };
    let size = |r: &PublishRecord| serde_json::to_vec(r).map(|v| v.len()).unwrap_or(usize::MAX);
    if size(rec) <= HISTORY_ITEM_BYTES {
        return item(rec);
    }
    let weight = |c: &CompanyPublish| {
        if c.error.is_some() {
            0
        } else if c.lines.iter().any(|l| l.new.is_some() && l.old != l.new) {
            1
        } else {
            2
        }
    };
    let mut kept = rec.clone();
    kept.companies.sort_by_key(weight);
    let per_company = size(rec) / rec.companies.len().max(1) + 1;
    let fits = HISTORY_ITEM_BYTES / per_company;
    kept.omitted += kept.companies.len().saturating_sub(fits);
    kept.companies.truncate(fits);
    while size(&kept) > HISTORY_ITEM_BYTES && !kept.companies.is_empty() {
        let cut = kept.companies.len().div_ceil(10);
        kept.companies.truncate(kept.companies.len() - cut);
        kept.omitted += cut;
    }
    item(&kept)
}

#[async_trait]
impl PublishLedger for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(partner = %partner, system = LOG_SYSTEM))]
    async fn last_publish(&self, partner: &str) -> PortResult<Option<NaiveDate>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk(partner)))
            .key("sk", s("PUBLISHED"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_err("reading the last publish", e))?;
        let Some(last) = out
            .item
            .as_ref()
            .and_then(|i| i.get("last"))
            .and_then(|v| v.as_s().ok())
        else {
            return Ok(None);
        };
        last.parse().map(Some).map_err(|e| PortError::Rejected {
            system: System::Store,
            message: format!("the last publish {last:?} is not a date: {e}"),
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(partner = %partner, system = LOG_SYSTEM, slot = %slot))]
    async fn claim_publish(
        &self,
        partner: &str,
        slot: NaiveDate,
        owner: &str,
        secs: u32,
    ) -> PortResult<bool> {
        let now = Utc::now();
        let until = now + chrono::Duration::seconds(i64::from(secs));
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(partner)))
            .key("sk", s(slot_key(slot)))
            .update_expression("SET #o = :me, #u = :until")
            .condition_expression(
                "attribute_not_exists(pk) OR (attribute_not_exists(#d) AND (#u < :now OR #o = :me))",
            )
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#u", "until")
            .expression_attribute_names("#d", "done")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .expression_attribute_values(":until", AttributeValue::N(until.timestamp().to_string()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) => match store_err(&format!("claiming the publish of {slot}"), e) {
                PortError::Conflict { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(partner = %partner, system = LOG_SYSTEM, slot = %slot, published = published))]
    async fn finish_publish(
        &self,
        partner: &str,
        slot: NaiveDate,
        owner: &str,
        published: bool,
    ) -> PortResult<()> {
        let what = format!("ending the claim on the publish of {slot}");
        let not_ours = |e: PortError| match e {
            PortError::Conflict { .. } => PortError::Conflict {
                system: System::Store,
                message: format!("the publish of {slot} is not claimed by {owner}"),
            },
            other => other,
        };
        if !published {
            return self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(pk(partner)))
                .key("sk", s(slot_key(slot)))
                .condition_expression("#o = :me AND attribute_not_exists(#d)")
                .expression_attribute_names("#o", "owner")
                .expression_attribute_names("#d", "done")
                .expression_attribute_values(":me", s(owner))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| not_ours(store_err(&what, e)));
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(partner)))
            .key("sk", s(slot_key(slot)))
            .update_expression("SET #d = :true")
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#d", "done")
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .send()
            .await
            .map_err(|e| not_ours(store_err(&what, e)))?;
        let day = slot.format("%Y-%m-%d").to_string();
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(partner)))
            .key("sk", s("PUBLISHED"))
            .update_expression("SET #l = :slot")
            .condition_expression("attribute_not_exists(#l) OR #l < :slot")
            .expression_attribute_names("#l", "last")
            .expression_attribute_values(":slot", s(day))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => match store_err("recording the last publish", e) {
                // A later slot is recorded already.
                PortError::Conflict { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(partner = %partner, system = LOG_SYSTEM))]
    async fn publish_history(&self, partner: &str) -> PortResult<Vec<PublishRecord>> {
        let resp = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :h)")
            .expression_attribute_values(":pk", s(pk(partner)))
            .expression_attribute_values(":h", s("HISTORY#"))
            .scan_index_forward(false)
            .limit(i32::try_from(HISTORY_LEN).unwrap_or(10))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_err("reading the publish history", e))?;
        resp.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| decode::<Keyed<PublishRecord>>("publish history", i).map(|k| k.data))
            .collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(partner = %partner, system = LOG_SYSTEM))]
    async fn record_publish(&self, partner: &str, rec: &PublishRecord) -> PortResult<()> {
        let mut item = fitted(rec)?;
        item.insert("pk".into(), s(pk(partner)));
        item.insert("sk".into(), s(history_key(rec)));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_err("recording the publish in its history", e))?;
        // Older operations beyond the ten newest go (keys only).
        let resp = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :h)")
            .expression_attribute_values(":pk", s(pk(partner)))
            .expression_attribute_values(":h", s("HISTORY#"))
            .scan_index_forward(false)
            .projection_expression("pk, sk")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_err("reading the publish history", e))?;
        for old in resp.items().iter().skip(HISTORY_LEN) {
            let key = |k: &str| old.get(k).cloned().unwrap_or_else(|| s(""));
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", key("pk"))
                .key("sk", key("sk"))
                .send()
                .await
                .map_err(|e| store_err("dropping an old publish from the history", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ports::{PublishResult, PublishTrigger, PublishedLine};

    fn company(n: usize, failed: bool) -> CompanyPublish {
        CompanyPublish {
            company_id: format!("c-{n}"),
            name: format!("Company number {n} with a fairly long name"),
            tenant_id: uuid::Uuid::nil().to_string(),
            lines: vec![PublishedLine {
                agreement_id: format!("a-{n}"),
                line_id: format!("l-{n}"),
                product_id: "p-ws".into(),
                item: "workstations".into(),
                old: Some(1.0),
                new: Some(1.0),
                untouched: None,
                rule: "R-USE-1".into(),
            }],
            error: failed.then(|| "the PSA refused the write".into()),
        }
    }

    #[test]
    fn r_use_8_a_history_record_too_big_for_an_item_keeps_failures_and_counts_the_rest() {
        let rec = PublishRecord {
            run_id: "run".into(),
            started_at: Utc::now(),
            finished_at: Utc::now(),
            trigger: PublishTrigger::Schedule,
            period: "2026-11".into(),
            slot: None,
            dry_run: false,
            result: PublishResult::PartlyFailed,
            error: None,
            companies: (0..10_000).map(|n| company(n, n % 1000 == 7)).collect(),
            omitted: 0,
        };
        let item = fitted(&rec).unwrap();
        let back: Keyed<PublishRecord> = decode("t", item).unwrap();
        let kept = back.data;
        assert!(serde_json::to_vec(&kept).unwrap().len() <= HISTORY_ITEM_BYTES);
        assert_eq!(kept.companies.len() + kept.omitted, 10_000);
        assert_eq!(kept.failed(), 10, "every failed company is kept");
        assert!(kept.omitted > 0);
    }
}
