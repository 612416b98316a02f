//! Fake Acronis Cyber Protect Cloud Account Management API v2 (`/api/2`).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    io,
    net::SocketAddr,
    ops::Bound,
    sync::{Arc, Mutex},
};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use base64::Engine;
use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::common::{self, lock, Common};

/// Cyber Protection application id used for every offering item.
pub const APPLICATION_ID: &str = "6e6d758d-8e74-3ae3-ac84-50eb0dff12eb";
/// Count offering items every partner's catalogue holds (edition `standard`, unit quantity).
pub const COUNT_ITEMS: &[&str] = &[
    "workstations",
    "servers",
    "vms",
    "mobiles",
    "web_hosting_servers",
    "mailboxes",
    "gsuite_seats",
];
/// Token lifetime in seconds.
pub const TOKEN_TTL_SECS: i64 = 7200;
const DEFAULT_LIMIT: usize = 5000;

/// What [`PlatformFake::add_partner`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerAccount {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub default_infra_id: String,
}

// ---------------------------------------------------------------------------------------------
// Formatting helpers
// ---------------------------------------------------------------------------------------------

/// Record timestamps, as in the vendor's examples: UTC without zone, microseconds
/// (`2026-11-22T00:00:00.000000`).
pub fn am_time(d: &DateTime<Utc>) -> String {
    // Hand-rolled: chrono's format-string path is slow in debug builds (hot in listings).
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        d.year(),
        d.month(),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.timestamp_subsec_micros().min(999_999)
    )
}

fn am_time_opt(d: &Option<DateTime<Utc>>) -> Value {
    d.as_ref().map(|d| json!(am_time(d))).unwrap_or(Value::Null)
}

/// Envelope `timestamp`: RFC 3339 with `Z`, microseconds.
fn rfc3339(d: &DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses RFC 3339, or a zone-less timestamp taken as UTC.
fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s.trim()) {
        return Some(d.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// Integral numbers as JSON integers (like the vendor), others as floats.
fn num(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

fn num_opt(v: Option<f64>) -> Value {
    v.map(num).unwrap_or(Value::Null)
}

fn am_error(status: StatusCode, code: &str, message: &str) -> Response {
    common::json_response(
        status,
        &json!({"error": {
            "code": code,
            "domain": "AccountServer",
            "message": message,
            "details": {},
        }}),
    )
}

fn bad_request(message: &str) -> Response {
    am_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}
fn not_found(message: &str) -> Response {
    am_error(StatusCode::NOT_FOUND, "NotFound", message)
}
fn forbidden(message: &str) -> Response {
    am_error(StatusCode::FORBIDDEN, "Forbidden", message)
}
fn conflict(code: &str, message: &str) -> Response {
    am_error(StatusCode::CONFLICT, code, message)
}

/// Error response for `Status` faults.
fn fault_response(status: StatusCode, retry_after: Option<u64>) -> Response {
    let (code, message) = match status.as_u16() {
        429 => ("TooManyRequests", "Too many requests."),
        500 => ("InternalServerError", "Internal server error."),
        502 => ("BadGateway", "Bad gateway."),
        503 => ("ServiceUnavailable", "Service unavailable."),
        401 => ("Unauthorized", "Unauthorized."),
        403 => ("Forbidden", "Forbidden."),
        404 => ("NotFound", "Not found."),
        409 => ("Conflict", "Conflict."),
        _ => ("Error", "Injected fault."),
    };
    let mut resp = am_error(status, code, message);
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&secs.to_string()).expect("digits"),
        );
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// Ordering key of a tenant: (depth in the tree, creation sequence) — parents before children.
type OKey = (u32, u64);
/// Ordering key of an offering item: tenant's OKey, item name, infra id ("" if none).
type IKey = (u32, u64, String, String);

#[derive(Debug, Clone)]
struct Tenant {
    id: String,
    key: OKey,
    parent_id: Option<String>,
    name: String,
    kind: String,
    enabled: bool,
    customer_type: String,
    customer_id: Option<String>,
    internal_tag: Option<String>,
    language: String,
    ancestral_access: bool,
    update_lock: bool,
    update_lock_owner: Option<String>,
    mfa_status: String,
    pricing_mode: String,
    production_start_date: Option<DateTime<Utc>>,
    currency: Option<String>,
    pricing_version: i64,
    contact: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
    version: i64,
}

#[derive(Debug, Clone)]
struct CatalogEntry {
    name: String,
    usage_name: String,
    item_type: &'static str,
    unit: &'static str,
    infra_id: Option<String>,
}

#[derive(Debug, Clone)]
struct Item {
    tenant_id: String,
    name: String,
    usage_name: String,
    item_type: &'static str,
    unit: &'static str,
    infra_id: Option<String>,
    status: u8,
    quota_value: Option<f64>,
    quota_overage: Option<f64>,
    quota_version: i64,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct Client {
    client_id: String,
    secret: String,
    tenant_id: String,
    name: String,
    created_at: DateTime<Utc>,
    last_access_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
struct Infra {
    id: String,
    location_id: String,
    name: String,
    url: String,
    backend_type: &'static str,
}

struct PfState {
    root_id: String,
    tenants: HashMap<String, Tenant>,
    order: BTreeMap<OKey, String>,
    children: HashMap<String, BTreeSet<OKey>>,
    items: BTreeMap<IKey, Item>,
    /// Partner tenant id → what its customers may get.
    catalog: HashMap<String, Vec<CatalogEntry>>,
    clients: HashMap<String, Client>,
    tokens: HashMap<String, (String, DateTime<Utc>)>,
    token_requests: u64,
    infras: BTreeMap<String, Infra>,
    usages: HashMap<(String, String, String), f64>,
    users: BTreeMap<String, Value>,
    logins: HashMap<String, String>,
    activation_emails: Vec<String>,
    /// Live tenants by (parent id, lower-cased name), for the sibling-name uniqueness check.
    live_names: HashMap<(String, String), String>,
    seq: u64,
    last_version: i64,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn catalog_for_infra(infra_id: &str) -> CatalogEntry {
    CatalogEntry {
        name: "storage".into(),
        usage_name: "storage".into(),
        item_type: "infra",
        unit: "bytes",
        infra_id: Some(infra_id.to_string()),
    }
}

impl PfState {
    fn new(now: DateTime<Utc>) -> Self {
        let mut st = PfState {
            root_id: String::new(),
            tenants: HashMap::new(),
            order: BTreeMap::new(),
            children: HashMap::new(),
            items: BTreeMap::new(),
            catalog: HashMap::new(),
            clients: HashMap::new(),
            tokens: HashMap::new(),
            token_requests: 0,
            infras: BTreeMap::new(),
            usages: HashMap::new(),
            users: BTreeMap::new(),
            logins: HashMap::new(),
            activation_emails: Vec::new(),
            live_names: HashMap::new(),
            seq: 0,
            last_version: 0,
        };
        let root = st
            .create_tenant(None, "Platform", "root", None, now)
            .expect("root");
        st.root_id = root;
        st
    }

    /// Monotonic version stamp: milliseconds of the fake clock, bumped to stay increasing.
    fn next_version(&mut self, now: DateTime<Utc>) -> i64 {
        self.last_version = (self.last_version + 1).max(now.timestamp_millis());
        self.last_version
    }

    fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenants.get(id)
    }

    /// Is `id` in the subtree rooted at `root` (inclusive)?
    fn in_subtree(&self, id: &str, root: &str) -> bool {
        let mut cur = id;
        loop {
            if cur == root {
                return true;
            }
            match self.tenants.get(cur).and_then(|t| t.parent_id.as_deref()) {
                Some(p) => cur = p,
                None => return false,
            }
        }
    }

    /// Nearest partner ancestor-or-self (whose catalogue applies).
    fn partner_of(&self, id: &str) -> Option<String> {
        let mut cur = self.tenants.get(id)?;
        loop {
            if cur.kind == "partner" {
                return Some(cur.id.clone());
            }
            cur = self.tenants.get(cur.parent_id.as_deref()?)?;
        }
    }

    /// Catalogue a tenant's items are drawn from (the partner's own catalogue for a partner).
    fn available(&self, id: &str) -> &[CatalogEntry] {
        self.partner_of(id)
            .and_then(|p| self.catalog.get(&p))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    fn live_sibling_named(&self, parent: &str, name: &str, except: Option<&str>) -> bool {
        self.live_names
            .get(&(parent.to_string(), name.to_lowercase()))
            .is_some_and(|id| Some(id.as_str()) != except)
    }

    fn create_tenant(
        &mut self,
        parent_id: Option<&str>,
        name: &str,
        kind: &str,
        customer_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<String, Response> {
        let (depth, pricing_mode) = match parent_id {
            Some(p) => {
                let parent = self
                    .tenant(p)
                    .filter(|t| t.deleted_at.is_none())
                    .ok_or_else(|| not_found(&format!("Tenant {p} not found.")))?;
                let mode = if parent.pricing_mode == "trial" {
                    "trial"
                } else {
                    "production"
                };
                (parent.key.0 + 1, mode.to_string())
            }
            None => (0, "production".to_string()),
        };
        if let Some(p) = parent_id {
            if self.live_sibling_named(p, name, None) {
                return Err(conflict(
                    "TenantNameExists",
                    &format!("Tenant with name '{name}' already exists."),
                ));
            }
        }
        self.seq += 1;
        let key = (depth, self.seq);
        let id = new_id();
        let t = Tenant {
            id: id.clone(),
            key,
            parent_id: parent_id.map(str::to_string),
            name: name.to_string(),
            kind: kind.to_string(),
            enabled: true,
            customer_type: "default".into(),
            customer_id: customer_id.map(str::to_string),
            internal_tag: None,
            language: "en".into(),
            ancestral_access: true,
            update_lock: false,
            update_lock_owner: None,
            mfa_status: "disabled".into(),
            production_start_date: (pricing_mode == "production").then_some(now),
            pricing_mode,
            currency: Some("USD".into()),
            pricing_version: 1,
            contact: Value::Null,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            version: 1,
        };
        self.tenants.insert(id.clone(), t);
        self.order.insert(key, id.clone());
        if let Some(p) = parent_id {
            self.children.entry(p.to_string()).or_default().insert(key);
            self.live_names
                .insert((p.to_string(), name.to_lowercase()), id.clone());
        }
        if kind != "partner" && kind != "root" {
            let entries: Vec<CatalogEntry> = self.available(&id).to_vec();
            for e in entries {
                self.put_item(&id, &e, 0, now);
            }
        }
        Ok(id)
    }

    fn ikey(&self, tenant_id: &str, name: &str, infra: Option<&str>) -> Option<IKey> {
        let t = self.tenant(tenant_id)?;
        Some((
            t.key.0,
            t.key.1,
            name.to_string(),
            infra.unwrap_or("").to_string(),
        ))
    }

    /// Creates an item (quota unlimited, version 0) if missing; returns its key.
    fn put_item(
        &mut self,
        tenant_id: &str,
        e: &CatalogEntry,
        status: u8,
        now: DateTime<Utc>,
    ) -> IKey {
        let k = self
            .ikey(tenant_id, &e.name, e.infra_id.as_deref())
            .expect("tenant exists");
        self.items.entry(k.clone()).or_insert_with(|| Item {
            tenant_id: tenant_id.to_string(),
            name: e.name.clone(),
            usage_name: e.usage_name.clone(),
            item_type: e.item_type,
            unit: e.unit,
            infra_id: e.infra_id.clone(),
            status,
            quota_value: None,
            quota_overage: None,
            quota_version: 0,
            updated_at: now,
            deleted_at: None,
        });
        k
    }

    fn tenant_items(&self, t: &Tenant) -> impl Iterator<Item = &Item> + '_ {
        let (d, s) = t.key;
        self.items
            .range((d, s, String::new(), String::new())..(d, s + 1, String::new(), String::new()))
            .map(|(_, v)| v)
    }

    fn add_infra(
        &mut self,
        partner_tenant_id: &str,
        name: &str,
        backend: &'static str,
        now: DateTime<Utc>,
    ) -> String {
        let location_id = new_id();
        let id = new_id();
        let n = self.infras.len() + 1;
        self.infras.insert(
            id.clone(),
            Infra {
                id: id.clone(),
                location_id,
                name: name.to_string(),
                url: format!("acronis+fes://storage{n}.sandbox.invalid:44445"),
                backend_type: backend,
            },
        );
        let entry = catalog_for_infra(&id);
        self.catalog
            .entry(partner_tenant_id.to_string())
            .or_default()
            .push(entry.clone());
        // The partner gets the item enabled; existing descendants get it switched off.
        self.put_item(partner_tenant_id, &entry, 1, now);
        let descendants: Vec<String> = self
            .order
            .values()
            .filter(|id| {
                id.as_str() != partner_tenant_id
                    && self.in_subtree(id, partner_tenant_id)
                    && self.partner_of(id).as_deref() == Some(partner_tenant_id)
            })
            .cloned()
            .collect();
        for d in descendants {
            self.put_item(&d, &entry, 0, now);
        }
        id
    }

    /// The catalogue entry of an item available to the tenant (test control: panics if absent).
    fn available_entry(&self, tenant_id: &str, name: &str, infra_id: Option<&str>) -> CatalogEntry {
        self.available(tenant_id)
            .iter()
            .find(|e| e.name == name && e.infra_id.as_deref() == infra_id)
            .cloned()
            .unwrap_or_else(|| {
                panic!("psa-sandbox: item {name}/{infra_id:?} not available to {tenant_id}")
            })
    }

    fn visible_infra(&self, partner: &str) -> Vec<&Infra> {
        let mut ids: Vec<&str> = self
            .catalog
            .get(partner)
            .map(|c| c.iter().filter_map(|e| e.infra_id.as_deref()).collect())
            .unwrap_or_default();
        ids.sort();
        ids.dedup();
        ids.into_iter().filter_map(|i| self.infras.get(i)).collect()
    }

    // ------------------------------------------------------------------ rendering

    fn item_json(&self, it: &Item) -> Value {
        let mut v = json!({
            "application_id": APPLICATION_ID,
            "name": it.name,
            "edition": "standard",
            "usage_name": it.usage_name,
            "tenant_id": it.tenant_id,
            "updated_at": am_time(&it.updated_at),
            "deleted_at": am_time_opt(&it.deleted_at),
            "status": it.status,
            "locked": false,
            "type": it.item_type,
            "measurement_unit": it.unit,
            "quota": {
                "value": num_opt(it.quota_value),
                "overage": num_opt(it.quota_overage),
                "version": it.quota_version,
            },
        });
        if let Some(infra) = &it.infra_id {
            v["infra_id"] = json!(infra);
        }
        v
    }

    fn has_children(&self, t: &Tenant) -> bool {
        self.children.get(&t.id).is_some_and(|set| {
            set.iter()
                .any(|k| self.tenants[&self.order[k]].deleted_at.is_none())
        })
    }

    fn tenant_json(&self, t: &Tenant, lod: Lod, batch: bool, with_items: bool) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(t.id));
        m.insert("parent_id".into(), json!(t.parent_id));
        m.insert("version".into(), json!(t.version));
        m.insert("created_at".into(), json!(am_time(&t.created_at)));
        m.insert("updated_at".into(), json!(am_time(&t.updated_at)));
        m.insert("deleted_at".into(), am_time_opt(&t.deleted_at));
        if lod != Lod::Stamps {
            m.insert("name".into(), json!(t.name));
            m.insert("kind".into(), json!(t.kind));
            m.insert("enabled".into(), json!(t.enabled));
        }
        if lod == Lod::Full {
            m.insert("customer_type".into(), json!(t.customer_type));
            m.insert("customer_id".into(), json!(t.customer_id));
            m.insert("brand_id".into(), json!(1));
            m.insert("internal_tag".into(), json!(t.internal_tag));
            m.insert("language".into(), json!(t.language));
            m.insert("owner_id".into(), Value::Null);
            m.insert("has_children".into(), json!(self.has_children(t)));
            m.insert("ancestral_access".into(), json!(t.ancestral_access));
            m.insert(
                "update_lock".into(),
                json!({"enabled": t.update_lock, "owner_id": t.update_lock_owner}),
            );
            m.insert("mfa_status".into(), json!(t.mfa_status));
            m.insert("pricing_mode".into(), json!(t.pricing_mode));
            m.insert(
                "production_start_date".into(),
                am_time_opt(&t.production_start_date),
            );
            m.insert("contact".into(), t.contact.clone());
        }
        if batch {
            m.insert(
                "contacts".into(),
                if t.contact.is_null() {
                    json!([])
                } else {
                    json!([t.contact])
                },
            );
            let items: Vec<Value> = if with_items {
                self.tenant_items(t).map(|i| self.item_json(i)).collect()
            } else {
                Vec::new()
            };
            m.insert("offering_items".into(), Value::Array(items));
        }
        Value::Object(m)
    }

    fn usage_json(&self, t: &Tenant, it: &Item, now: DateTime<Utc>) -> Value {
        let value = self
            .usages
            .get(&(
                t.id.clone(),
                it.name.clone(),
                it.infra_id.clone().unwrap_or_default(),
            ))
            .copied()
            .unwrap_or(0.0);
        let range_start = Utc
            .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
            .single()
            .unwrap_or(now);
        let mut v = json!({
            "application_id": APPLICATION_ID,
            "name": it.name,
            "edition": "standard",
            "usage_name": it.usage_name,
            "type": it.item_type,
            "measurement_unit": it.unit,
            "tenant_uuid": t.id,
            "tenant_id": t.key.1,
            "range_start": am_time(&range_start),
            "value": num(value),
            "absolute_value": num(value),
            "offering_item": {
                "status": it.status,
                "quota": {
                    "value": num_opt(it.quota_value),
                    "overage": num_opt(it.quota_overage),
                    "version": it.quota_version,
                },
            },
        });
        if let Some(infra) = &it.infra_id {
            v["infra_id"] = json!(infra);
        }
        v
    }

    fn infra_json(&self, i: &Infra) -> Value {
        json!({
            "id": i.id,
            "owner_tenant_id": self.root_id,
            "location_id": i.location_id,
            "name": i.name,
            "url": i.url,
            "platform_owned": true,
            "capabilities": ["backup"],
            "backend_type": i.backend_type,
            "readonly": false,
            "version": 1,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Lod {
    Stamps,
    Basic,
    Full,
}

// ---------------------------------------------------------------------------------------------
// Handle
// ---------------------------------------------------------------------------------------------

struct PfInner {
    url: String,
    common: Arc<Common>,
    state: Mutex<PfState>,
}

/// Handle to a running fake platform (Account Management API) server (cheap to clone).
#[derive(Clone)]
pub struct PlatformFake {
    inner: Arc<PfInner>,
}

impl PlatformFake {
    /// Starts the fake on a given address.
    pub async fn start_on(addr: SocketAddr) -> io::Result<PlatformFake> {
        let (listener, local) = common::bind(addr).await?;
        let common = Common::new(fault_response);
        let now = common.clock.now();
        let inner = Arc::new(PfInner {
            url: format!("http://{local}"),
            common,
            state: Mutex::new(PfState::new(now)),
        });
        let app = common::assemble(router(inner.clone()), &inner.common);
        common::spawn(listener, app);
        Ok(PlatformFake { inner })
    }

    fn with<R>(&self, f: impl FnOnce(&mut PfState, DateTime<Utc>) -> R) -> R {
        let now = self.inner.common.clock.now();
        let mut st = lock(&self.inner.state);
        f(&mut st, now)
    }

    /// Id of the hidden platform root tenant (parent of all partners, owner of the infra).
    pub fn root_tenant_id(&self) -> String {
        self.with(|st, _| st.root_id.clone())
    }

    /// Adds a partner tenant, an API client acting for it, one platform-owned storage
    /// ("Cloud storage", backend `acronis`) and the partner's catalogue: the
    /// [`COUNT_ITEMS`] plus `storage` for that infra (the partner's own items are enabled).
    pub fn add_partner(&self, name: &str) -> PartnerAccount {
        self.with(|st, now| {
            let root = st.root_id.clone();
            let tenant_id = st
                .create_tenant(Some(&root), name, "partner", None, now)
                .unwrap_or_else(|_| panic!("psa-sandbox: cannot create partner {name:?}"));
            let entries: Vec<CatalogEntry> = COUNT_ITEMS
                .iter()
                .map(|n| CatalogEntry {
                    name: n.to_string(),
                    usage_name: n.to_string(),
                    item_type: "count",
                    unit: "quantity",
                    infra_id: None,
                })
                .collect();
            for e in &entries {
                st.put_item(&tenant_id, e, 1, now);
            }
            st.catalog.insert(tenant_id.clone(), entries);
            let default_infra_id = st.add_infra(&tenant_id, "Cloud storage", "acronis", now);
            let client_id = new_id();
            let client_secret = format!("sbx-secret-{}", uuid::Uuid::new_v4().simple());
            st.clients.insert(
                client_id.clone(),
                Client {
                    client_id: client_id.clone(),
                    secret: client_secret.clone(),
                    tenant_id: tenant_id.clone(),
                    name: format!("{name} API client"),
                    created_at: now,
                    last_access_at: None,
                },
            );
            PartnerAccount {
                tenant_id,
                client_id,
                client_secret,
                default_infra_id,
            }
        })
    }

    /// Adds another platform-owned storage (new location + infra, backend `acronis`) available
    /// to the partner: a `storage` item for it joins the catalogue; existing customers get it
    /// with status 0.
    pub fn add_infra(&self, partner_tenant_id: &str, name: &str) -> String {
        self.add_storage(partner_tenant_id, name, "acronis")
    }

    /// Adds a storage with the given `backend_type` (`azure`, `amazon_s3`, `s3_compatible` for
    /// public cloud storages) available to the partner, as [`PlatformFake::add_infra`] does.
    pub fn add_storage(
        &self,
        partner_tenant_id: &str,
        name: &str,
        backend: &'static str,
    ) -> String {
        self.with(|st, now| {
            assert!(
                st.catalog.contains_key(partner_tenant_id),
                "psa-sandbox: {partner_tenant_id} is not a partner made by add_partner"
            );
            st.add_infra(partner_tenant_id, name, backend, now)
        })
    }

    /// A person switching an offering item on or off in the console (quota kept): status,
    /// bumped `updated_at`. The item must be in the tenant's catalogue.
    pub fn set_status_by_hand(
        &self,
        tenant_id: &str,
        name: &str,
        infra_id: Option<&str>,
        enabled: bool,
    ) {
        self.with(|st, now| {
            let entry = st.available_entry(tenant_id, name, infra_id);
            let status = u8::from(enabled);
            let k = st.put_item(tenant_id, &entry, status, now);
            let it = st.items.get_mut(&k).expect("item");
            it.status = status;
            it.updated_at = now;
        })
    }

    /// Adds a customer tenant as if made by hand in the console (all items status 0).
    pub fn add_customer(&self, parent_id: &str, name: &str, customer_id: Option<&str>) -> String {
        self.with(|st, now| {
            st.create_tenant(Some(parent_id), name, "customer", customer_id, now)
                .unwrap_or_else(|_| {
                    panic!("psa-sandbox: cannot create customer {name:?} under {parent_id}")
                })
        })
    }

    /// The tenant as `GET /tenants/{id}` returns it (deleted tenants too, with `deleted_at`).
    pub fn tenant(&self, id: &str) -> Option<Value> {
        self.with(|st, _| {
            st.tenant(id)
                .map(|t| st.tenant_json(t, Lod::Full, false, false))
        })
    }

    /// Live (not deleted) children of kind `customer`, in creation order.
    pub fn customers(&self, parent_id: &str) -> Vec<Value> {
        self.with(|st, _| {
            st.children
                .get(parent_id)
                .map(|set| {
                    set.iter()
                        .map(|k| &st.tenants[&st.order[k]])
                        .filter(|t| t.kind == "customer" && t.deleted_at.is_none())
                        .map(|t| st.tenant_json(t, Lod::Full, false, false))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// The tenant's offering items as `GET /tenants/{id}/offering_items` returns them.
    pub fn offering_items(&self, tenant_id: &str) -> Vec<Value> {
        self.with(|st, _| match st.tenant(tenant_id) {
            Some(t) => st.tenant_items(t).map(|i| st.item_json(i)).collect(),
            None => Vec::new(),
        })
    }

    /// A manual quota change in the console: status 1, new quota, bumped quota version and
    /// `updated_at`. The item must be in the tenant's catalogue.
    pub fn set_quota_by_hand(
        &self,
        tenant_id: &str,
        name: &str,
        infra_id: Option<&str>,
        value: Option<f64>,
        overage: Option<f64>,
    ) {
        self.with(|st, now| {
            let entry = st.available_entry(tenant_id, name, infra_id);
            let k = st.put_item(tenant_id, &entry, 1, now);
            let v = st.next_version(now);
            let it = st.items.get_mut(&k).expect("item");
            it.status = 1;
            it.quota_value = value;
            it.quota_overage = overage;
            it.quota_version = v;
            it.updated_at = now;
        })
    }

    /// Console access settings: `self_service` ⇒ `update_lock.enabled` (owned by the tenant
    /// itself, so the partner's API client gets 403 on `PUT /tenants/{id}`);
    /// `support_access == false` ⇒ `ancestral_access: false`. Bumps version and `updated_at`.
    pub fn set_tenant_access(&self, tenant_id: &str, self_service: bool, support_access: bool) {
        self.with(|st, now| {
            let t = st
                .tenants
                .get_mut(tenant_id)
                .unwrap_or_else(|| panic!("psa-sandbox: unknown tenant {tenant_id}"));
            t.update_lock = self_service;
            t.update_lock_owner = self_service.then(|| tenant_id.to_string());
            t.ancestral_access = support_access;
            t.version += 1;
            t.updated_at = now;
        })
    }

    /// Sets the usage reported for an offering item of a tenant.
    pub fn set_usage(&self, tenant_id: &str, name: &str, infra_id: Option<&str>, value: f64) {
        self.with(|st, _| {
            st.usages.insert(
                (
                    tenant_id.to_string(),
                    name.to_string(),
                    infra_id.unwrap_or("").to_string(),
                ),
                value,
            );
        })
    }

    /// Number of `POST /api/2/idp/token` requests received (successful or not).
    pub fn token_requests(&self) -> u64 {
        self.with(|st, _| st.token_requests)
    }

    /// E-mail addresses an activation mail was "sent" to, in order.
    pub fn activation_emails(&self) -> Vec<String> {
        self.with(|st, _| st.activation_emails.clone())
    }

    /// Users created through the API.
    pub fn users(&self) -> Vec<Value> {
        self.with(|st, _| st.users.values().cloned().collect())
    }

    /// Invalidates every issued access token (clients must fetch a new one).
    pub fn revoke_all_tokens(&self) {
        self.with(|st, _| st.tokens.clear())
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

type Pf = Arc<PfInner>;

fn router(inner: Pf) -> Router {
    Router::new()
        .route("/api/2/idp/token", post(token))
        .route("/api/2/clients/{client_id}", get(get_client))
        .route("/api/2/tenants", get(list_tenants).post(create_tenant))
        .route("/api/2/tenants/offering_items", get(list_all_items))
        .route("/api/2/tenants/usages", get(batch_usages))
        .route(
            "/api/2/tenants/{id}",
            get(get_tenant).put(update_tenant).delete(delete_tenant),
        )
        .route("/api/2/tenants/{id}/children", get(tenant_children))
        .route("/api/2/tenants/{id}/users", get(tenant_users))
        .route(
            "/api/2/tenants/{id}/pricing",
            get(get_pricing).put(put_pricing),
        )
        .route("/api/2/tenants/{id}/mfa/status", get(get_mfa).put(put_mfa))
        .route(
            "/api/2/tenants/{id}/offering_items",
            get(tenant_items).put(put_items),
        )
        .route(
            "/api/2/tenants/{id}/offering_items/available_for_child",
            get(available_for_child),
        )
        .route("/api/2/tenants/{id}/usages", get(tenant_usages))
        .route("/api/2/tenants/{id}/locations", get(tenant_locations))
        .route("/api/2/locations/{id}/infra", get(location_infra))
        .route("/api/2/infra", get(list_infra))
        .route("/api/2/users", post(create_user))
        .route("/api/2/users/check_login", get(check_login))
        .route("/api/2/users/{id}", get(get_user))
        .route(
            "/api/2/users/{id}/send-activation-email",
            post(send_activation),
        )
        .fallback(|| async { not_found("The requested resource does not exist.") })
        .with_state(inner)
}

/// The authenticated API client.
struct Principal {
    tenant_id: String,
    client_id: String,
}

fn query(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

fn csv(q: &HashMap<String, String>, key: &str) -> Option<Vec<String>> {
    q.get(key).map(|v| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

fn parse_json(body: &[u8]) -> Result<Value, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(bad_request("Request body must be a JSON object.")),
        Err(e) => Err(bad_request(&format!("Malformed JSON: {e}"))),
    }
}

impl PfInner {
    /// Authenticates the bearer token and runs `f` under the state lock.
    /// The closure's result is turned into a response (serialized) after the lock is released.
    fn authed<R: IntoResponse>(
        &self,
        headers: &HeaderMap,
        f: impl FnOnce(&mut PfState, &Principal, DateTime<Utc>) -> R,
    ) -> Response {
        match self.authed_inner(headers, f) {
            Ok(r) => r.into_response(),
            Err(e) => e,
        }
    }

    fn authed_inner<R>(
        &self,
        headers: &HeaderMap,
        f: impl FnOnce(&mut PfState, &Principal, DateTime<Utc>) -> R,
    ) -> Result<R, Response> {
        let now = self.common.clock.now();
        let mut st = lock(&self.state);
        let unauthorized = |m: &str| am_error(StatusCode::UNAUTHORIZED, "Unauthorized", m);
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| rest.trim().to_string())
            });
        let Some(token) = token else {
            return Err(unauthorized(
                "Method requires an authenticated user (Bearer token missing).",
            ));
        };
        let Some((client_id, expires)) = st.tokens.get(&token).cloned() else {
            return Err(unauthorized("Access token is invalid."));
        };
        if expires <= now {
            return Err(unauthorized("Access token has expired."));
        }
        let Some(client) = st.clients.get_mut(&client_id) else {
            return Err(unauthorized("Client not found."));
        };
        client.last_access_at = Some(now);
        let p = Principal {
            tenant_id: client.tenant_id.clone(),
            client_id,
        };
        Ok(f(&mut st, &p, now))
    }
}

/// Looks up a tenant visible to the principal.
fn visible<'a>(
    st: &'a PfState,
    p: &Principal,
    id: &str,
    allow_deleted: bool,
) -> Result<&'a Tenant, Response> {
    let t = st
        .tenant(id)
        .filter(|t| allow_deleted || t.deleted_at.is_none())
        .ok_or_else(|| not_found(&format!("Tenant {id} not found.")))?;
    if !st.in_subtree(id, &p.tenant_id) {
        return Err(forbidden(&format!(
            "Access to tenant {id} is denied for this client."
        )));
    }
    Ok(t)
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

// ------------------------------------------------------------------ token, clients

async fn token(State(s): State<Pf>, headers: HeaderMap, body: Bytes) -> Response {
    let now = s.common.clock.now();
    let mut st = lock(&s.state);
    st.token_requests += 1;
    let token_error = |status: StatusCode, error: &str, description: &str| {
        common::json_response(
            status,
            &json!({"error": error, "error_description": description}),
        )
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return token_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded.",
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(other) => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Grant type '{other}' is not supported."),
            )
        }
        None => {
            return token_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required.",
            )
        }
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("basic") {
                return None;
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()?;
            let s = String::from_utf8(raw).ok()?;
            let (id, secret) = s.split_once(':')?;
            Some((id.to_string(), secret.to_string()))
        });
    let creds = basic.or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    let Some((client_id, secret)) = creds else {
        return token_error(
            StatusCode::UNAUTHORIZED,
            "access_denied",
            "Client credentials are missing.",
        );
    };
    match st.clients.get(&client_id) {
        Some(c) if c.secret == secret => {}
        _ => {
            return token_error(
                StatusCode::UNAUTHORIZED,
                "access_denied",
                "Invalid client credentials.",
            )
        }
    }
    let access_token = format!("sbx.{}", uuid::Uuid::new_v4().simple());
    let expires = now + chrono::Duration::seconds(TOKEN_TTL_SECS);
    st.tokens
        .insert(access_token.clone(), (client_id.clone(), expires));
    let id_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"sub": client_id, "iat": now.timestamp()}).to_string());
    common::json_response(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "token_type": "bearer",
            "expires_in": TOKEN_TTL_SECS,
            "expires_on": expires.timestamp(),
            "id_token": format!("eyJhbGciOiJub25lIn0.{id_payload}."),
        }),
    )
}

async fn get_client(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        if id != p.client_id {
            return match st.clients.get(&id) {
                Some(_) => forbidden("Access to this client is denied."),
                None => not_found(&format!("Client {id} not found.")),
            };
        }
        let c = &st.clients[&id];
        common::json_response(
            StatusCode::OK,
            &json!({
                "client_id": c.client_id,
                "tenant_id": c.tenant_id,
                "type": "api_client",
                "status": "enabled",
                "data": {"client_name": c.name},
                "token_endpoint_auth_method": "client_secret_basic",
                "client_secret_expires_at": 0,
                "created_at": rfc3339(&c.created_at),
                "last_access_at": c.last_access_at.as_ref().map(rfc3339),
            }),
        )
    })
}

// ------------------------------------------------------------------ tenants

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Scope {
    Parent(String),
    Subtree(String),
    Uuids(Vec<String>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TenantCursor {
    scope: Scope,
    updated_since: Option<DateTime<Utc>>,
    allow_deleted: bool,
    with_items: bool,
    lod: Lod,
    limit: usize,
    ts: DateTime<Utc>,
    last: OKey,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ItemCursor {
    root: String,
    updated_since: Option<DateTime<Utc>>,
    allow_deleted: bool,
    usage_names: Option<Vec<String>>,
    editions: Option<Vec<String>>,
    names: Option<Vec<String>>,
    limit: usize,
    ts: DateTime<Utc>,
    last: Option<IKey>,
}

fn encode_cursor<T: Serialize>(c: &T) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(c).expect("cursor serializes"))
}

fn decode_cursor<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, Response> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad_request("Invalid paging cursor 'after'."))
}

fn parse_limit(q: &HashMap<String, String>) -> Result<Option<usize>, Response> {
    match q.get("limit") {
        None => Ok(None),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(bad_request("limit must be a positive integer.")),
        },
    }
}

fn parse_since(q: &HashMap<String, String>) -> Result<Option<DateTime<Utc>>, Response> {
    match q.get("updated_since") {
        None => Ok(None),
        Some(v) => parse_ts(v).map(Some).ok_or_else(|| {
            bad_request(&format!("updated_since '{v}' is not an RFC3339 timestamp."))
        }),
    }
}

/// Paged envelope; serialized by the caller after the state lock is released.
type Listing = Result<Json<Value>, Response>;

fn batch_envelope(ts: &DateTime<Utc>, after: Option<String>, items: Vec<Value>) -> Listing {
    let mut cursors = Map::new();
    if let Some(a) = after {
        cursors.insert("after".into(), json!(a));
    }
    Ok(Json(json!({
        "timestamp": rfc3339(ts),
        "paging": {"cursors": cursors},
        "items": items,
    })))
}

async fn list_tenants(State(s): State<Pf>, h: HeaderMap, uri: Uri) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, now| -> Listing {
        let st: &PfState = st;
        let limit_q = parse_limit(&q)?;
        let mut cursor = match q.get("after") {
            Some(a) => decode_cursor::<TenantCursor>(a)?,
            None => {
                let given = ["uuids", "parent_id", "subtree_root_id"]
                    .iter()
                    .filter(|k| q.contains_key(**k))
                    .count();
                if given > 1 {
                    return Err(bad_request(
                        "uuids, parent_id and subtree_root_id are mutually exclusive.",
                    ));
                }
                let scope = if let Some(u) = csv(&q, "uuids") {
                    if u.len() > 100 {
                        return Err(bad_request("At most 100 uuids may be given."));
                    }
                    Scope::Uuids(u)
                } else if let Some(pid) = q.get("parent_id") {
                    visible(st, p, pid, true)?;
                    Scope::Parent(pid.clone())
                } else if let Some(r) = q.get("subtree_root_id") {
                    visible(st, p, r, true)?;
                    Scope::Subtree(r.clone())
                } else {
                    Scope::Subtree(p.tenant_id.clone())
                };
                let lod = match q.get("lod").map(|s| s.to_ascii_lowercase()) {
                    None => Lod::Full,
                    Some(l) if l == "full" => Lod::Full,
                    Some(l) if l == "basic" => Lod::Basic,
                    Some(l) if l == "stamps" => Lod::Stamps,
                    Some(l) => return Err(bad_request(&format!("Unknown lod '{l}'."))),
                };
                TenantCursor {
                    scope,
                    updated_since: parse_since(&q)?,
                    allow_deleted: flag(&q, "allow_deleted"),
                    with_items: flag(&q, "with_offering_items")
                        || flag(&q, "expand_offering_items")
                        || flag(&q, "with_infra_offering_items"),
                    lod,
                    limit: DEFAULT_LIMIT,
                    ts: now,
                    last: (0, 0),
                }
            }
        };
        if let Some(l) = limit_q {
            cursor.limit = l;
        }
        let keep = |t: &Tenant| {
            (cursor.allow_deleted || t.deleted_at.is_none())
                && cursor.updated_since.is_none_or(|s| t.updated_at > s)
                && st.in_subtree(&t.id, &p.tenant_id)
        };
        let after = (Bound::Excluded(cursor.last), Bound::Unbounded);
        let candidates: Box<dyn Iterator<Item = &Tenant>> = match &cursor.scope {
            Scope::Parent(pid) => Box::new(
                st.children
                    .get(pid)
                    .into_iter()
                    .flat_map(move |set| set.range(after))
                    .map(|k| &st.tenants[&st.order[k]]),
            ),
            Scope::Subtree(root) => {
                let root = root.clone();
                Box::new(
                    st.order
                        .range(after)
                        .map(|(_, id)| &st.tenants[id])
                        .filter(move |t| st.in_subtree(&t.id, &root)),
                )
            }
            Scope::Uuids(ids) => {
                let mut ts: Vec<&Tenant> = ids
                    .iter()
                    .filter_map(|id| st.tenant(id))
                    .filter(|t| t.key > cursor.last)
                    .collect();
                ts.sort_by_key(|t| t.key);
                ts.dedup_by_key(|t| t.key);
                Box::new(ts.into_iter())
            }
        };
        let mut it = candidates.filter(|t| keep(t));
        let page: Vec<&Tenant> = it.by_ref().take(cursor.limit).collect();
        let more = it.next().is_some();
        let next = match (more, page.last()) {
            (true, Some(last)) => {
                let mut c = cursor.clone();
                c.last = last.key;
                Some(encode_cursor(&c))
            }
            _ => None,
        };
        let items = page
            .iter()
            .map(|t| st.tenant_json(t, cursor.lod, true, cursor.with_items))
            .collect();
        batch_envelope(&cursor.ts, next, items)
    })
}

const POST_KEYS: &[&str] = &[
    "name",
    "parent_id",
    "kind",
    "contact",
    "company_billing_contact",
    "enabled",
    "customer_id",
    "internal_tag",
    "language",
    "default_idp_id",
    "update_lock",
    "ancestral_access",
    "settings",
    "customer_type",
];

const PUT_KEYS: &[&str] = &[
    "name",
    "customer_type",
    "parent_id",
    "kind",
    "contact",
    "enabled",
    "customer_id",
    "version",
    "brand_id",
    "internal_tag",
    "language",
    "default_idp_id",
    "update_lock",
    "ancestral_access",
    "external_operation_status",
    "mfa_status",
];

fn opt_string(b: &Value, key: &str) -> Result<Option<Option<String>>, Response> {
    match b.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(bad_request(&format!("'{key}' must be a string or null."))),
    }
}

fn opt_bool(b: &Value, key: &str) -> Result<Option<bool>, Response> {
    match b.get(key) {
        None => Ok(None),
        Some(Value::Bool(v)) => Ok(Some(*v)),
        Some(_) => Err(bad_request(&format!("'{key}' must be a boolean."))),
    }
}

fn check_keys(b: &Value, allowed: &[&str]) -> Result<(), Response> {
    if let Some(k) = b
        .as_object()
        .and_then(|o| o.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        return Err(bad_request(&format!("Unexpected field '{k}'.")));
    }
    Ok(())
}

fn merge_contact(existing: &Value, patch: &Value, now: DateTime<Utc>) -> Result<Value, Response> {
    let Some(patch) = patch.as_object() else {
        return Err(bad_request("'contact' must be an object."));
    };
    let mut c = match existing {
        Value::Object(m) => m.clone(),
        _ => {
            let mut m = Map::new();
            m.insert("id".into(), json!(new_id()));
            m.insert("types".into(), json!(["legal"]));
            m.insert("created_at".into(), json!(am_time(&now)));
            m
        }
    };
    for (k, v) in patch {
        if k != "id" {
            c.insert(k.clone(), v.clone());
        }
    }
    c.insert("updated_at".into(), json!(am_time(&now)));
    Ok(Value::Object(c))
}

async fn create_tenant(State(s): State<Pf>, h: HeaderMap, body: Bytes) -> Response {
    s.authed(&h, |st, p, now| {
        let b = tri!(parse_json(&body));
        tri!(check_keys(&b, POST_KEYS));
        let name = match b.get("name").and_then(Value::as_str).map(str::trim) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => return bad_request("'name' is required."),
        };
        let Some(parent_id) = b.get("parent_id").and_then(Value::as_str) else {
            return bad_request("'parent_id' is required.");
        };
        let kind = match b.get("kind").and_then(Value::as_str) {
            Some(k @ ("customer" | "folder" | "unit" | "partner")) => k.to_string(),
            Some(k) => return bad_request(&format!("Unsupported tenant kind '{k}'.")),
            None => return bad_request("'kind' is required."),
        };
        tri!(visible(st, p, parent_id, false));
        let customer_id = tri!(opt_string(&b, "customer_id")).flatten();
        let internal_tag = tri!(opt_string(&b, "internal_tag")).flatten();
        let language = tri!(opt_string(&b, "language")).flatten();
        let enabled = tri!(opt_bool(&b, "enabled"));
        let ancestral = tri!(opt_bool(&b, "ancestral_access"));
        let lock_enabled = b
            .get("update_lock")
            .and_then(|u| u.get("enabled"))
            .and_then(Value::as_bool);
        let contact = match b.get("contact") {
            None | Some(Value::Null) => Value::Null,
            Some(c) => tri!(merge_contact(&Value::Null, c, now)),
        };
        let id = tri!(st.create_tenant(Some(parent_id), &name, &kind, customer_id.as_deref(), now));
        if kind == "partner" {
            // A sub-partner resells its parent's catalogue.
            let parent_cat = st.available(parent_id).to_vec();
            for e in &parent_cat {
                st.put_item(&id, e, 0, now);
            }
            st.catalog.insert(id.clone(), parent_cat);
        }
        let t = st.tenants.get_mut(&id).expect("created");
        t.internal_tag = internal_tag;
        if let Some(l) = language {
            t.language = l;
        }
        if let Some(e) = enabled {
            t.enabled = e;
        }
        if let Some(a) = ancestral {
            t.ancestral_access = a;
        }
        if let Some(l) = lock_enabled {
            t.update_lock = l;
            t.update_lock_owner = l.then(|| p.tenant_id.clone());
        }
        if let Some(ct) = b.get("customer_type").and_then(Value::as_str) {
            t.customer_type = ct.to_string();
        }
        t.contact = contact;
        let t = st.tenants[&id].clone();
        common::json_response(
            StatusCode::CREATED,
            &st.tenant_json(&t, Lod::Full, false, false),
        )
    })
}

async fn get_tenant(
    State(s): State<Pf>,
    Path(id): Path<String>,
    h: HeaderMap,
    uri: Uri,
) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, _| {
        let t = tri!(visible(st, p, &id, flag(&q, "allow_deleted")));
        common::json_response(StatusCode::OK, &st.tenant_json(t, Lod::Full, false, false))
    })
}

async fn update_tenant(
    State(s): State<Pf>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    s.authed(&h, |st, p, now| {
        let t = tri!(visible(st, p, &id, false)).clone();
        let b = tri!(parse_json(&body));
        tri!(check_keys(&b, PUT_KEYS));
        let version = match b.get("version").and_then(Value::as_i64) {
            Some(v) => v,
            None => {
                return conflict(
                    "VersionConflict",
                    "The 'version' of the tenant is required for an update.",
                )
            }
        };
        if version != t.version {
            return conflict(
                "VersionConflict",
                &format!(
                    "Tenant {id} was modified: version {version} is stale (current {}).",
                    t.version
                ),
            );
        }
        if t.update_lock && t.update_lock_owner.as_deref() != Some(p.tenant_id.as_str()) {
            return forbidden(&format!(
                "Tenant {id} is locked for updates (update_lock) by its owner."
            ));
        }
        if let Some(pid) = b.get("parent_id").and_then(Value::as_str) {
            if Some(pid) != t.parent_id.as_deref() {
                return bad_request("Moving tenants is not supported by the sandbox.");
            }
        }
        if let Some(k) = b.get("kind").and_then(Value::as_str) {
            if k != t.kind {
                return bad_request("Changing a tenant's kind is not supported.");
            }
        }
        let mut n = t.clone();
        if let Some(v) = b.get("name") {
            match v.as_str().map(str::trim) {
                Some(name) if !name.is_empty() => {
                    if let Some(pid) = &t.parent_id {
                        if st.live_sibling_named(pid, name, Some(&id)) {
                            return conflict(
                                "TenantNameExists",
                                &format!("Tenant with name '{name}' already exists."),
                            );
                        }
                    }
                    n.name = name.to_string();
                }
                _ => return bad_request("'name' must be a non-empty string."),
            }
        }
        if let Some(e) = tri!(opt_bool(&b, "enabled")) {
            n.enabled = e;
        }
        if let Some(c) = tri!(opt_string(&b, "customer_id")) {
            n.customer_id = c;
        }
        if let Some(c) = tri!(opt_string(&b, "internal_tag")) {
            n.internal_tag = c;
        }
        if let Some(Some(l)) = tri!(opt_string(&b, "language")) {
            n.language = l;
        }
        if let Some(Some(ct)) = tri!(opt_string(&b, "customer_type")) {
            n.customer_type = ct;
        }
        if let Some(a) = tri!(opt_bool(&b, "ancestral_access")) {
            n.ancestral_access = a;
        }
        if let Some(l) = b
            .get("update_lock")
            .and_then(|u| u.get("enabled"))
            .and_then(Value::as_bool)
        {
            n.update_lock = l;
            n.update_lock_owner = l.then(|| p.tenant_id.clone());
        }
        if let Some(m) = tri!(opt_string(&b, "mfa_status")) {
            match m.as_deref() {
                Some(v @ ("disabled" | "enabled" | "setup_required" | "forcibly_disabled")) => {
                    n.mfa_status = v.to_string()
                }
                _ => return bad_request("Invalid 'mfa_status'."),
            }
        }
        if let Some(c) = b.get("contact") {
            if !c.is_null() {
                n.contact = tri!(merge_contact(&t.contact, c, now));
            }
        }
        n.version += 1;
        n.updated_at = now;
        let json = st.tenant_json(&n, Lod::Full, false, false);
        if let Some(pid) = &t.parent_id {
            st.live_names.remove(&(pid.clone(), t.name.to_lowercase()));
            st.live_names
                .insert((pid.clone(), n.name.to_lowercase()), id.clone());
        }
        st.tenants.insert(id.clone(), n);
        common::json_response(StatusCode::OK, &json)
    })
}

async fn delete_tenant(
    State(s): State<Pf>,
    Path(id): Path<String>,
    h: HeaderMap,
    uri: Uri,
) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, now| {
        let t = tri!(visible(st, p, &id, false)).clone();
        if id == p.tenant_id {
            return forbidden("A client cannot delete its own tenant.");
        }
        let version = match q.get("version").map(|v| v.trim().parse::<i64>()) {
            Some(Ok(v)) => v,
            Some(Err(_)) => return bad_request("'version' must be an integer."),
            None => return bad_request("Query parameter 'version' is required."),
        };
        if version != t.version {
            return conflict(
                "VersionConflict",
                &format!(
                    "Tenant {id} was modified: version {version} is stale (current {}).",
                    t.version
                ),
            );
        }
        if st.has_children(&t) {
            return conflict(
                "TenantHasChildren",
                "Tenant has child tenants; delete them first.",
            );
        }
        if let Some(pid) = &t.parent_id {
            st.live_names.remove(&(pid.clone(), t.name.to_lowercase()));
        }
        let tm = st.tenants.get_mut(&id).expect("exists");
        tm.deleted_at = Some(now);
        tm.version += 1;
        tm.updated_at = now;
        let (d, sq) = t.key;
        for (_, it) in st.items.range_mut(
            (d, sq, String::new(), String::new())..(d, sq + 1, String::new(), String::new()),
        ) {
            it.deleted_at = Some(now);
            it.updated_at = now;
        }
        StatusCode::NO_CONTENT.into_response()
    })
}

async fn tenant_children(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        tri!(visible(st, p, &id, false));
        let ids: Vec<&String> = st
            .children
            .get(&id)
            .map(|set| {
                set.iter()
                    .map(|k| &st.order[k])
                    .filter(|i| st.tenants[*i].deleted_at.is_none())
                    .collect()
            })
            .unwrap_or_default();
        common::json_response(StatusCode::OK, &json!({ "items": ids }))
    })
}

async fn tenant_users(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        tri!(visible(st, p, &id, false));
        let ids: Vec<&Value> = st
            .users
            .values()
            .filter(|u| u["tenant_id"] == json!(id))
            .map(|u| &u["id"])
            .collect();
        common::json_response(StatusCode::OK, &json!({ "items": ids }))
    })
}

// ------------------------------------------------------------------ pricing, mfa

fn pricing_json(t: &Tenant) -> Value {
    json!({
        "mode": t.pricing_mode,
        "currency": t.currency,
        "version": t.pricing_version,
        "production_start_date": am_time_opt(&t.production_start_date),
    })
}

async fn get_pricing(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        let t = tri!(visible(st, p, &id, false));
        common::json_response(StatusCode::OK, &pricing_json(t))
    })
}

async fn put_pricing(
    State(s): State<Pf>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    s.authed(&h, |st, p, now| {
        let t = tri!(visible(st, p, &id, false)).clone();
        let b = tri!(parse_json(&body));
        tri!(check_keys(&b, &["mode", "currency", "version"]));
        let Some(version) = b.get("version").and_then(Value::as_i64) else {
            return bad_request("'version' is required.");
        };
        if version != t.pricing_version {
            return conflict(
                "VersionConflict",
                &format!(
                    "Pricing version {version} is stale (current {}).",
                    t.pricing_version
                ),
            );
        }
        let mut n = t.clone();
        if let Some(mode) = b.get("mode").and_then(Value::as_str) {
            // A tenant that has used nothing yet (just created) may still be put in trial, as
            // integrations do right after POST /tenants; later, production is final.
            let used = st
                .usages
                .iter()
                .any(|((tenant, _, _), v)| tenant == &t.id && *v > 0.0);
            match (t.pricing_mode.as_str(), mode) {
                (_, "trial") if t.pricing_mode != "trial" && used => {
                    return bad_request("Switching from production to trial mode is not allowed.")
                }
                (_, "trial") if t.pricing_mode != "trial" => {
                    n.production_start_date = None;
                }
                (_, "trial" | "production" | "suspended") => {}
                _ => return bad_request(&format!("Unknown pricing mode '{mode}'.")),
            }
            if mode == "production" && t.pricing_mode == "trial" {
                n.production_start_date = Some(now);
            }
            n.pricing_mode = mode.to_string();
        }
        if let Some(c) = tri!(opt_string(&b, "currency")) {
            n.currency = c;
        }
        n.pricing_version = st.next_version(now);
        n.version += 1;
        n.updated_at = now;
        let json = pricing_json(&n);
        st.tenants.insert(id.clone(), n);
        common::json_response(StatusCode::OK, &json)
    })
}

fn mfa_json(st: &PfState, t: &Tenant) -> Value {
    let users = st
        .users
        .values()
        .filter(|u| u["tenant_id"] == json!(t.id))
        .count();
    json!({
        "mfa_status": t.mfa_status,
        "users_count": users,
        "users_with_totp_enabled_count": 0,
        "update_allowed": true,
    })
}

async fn get_mfa(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        let t = tri!(visible(st, p, &id, false));
        common::json_response(StatusCode::OK, &mfa_json(st, t))
    })
}

async fn put_mfa(
    State(s): State<Pf>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    s.authed(&h, |st, p, now| {
        tri!(visible(st, p, &id, false));
        let b = tri!(parse_json(&body));
        let Some(enabled) = b.get("enabled").and_then(Value::as_bool) else {
            return bad_request("'enabled' (boolean) is required.");
        };
        let t = st.tenants.get_mut(&id).expect("exists");
        t.mfa_status = if enabled { "enabled" } else { "disabled" }.into();
        t.version += 1;
        t.updated_at = now;
        let t = t.clone();
        common::json_response(StatusCode::OK, &mfa_json(st, &t))
    })
}

// ------------------------------------------------------------------ offering items

async fn tenant_items(
    State(s): State<Pf>,
    Path(id): Path<String>,
    h: HeaderMap,
    uri: Uri,
) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, now| {
        let t = tri!(visible(st, p, &id, false));
        let usage_names = csv(&q, "usage_names");
        let edition = q
            .get("edition")
            .cloned()
            .unwrap_or_else(|| "standard".into());
        let status = match q.get("status").map(|v| v.trim().parse::<u8>()) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => return bad_request("'status' must be 0 or 1."),
        };
        let typ = q.get("type");
        let infra = q.get("infra_uuid");
        let items: Vec<Value> = st
            .tenant_items(t)
            .filter(|_| edition == "*" || edition == "standard")
            .filter(|i| {
                usage_names
                    .as_ref()
                    .is_none_or(|u| u.contains(&i.usage_name))
            })
            .filter(|i| status.is_none_or(|s| i.status == s))
            .filter(|i| typ.is_none_or(|t| t == i.item_type))
            .filter(|i| infra.is_none_or(|x| i.infra_id.as_deref() == Some(x.as_str())))
            .map(|i| st.item_json(i))
            .collect();
        common::json_response(
            StatusCode::OK,
            &json!({"timestamp": rfc3339(&now), "items": items}),
        )
    })
}

async fn available_for_child(
    State(s): State<Pf>,
    Path(id): Path<String>,
    h: HeaderMap,
    uri: Uri,
) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, now| {
        let t = tri!(visible(st, p, &id, false));
        let typ = q.get("type");
        let items: Vec<Value> = if st.catalog.contains_key(&id) {
            st.catalog[&id]
                .iter()
                .filter(|e| typ.is_none_or(|t| t == e.item_type))
                .map(|e| {
                    let mut v = json!({
                        "application_id": APPLICATION_ID,
                        "name": e.name,
                        "edition": "standard",
                        "usage_name": e.usage_name,
                        "tenant_id": id,
                        "updated_at": am_time(&t.created_at),
                        "deleted_at": null,
                        "status": 1,
                        "locked": false,
                        "type": e.item_type,
                        "measurement_unit": e.unit,
                        "quota": {"value": null, "overage": null, "version": 0},
                    });
                    if let Some(infra) = &e.infra_id {
                        v["infra_id"] = json!(infra);
                    }
                    v
                })
                .collect()
        } else {
            st.tenant_items(t)
                .filter(|i| i.status == 1)
                .filter(|i| typ.is_none_or(|t| t == i.item_type))
                .map(|i| st.item_json(i))
                .collect()
        };
        common::json_response(
            StatusCode::OK,
            &json!({"timestamp": rfc3339(&now), "items": items}),
        )
    })
}

struct ItemChange {
    entry: CatalogEntry,
    status: Option<u8>,
    quota: Option<(Option<f64>, Option<f64>)>,
}

fn quota_number(q: &Value, key: &str, item: &str) -> Result<Option<f64>, Response> {
    match q.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(bad_request(&format!(
            "Offering item '{item}': quota.{key} must be a number or null."
        ))),
    }
}

async fn put_items(
    State(s): State<Pf>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    s.authed(&h, |st, p, now| {
        tri!(visible(st, p, &id, false));
        let b = tri!(parse_json(&body));
        tri!(check_keys(&b, &["offering_items", "check_usage"]));
        let Some(reqs) = b.get("offering_items").and_then(Value::as_array) else {
            return bad_request("'offering_items' (array) is required.");
        };
        let check_usage = b.get("check_usage").and_then(Value::as_bool).unwrap_or(false);
        let available = st.available(&id).to_vec();
        let mut changes = Vec::new();
        let mut conflicts = Vec::new();
        for r in reqs {
            let Some(name) = r.get("name").and_then(Value::as_str) else {
                return bad_request("Every offering item needs a 'name'.");
            };
            if let Some(app) = r.get("application_id").and_then(Value::as_str) {
                if app != APPLICATION_ID {
                    return bad_request(&format!(
                        "Offering item '{name}': unknown application_id '{app}'."
                    ));
                }
            }
            let infra = r.get("infra_id").and_then(Value::as_str);
            let Some(entry) = available
                .iter()
                .find(|e| e.name == name && e.infra_id.as_deref() == infra)
                .cloned()
            else {
                let msg = match (infra, available.iter().any(|e| e.name == name && e.infra_id.is_some())) {
                    (None, true) => format!("Offering item '{name}' requires 'infra_id'."),
                    (Some(i), _) => format!(
                        "Offering item '{name}' with infra_id '{i}' is not available for tenant {id}."
                    ),
                    (None, false) => format!("Offering item '{name}' is not available for tenant {id}."),
                };
                return bad_request(&msg);
            };
            let status = match r.get("status") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_u64() {
                    Some(s @ (0 | 1)) => Some(s as u8),
                    _ => {
                        return bad_request(&format!(
                            "Offering item '{name}': status must be 0 or 1."
                        ))
                    }
                },
            };
            let key = st.ikey(&id, name, infra).expect("tenant");
            let existing = st.items.get(&key);
            let quota = match r.get("quota") {
                None | Some(Value::Null) => None,
                Some(q @ Value::Object(_)) => {
                    if let Some(v) = q.get("version").filter(|v| !v.is_null()) {
                        let current = existing.map(|i| i.quota_version).unwrap_or(0);
                        if v.as_i64() != Some(current) {
                            conflicts.push(format!(
                                "{name}{}: quota version {v} != {current}",
                                infra.map(|i| format!("/{i}")).unwrap_or_default()
                            ));
                        }
                    }
                    Some((
                        tri!(quota_number(q, "value", name)),
                        tri!(quota_number(q, "overage", name)),
                    ))
                }
                Some(_) => return bad_request(&format!("Offering item '{name}': quota must be an object.")),
            };
            if check_usage && status == Some(0) && existing.is_some_and(|i| i.status == 1) {
                let used = st
                    .usages
                    .get(&(id.clone(), name.to_string(), infra.unwrap_or("").to_string()))
                    .copied()
                    .unwrap_or(0.0);
                if used > 0.0 {
                    return bad_request(&format!(
                        "Offering item '{name}' cannot be disabled: it has usage ({used})."
                    ));
                }
            }
            changes.push(ItemChange {
                entry,
                status,
                quota,
            });
        }
        if !conflicts.is_empty() {
            return conflict(
                "QuotaVersionConflict",
                &format!(
                    "Offering item quota was modified concurrently: {}.",
                    conflicts.join("; ")
                ),
            );
        }
        let mut updated = Vec::new();
        for c in changes {
            let k = st.put_item(&id, &c.entry, 0, now);
            let v = st.next_version(now);
            let it = st.items.get_mut(&k).expect("item");
            if let Some(s) = c.status {
                it.status = s;
            }
            if let Some((value, overage)) = c.quota {
                it.quota_value = value;
                it.quota_overage = overage;
            }
            it.quota_version = v;
            it.updated_at = now;
            updated.push(k);
        }
        updated.dedup();
        let items: Vec<Value> = updated
            .iter()
            .filter_map(|k| st.items.get(k))
            .map(|i| st.item_json(i))
            .collect();
        common::json_response(
            StatusCode::OK,
            &json!({"timestamp": rfc3339(&now), "items": items}),
        )
    })
}

async fn list_all_items(State(s): State<Pf>, h: HeaderMap, uri: Uri) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, now| -> Listing {
        let limit_q = parse_limit(&q)?;
        let mut cursor = match q.get("after") {
            Some(a) => decode_cursor::<ItemCursor>(a)?,
            None => {
                let root = match q.get("subtree_root_tenant_id") {
                    Some(r) => {
                        visible(st, p, r, true)?;
                        r.clone()
                    }
                    None => p.tenant_id.clone(),
                };
                ItemCursor {
                    root,
                    updated_since: parse_since(&q)?,
                    allow_deleted: flag(&q, "allow_deleted"),
                    usage_names: csv(&q, "usage_names"),
                    editions: csv(&q, "editions"),
                    names: csv(&q, "offering_items"),
                    limit: DEFAULT_LIMIT,
                    ts: now,
                    last: None,
                }
            }
        };
        if let Some(l) = limit_q {
            cursor.limit = l;
        }
        if !st.in_subtree(&cursor.root, &p.tenant_id) {
            return Err(forbidden(
                "Access to the subtree is denied for this client.",
            ));
        }
        let range = match &cursor.last {
            Some(k) => (Bound::Excluded(k.clone()), Bound::Unbounded),
            None => (Bound::Unbounded, Bound::Unbounded),
        };
        // Items of one tenant are contiguous: cache the subtree verdict per tenant.
        let mut last_tenant: Option<(&str, bool)> = None;
        let mut it = st.items.range(range).filter(|(_, i)| {
            let inside = match last_tenant {
                Some((t, v)) if t == i.tenant_id => v,
                _ => {
                    let v = st.in_subtree(&i.tenant_id, &cursor.root);
                    last_tenant = Some((&i.tenant_id, v));
                    v
                }
            };
            inside
                && (cursor.allow_deleted || i.deleted_at.is_none())
                && cursor.updated_since.is_none_or(|s| i.updated_at > s)
                && cursor
                    .usage_names
                    .as_ref()
                    .is_none_or(|u| u.contains(&i.usage_name))
                && cursor
                    .editions
                    .as_ref()
                    .is_none_or(|e| e.iter().any(|e| e == "*" || e == "standard"))
                && cursor.names.as_ref().is_none_or(|n| n.contains(&i.name))
        });
        let page: Vec<(&IKey, &Item)> = it.by_ref().take(cursor.limit).collect();
        let more = it.next().is_some();
        let next = match (more, page.last()) {
            (true, Some((k, _))) => {
                let mut c = cursor.clone();
                c.last = Some((*k).clone());
                Some(encode_cursor(&c))
            }
            _ => None,
        };
        let items = page.iter().map(|(_, i)| st.item_json(i)).collect();
        batch_envelope(&cursor.ts, next, items)
    })
}

// ------------------------------------------------------------------ usages

async fn tenant_usages(
    State(s): State<Pf>,
    Path(id): Path<String>,
    h: HeaderMap,
    uri: Uri,
) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, now| {
        let t = tri!(visible(st, p, &id, false));
        let names = csv(&q, "usage_names");
        let items: Vec<Value> = st
            .tenant_items(t)
            .filter(|i| names.as_ref().is_none_or(|n| n.contains(&i.usage_name)))
            .map(|i| st.usage_json(t, i, now))
            .collect();
        common::json_response(StatusCode::OK, &json!({ "items": items }))
    })
}

async fn batch_usages(State(s): State<Pf>, h: HeaderMap, uri: Uri) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, now| {
        let Some(ids) = csv(&q, "tenants") else {
            return bad_request("Query parameter 'tenants' is required.");
        };
        let names = csv(&q, "usage_names");
        let mut out = Vec::new();
        for id in ids {
            let t = tri!(visible(st, p, &id, false));
            let usages: Vec<Value> = st
                .tenant_items(t)
                .filter(|i| names.as_ref().is_none_or(|n| n.contains(&i.usage_name)))
                .map(|i| st.usage_json(t, i, now))
                .collect();
            out.push(json!({"tenant": id, "usages": usages}));
        }
        common::json_response(StatusCode::OK, &json!({ "items": out }))
    })
}

// ------------------------------------------------------------------ locations, infra

async fn tenant_locations(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        tri!(visible(st, p, &id, false));
        let partner = st.partner_of(&id).unwrap_or_default();
        let mut locs: Vec<&str> = st
            .visible_infra(&partner)
            .into_iter()
            .map(|i| i.location_id.as_str())
            .collect();
        locs.sort();
        locs.dedup();
        common::json_response(StatusCode::OK, &json!({ "locations": locs }))
    })
}

async fn location_infra(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        let partner = st.partner_of(&p.tenant_id).unwrap_or_default();
        let infras: Vec<&str> = st
            .visible_infra(&partner)
            .into_iter()
            .filter(|i| i.location_id == id)
            .map(|i| i.id.as_str())
            .collect();
        if infras.is_empty() {
            return not_found(&format!("Location {id} not found."));
        }
        common::json_response(StatusCode::OK, &json!({ "infras": infras }))
    })
}

async fn list_infra(State(s): State<Pf>, h: HeaderMap, uri: Uri) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, _| {
        let partner = st.partner_of(&p.tenant_id).unwrap_or_default();
        let wanted = csv(&q, "uuids");
        let items: Vec<Value> = st
            .visible_infra(&partner)
            .into_iter()
            .filter(|i| wanted.as_ref().is_none_or(|w| w.contains(&i.id)))
            .map(|i| st.infra_json(i))
            .collect();
        common::json_response(StatusCode::OK, &json!({ "items": items }))
    })
}

// ------------------------------------------------------------------ users

async fn create_user(State(s): State<Pf>, h: HeaderMap, body: Bytes) -> Response {
    s.authed(&h, |st, p, now| {
        let b = tri!(parse_json(&body));
        let Some(tenant_id) = b.get("tenant_id").and_then(Value::as_str) else {
            return bad_request("'tenant_id' is required.");
        };
        tri!(visible(st, p, tenant_id, false));
        let Some(contact) = b.get("contact").and_then(Value::as_object) else {
            return bad_request("'contact' with 'email' is required.");
        };
        let email = match contact.get("email").and_then(Value::as_str) {
            Some(e) if e.contains('@') => e.to_string(),
            _ => return bad_request("'contact.email' must be a valid e-mail address."),
        };
        let login = b
            .get("login")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| email.clone());
        if st.logins.contains_key(&login.to_lowercase()) {
            return conflict(
                "LoginAlreadyExists",
                &format!("Login '{login}' is already taken."),
            );
        }
        let id = new_id();
        let mut c = contact.clone();
        c.insert("id".into(), json!(new_id()));
        c.insert("created_at".into(), json!(am_time(&now)));
        c.insert("updated_at".into(), json!(am_time(&now)));
        c.entry("types").or_insert(json!([]));
        let user = json!({
            "id": id,
            "version": 1,
            "tenant_id": tenant_id,
            "login": login,
            "contact": c,
            "activated": false,
            "enabled": b.get("enabled").and_then(Value::as_bool).unwrap_or(true),
            "created_at": am_time(&now),
            "updated_at": am_time(&now),
            "deleted_at": null,
            "language": b.get("language").and_then(Value::as_str).unwrap_or("en"),
            "business_types": b.get("business_types").cloned().unwrap_or(json!([])),
            "notifications": b.get("notifications").cloned().unwrap_or(json!([])),
            "mfa_status": "disabled",
        });
        st.logins.insert(login.to_lowercase(), id.clone());
        st.users.insert(id, user.clone());
        // The vendor spec documents 200 (not 201) for POST /users.
        common::json_response(StatusCode::OK, &user)
    })
}

async fn check_login(State(s): State<Pf>, h: HeaderMap, uri: Uri) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, _, _| match q.get("username") {
        None => am_error(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptable",
            "Query parameter 'username' is required.",
        ),
        Some(u) if st.logins.contains_key(&u.to_lowercase()) => conflict(
            "LoginAlreadyExists",
            &format!("Login '{u}' is already taken."),
        ),
        Some(_) => StatusCode::NO_CONTENT.into_response(),
    })
}

fn visible_user<'a>(st: &'a PfState, p: &Principal, id: &str) -> Result<&'a Value, Response> {
    let u = st
        .users
        .get(id)
        .ok_or_else(|| not_found(&format!("User {id} not found.")))?;
    let tenant = u["tenant_id"].as_str().unwrap_or("");
    if !st.in_subtree(tenant, &p.tenant_id) {
        return Err(forbidden("Access to this user is denied."));
    }
    Ok(u)
}

async fn get_user(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        let u = tri!(visible_user(st, p, &id));
        common::json_response(StatusCode::OK, u)
    })
}

async fn send_activation(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        let u = tri!(visible_user(st, p, &id));
        let email = u["contact"]["email"].as_str().unwrap_or("").to_string();
        st.activation_emails.push(email);
        StatusCode::NO_CONTENT.into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let d = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
        assert_eq!(am_time(&d), "2026-11-22T00:00:00.000000");
        assert_eq!(rfc3339(&d), "2026-11-22T00:00:00.000000Z");
        assert_eq!(parse_ts("2026-11-22T00:00:00.000000"), Some(d));
        assert_eq!(parse_ts("2026-11-22T00:00:00Z"), Some(d));
        assert_eq!(parse_ts("2026-11-22T01:00:00+01:00"), Some(d));
        assert_eq!(num(5.0), json!(5));
        assert_eq!(num(2.5), json!(2.5));
    }
}

crate::common::fake_handle!(PlatformFake);
