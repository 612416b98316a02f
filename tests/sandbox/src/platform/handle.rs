//! Test-control methods of [`PlatformFake`]: partners, storages, customers, console-side
//! changes (status, quota, access settings), usages (current and per-day history), usage
//! report switches, and reading back what the API wrote.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::{
    render::Lod,
    state::{new_id, CatalogEntry, Client, PfState},
    usage::{ukey, EXTRA_SUFFIXES},
    PartnerAccount, PlatformFake, COUNT_ITEMS,
};
use crate::common::lock;

impl PlatformFake {
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

    /// Adds a sub-partner tenant (kind `partner`) under `parent_id`, without an API client. It
    /// is offered its parent's catalogue, its items off, like a new customer's (what the parent
    /// may set on it and on its customers; the fake does not model a parent offering only part
    /// of it).
    pub fn add_sub_partner(&self, parent_id: &str, name: &str) -> String {
        self.with(|st, now| {
            let id = st
                .create_tenant(Some(parent_id), name, "partner", None, now)
                .unwrap_or_else(|_| {
                    panic!("psa-sandbox: cannot create sub-partner {name:?} under {parent_id}")
                });
            let offered = st.available(parent_id).to_vec();
            for e in &offered {
                st.put_item(&id, e, 0, now);
            }
            st.catalog.insert(id.clone(), offered);
            id
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
            st.children_of(parent_id)
                .filter(|t| t.kind == "customer" && t.deleted_at.is_none())
                .map(|t| st.tenant_json(t, Lod::Full, false, false))
                .collect()
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
            st.change_item(tenant_id, &entry, Some(1), Some((value, overage)), now);
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
            t.touch(now);
        })
    }

    /// Sets the usage reported for an offering item of a tenant under the item's own usage
    /// name: the current value and the history entry of today (the fake clock's UTC date).
    pub fn set_usage(&self, tenant_id: &str, name: &str, infra_id: Option<&str>, value: f64) {
        self.with(|st, now| {
            let un = st.own_usage_name(tenant_id, name, infra_id);
            st.set_current(
                ukey(tenant_id, name, infra_id, &un),
                value,
                now.date_naive(),
            );
        })
    }

    /// [`PlatformFake::set_usage`] for another usage name of the item: its own, or for an
    /// infra (`storage`) item `<usage_name>_geo`, `_class1` or `_class2` (panics otherwise, or
    /// when the tenant has no such item and its catalogue none either).
    pub fn set_usage_as(
        &self,
        tenant_id: &str,
        name: &str,
        infra_id: Option<&str>,
        usage_name: &str,
        value: f64,
    ) {
        self.with(|st, now| {
            let un = checked_usage_name(st, tenant_id, name, infra_id, Some(usage_name));
            st.set_current(
                ukey(tenant_id, name, infra_id, &un),
                value,
                now.date_naive(),
            );
        })
    }

    /// Writes the usage history of `day` only (`usage_name` `None` = the item's own usage
    /// name); the current value changes only when `day` is today. Panics for a future day.
    pub fn set_usage_on(
        &self,
        day: NaiveDate,
        tenant_id: &str,
        name: &str,
        infra_id: Option<&str>,
        usage_name: Option<&str>,
        value: f64,
    ) {
        self.with(|st, now| {
            let today = now.date_naive();
            assert!(
                day <= today,
                "psa-sandbox: usage history of a future day {day}"
            );
            let un = checked_usage_name(st, tenant_id, name, infra_id, usage_name);
            st.set_day(ukey(tenant_id, name, infra_id, &un), day, value, today);
        })
    }

    /// Usage reports that still exist (as `GET /reports/{id}` answers them), in creation order.
    pub fn reports(&self) -> Vec<Value> {
        self.with(|st, _| st.reports.iter().map(|r| r.json.clone()).collect())
    }

    /// Test switch (default 1): how many `GET /reports/{id}/stored` answers show a new stored
    /// report `in_progress` before it is `saved` (or `failed`). Applies to reports made later.
    pub fn set_report_polls_in_progress(&self, polls: u32) {
        self.with(|st, _| st.report_polls_in_progress = polls)
    }

    /// Test switch (default off): yesterday's usage history is late, so `POST /reports` for a
    /// period ending yesterday answers 500 even after 06:00.
    pub fn set_usage_history_late(&self, late: bool) {
        self.with(|st, _| st.usage_history_late = late)
    }

    /// Number of `POST /api/2/idp/token` requests received (successful or not).
    pub fn token_requests(&self) -> u64 {
        self.with(|st, _| st.token_requests)
    }

    /// Test switch: with `false`, tenant listings leave `offering_items` out even when
    /// `expand_offering_items=true` is asked (clients must read `/tenants/{id}/offering_items`).
    pub fn set_listings_embed_items(&self, embed: bool) {
        self.with(|st, _| st.listings_embed_items = embed)
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

/// The usage name a test asks for, checked against the item (test control: panics).
fn checked_usage_name(
    st: &PfState,
    tenant_id: &str,
    name: &str,
    infra_id: Option<&str>,
    usage_name: Option<&str>,
) -> String {
    let has_item = st
        .ikey(tenant_id, name, infra_id)
        .is_some_and(|k| st.items.contains_key(&k))
        || st
            .available(tenant_id)
            .iter()
            .any(|e| e.name == name && e.infra_id.as_deref() == infra_id);
    assert!(
        has_item,
        "psa-sandbox: tenant {tenant_id} has no item {name}/{infra_id:?}"
    );
    let own = st.own_usage_name(tenant_id, name, infra_id);
    let Some(un) = usage_name else {
        return own;
    };
    let extra = infra_id.is_some()
        && EXTRA_SUFFIXES
            .iter()
            .any(|s| un.strip_suffix(s) == Some(own.as_str()));
    assert!(
        un == own || extra,
        "psa-sandbox: {un:?} is not a usage name of item {name}/{infra_id:?} ({own:?})"
    );
    un.to_string()
}
