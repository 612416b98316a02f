//! The store on DynamoDB (one table, serde_dynamo). Layout:
//!
//! | pk | sk | what |
//! |---|---|---|
//! | `PARTNER#p` | `CONFIG` | partner settings and product mapping (gsi1: `PARTNERS` / p) |
//! | `PARTNER#p` | `COMPANY#c` | company record (gsi1: `TENANT#t` / `PARTNER#p` when mapped) |
//! | `PARTNER#p` | `TENANT#t` | which company holds tenant t (R-CO-5) |
//! | `PARTNER#p` | `CURSOR#sync` | sync cursors |
//! | `PARTNER#p` | `STATUS` | last runs and credential state |
//!
//! Every write that must not race is conditional: `attribute_not_exists(pk)` for new items and
//! a `version` check for updates (R-REL-4).

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use domain::model::{CompanyRecord, Partner};
use domain::ports::{PartnerStatus, Store, SyncCursor};
use domain::{PortError, PortResult, System};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

fn pk(partner: &str) -> String {
    format!("PARTNER#{partner}")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn store_err<E: std::error::Error + 'static>(what: &str, e: SdkError<E>) -> PortError {
    let transient = matches!(
        e,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    ) || format!("{e:?}").contains("Throttl")
        || format!("{e:?}").contains("ProvisionedThroughputExceeded");
    let message = format!("{what}: {}", aws_message(&e));
    if transient {
        PortError::Transient {
            system: System::Store,
            message,
        }
    } else if format!("{e:?}").contains("ConditionalCheckFailed")
        || format!("{e:?}").contains("TransactionCanceled")
    {
        PortError::Conflict {
            system: System::Store,
            message,
        }
    } else {
        PortError::Rejected {
            system: System::Store,
            message,
        }
    }
}

/// The service's message of an SDK error (Display of SdkError alone says "service error").
pub fn aws_message<E: std::error::Error + 'static>(e: &SdkError<E>) -> String {
    match e {
        SdkError::ServiceError(se) => se.err().to_string(),
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

fn encode<T: Serialize>(what: &str, v: &T) -> PortResult<Item> {
    serde_dynamo::to_item(v).map_err(|e| PortError::Rejected {
        system: System::Store,
        message: format!("{what}: cannot encode: {e}"),
    })
}

fn decode<T: DeserializeOwned>(what: &str, item: Item) -> PortResult<T> {
    serde_dynamo::from_item(item).map_err(|e| PortError::Rejected {
        system: System::Store,
        message: format!("{what}: stored item cannot be read: {e}"),
    })
}

#[derive(Serialize, Deserialize)]
struct Keyed<T> {
    pk: String,
    sk: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    gsi1pk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    gsi1sk: Option<String>,
    version: u64,
    data: T,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get_keyed<T: DeserializeOwned>(
        &self,
        pk: &str,
        sk: &str,
    ) -> PortResult<Option<Keyed<T>>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_err(&format!("reading {pk}/{sk}"), e))?;
        out.item
            .map(|i| decode(&format!("{pk}/{sk}"), i))
            .transpose()
    }

    /// Put with optimistic concurrency: `expected` 0 means the item must not exist.
    fn versioned_put(&self, item: Item, expected: u64) -> Put {
        let b = Put::builder().table_name(&self.table).set_item(Some(item));
        let b = if expected == 0 {
            b.condition_expression("attribute_not_exists(pk)")
        } else {
            b.condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(expected.to_string()))
        };
        b.build().expect("put has table and item")
    }

    async fn put_versioned<T: Serialize>(
        &self,
        pk: String,
        sk: String,
        gsi: Option<(String, String)>,
        expected: u64,
        data: &T,
    ) -> PortResult<u64> {
        let version = expected + 1;
        let item = encode(
            &sk,
            &Keyed {
                pk: pk.clone(),
                sk: sk.clone(),
                gsi1pk: gsi.as_ref().map(|g| g.0.clone()),
                gsi1sk: gsi.map(|g| g.1),
                version,
                data,
            },
        )?;
        let put = self.versioned_put(item, expected);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_values(put.expression_attribute_values)
            .send()
            .await
            .map_err(|e| store_err(&format!("writing {pk}/{sk}"), e))
            .map_err(|e| match e {
                PortError::Conflict { system, .. } => PortError::Conflict {
                    system,
                    message: format!(
                        "{pk}/{sk} was changed by someone else (expected version {expected}); read it again"
                    ),
                },
                other => other,
            })?;
        Ok(version)
    }

    async fn query_prefix<T: DeserializeOwned>(
        &self,
        pk: &str,
        prefix: &str,
    ) -> PortResult<Vec<Keyed<T>>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let resp = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":p", s(prefix))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_err(&format!("listing {pk}/{prefix}"), e))?;
            for i in resp.items.unwrap_or_default() {
                out.push(decode(prefix, i)?);
            }
            match resp.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn partner(&self, id: &str) -> PortResult<Option<Partner>> {
        Ok(self
            .get_keyed::<Partner>(&pk(id), "CONFIG")
            .await?
            .map(|k| Partner {
                version: k.version,
                ..k.data
            }))
    }

    async fn partners(&self) -> PortResult<Vec<Partner>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let resp = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :g")
                .expression_attribute_values(":g", s("PARTNERS"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_err("listing partners", e))?;
            for i in resp.items.unwrap_or_default() {
                let k: Keyed<Partner> = decode("partner", i)?;
                out.push(Partner {
                    version: k.version,
                    ..k.data
                });
            }
            match resp.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn put_partner(&self, p: &Partner) -> PortResult<Partner> {
        let version = self
            .put_versioned(
                pk(&p.id),
                "CONFIG".into(),
                Some(("PARTNERS".into(), p.id.clone())),
                p.version,
                p,
            )
            .await?;
        Ok(Partner {
            version,
            ..p.clone()
        })
    }

    async fn companies(&self, partner: &str) -> PortResult<Vec<CompanyRecord>> {
        Ok(self
            .query_prefix::<CompanyRecord>(&pk(partner), "COMPANY#")
            .await?
            .into_iter()
            .map(|k| CompanyRecord {
                version: k.version,
                ..k.data
            })
            .collect())
    }

    async fn company(&self, partner: &str, company_id: &str) -> PortResult<Option<CompanyRecord>> {
        Ok(self
            .get_keyed::<CompanyRecord>(&pk(partner), &format!("COMPANY#{company_id}"))
            .await?
            .map(|k| CompanyRecord {
                version: k.version,
                ..k.data
            }))
    }

    /// One transaction: the record (version-checked), the claim on its tenant (R-CO-5: only if
    /// free or already ours) and the release of a tenant it no longer holds.
    async fn put_company(&self, partner: &str, rec: &CompanyRecord) -> PortResult<CompanyRecord> {
        let p = pk(partner);
        let sk = format!("COMPANY#{}", rec.company_id);
        let previous = self
            .get_keyed::<CompanyRecord>(&p, &sk)
            .await?
            .map(|k| k.data.mapping);
        let version = rec.version + 1;
        let tenant = rec.tenant_id().map(str::to_owned);
        let item = encode(
            &sk,
            &Keyed {
                pk: p.clone(),
                sk: sk.clone(),
                gsi1pk: tenant.as_ref().map(|t| format!("TENANT#{t}")),
                gsi1sk: tenant.as_ref().map(|_| p.clone()),
                version,
                data: rec,
            },
        )?;
        let mut tx = vec![TransactWriteItem::builder()
            .put(self.versioned_put(item, rec.version))
            .build()];
        if let Some(t) = &tenant {
            let claim = Put::builder()
                .table_name(&self.table)
                .item("pk", s(&p))
                .item("sk", s(format!("TENANT#{t}")))
                .item("company_id", s(&rec.company_id))
                .condition_expression("attribute_not_exists(pk) OR company_id = :c")
                .expression_attribute_values(":c", s(&rec.company_id))
                .build()
                .expect("put is complete");
            tx.push(TransactWriteItem::builder().put(claim).build());
        }
        if let Some(domain::model::Mapping::Tenant(old)) = previous {
            if Some(&old) != tenant.as_ref() {
                let release = Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(&p))
                    .key("sk", s(format!("TENANT#{old}")))
                    .condition_expression("attribute_not_exists(pk) OR company_id = :c")
                    .expression_attribute_values(":c", s(&rec.company_id))
                    .build()
                    .expect("delete is complete");
                tx.push(TransactWriteItem::builder().delete(release).build());
            }
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(tx))
            .send()
            .await
            .map_err(|e| match store_err(&format!("writing company {}", rec.company_id), e) {
                PortError::Conflict { system, .. } => PortError::Conflict {
                    system,
                    message: format!(
                        "company {} was changed by a concurrent run, or tenant {} is mapped to another company (R-CO-5); nothing was written",
                        rec.company_id,
                        tenant.as_deref().unwrap_or("-")
                    ),
                },
                other => other,
            })?;
        Ok(CompanyRecord {
            version,
            ..rec.clone()
        })
    }

    async fn tenant_holder(&self, partner: &str, tenant_id: &str) -> PortResult<Option<String>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk(partner)))
            .key("sk", s(format!("TENANT#{tenant_id}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_err("reading a tenant claim", e))?;
        Ok(out
            .item
            .and_then(|i| i.get("company_id").and_then(|v| v.as_s().ok()).cloned()))
    }

    async fn cursor(&self, partner: &str) -> PortResult<SyncCursor> {
        Ok(self
            .get_keyed::<SyncCursor>(&pk(partner), "CURSOR#sync")
            .await?
            .map(|k| k.data)
            .unwrap_or_default())
    }

    async fn put_cursor(&self, partner: &str, c: &SyncCursor) -> PortResult<()> {
        // Cursors only move forward; the last writer of a pass wins.
        let item = encode(
            "cursor",
            &Keyed {
                pk: pk(partner),
                sk: "CURSOR#sync".into(),
                gsi1pk: None,
                gsi1sk: None,
                version: 0,
                data: c,
            },
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_err("writing the sync cursor", e))?;
        Ok(())
    }

    async fn status(&self, partner: &str) -> PortResult<PartnerStatus> {
        Ok(self
            .get_keyed::<PartnerStatus>(&pk(partner), "STATUS")
            .await?
            .map(|k| k.data)
            .unwrap_or_default())
    }

    async fn put_status(&self, partner: &str, st: &PartnerStatus) -> PortResult<()> {
        let item = encode(
            "status",
            &Keyed {
                pk: pk(partner),
                sk: "STATUS".into(),
                gsi1pk: None,
                gsi1sk: None,
                version: 0,
                data: st,
            },
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_err("writing the partner status", e))?;
        Ok(())
    }
}
