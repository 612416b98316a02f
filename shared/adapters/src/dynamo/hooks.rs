//! The webhook delivery ledger on DynamoDB (R-HOOK-4): `HOOK#<sha256 of the key>` | `HOOK`
//! with `state` (`pending`, `done`, `failed`), `owner`, `at` (epoch seconds) and `ttl`
//! ([`DELIVERY_TTL_SECS`] later). Only GetItem and PutItem, the receiver's whole permission:
//! a claim is a conditional put (absent, failed, or pending for longer than
//! [`CLAIM_STALE_SECS`]); marking it is a put conditional on its owner. The key is hashed so
//! that a long delivery identity can never exceed DynamoDB's key size; the key itself is kept
//! (cut to 512 bytes) for a reader.

use super::{s, store_err, DynamoStore, LOG_SYSTEM};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use domain::ports::{Claim, Deliveries, CLAIM_STALE_SECS, DELIVERY_TTL_SECS};
use domain::{PortError, PortResult};
use sha2::{Digest, Sha256};

fn hook_pk(key: &str) -> String {
    let h = Sha256::digest(key.as_bytes());
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("HOOK#{hex}")
}

const SK: &str = "HOOK";

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn shown(key: &str) -> String {
    let mut end = key.len().min(512);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    key[..end].to_owned()
}

impl DynamoStore {
    async fn put_delivery(
        &self,
        key: &str,
        owner: &str,
        state: &str,
        now: DateTime<Utc>,
        condition: &str,
        extra: &[(&str, AttributeValue)],
    ) -> PortResult<()> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(hook_pk(key)))
            .item("sk", s(SK))
            .item("key", s(shown(key)))
            .item("state", s(state))
            .item("owner", s(owner))
            .item("at", n(now.timestamp()))
            .item("ttl", n(now.timestamp() + DELIVERY_TTL_SECS))
            .condition_expression(condition)
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", s(owner));
        if condition.contains("#st") {
            req = req.expression_attribute_names("#st", "state");
        }
        if condition.contains("#at") {
            req = req.expression_attribute_names("#at", "at");
        }
        for (k, v) in extra {
            req = req.expression_attribute_values(*k, v.clone());
        }
        req.send()
            .await
            .map(|_| ())
            .map_err(|e| store_err(&format!("delivery {}", shown(key)), e))
    }

    async fn delivery_state(&self, key: &str) -> PortResult<Option<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(hook_pk(key)))
            .key("sk", s(SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_err(&format!("reading delivery {}", shown(key)), e))?;
        Ok(out
            .item()
            .and_then(|i| i.get("state"))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }
}

#[async_trait]
impl Deliveries for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(system = LOG_SYSTEM))]
    async fn claim_delivery(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
    ) -> PortResult<Claim> {
        // `#o = :me` lets the same request claim again (a retried call whose answer was lost).
        let r = self
            .put_delivery(
                key,
                owner,
                "pending",
                now,
                "attribute_not_exists(pk) OR #o = :me OR #st = :failed \
                 OR (#st = :pending AND #at <= :stale)",
                &[
                    (":failed", s("failed")),
                    (":pending", s("pending")),
                    (":stale", n(now.timestamp() - CLAIM_STALE_SECS)),
                ],
            )
            .await;
        match r {
            Ok(()) => Ok(Claim::New),
            Err(PortError::Conflict { .. }) => match self.delivery_state(key).await?.as_deref() {
                Some("done") => Ok(Claim::Done),
                _ => Ok(Claim::InFlight),
            },
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(system = LOG_SYSTEM))]
    async fn delivery_done(&self, key: &str, owner: &str, now: DateTime<Utc>) -> PortResult<()> {
        self.put_delivery(key, owner, "done", now, "#o = :me", &[])
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(system = LOG_SYSTEM))]
    async fn delivery_failed(&self, key: &str, owner: &str, now: DateTime<Utc>) -> PortResult<()> {
        self.put_delivery(key, owner, "failed", now, "#o = :me", &[])
            .await
    }
}
