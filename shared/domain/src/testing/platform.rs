//! [`MemoryPlatform`]: the cloud platform in memory — the partner's customer tenants with their
//! offering items and quotas, implementing [`TenantDirectory`] and [`TenantAdmin`].
//!
//! Like the real platform: a new customer gets every offering item of the partner's catalogue,
//! off and unlimited; a name another live customer holds is refused (409 → `Conflict`); an item
//! the tenant does not offer cannot be set; every item change is stamped with the clock, and
//! the listings' stamps are the clock's time (the `items_changed` cursor).

use super::fake::Fake;
use super::faults::{conflict, not_found};
use crate::config::StorageLocation;
use crate::error::{PortError, PortResult, System};
use crate::model::{Contact, CurrentItem, ItemKey, PricingMode, Quota, Tenant};
use crate::ports::{
    Clock, NewTenant, PeriodUsage, QuotaSet, SubtreeTenant, TenantAdmin, TenantDirectory,
    TenantUsage, TenantWithItems, UsageFigure, UsageSource,
};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Everything the platform holds for the partner.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlatformState {
    pub partner_tenant_id: String,
    pub tenants: BTreeMap<String, TenantWithItems>,
    /// The offering items a new customer tenant gets.
    pub catalog: Vec<ItemKey>,
    pub locations: Vec<StorageLocation>,
    /// Tenants with two-factor authentication on.
    pub two_factor: BTreeSet<String>,
    /// Activation e-mails sent: (tenant id, administrator).
    pub invitations: Vec<(String, Contact)>,
    /// Current usage per tenant (R-USE-5, the current month).
    pub usage: BTreeMap<String, Vec<UsageFigure>>,
    /// Usage of closed periods `[start, end)` per tenant, as the usage report gives it; a
    /// period absent here is not ready yet.
    pub period_usage: BTreeMap<(NaiveDate, NaiveDate), BTreeMap<String, Vec<UsageFigure>>>,
    /// Sub-partner tenants with the customer tenants of their subtree (R-CO-6).
    pub subtrees: BTreeMap<String, Vec<String>>,
    seq: u64,
}

impl PlatformState {
    fn live_named(&self, name: &str) -> Option<&Tenant> {
        self.tenants
            .values()
            .map(|t| &t.tenant)
            .find(|t| !t.deleted && t.name.eq_ignore_ascii_case(name.trim()))
    }

    fn customer(&self, t: &TenantWithItems) -> bool {
        t.tenant.parent_id.as_deref() == Some(self.partner_tenant_id.as_str())
    }

    /// Adds a customer tenant with the catalogue's items, off and unlimited.
    fn insert(&mut self, name: &str, customer_id: Option<&str>, now: DateTime<Utc>) -> String {
        self.seq += 1;
        let id = format!("00000000-0000-4000-8000-{:012}", self.seq);
        let tenant = Tenant {
            kind: crate::model::TenantKind::Customer,
            id: id.clone(),
            parent_id: Some(self.partner_tenant_id.clone()),
            name: name.trim().into(),
            enabled: true,
            customer_id: customer_id.map(str::to_owned),
            version: 1,
            self_service: false,
            support_access: true,
            pricing_mode: Some("production".into()),
            deleted: false,
        };
        let items = self
            .catalog
            .iter()
            .map(|key| CurrentItem {
                key: key.clone(),
                enabled: false,
                quota: Quota::UNLIMITED,
                updated_at: Some(now),
            })
            .collect();
        self.tenants
            .insert(id.clone(), TenantWithItems { tenant, items });
        id
    }

    /// Changes the live tenant `id` with `f`; its version moves when `f` succeeds.
    fn change<T>(
        &mut self,
        id: &str,
        f: impl FnOnce(&mut TenantWithItems) -> PortResult<T>,
    ) -> PortResult<T> {
        let t = self
            .tenants
            .get_mut(id)
            .filter(|t| !t.tenant.deleted)
            .ok_or_else(|| not_found(System::Platform, format!("tenant {id} not found")))?;
        let out = f(t)?;
        t.tenant.version += 1;
        Ok(out)
    }
}

/// The platform in memory.
pub type MemoryPlatform = Fake<PlatformState>;

impl MemoryPlatform {
    pub fn new(clock: Arc<dyn Clock>, partner_tenant_id: &str) -> Self {
        Fake::from_state(
            clock,
            PlatformState {
                partner_tenant_id: partner_tenant_id.into(),
                ..PlatformState::default()
            },
        )
    }

    /// Offers `item` to the customer tenants created from now on.
    pub fn offer(&self, item: ItemKey) {
        self.with(|st, _| st.catalog.push(item));
    }

    pub fn add_location(&self, infra_id: &str, name: &str, backend: Option<&str>) {
        self.with(|st, _| {
            st.locations.push(StorageLocation {
                infra_id: infra_id.into(),
                name: name.into(),
                backend: backend.map(str::to_owned),
            })
        });
    }

    /// A customer tenant made by hand (or by another tool); returns its id.
    pub fn add_customer(&self, name: &str, customer_id: Option<&str>) -> String {
        self.with(|st, now| st.insert(name, customer_id, now))
    }

    /// The tenant `id` with its items.
    pub fn tenant(&self, id: &str) -> Option<TenantWithItems> {
        self.with(|st, _| st.tenants.get(id).cloned())
    }

    /// The live customer tenants stamped with this PSA company id.
    pub fn tenants_of(&self, customer_id: &str) -> Vec<TenantWithItems> {
        self.with(|st, _| {
            st.tenants
                .values()
                .filter(|t| {
                    !t.tenant.deleted && t.tenant.customer_id.as_deref() == Some(customer_id)
                })
                .cloned()
                .collect()
        })
    }

    /// One offering item of a tenant as it is now.
    pub fn item(&self, tenant_id: &str, key: &ItemKey) -> Option<CurrentItem> {
        self.tenant(tenant_id)?
            .items
            .into_iter()
            .find(|i| i.key == *key)
    }

    /// Edits a tenant's own fields (self-service, support access, pricing mode, …).
    pub fn edit_tenant(&self, id: &str, f: impl FnOnce(&mut Tenant)) {
        self.with(|st, _| f(&mut st.tenants.get_mut(id).expect("the tenant exists").tenant));
    }

    /// A person changes an item on the platform (stamped now).
    pub fn set_item_by_hand(&self, tenant_id: &str, key: &ItemKey, enabled: bool, quota: Quota) {
        self.with(|st, now| {
            let t = st.tenants.get_mut(tenant_id).expect("the tenant exists");
            let i = t
                .items
                .iter_mut()
                .find(|i| i.key == *key)
                .expect("the tenant offers the item");
            (i.enabled, i.quota, i.updated_at) = (enabled, quota, Some(now));
        });
    }
}

impl MemoryPlatform {
    /// Sets a tenant's current usage of one item and measure.
    pub fn set_usage(&self, tenant_id: &str, figure: UsageFigure) {
        self.with(|st, _| put_figure(st.usage.entry(tenant_id.into()).or_default(), figure));
    }

    /// Sets a tenant's usage of one item and measure over the closed period `[start, end)`
    /// (the period's report is ready from then on).
    pub fn set_period_usage(
        &self,
        start: NaiveDate,
        end: NaiveDate,
        tenant_id: &str,
        figure: UsageFigure,
    ) {
        self.with(|st, _| {
            let period = st.period_usage.entry((start, end)).or_default();
            put_figure(period.entry(tenant_id.into()).or_default(), figure)
        });
    }

    /// A period whose report is ready, with no usage in it.
    pub fn period_ready(&self, start: NaiveDate, end: NaiveDate) {
        self.with(|st, _| {
            st.period_usage.entry((start, end)).or_default();
        });
    }

    /// Adds a sub-partner tenant (kind partner, under the partner, with the catalogue's items)
    /// whose subtree holds the customer tenants `customers` (R-CO-6); returns its id.
    pub fn add_subpartner(&self, name: &str, customers: &[&str]) -> String {
        self.with(|st, now| {
            let id = st.insert(name, None, now);
            if let Some(t) = st.tenants.get_mut(&id) {
                t.tenant.kind = crate::model::TenantKind::Partner;
            }
            st.subtrees.insert(
                id.clone(),
                customers.iter().map(|c| c.to_string()).collect(),
            );
            id
        })
    }
}

fn put_figure(figures: &mut Vec<UsageFigure>, figure: UsageFigure) {
    figures.retain(|f| (&f.item, f.measure) != (&figure.item, figure.measure));
    figures.push(figure);
}

fn usage_of<'a>(
    by_tenant: impl Fn(&str) -> Option<&'a Vec<UsageFigure>>,
    ids: &[String],
) -> Vec<TenantUsage> {
    ids.iter()
        .filter_map(|id| {
            by_tenant(id).map(|f| TenantUsage {
                tenant_id: id.clone(),
                figures: f.clone(),
            })
        })
        .collect()
}

#[async_trait]
impl UsageSource for MemoryPlatform {
    async fn current_usage(&self, tenant_ids: &[String]) -> PortResult<Vec<TenantUsage>> {
        self.call("current_usage", "", |st, _| {
            Ok(usage_of(|id| st.usage.get(id), tenant_ids))
        })
    }

    async fn period_usage(
        &self,
        tenant_ids: &[String],
        start: NaiveDate,
        end: NaiveDate,
    ) -> PortResult<PeriodUsage> {
        self.call("period_usage", "", |st, _| {
            Ok(match st.period_usage.get(&(start, end)) {
                Some(p) => PeriodUsage::Ready(usage_of(|id| p.get(id), tenant_ids)),
                None => PeriodUsage::NotReady(format!(
                    "usage history of {start} to {end} is not ready yet"
                )),
            })
        })
    }

    async fn subtree(&self, tenant_id: &str) -> PortResult<Vec<SubtreeTenant>> {
        self.call("subtree", tenant_id, |st, _| {
            Ok(st
                .subtrees
                .get(tenant_id)
                .into_iter()
                .flatten()
                .map(|c| SubtreeTenant {
                    id: c.clone(),
                    parent_id: Some(tenant_id.to_owned()),
                    kind: crate::model::TenantKind::Customer,
                })
                .collect())
        })
    }
}

fn parse_cursor(c: &str) -> PortResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(c)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| PortError::Rejected {
            system: System::Platform,
            message: format!("updated_since {c:?} is not an RFC 3339 time: {e}"),
        })
}

#[async_trait]
impl TenantDirectory for MemoryPlatform {
    async fn check_login(&self) -> PortResult<String> {
        self.call("check_login", "", |st, _| Ok(st.partner_tenant_id.clone()))
    }

    async fn customers(&self, ids: &[String]) -> PortResult<(Vec<TenantWithItems>, String)> {
        self.call("customers", "", |st, now| {
            let out = st
                .tenants
                .values()
                .filter(|t| st.customer(t))
                .filter(|t| match ids {
                    [] => !t.tenant.deleted,
                    ids => ids.contains(&t.tenant.id),
                })
                .cloned()
                .collect();
            Ok((out, now.to_rfc3339()))
        })
    }

    async fn items_changed(
        &self,
        cursor: Option<&str>,
    ) -> PortResult<(Vec<(String, DateTime<Utc>)>, String)> {
        self.call("items_changed", "", |st, now| {
            let since = cursor.map(parse_cursor).transpose()?;
            let out = st
                .tenants
                .values()
                .filter(|t| st.customer(t) && !t.tenant.deleted)
                .filter_map(|t| {
                    let latest = t
                        .items
                        .iter()
                        .filter_map(|i| i.updated_at)
                        .filter(|u| since.is_none_or(|s| *u > s))
                        .max()?;
                    Some((t.tenant.id.clone(), latest))
                })
                .collect();
            Ok((out, now.to_rfc3339()))
        })
    }

    async fn find_customer(&self, customer_id: &str) -> PortResult<Option<TenantWithItems>> {
        self.call("find_customer", customer_id, |st, _| {
            Ok(st
                .tenants
                .values()
                .find(|t| {
                    st.customer(t)
                        && !t.tenant.deleted
                        && t.tenant.customer_id.as_deref() == Some(customer_id)
                })
                .cloned())
        })
    }

    async fn storage_locations(&self) -> PortResult<Vec<StorageLocation>> {
        self.call("storage_locations", "", |st, _| Ok(st.locations.clone()))
    }

    async fn offering_items(&self) -> PortResult<Vec<String>> {
        self.call("offering_items", "", |st, _| {
            let mut names: Vec<String> = st.catalog.iter().map(|k| k.name.clone()).collect();
            names.sort();
            names.dedup();
            Ok(names)
        })
    }
}

#[async_trait]
impl TenantAdmin for MemoryPlatform {
    async fn create_customer(&self, req: &NewTenant) -> PortResult<Tenant> {
        self.call("create_customer", &req.customer_id, |st, now| {
            if st.live_named(&req.name).is_some() {
                return Err(conflict(
                    System::Platform,
                    format!("Tenant with name '{}' already exists.", req.name.trim()),
                ));
            }
            let id = st.insert(&req.name, Some(&req.customer_id), now);
            Ok(st.tenants[&id].tenant.clone())
        })
    }

    async fn set_quotas(
        &self,
        tenant_id: &str,
        items: &[QuotaSet],
        basis: &[QuotaSet],
    ) -> PortResult<Option<DateTime<Utc>>> {
        self.call("set_quotas", tenant_id, |st, now| {
            st.change(tenant_id, |t| {
                if let Some(moved) = crate::rules::provisioning::basis_moved(basis, &t.items) {
                    return Err(PortError::Conflict {
                        system: System::Platform,
                        message: format!("tenant {tenant_id}: {moved}; not written"),
                    });
                }
                if let Some(missing) = items
                    .iter()
                    .find(|q| !t.items.iter().any(|i| i.key == q.item))
                {
                    return Err(PortError::Rejected {
                        system: System::Platform,
                        message: format!(
                        "tenant {tenant_id} does not offer the item {} — check the product mapping",
                        missing.item
                    ),
                    });
                }
                for q in items {
                    let i = t
                        .items
                        .iter_mut()
                        .find(|i| i.key == q.item)
                        .expect("checked");
                    (i.enabled, i.quota, i.updated_at) = (q.enabled, q.quota, Some(now));
                }
                Ok(Some(now))
            })
        })
    }

    async fn set_enabled(&self, tenant_id: &str, enabled: bool) -> PortResult<()> {
        self.call("set_enabled", tenant_id, |st, _| {
            st.change(tenant_id, |t| {
                t.tenant.enabled = enabled;
                Ok(())
            })
        })
    }

    async fn delete_tenant(&self, tenant_id: &str) -> PortResult<()> {
        self.call("delete_tenant", tenant_id, |st, _| {
            let gone = st.change(tenant_id, |t| {
                (t.tenant.deleted, t.tenant.enabled) = (true, false);
                Ok(())
            });
            // Deleting what is gone already is done (the adapter treats 404 so).
            match gone {
                Err(PortError::NotFound { .. }) => Ok(()),
                other => other,
            }
        })
    }

    async fn set_pricing_mode(&self, tenant_id: &str, mode: PricingMode) -> PortResult<()> {
        self.call("set_pricing_mode", tenant_id, |st, _| {
            st.change(tenant_id, |t| {
                t.tenant.pricing_mode = Some(
                    match mode {
                        PricingMode::Trial => "trial",
                        PricingMode::Production => "production",
                    }
                    .into(),
                );
                Ok(())
            })
        })
    }

    async fn enable_two_factor(&self, tenant_id: &str) -> PortResult<()> {
        self.call("enable_two_factor", tenant_id, |st, _| {
            st.change(tenant_id, |_| Ok(()))?;
            st.two_factor.insert(tenant_id.to_owned());
            Ok(())
        })
    }

    async fn invite_admin(&self, tenant_id: &str, admin: &Contact) -> PortResult<()> {
        self.call("invite_admin", tenant_id, |st, _| {
            st.change(tenant_id, |_| Ok(()))?;
            // An existing login is left alone, as the adapter does.
            if !st.invitations.iter().any(|(_, a)| a.email == admin.email) {
                st.invitations.push((tenant_id.to_owned(), admin.clone()));
            }
            Ok(())
        })
    }
}
