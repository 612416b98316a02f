//! The cloud platform's Account Management API v2. Every platform URL of the product is here.
//!
//! - Token: `POST /api/2/idp/token` (client credentials, Basic auth), cached until shortly before
//!   `expires_in`, renewed once on a 401.
//! - Tenants: list with `parent_id` / `uuids` and `expand_offering_items=true` (the spec's
//!   `with_offering_items` only filters), cursor paging (`paging.cursors.after`); a tenant the
//!   listing carries no items for is read with `GET /tenants/{id}/offering_items`; create with `customer_id` = PSA company id; update and delete with
//!   `version` (409 → re-read and try again).
//! - Offering items: GET, then PUT with each quota's `version`; a 409 re-reads and re-applies.
//! - Errors: `{"error":{"code","message",…}}`; the answers' shapes are in [`wire`].

mod reports;
mod usage;
mod wire;

use crate::http::{parse_time, Endpoint, ErrorDialect, HttpSettings, Idempotency, Pages};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::config::StorageLocation;
use domain::model::{ItemKey, Tenant};
use domain::ports::{NewTenant, QuotaSet, TenantAdmin, TenantDirectory, TenantWithItems};
use domain::rules::settings::PlatformCredentials;
use domain::{PortError, PortResult, System};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use url::Url;
use wire::{err, items_of, str_of, time_of, PlatformErrors, WireItem, WirePage, WireTenant};

/// The `system` field of this adapter's log lines.
const LOG_SYSTEM: &str = "platform";

/// Tenants per page: a page with offering items is about 2 MB of JSON per 500 tenants.
const PAGE: usize = 500;
const UUIDS_PER_QUERY: usize = 100;
const CONFLICT_RETRIES: u32 = 4;

/// A platform client acting for one partner's API client.
#[derive(Clone)]
pub struct PlatformApi {
    /// The partner this client acts for (in every log line of its calls).
    partner: Arc<str>,
    ep: Endpoint,
    client_id: String,
    client_secret: Arc<SecretString>,
    partner_tenant: String,
    token: Arc<Mutex<Option<(SecretString, Instant)>>>,
}

impl PlatformApi {
    pub fn new(
        base_url: &str,
        partner_tenant: &str,
        creds: &PlatformCredentials,
        client: reqwest::Client,
        settings: &HttpSettings,
    ) -> PortResult<Self> {
        let origin = Url::parse(&format!("{}/", base_url.trim_end_matches('/'))).map_err(|e| {
            PortError::Rejected {
                system: System::Platform,
                message: format!("platform url {base_url:?} is not a URL: {e}"),
            }
        })?;
        Ok(PlatformApi {
            partner: Arc::from(""),
            ep: Endpoint::new(System::Platform, "platform", client, origin, settings),
            client_id: creds.client_id.clone(),
            client_secret: Arc::new(creds.client_secret.clone()),
            partner_tenant: partner_tenant.to_owned(),
            token: Arc::new(Mutex::new(None)),
        })
    }

    /// The partner this client acts for, named in the logs of its calls.
    pub fn for_partner(mut self, partner: &str) -> Self {
        self.partner = Arc::from(partner);
        self
    }

    pub fn counter(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.ep.counter()
    }

    pub fn partner_tenant(&self) -> &str {
        &self.partner_tenant
    }

    async fn token(&self, renew: bool) -> PortResult<SecretString> {
        let mut guard = self.token.lock().await;
        if !renew {
            if let Some((t, until)) = guard.as_ref() {
                if Instant::now() < *until {
                    return Ok(t.clone());
                }
            }
        }
        let url = self.ep.url("api/2/idp/token")?;
        let answer = self
            .ep
            .send(&PlatformErrors, Idempotency::Safe, || {
                self.ep
                    .request(Method::POST, url.clone())
                    .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
                    .form(&[("grant_type", "client_credentials")])
            })
            .await?;
        let status = answer.status;
        let text = answer.text();
        if !status.is_success() {
            return Err(err(status, &text, "token"));
        }
        let v: Value =
            serde_json::from_str(&text).map_err(|e| PlatformErrors.unexpected_body("token", e))?;
        let token = str_of(&v, "access_token").ok_or_else(|| PortError::Rejected {
            system: System::Platform,
            message: "platform token: no access_token in the answer".into(),
        })?;
        let secret = SecretString::from(token);
        *guard = Some((
            secret.clone(),
            Instant::now() + token_lifetime(v.get("expires_in")),
        ));
        Ok(secret)
    }

    /// Sends an authenticated request; renews the token once on a 401. Returns the raw body.
    async fn call_bytes(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idem: Idempotency,
    ) -> PortResult<(StatusCode, Vec<u8>)> {
        let url = self.ep.url(path)?;
        let mut renewed = false;
        loop {
            let token = self.token(renewed).await?;
            let answer = self
                .ep
                .send(&PlatformErrors, idem, || {
                    let mut rb = self
                        .ep
                        .request(method.clone(), url.clone())
                        .bearer_auth(token.expose_secret());
                    if let Some(b) = body {
                        rb = rb.json(b);
                    }
                    rb
                })
                .await?;
            let status = answer.status;
            let bytes = answer.body;
            if status == StatusCode::UNAUTHORIZED && !renewed {
                renewed = true;
                continue;
            }
            if !status.is_success() {
                let text = String::from_utf8_lossy(&bytes);
                return Err(err(status, &text, &format!("{method} {}", url.path())));
            }
            return Ok((status, bytes.to_vec()));
        }
    }

    /// [`Self::call_bytes`], parsed as JSON (`null` for an empty body).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idem: Idempotency,
    ) -> PortResult<(StatusCode, Value)> {
        let (status, bytes) = self.call_bytes(method, path, body, idem).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok((status, Value::Null));
        }
        let v =
            serde_json::from_slice(&bytes).map_err(|e| PlatformErrors.unexpected_body(path, e))?;
        Ok((status, v))
    }

    async fn get(&self, path: &str) -> PortResult<Value> {
        Ok(self
            .call(Method::GET, path, None, Idempotency::Safe)
            .await?
            .1)
    }

    /// Every page of a cursor-paged list, each page parsed into `T` and mapped at once (a page
    /// at a time is held as wire data); returns the mapped items and the first page's timestamp.
    async fn list<T: DeserializeOwned, U>(
        &self,
        path_and_query: &str,
        mut map: impl FnMut(T) -> Option<U>,
    ) -> PortResult<(Vec<U>, String)> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        let mut timestamp = String::new();
        let what = path_and_query.split('?').next().unwrap_or(path_and_query);
        let mut pages = Pages::new(System::Platform, format!("platform {what}"));
        loop {
            let sep = if path_and_query.contains('?') {
                '&'
            } else {
                '?'
            };
            let path = match &after {
                Some(a) => format!(
                    "{path_and_query}{sep}after={}",
                    url::form_urlencoded::byte_serialize(a.as_bytes()).collect::<String>()
                ),
                None => path_and_query.to_owned(),
            };
            let (_, bytes) = self
                .call_bytes(Method::GET, &path, None, Idempotency::Safe)
                .await?;
            let page: WirePage<T> =
                serde_json::from_slice(&bytes).map_err(|e| PortError::Rejected {
                    system: System::Platform,
                    message: format!("platform {path_and_query}: unexpected page: {e}"),
                })?;
            drop(bytes);
            if timestamp.is_empty() {
                timestamp = page.timestamp.unwrap_or_default();
            }
            out.extend(page.items.into_iter().filter_map(&mut map));
            after = page.paging.and_then(|p| p.cursors).and_then(|c| c.after);
            match &after {
                Some(a) => pages.next(a)?,
                None => break,
            }
        }
        Ok((out, timestamp))
    }

    async fn tenant_raw(&self, id: &str) -> PortResult<Value> {
        self.get(&format!("api/2/tenants/{id}")).await
    }

    /// `PUT /tenants/{id}` with the current version, re-reading on a version conflict.
    async fn update_tenant(&self, id: &str, patch: Value) -> PortResult<()> {
        for _ in 0..CONFLICT_RETRIES {
            let cur = self.tenant_raw(id).await?;
            let mut body = patch.clone();
            body["version"] = cur.get("version").cloned().unwrap_or(json!(0));
            match self
                .call(
                    Method::PUT,
                    &format!("api/2/tenants/{id}"),
                    Some(&body),
                    Idempotency::Safe,
                )
                .await
            {
                Err(PortError::Conflict { .. }) => continue,
                other => return other.map(|_| ()),
            }
        }
        Err(PortError::Conflict {
            system: System::Platform,
            message: format!("tenant {id} kept changing while it was being updated"),
        })
    }

    async fn invite(&self, tenant_id: &str, admin: &domain::model::Contact) -> PortResult<()> {
        let Some(email) = admin.email.as_deref() else {
            return Ok(());
        };
        let login_free = self
            .call(
                Method::GET,
                &format!(
                    "api/2/users/check_login?username={}",
                    url::form_urlencoded::byte_serialize(email.as_bytes()).collect::<String>()
                ),
                None,
                Idempotency::Safe,
            )
            .await;
        if let Err(PortError::Conflict { .. }) = login_free {
            tracing::info!(
                tenant_id,
                "administrator login already exists; no activation e-mail sent"
            );
            return Ok(());
        }
        login_free?;
        let body = json!({
            "tenant_id": tenant_id,
            "login": email,
            "contact": {"email": email, "firstname": admin.first_name, "lastname": admin.last_name},
        });
        let (_, user) = self
            .call(
                Method::POST,
                "api/2/users",
                Some(&body),
                Idempotency::Unsafe,
            )
            .await?;
        let uid = str_of(&user, "id").ok_or_else(|| PortError::Rejected {
            system: System::Platform,
            message: "platform created a user without an id".into(),
        })?;
        self.call(
            Method::POST,
            &format!("api/2/users/{uid}/send-activation-email"),
            // The operation defines no request body.
            None,
            Idempotency::Safe,
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl TenantDirectory for PlatformApi {
    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM)
    )]
    async fn check_login(&self) -> PortResult<String> {
        let v = self
            .get(&format!("api/2/clients/{}", self.client_id))
            .await?;
        str_of(&v, "tenant_id").ok_or_else(|| PortError::Rejected {
            system: System::Platform,
            message: "the API client answer has no tenant_id".into(),
        })
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, tenants = ids.len())
    )]
    async fn customers(&self, ids: &[String]) -> PortResult<(Vec<TenantWithItems>, String)> {
        self.customers_keeping(ids, &|_| true).await
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, tenants = ids.len())
    )]
    async fn customers_keeping(
        &self,
        ids: &[String],
        keep: &(dyn for<'k> Fn(&'k ItemKey) -> bool + Sync),
    ) -> PortResult<(Vec<TenantWithItems>, String)> {
        // Each tenant with whether the listing carried its items (before `keep` filters them:
        // a tenant none of whose items are kept was still listed with them).
        let to_domain = |t: WireTenant| {
            t.into_domain().map(|mut t| {
                let listed = !t.items.is_empty();
                t.items.retain(|i| keep(&i.key));
                t.items.shrink_to_fit();
                (t, listed)
            })
        };
        let mut out = Vec::new();
        let mut stamp = String::new();
        if ids.is_empty() {
            let (tenants, ts) = self
                .list(
                    &format!(
                        "api/2/tenants?parent_id={}&expand_offering_items=true&limit={PAGE}",
                        self.partner_tenant
                    ),
                    to_domain,
                )
                .await?;
            stamp = ts;
            out.extend(tenants);
        } else {
            for chunk in ids.chunks(UUIDS_PER_QUERY) {
                let (tenants, ts) = self
                    .list(
                        &format!(
                            "api/2/tenants?uuids={}&expand_offering_items=true",
                            chunk.join(",")
                        ),
                        to_domain,
                    )
                    .await?;
                if stamp.is_empty() {
                    stamp = ts;
                }
                out.extend(tenants);
            }
        }
        out.retain(|(t, _)| t.tenant.parent_id.as_deref() == Some(self.partner_tenant.as_str()));
        // Defensive: a listing that carries no items for a tenant (an API that does not
        // expand them) is completed with that tenant's own item read.
        for (t, _) in out
            .iter_mut()
            .filter(|(t, listed)| !listed && !t.tenant.deleted)
        {
            t.items = self.tenant_items(&t.tenant.id).await?;
            t.items.retain(|i| keep(&i.key));
            t.items.shrink_to_fit();
        }
        Ok((out.into_iter().map(|(t, _)| t).collect(), stamp))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, cursor = ?cursor)
    )]
    async fn items_changed(
        &self,
        cursor: Option<&str>,
    ) -> PortResult<(Vec<(String, DateTime<Utc>)>, String)> {
        let mut q = format!(
            "api/2/tenants/offering_items?subtree_root_tenant_id={}&limit={PAGE}",
            self.partner_tenant
        );
        if let Some(c) = cursor {
            q.push_str("&updated_since=");
            q.extend(url::form_urlencoded::byte_serialize(c.as_bytes()));
        }
        let (changes, ts) = self
            .list(&q, |i: WireItem| {
                Some((i.tenant_id?, parse_time(i.updated_at.as_deref()?)?))
            })
            .await?;
        let mut latest: HashMap<String, DateTime<Utc>> = HashMap::new();
        for (t, at) in changes {
            if t == self.partner_tenant {
                continue;
            }
            let e = latest.entry(t).or_insert(at);
            *e = (*e).max(at);
        }
        let mut out: Vec<(String, DateTime<Utc>)> = latest.into_iter().collect();
        out.sort();
        Ok((out, ts))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, company = %customer_id)
    )]
    async fn find_customer(&self, customer_id: &str) -> PortResult<Option<TenantWithItems>> {
        let (all, _) = self.customers(&[]).await?;
        Ok(all
            .into_iter()
            .find(|t| !t.tenant.deleted && t.tenant.customer_id.as_deref() == Some(customer_id)))
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM)
    )]
    async fn storage_locations(&self) -> PortResult<Vec<StorageLocation>> {
        let v = self
            .get(&format!("api/2/tenants/{}/locations", self.partner_tenant))
            .await?;
        let locations: Vec<String> = v
            .get("locations")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut infra_ids = Vec::new();
        for loc in &locations {
            let v = self.get(&format!("api/2/locations/{loc}/infra")).await?;
            infra_ids.extend(
                v.get("infras")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default(),
            );
        }
        if infra_ids.is_empty() {
            return Ok(vec![]);
        }
        let v = self
            .get(&format!("api/2/infra?uuids={}", infra_ids.join(",")))
            .await?;
        Ok(items_of(&v)
            .iter()
            .filter_map(|i| {
                Some(StorageLocation {
                    infra_id: str_of(i, "id")?,
                    name: str_of(i, "name").unwrap_or_default(),
                    backend: str_of(i, "backend_type"),
                })
            })
            .collect())
    }

    async fn offering_items(&self) -> PortResult<Vec<String>> {
        let v = self
            .get(&format!(
                "api/2/tenants/{}/offering_items/available_for_child?kind=customer&edition=*",
                self.partner_tenant
            ))
            .await?;
        let mut names: Vec<String> = items_of(&v)
            .iter()
            .filter_map(|i| str_of(i, "name"))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

#[async_trait]
impl TenantAdmin for PlatformApi {
    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, company = %req.customer_id)
    )]
    async fn create_customer(&self, req: &NewTenant) -> PortResult<Tenant> {
        let body = json!({
            "name": req.name,
            "parent_id": self.partner_tenant,
            "kind": "customer",
            "customer_id": req.customer_id,
            "enabled": true,
        });
        let mut attempts = 0;
        let created = loop {
            attempts += 1;
            match self
                .call(
                    Method::POST,
                    "api/2/tenants",
                    Some(&body),
                    Idempotency::Unsafe,
                )
                .await
            {
                Ok((_, v)) => {
                    break WireTenant::from_value(v).ok_or_else(|| PortError::Rejected {
                        system: System::Platform,
                        message: "platform created a tenant without an id".into(),
                    })?
                }
                // The answer was lost or the server failed: the tenant may exist. Find it by
                // the company id it carries before trying again — never create a second one.
                Err(e) if e.is_retryable() => {
                    if let Some(found) = self.find_customer(&req.customer_id).await? {
                        break found.tenant;
                    }
                    if attempts >= 3 {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        };
        Ok(created)
    }

    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, tenant = %tenant_id, items = items.len())
    )]
    async fn set_quotas(
        &self,
        tenant_id: &str,
        items: &[QuotaSet],
        basis: &[QuotaSet],
    ) -> PortResult<Option<DateTime<Utc>>> {
        let path = format!("api/2/tenants/{tenant_id}/offering_items");
        for attempt in 0..CONFLICT_RETRIES {
            let current = items_of(&self.get(&path).await?);
            let now: Vec<domain::model::CurrentItem> = current
                .iter()
                .filter_map(|i| serde_json::from_value::<WireItem>(i.clone()).ok())
                .map(WireItem::into_domain)
                .collect();
            // After a conflict, a write of ours whose answer was lost shows as done.
            let done = |q: &QuotaSet| {
                now.iter()
                    .any(|c| c.key == q.item && c.enabled == q.enabled && c.quota == q.quota)
            };
            if attempt > 0 && items.iter().all(done) {
                return Ok(now
                    .iter()
                    .filter(|c| items.iter().any(|q| q.item == c.key))
                    .filter_map(|c| c.updated_at)
                    .max());
            }
            // R-REL-4: what the run read must still hold, on every read before a write (a
            // version conflict is a later write: the re-read shows whether it moved the basis).
            if let Some(moved) = domain::rules::provisioning::basis_moved(basis, &now) {
                return Err(PortError::Conflict {
                    system: System::Platform,
                    message: format!(
                        "tenant {tenant_id}: {moved}; not written — synced again at the next pass"
                    ),
                });
            }
            let by_key: HashMap<(String, Option<String>), &Value> = current
                .iter()
                .filter_map(|v| Some(((str_of(v, "name")?, str_of(v, "infra_id")), v)))
                .collect();
            let mut body_items = Vec::new();
            for i in items {
                let Some(cur) = by_key.get(&(i.item.name.clone(), i.item.infra_id.clone())) else {
                    return Err(PortError::Rejected {
                        system: System::Platform,
                        message: format!(
                            "tenant {tenant_id} does not offer the item {} — check the product mapping",
                            i.item
                        ),
                    });
                };
                let mut entry = json!({
                    "application_id": cur.get("application_id").cloned().unwrap_or(Value::Null),
                    "name": i.item.name,
                    "status": if i.enabled { 1 } else { 0 },
                    "quota": {
                        "value": i.quota.value,
                        "overage": i.quota.overage,
                        "version": cur.pointer("/quota/version").cloned().unwrap_or(json!(0)),
                    },
                });
                if let Some(infra) = &i.item.infra_id {
                    entry["infra_id"] = json!(infra);
                }
                body_items.push(entry);
            }
            let body = json!({"offering_items": body_items});
            match self
                .call(Method::PUT, &path, Some(&body), Idempotency::Safe)
                .await
            {
                Err(PortError::Conflict { .. }) => continue,
                Err(e) => return Err(e),
                Ok((_, v)) => {
                    return Ok(items_of(&v)
                        .iter()
                        .filter_map(|i| time_of(i, "updated_at"))
                        .max())
                }
            }
        }
        Err(PortError::Conflict {
            system: System::Platform,
            message: format!(
                "the offering items of tenant {tenant_id} kept changing while being set"
            ),
        })
    }

    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, tenant = %tenant_id, enabled = enabled)
    )]
    async fn set_enabled(&self, tenant_id: &str, enabled: bool) -> PortResult<()> {
        self.update_tenant(tenant_id, json!({"enabled": enabled}))
            .await
    }

    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, tenant = %tenant_id)
    )]
    async fn delete_tenant(&self, tenant_id: &str) -> PortResult<()> {
        for _ in 0..CONFLICT_RETRIES {
            let cur = match self.tenant_raw(tenant_id).await {
                Err(PortError::NotFound { .. }) => return Ok(()),
                other => other?,
            };
            if cur.get("deleted_at").is_some_and(|d| !d.is_null()) {
                return Ok(());
            }
            let version = cur.get("version").and_then(Value::as_u64).unwrap_or(0);
            match self
                .call(
                    Method::DELETE,
                    &format!("api/2/tenants/{tenant_id}?version={version}"),
                    None,
                    Idempotency::Safe,
                )
                .await
            {
                Err(PortError::Conflict { .. }) => continue,
                Err(PortError::NotFound { .. }) => return Ok(()),
                other => return other.map(|_| ()),
            }
        }
        Err(PortError::Conflict {
            system: System::Platform,
            message: format!("tenant {tenant_id} kept changing while being deleted"),
        })
    }

    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, tenant = %tenant_id)
    )]
    async fn set_pricing_mode(
        &self,
        tenant_id: &str,
        mode: domain::model::PricingMode,
    ) -> PortResult<()> {
        self.put_pricing_mode(
            tenant_id,
            match mode {
                domain::model::PricingMode::Trial => "trial",
                domain::model::PricingMode::Production => "production",
            },
        )
        .await
    }

    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, tenant = %tenant_id)
    )]
    async fn enable_two_factor(&self, tenant_id: &str) -> PortResult<()> {
        self.call(
            Method::PUT,
            &format!("api/2/tenants/{tenant_id}/mfa/status"),
            Some(&json!({"enabled": true})),
            Idempotency::Safe,
        )
        .await
        .map(|_| ())
    }

    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, tenant = %tenant_id)
    )]
    async fn invite_admin(
        &self,
        tenant_id: &str,
        admin: &domain::model::Contact,
    ) -> PortResult<()> {
        self.invite(tenant_id, admin).await
    }
}

impl PlatformApi {
    /// `GET /tenants/{id}/offering_items?edition=*`: one tenant's items (the fallback when a
    /// listing carries none).
    async fn tenant_items(&self, tenant_id: &str) -> PortResult<Vec<domain::model::CurrentItem>> {
        let v = self
            .get(&format!(
                "api/2/tenants/{tenant_id}/offering_items?edition=*"
            ))
            .await?;
        Ok(items_of(&v)
            .into_iter()
            .filter_map(|i| serde_json::from_value::<WireItem>(i).ok())
            .map(WireItem::into_domain)
            .collect())
    }

    /// `PUT /tenants/{id}/pricing` with `mode`, at the current pricing version (re-read on 409).
    async fn put_pricing_mode(&self, tenant_id: &str, mode: &str) -> PortResult<()> {
        let path = format!("api/2/tenants/{tenant_id}/pricing");
        for _ in 0..CONFLICT_RETRIES {
            let cur = self.get(&path).await?;
            if str_of(&cur, "mode").as_deref() == Some(mode) {
                return Ok(());
            }
            // Only what PUT takes: the mode at the pricing version just read.
            let body = json!({"mode": mode, "version": cur.get("version").cloned().unwrap_or(Value::Null)});
            match self
                .call(Method::PUT, &path, Some(&body), Idempotency::Safe)
                .await
            {
                Err(PortError::Conflict { .. }) => continue,
                other => return other.map(|_| ()),
            }
        }
        Err(PortError::Conflict {
            system: System::Platform,
            message: format!("the pricing of tenant {tenant_id} kept changing"),
        })
    }
}

/// Shortest and longest token lifetime believed: an `expires_in` of 0, a missing one or a year
/// is clamped, so a token is neither fetched on every call nor kept after a rotation.
const TOKEN_LIFETIME: (u64, u64) = (30, 3_600);

/// How long a platform token is used: its `expires_in` (600 s when absent), clamped to
/// [`TOKEN_LIFETIME`], less a minute (or half of it, for short tokens) so it is renewed early.
fn token_lifetime(expires_in: Option<&Value>) -> Duration {
    let (lo, hi) = TOKEN_LIFETIME;
    let ttl = expires_in
        .and_then(|v| v.as_u64().or_else(|| v.as_f64().map(|f| f.max(0.0) as u64)))
        .unwrap_or(600)
        .clamp(lo, hi);
    Duration::from_secs(ttl - 60.min(ttl / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn r_rel_1_token_lifetime_is_clamped_and_renewed_early() {
        let secs = |v: Option<Value>| token_lifetime(v.as_ref()).as_secs();
        assert_eq!(secs(Some(json!(7200))), 3_600 - 60);
        assert_eq!(secs(Some(json!(u64::MAX))), 3_600 - 60);
        assert_eq!(secs(Some(json!(600))), 540);
        assert_eq!(secs(None), 540);
        assert_eq!(secs(Some(json!(0))), 15);
        assert_eq!(secs(Some(json!(-5))), 15);
        assert_eq!(secs(Some(json!("soon"))), 540);
    }
}
