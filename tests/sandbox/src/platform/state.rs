//! State of the fake platform: the tenant tree (ordered parents before children), offering
//! items per tenant, partner catalogues, API clients and tokens, infrastructure, usages (current
//! values and per-day history, see `usage.rs`), usage reports (`reports.rs`) and users.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    ops::{Bound, Range},
};

use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::wire::{conflict, not_found};

/// Ordering key of a tenant: (depth in the tree, creation sequence) — parents before children.
pub(super) type OKey = (u32, u64);
/// Ordering key of an offering item: tenant's OKey, item name, infra id ("" if none).
pub(super) type IKey = (u32, u64, String, String);
/// Key of a usage: tenant id, item name, infra id ("" if none), usage name.
pub(super) type UKey = (String, String, String, String);

#[derive(Debug, Clone)]
pub(super) struct Tenant {
    pub(super) id: String,
    pub(super) key: OKey,
    pub(super) parent_id: Option<String>,
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) enabled: bool,
    pub(super) customer_type: String,
    pub(super) customer_id: Option<String>,
    pub(super) internal_tag: Option<String>,
    pub(super) language: String,
    pub(super) ancestral_access: bool,
    pub(super) update_lock: bool,
    pub(super) update_lock_owner: Option<String>,
    pub(super) mfa_status: String,
    pub(super) pricing_mode: String,
    pub(super) production_start_date: Option<DateTime<Utc>>,
    pub(super) currency: Option<String>,
    pub(super) pricing_version: i64,
    pub(super) contact: Value,
    pub(super) created_at: DateTime<Utc>,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) deleted_at: Option<DateTime<Utc>>,
    pub(super) version: i64,
}

#[derive(Debug, Clone)]
pub(super) struct CatalogEntry {
    pub(super) name: String,
    pub(super) usage_name: String,
    pub(super) item_type: &'static str,
    pub(super) unit: &'static str,
    pub(super) infra_id: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Item {
    pub(super) tenant_id: String,
    pub(super) name: String,
    pub(super) usage_name: String,
    pub(super) item_type: &'static str,
    pub(super) unit: &'static str,
    pub(super) infra_id: Option<String>,
    pub(super) status: u8,
    pub(super) quota_value: Option<f64>,
    pub(super) quota_overage: Option<f64>,
    pub(super) quota_version: i64,
    pub(super) updated_at: DateTime<Utc>,
    pub(super) deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub(super) struct Client {
    pub(super) client_id: String,
    pub(super) secret: String,
    pub(super) tenant_id: String,
    pub(super) name: String,
    pub(super) created_at: DateTime<Utc>,
    pub(super) last_access_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub(super) struct Infra {
    pub(super) id: String,
    pub(super) location_id: String,
    pub(super) name: String,
    pub(super) url: String,
    pub(super) backend_type: &'static str,
}

pub(super) struct PfState {
    pub(super) root_id: String,
    pub(super) tenants: HashMap<String, Tenant>,
    pub(super) order: BTreeMap<OKey, String>,
    pub(super) children: HashMap<String, BTreeSet<OKey>>,
    pub(super) items: BTreeMap<IKey, Item>,
    /// False = `GET /tenants` never embeds `offering_items`, even with
    /// `expand_offering_items` (a test switch: an API that leaves them out).
    pub(super) listings_embed_items: bool,
    /// Partner tenant id → what its customers may get.
    pub(super) catalog: HashMap<String, Vec<CatalogEntry>>,
    pub(super) clients: HashMap<String, Client>,
    pub(super) tokens: HashMap<String, (String, DateTime<Utc>)>,
    pub(super) token_requests: u64,
    pub(super) infras: BTreeMap<String, Infra>,
    /// Current usage values.
    pub(super) usages: BTreeMap<UKey, f64>,
    /// Per-day usage history: the value at the end of each day written.
    pub(super) history: BTreeMap<UKey, BTreeMap<NaiveDate, f64>>,
    /// Usage reports, in creation order (deleted ones removed).
    pub(super) reports: Vec<super::reports::Report>,
    /// Test switch: how many `GET …/stored` answers show a new stored report `in_progress`.
    pub(super) report_polls_in_progress: u32,
    /// Test switch: the usage history of yesterday is late after 06:00 (→ 500).
    pub(super) usage_history_late: bool,
    pub(super) users: BTreeMap<String, Value>,
    pub(super) logins: HashMap<String, String>,
    pub(super) activation_emails: Vec<String>,
    /// Live tenants by (parent id, lower-cased name), for the sibling-name uniqueness check.
    pub(super) live_names: HashMap<(String, String), String>,
    pub(super) seq: u64,
    pub(super) last_version: i64,
}

/// The keys of a tenant's offering items.
pub(super) fn item_range((d, s): OKey) -> Range<IKey> {
    (d, s, String::new(), String::new())..(d, s + 1, String::new(), String::new())
}

impl Item {
    /// A catalogue entry as a tenant's item: unlimited quota, version 0.
    pub(super) fn new(tenant_id: &str, e: &CatalogEntry, status: u8, now: DateTime<Utc>) -> Item {
        Item {
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
        }
    }
}

impl Tenant {
    /// Records a change of the tenant at `now` (new version, `updated_at`).
    pub(super) fn touch(&mut self, now: DateTime<Utc>) {
        self.version += 1;
        self.updated_at = now;
    }
}

pub(super) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(super) fn catalog_for_infra(infra_id: &str) -> CatalogEntry {
    CatalogEntry {
        name: "storage".into(),
        usage_name: "storage".into(),
        item_type: "infra",
        unit: "bytes",
        infra_id: Some(infra_id.to_string()),
    }
}

impl PfState {
    pub(super) fn new(now: DateTime<Utc>) -> Self {
        let mut st = PfState {
            root_id: String::new(),
            tenants: HashMap::new(),
            order: BTreeMap::new(),
            children: HashMap::new(),
            items: BTreeMap::new(),
            listings_embed_items: true,
            catalog: HashMap::new(),
            clients: HashMap::new(),
            tokens: HashMap::new(),
            token_requests: 0,
            infras: BTreeMap::new(),
            usages: BTreeMap::new(),
            history: BTreeMap::new(),
            reports: Vec::new(),
            report_polls_in_progress: 1,
            usage_history_late: false,
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
    pub(super) fn next_version(&mut self, now: DateTime<Utc>) -> i64 {
        self.last_version = (self.last_version + 1).max(now.timestamp_millis());
        self.last_version
    }

    pub(super) fn tenant(&self, id: &str) -> Option<&Tenant> {
        self.tenants.get(id)
    }

    /// Is `id` in the subtree rooted at `root` (inclusive)?
    pub(super) fn in_subtree(&self, id: &str, root: &str) -> bool {
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
    pub(super) fn partner_of(&self, id: &str) -> Option<String> {
        let mut cur = self.tenants.get(id)?;
        loop {
            if cur.kind == "partner" {
                return Some(cur.id.clone());
            }
            cur = self.tenants.get(cur.parent_id.as_deref()?)?;
        }
    }

    /// Catalogue a tenant's items are drawn from (the partner's own catalogue for a partner).
    pub(super) fn available(&self, id: &str) -> &[CatalogEntry] {
        self.partner_of(id)
            .and_then(|p| self.catalog.get(&p))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub(super) fn live_sibling_named(
        &self,
        parent: &str,
        name: &str,
        except: Option<&str>,
    ) -> bool {
        self.live_names
            .get(&(parent.to_string(), name.to_lowercase()))
            .is_some_and(|id| Some(id.as_str()) != except)
    }

    pub(super) fn create_tenant(
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

    pub(super) fn ikey(&self, tenant_id: &str, name: &str, infra: Option<&str>) -> Option<IKey> {
        let t = self.tenant(tenant_id)?;
        Some((
            t.key.0,
            t.key.1,
            name.to_string(),
            infra.unwrap_or("").to_string(),
        ))
    }

    /// Creates an item (quota unlimited, version 0) if missing; returns its key.
    pub(super) fn put_item(
        &mut self,
        tenant_id: &str,
        e: &CatalogEntry,
        status: u8,
        now: DateTime<Utc>,
    ) -> IKey {
        let k = self
            .ikey(tenant_id, &e.name, e.infra_id.as_deref())
            .expect("tenant exists");
        self.items
            .entry(k.clone())
            .or_insert_with(|| Item::new(tenant_id, e, status, now));
        k
    }

    pub(super) fn tenant_items(&self, t: &Tenant) -> impl Iterator<Item = &Item> + '_ {
        self.items.range(item_range(t.key)).map(|(_, v)| v)
    }

    /// Whether the tenant has an enabled, live offering item of `item_type` (`count`/`infra`).
    pub(super) fn has_items(&self, t: &Tenant, item_type: &str) -> bool {
        self.tenant_items(t)
            .any(|i| i.item_type == item_type && i.status == 1 && i.deleted_at.is_none())
    }

    /// Sets what a request (or a person) changed on an item, creating it if missing, with a
    /// new quota version and `updated_at`; returns its key.
    pub(super) fn change_item(
        &mut self,
        tenant_id: &str,
        e: &CatalogEntry,
        status: Option<u8>,
        quota: Option<(Option<f64>, Option<f64>)>,
        now: DateTime<Utc>,
    ) -> IKey {
        let k = self.put_item(tenant_id, e, 0, now);
        let v = self.next_version(now);
        let it = self.items.get_mut(&k).expect("item");
        if let Some(s) = status {
            it.status = s;
        }
        if let Some((value, overage)) = quota {
            it.quota_value = value;
            it.quota_overage = overage;
        }
        it.quota_version = v;
        it.updated_at = now;
        k
    }

    /// The children of `id` (deleted ones too) with ordering keys in `range`, in creation order.
    pub(super) fn children_in(
        &self,
        id: &str,
        range: (Bound<OKey>, Bound<OKey>),
    ) -> impl Iterator<Item = &Tenant> + '_ {
        self.children
            .get(id)
            .into_iter()
            .flat_map(move |set| set.range(range))
            .map(|k| &self.tenants[&self.order[k]])
    }

    /// All children of `id` (deleted ones too), in creation order.
    pub(super) fn children_of(&self, id: &str) -> impl Iterator<Item = &Tenant> + '_ {
        self.children_in(id, (Bound::Unbounded, Bound::Unbounded))
    }

    pub(super) fn add_infra(
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
    pub(super) fn available_entry(
        &self,
        tenant_id: &str,
        name: &str,
        infra_id: Option<&str>,
    ) -> CatalogEntry {
        self.available(tenant_id)
            .iter()
            .find(|e| e.name == name && e.infra_id.as_deref() == infra_id)
            .cloned()
            .unwrap_or_else(|| {
                panic!("psa-sandbox: item {name}/{infra_id:?} not available to {tenant_id}")
            })
    }

    pub(super) fn visible_infra(&self, partner: &str) -> Vec<&Infra> {
        let mut ids: Vec<&str> = self
            .catalog
            .get(partner)
            .map(|c| c.iter().filter_map(|e| e.infra_id.as_deref()).collect())
            .unwrap_or_default();
        ids.sort();
        ids.dedup();
        ids.into_iter().filter_map(|i| self.infras.get(i)).collect()
    }
}
