//! The store on DynamoDB (one table, serde_dynamo). Layout:
//!
//! | pk | sk | what |
//! |---|---|---|
//! | `PARTNER#p` | `CONFIG` | partner settings and product mapping (gsi1: `PARTNERS` / p) |
//! | `PARTNER#p` | `COMPANY#c` | company record (gsi1: `TENANT#t` / `PARTNER#p` when mapped; gsi2: `PARTNER#p#DUE` / `day#c` when due) |
//! | `PARTNER#p` | `TENANT#t` | which company holds tenant t (R-CO-5) |
//! | `PARTNER#p` | `CURSOR#sync` | sync cursors |
//! | `PARTNER#p` | `STATUS` | last runs and credential state |
//! | `PARTNER#p` | `PUBLISH#yyyy-mm-dd` | an automatic publish's claim, then `done` (R-USE-6) |
//! | `PARTNER#p` | `PUBLISHED` | the slot of the last automatic publish |
//! | `PARTNER#p` | `HISTORY#time#run` | one publish operation (R-USE-8; the ten newest are kept) |
//!
//! Every write that must not race is conditional: `attribute_not_exists(pk)` for new items and
//! a `version` check for updates (R-REL-4).

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue};
use aws_sdk_dynamodb::Client;
use chrono::Utc;
use domain::model::{CompanyRecord, Partner};
use domain::ports::{CompanyStore, Leases, PartnerStatus, PartnerStore, SyncCursor, SyncState};
use domain::{PortError, PortResult, System};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The `system` field of this adapter's log lines.
mod hooks;
mod publish;

const LOG_SYSTEM: &str = "dynamodb";

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

fn store_err<E>(what: &str, e: SdkError<E>) -> PortError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
{
    let message = format!("{what}: {}", aws_message(&e));
    let transient = matches!(
        e,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    ) || message.contains("Throttl")
        || message.contains("TransactionConflict")
        || message.contains("TransactionInProgress")
        || message.contains("ProvisionedThroughputExceeded")
        || matches!(&e, SdkError::ServiceError(se) if se.raw().status().is_server_error());
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

/// The service's code and message of an SDK error ("service error" alone says nothing).
pub fn aws_message<E>(e: &SdkError<E>) -> String
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
{
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_owned(),
                _ => format!("{err} ({:?})", se.raw().status()),
            }
        }
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

/// The sparse "due" index key of a company record: `0000-00-00#c` when it needs a look at the
/// next pass (an error, a tenant to create), `YYYY-MM-DD#c` for its review date, none otherwise.
fn due_key(rec: &CompanyRecord) -> Option<String> {
    let day = if rec.last_error.is_some() || rec.mapping == domain::model::Mapping::NewTenant {
        "0000-00-00".to_owned()
    } else {
        rec.next_review?.format("%Y-%m-%d").to_string()
    };
    Some(format!("{day}#{}", rec.company_id))
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
    #[serde(skip_serializing_if = "Option::is_none", default)]
    gsi2pk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    gsi2sk: Option<String>,
    version: u64,
    data: T,
}

/// A stored item without its keys (a projected read).
#[derive(Deserialize)]
struct Versioned<T> {
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
                gsi2pk: None,
                gsi2sk: None,
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

    /// Claims a tenant for a company: only if no company holds it, or this one does (R-CO-5).
    /// Returns whether the claim is new (false: this company held it already).
    async fn claim(&self, pk: &str, tenant: &str, company: &str) -> PortResult<bool> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(format!("TENANT#{tenant}")))
            .item("company_id", s(company))
            .condition_expression("attribute_not_exists(pk) OR company_id = :c")
            .expression_attribute_values(":c", s(company))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map(|out| out.attributes.is_none_or(|old| old.is_empty()))
            .map_err(|e| match store_err("claiming a tenant", e) {
                PortError::Conflict { system, .. } => PortError::Conflict {
                    system,
                    message: format!(
                        "company {company}: tenant {tenant} is already mapped to another company (R-CO-5); nothing was written"
                    ),
                },
                other => other,
            })
    }

    /// Releases a company's claim on a tenant (if it is still that company's).
    async fn release(&self, pk: &str, tenant: &str, company: &str) -> PortResult<()> {
        match self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(format!("TENANT#{tenant}")))
            .condition_expression("attribute_not_exists(pk) OR company_id = :c")
            .expression_attribute_values(":c", s(company))
            .send()
            .await
            .map_err(|e| store_err("releasing a tenant", e))
        {
            Ok(_) | Err(PortError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Company records of one index partition (optionally with sort key up to `upto`).
    async fn query_index(
        &self,
        index: &str,
        partition: &str,
        upto: Option<&str>,
    ) -> PortResult<Vec<CompanyRecord>> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .expression_attribute_values(":p", s(partition))
                .set_exclusive_start_key(start.take());
            q = match upto {
                Some(u) => q
                    .key_condition_expression(format!("{index}pk = :p AND {index}sk <= :u"))
                    .expression_attribute_values(":u", s(u)),
                None => q.key_condition_expression(format!("{index}pk = :p")),
            };
            let resp = q
                .send()
                .await
                .map_err(|e| store_err(&format!("querying {index}"), e))?;
            for i in resp.items.unwrap_or_default() {
                let k: Keyed<CompanyRecord> = decode(index, i)?;
                out.push(CompanyRecord {
                    version: k.version,
                    ..k.data
                });
            }
            match resp.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Writes a partner item that has no version (last writer wins: cursors, status).
    async fn put_plain<T: Serialize>(&self, partner: &str, sk: &str, data: &T) -> PortResult<()> {
        let item = encode(
            sk,
            &Keyed {
                pk: pk(partner),
                sk: sk.to_owned(),
                gsi1pk: None,
                gsi1sk: None,
                gsi2pk: None,
                gsi2sk: None,
                version: 0,
                data,
            },
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_err(&format!("writing {sk}"), e))?;
        Ok(())
    }

    /// Writes a company record (version-checked) and keeps the tenant claims (R-CO-5) in step:
    /// the claim on its tenant is taken first (only if free or already ours), then the record
    /// is written, then a tenant it no longer holds is released. Conditional puts, not a
    /// transaction: each step is safe on its own and a retry repeats it harmlessly.
    ///
    /// `previous` is the tenant of the stored record at `rec.version` as the caller knows it.
    /// If the caller is wrong, the record is not at that version and the write is refused; the
    /// claim taken for it is then released unless the stored record holds that tenant.
    async fn write_company(
        &self,
        partner: &str,
        rec: &CompanyRecord,
        previous: Option<String>,
    ) -> PortResult<CompanyRecord> {
        let p = pk(partner);
        let sk = format!("COMPANY#{}", rec.company_id);
        let tenant = rec.tenant_id().map(str::to_owned);
        let version = rec.version + 1;
        let to_claim = tenant.as_ref().filter(|t| previous.as_ref() != Some(*t));
        let claimed_now = match to_claim {
            Some(t) => self.claim(&p, t, &rec.company_id).await?,
            None => false,
        };
        let item = encode(
            &sk,
            &Keyed {
                pk: p.clone(),
                sk: sk.clone(),
                gsi1pk: tenant.as_ref().map(|t| format!("TENANT#{t}")),
                gsi1sk: tenant.as_ref().map(|_| p.clone()),
                gsi2pk: due_key(rec).map(|_| format!("{p}#DUE")),
                gsi2sk: due_key(rec),
                version,
                data: rec,
            },
        )?;
        let put = self.versioned_put(item, rec.version);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(put.item.clone()))
                .set_condition_expression(put.condition_expression.clone())
                .set_expression_attribute_values(put.expression_attribute_values.clone())
                .send()
                .await
                .map_err(|e| store_err(&format!("writing company {}", rec.company_id), e));
            match result {
                Ok(_) => break,
                Err(e) if e.is_retryable() && attempt < 5 => {
                    tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
                }
                // After a lost answer the retry may meet its own earlier write: that is success.
                Err(PortError::Conflict { .. })
                    if attempt > 1 && self.company_is(&p, &sk, version, rec).await? =>
                {
                    break
                }
                Err(e) => {
                    if let Some(t) = to_claim {
                        // Release the claim unless the stored record holds that tenant (a
                        // concurrent run mapped it so); if unreadable, only a claim made now.
                        let release = match self.get_keyed::<CompanyRecord>(&p, &sk).await {
                            Ok(stored) => stored.is_none_or(|k| k.data.tenant_id() != Some(t)),
                            Err(_) => claimed_now,
                        };
                        if release {
                            let _ = self.release(&p, t, &rec.company_id).await;
                        }
                    }
                    return Err(match e {
                        PortError::Conflict { system, .. } => PortError::Conflict {
                            system,
                            message: format!(
                                "company {} was changed by a concurrent run (expected version {}); nothing was written",
                                rec.company_id, rec.version
                            ),
                        },
                        other => other,
                    });
                }
            }
        }
        if let Some(old) = previous.filter(|old| Some(old) != tenant.as_ref()) {
            self.release(&p, &old, &rec.company_id).await?;
        }
        Ok(CompanyRecord {
            version,
            ..rec.clone()
        })
    }

    /// Whether the stored record is exactly `rec` at `version`.
    async fn company_is(
        &self,
        pk: &str,
        sk: &str,
        version: u64,
        rec: &CompanyRecord,
    ) -> PortResult<bool> {
        Ok(self
            .get_keyed::<CompanyRecord>(pk, sk)
            .await?
            .is_some_and(|k| {
                k.version == version
                    && k.data
                        == CompanyRecord {
                            version: k.data.version,
                            ..rec.clone()
                        }
            }))
    }

    /// Items whose sort key starts with `prefix`, read as their version and data only (the
    /// keys are left out of the answer: less to receive and hold per page).
    async fn query_prefix<T: DeserializeOwned, U>(
        &self,
        pk: &str,
        prefix: &str,
        map: impl Fn(Versioned<T>) -> U,
    ) -> PortResult<Vec<U>> {
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
                .projection_expression("#v, #d")
                .expression_attribute_names("#v", "version")
                .expression_attribute_names("#d", "data")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_err(&format!("listing {pk}/{prefix}"), e))?;
            for i in resp.items.unwrap_or_default() {
                out.push(map(decode(prefix, i)?));
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
impl PartnerStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(partner = %id, system = LOG_SYSTEM))]
    async fn partner(&self, id: &str) -> PortResult<Option<Partner>> {
        Ok(self
            .get_keyed::<Partner>(&pk(id), "CONFIG")
            .await?
            .map(|k| Partner {
                version: k.version,
                ..k.data
            }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(partner = %"*", system = LOG_SYSTEM))]
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

    #[tracing::instrument(level = "info", skip_all, fields(partner = %p.id, system = LOG_SYSTEM))]
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
}

#[async_trait]
impl CompanyStore for DynamoStore {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM)
    )]
    async fn companies(&self, partner: &str) -> PortResult<Vec<CompanyRecord>> {
        self.query_prefix(&pk(partner), "COMPANY#", |k: Versioned<CompanyRecord>| {
            CompanyRecord {
                version: k.version,
                ..k.data
            }
        })
        .await
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM, today = %today)
    )]
    async fn companies_due(
        &self,
        partner: &str,
        today: chrono::NaiveDate,
    ) -> PortResult<Vec<CompanyRecord>> {
        let upto = format!("{}~", today.format("%Y-%m-%d"));
        self.query_index("gsi2", &format!("{}#DUE", pk(partner)), Some(&upto))
            .await
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM, companies = ids.len())
    )]
    async fn companies_by_id(
        &self,
        partner: &str,
        ids: &[String],
    ) -> PortResult<Vec<CompanyRecord>> {
        let p = pk(partner);
        let mut out = Vec::new();
        for chunk in ids.chunks(100) {
            let mut keys: Vec<Item> = chunk
                .iter()
                .map(|c| {
                    HashMap::from([
                        ("pk".to_owned(), s(&p)),
                        ("sk".to_owned(), s(format!("COMPANY#{c}"))),
                    ])
                })
                .collect();
            let mut rounds = 0;
            while !keys.is_empty() {
                rounds += 1;
                let ka = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .consistent_read(true)
                    .build()
                    .expect("keys");
                let resp = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, ka)
                    .send()
                    .await
                    .map_err(|e| store_err("reading company records", e))?;
                for item in resp
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    let k: Keyed<CompanyRecord> = decode("company", item)?;
                    out.push(CompanyRecord {
                        version: k.version,
                        ..k.data
                    });
                }
                if let Some(rest) = resp
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                {
                    keys = rest.keys;
                    if rounds > 8 {
                        return Err(PortError::Transient {
                            system: System::Store,
                            message: "DynamoDB kept keys unprocessed (throttled)".into(),
                        });
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 * rounds)).await;
                }
            }
        }
        Ok(out)
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM, tenants = tenants.len())
    )]
    async fn companies_by_tenant(
        &self,
        partner: &str,
        tenants: &[String],
    ) -> PortResult<Vec<CompanyRecord>> {
        let _ = partner;
        let mut out = Vec::new();
        for t in tenants {
            out.extend(
                self.query_index("gsi1", &format!("TENANT#{t}"), None)
                    .await?
                    .into_iter()
                    .filter(|r| r.tenant_id() == Some(t.as_str())),
            );
        }
        Ok(out)
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM, company = %company_id)
    )]
    async fn company(&self, partner: &str, company_id: &str) -> PortResult<Option<CompanyRecord>> {
        Ok(self
            .get_keyed::<CompanyRecord>(&pk(partner), &format!("COMPANY#{company_id}"))
            .await?
            .map(|k| CompanyRecord {
                version: k.version,
                ..k.data
            }))
    }

    /// Reads the tenant the stored record holds (to release it if it changes), then writes.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            partner = %partner,
            system = LOG_SYSTEM,
            company = %rec.company_id,
            tenant = ?rec.tenant_id(),
        )
    )]
    async fn put_company(&self, partner: &str, rec: &CompanyRecord) -> PortResult<CompanyRecord> {
        let p = pk(partner);
        // A new record (version 0) has no earlier tenant to compare with or release.
        let previous = if rec.version == 0 {
            None
        } else {
            self.get_keyed::<CompanyRecord>(&p, &format!("COMPANY#{}", rec.company_id))
                .await?
                .and_then(|k| k.data.tenant_id().map(str::to_owned))
        };
        self.write_company(partner, rec, previous).await
    }

    /// No read: the version check of the write proves that `previous` is what is stored.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            partner = %partner,
            system = LOG_SYSTEM,
            company = %rec.company_id,
            tenant = ?rec.tenant_id(),
        )
    )]
    async fn put_company_replacing(
        &self,
        partner: &str,
        rec: &CompanyRecord,
        previous: Option<&CompanyRecord>,
    ) -> PortResult<CompanyRecord> {
        if previous.map_or(0, |o| o.version) != rec.version {
            return self.put_company(partner, rec).await;
        }
        let held = previous.and_then(|o| o.tenant_id().map(str::to_owned));
        self.write_company(partner, rec, held).await
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM, tenant = %tenant_id)
    )]
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
}

#[async_trait]
impl SyncState for DynamoStore {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM)
    )]
    async fn cursor(&self, partner: &str) -> PortResult<SyncCursor> {
        Ok(self
            .get_keyed::<SyncCursor>(&pk(partner), "CURSOR#sync")
            .await?
            .map(|k| k.data)
            .unwrap_or_default())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM)
    )]
    async fn put_cursor(&self, partner: &str, c: &SyncCursor) -> PortResult<()> {
        // Fenced (R-REL-4): the item's version is the token of the run that wrote it, and a
        // run's cursor never replaces a later run's.
        let sk = "CURSOR#sync";
        let item = encode(
            sk,
            &Keyed {
                pk: pk(partner),
                sk: sk.to_owned(),
                gsi1pk: None,
                gsi1sk: None,
                gsi2pk: None,
                gsi2sk: None,
                version: c.fence,
                data: c,
            },
        )?;
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR version <= :f")
            .expression_attribute_values(":f", AttributeValue::N(c.fence.to_string()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => Err(match store_err("writing the sync cursor", e) {
                PortError::Conflict { system, .. } => PortError::Conflict {
                    system,
                    message: format!(
                        "the sync cursor was written by a later run (this run's fence is {}); not moved",
                        c.fence
                    ),
                },
                other => other,
            }),
        }
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM)
    )]
    async fn status(&self, partner: &str) -> PortResult<PartnerStatus> {
        Ok(self
            .get_keyed::<PartnerStatus>(&pk(partner), "STATUS")
            .await?
            .map(|k| k.data)
            .unwrap_or_default())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM)
    )]
    async fn put_status(&self, partner: &str, st: &PartnerStatus) -> PortResult<()> {
        self.put_plain(partner, "STATUS", st).await
    }
}

#[async_trait]
impl Leases for DynamoStore {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM, key = %key, secs = secs)
    )]
    async fn lease(
        &self,
        partner: &str,
        key: &str,
        owner: &str,
        secs: u32,
    ) -> PortResult<Option<u64>> {
        // Wall-clock time: a lease must outlive the writes whatever clock the run was given.
        let now = Utc::now();
        let until = now + chrono::Duration::seconds(i64::from(secs));
        // `LEASE#key`: free when absent, released or expired. The item is never deleted, so
        // that its token only grows (it fences later writes, R-REL-4).
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(partner)))
            .key("sk", s(format!("LEASE#{key}")))
            // Leases of earlier versions carried a TTL: removed, the token must outlive it.
            .update_expression("SET #o = :me, #u = :until ADD #t :one REMOVE #ttl")
            .condition_expression("attribute_not_exists(pk) OR #u < :now OR #o = :me")
            .expression_attribute_names("#u", "until")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#t", "token")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":now", AttributeValue::N(now.timestamp().to_string()))
            .expression_attribute_values(":until", AttributeValue::N(until.timestamp().to_string()))
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match r {
            Ok(out) => {
                let token = out
                    .attributes()
                    .and_then(|a| a.get("token"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| PortError::Rejected {
                        system: System::Store,
                        message: format!("lease {key}: the store returned no token"),
                    })?;
                Ok(Some(token))
            }
            Err(e) => match store_err(&format!("taking lease {key}"), e) {
                PortError::Conflict { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM, key = %key, token = token)
    )]
    async fn renew(
        &self,
        partner: &str,
        key: &str,
        owner: &str,
        token: u64,
        secs: u32,
    ) -> PortResult<bool> {
        let until = Utc::now() + chrono::Duration::seconds(i64::from(secs));
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(partner)))
            .key("sk", s(format!("LEASE#{key}")))
            .update_expression("SET #u = :until")
            .condition_expression("#o = :me AND #t = :token")
            .expression_attribute_names("#u", "until")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#t", "token")
            .expression_attribute_values(":until", AttributeValue::N(until.timestamp().to_string()))
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":token", AttributeValue::N(token.to_string()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) => match store_err(&format!("renewing lease {key}"), e) {
                PortError::Conflict { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM, key = %key)
    )]
    async fn release(&self, partner: &str, key: &str, owner: &str) -> PortResult<()> {
        // Expired now, the token kept.
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk(partner)))
            .key("sk", s(format!("LEASE#{key}")))
            .update_expression("SET #u = :zero, #o = :none")
            .condition_expression("#o = :me")
            .expression_attribute_names("#u", "until")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":none", s(""))
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) => match store_err(&format!("releasing lease {key}"), e) {
                // Expired and taken by another run: not ours to give back.
                PortError::Conflict { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM, company_id = %company_id)
    )]
    async fn wait_for_run(&self, partner: &str, company_id: &str) -> PortResult<()> {
        // `WAIT#company`: one note per company, its identity new on every write; a day's TTL.
        let ttl = Utc::now().timestamp() + 86_400;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk(partner)))
            .item("sk", s(format!("WAIT#{company_id}")))
            .item("note", s(uuid::Uuid::new_v4().to_string()))
            .item("ttl", AttributeValue::N(ttl.to_string()))
            .send()
            .await
            .map_err(|e| {
                store_err(
                    &format!("noting company {company_id} for the running sync"),
                    e,
                )
            })?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(partner = %partner, system = LOG_SYSTEM))]
    async fn waiting(&self, partner: &str) -> PortResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :w)")
                .expression_attribute_values(":pk", s(pk(partner)))
                .expression_attribute_values(":w", s("WAIT#"))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_err("reading the companies waiting for a sync", e))?;
            for item in page.items() {
                let field = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
                if let (Some(sk), Some(note)) = (field("sk"), field("note")) {
                    if let Some(c) = sk.strip_prefix("WAIT#") {
                        out.push((c.to_owned(), note));
                    }
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(partner = %partner, system = LOG_SYSTEM, notes = notes.len()))]
    async fn done_waiting(&self, partner: &str, notes: &[(String, String)]) -> PortResult<()> {
        for (company, note) in notes {
            let r = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(pk(partner)))
                .key("sk", s(format!("WAIT#{company}")))
                .condition_expression("note = :n")
                .expression_attribute_values(":n", s(note))
                .send()
                .await;
            if let Err(e) = r {
                match store_err(&format!("clearing the note of company {company}"), e) {
                    // Noted again since: the next round or run takes it.
                    PortError::Conflict { .. } => {}
                    other => return Err(other),
                }
            }
        }
        Ok(())
    }
}
