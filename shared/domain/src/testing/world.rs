//! [`World`]: the memory ports wired together around one demo partner, for service tests.
//!
//! The demo partner maps workstations, servers, mailboxes (free), the default storage
//! [`INFRA`] and a second, free storage [`INFRA_2`]; it creates tenants automatically. Its PSA
//! holds the mapped products and one allocation code; its platform offers those items.

use super::connector::{MemoryConnector, MemoryEvents};
use super::platform::MemoryPlatform;
use super::psa::MemoryPsa;
use super::store::MemoryStore;
use super::TestClock;
use crate::model::{
    GuardSettings, ItemKey, ItemMapping, Partner, ProductMapping, ProductRef, ProvisioningSettings,
    PsaKind, Switches, TwoWaySettings,
};
use crate::ports::{PartnerStore, TenantWithItems};
use crate::services::sync::{
    self, PartnerSyncError, Scope, SyncError, SyncOptions, SyncReport, SyncRequest,
};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use std::sync::Arc;

pub const PARTNER: &str = "acme";
pub const PARTNER_TENANT: &str = "ptn-acme";
/// The default storage's infra id.
pub const INFRA: &str = "infra-1";
/// A second storage location, mapped free (R-PROV-5: it still gets 0 without a line).
pub const INFRA_2: &str = "infra-2";

/// The first instant of every world: 2026-11-22 10:00 UTC.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
        .single()
        .expect("a time")
}

/// A day, `YYYY-MM-DD`.
pub fn day(s: &str) -> NaiveDate {
    s.parse().expect("a YYYY-MM-DD day")
}

/// An offering item that is not storage.
pub fn item(name: &str) -> ItemKey {
    ItemKey::new(name, None)
}

/// The storage item of a location.
pub fn storage(infra_id: &str) -> ItemKey {
    ItemKey::new("storage", Some(infra_id))
}

/// The demo PSA products.
#[derive(Debug, Clone)]
pub struct Products {
    pub ws: ProductRef,
    pub srv: ProductRef,
    pub o365: ProductRef,
    pub stor: ProductRef,
    pub stor2: ProductRef,
    /// The allocation code two-way sync's services get (R-TWO-1).
    pub code: ProductRef,
}

fn mapped(item: ItemKey, product: &ProductRef, free: bool) -> ItemMapping {
    ItemMapping {
        item,
        product: Some(product.clone()),
        free,
        usage: Default::default(),
    }
}

/// The demo partner on `psa`, with the demo mapping over `p`.
pub fn partner(psa: PsaKind, p: &Products) -> Partner {
    Partner {
        id: PARTNER.into(),
        name: "Acme MSP".into(),
        psa,
        enabled: true,
        platform_url: "https://eu2-cloud.acronis.com".into(),
        partner_tenant_id: PARTNER_TENANT.into(),
        switches: Switches::default(),
        provisioning: ProvisioningSettings {
            auto_create: true,
            ..ProvisioningSettings::default()
        },
        guard: GuardSettings::default(),
        mapping: ProductMapping {
            items: vec![
                mapped(item("workstations"), &p.ws, false),
                mapped(item("servers"), &p.srv, false),
                mapped(item("mailboxes"), &p.o365, true),
                mapped(storage(INFRA), &p.stor, false),
                mapped(storage(INFRA_2), &p.stor2, true),
            ],
            default_storage: Some(INFRA.into()),
            public_cloud: vec![],
        },
        two_way: TwoWaySettings {
            allocation_code: Some(p.code.clone()),
            ..TwoWaySettings::default()
        },
        autotask: Default::default(),
        time_zone: "UTC".into(),
        full_sync_hours: 24,
        line_refresh_hours: 24,
        usage_period: Default::default(),
        version: 0,
    }
}

/// The memory ports around the demo partner.
pub struct World {
    pub psa_kind: PsaKind,
    pub clock: Arc<TestClock>,
    pub store: MemoryStore,
    pub psa: Arc<MemoryPsa>,
    pub platform: Arc<MemoryPlatform>,
    pub events: MemoryEvents,
    pub connector: MemoryConnector,
    pub products: Products,
}

impl World {
    /// The demo catalogues on both sides; no partner stored yet.
    pub fn bare(psa_kind: PsaKind) -> World {
        let clock = Arc::new(TestClock::new(start_time()));
        let psa = Arc::new(MemoryPsa::new(clock.clone()));
        let platform = Arc::new(MemoryPlatform::new(clock.clone(), PARTNER_TENANT));
        let products = Products {
            ws: psa.add_product("p-ws", "ACR-WS"),
            srv: psa.add_product("p-srv", "ACR-SRV"),
            o365: psa.add_product("p-o365", "ACR-O365"),
            stor: psa.add_product("p-stor", "ACR-STOR"),
            stor2: psa.add_product("p-stor2", "ACR-STOR2"),
            code: psa.add_allocation_code("ac-1", "Cloud services"),
        };
        for name in ["workstations", "servers", "vms", "mailboxes"] {
            platform.offer(item(name));
        }
        for (infra, name) in [(INFRA, "Cloud storage"), (INFRA_2, "Second storage")] {
            platform.offer(storage(infra));
            platform.add_location(infra, name, Some("acronis"));
        }
        World {
            psa_kind,
            store: MemoryStore::new(clock.clone()),
            events: MemoryEvents::default(),
            connector: MemoryConnector::new(psa.clone(), platform.clone()),
            clock,
            psa,
            platform,
            products,
        }
    }

    /// [`World::bare`] with the demo partner stored.
    pub async fn new(psa_kind: PsaKind) -> World {
        let w = World::bare(psa_kind);
        w.store
            .put_partner(&partner(psa_kind, &w.products))
            .await
            .expect("the demo partner is stored");
        w
    }

    /// The stored partner.
    pub async fn partner(&self) -> Partner {
        self.store
            .partner(PARTNER)
            .await
            .expect("store readable")
            .expect("the partner is stored")
    }

    /// Changes the stored partner's settings.
    pub async fn update_partner(&self, f: impl FnOnce(&mut Partner)) {
        let mut p = self.partner().await;
        f(&mut p);
        self.store.put_partner(&p).await.expect("partner written");
    }

    pub fn now(&self) -> DateTime<Utc> {
        crate::ports::Clock::now(self.clock.as_ref())
    }

    pub fn advance(&self, by: Duration) {
        self.clock.set(self.now() + by);
    }

    /// A customer company with one agreement (Autotask: a prepaid contract); no lines yet.
    pub fn customer(&self, name: &str) -> (String, String) {
        let company = self.psa.add_company(name);
        let payg = (self.psa_kind == PsaKind::Autotask).then_some(false);
        let agreement = self.psa.add_agreement(&company, payg);
        (company, agreement)
    }

    /// The one live tenant stamped with the company's id, if any (more than one: a bug).
    pub fn tenant_of(&self, company_id: &str) -> Option<TenantWithItems> {
        let mut all = self.platform.tenants_of(company_id);
        assert!(
            all.len() <= 1,
            "company {company_id} has {} tenants",
            all.len()
        );
        all.pop()
    }

    /// `services::sync::run` for the stored partner, now.
    pub async fn run(&self, scope: Scope, opts: SyncOptions) -> Result<SyncReport, SyncError> {
        let p = self.partner().await;
        let clients = self.connector.clients(&p);
        sync::run(&p, &clients, &self.store, scope, opts, self.now()).await
    }

    /// [`World::run`] with the default options; a run that cannot happen panics.
    pub async fn sync(&self, scope: Scope) -> SyncReport {
        self.run(scope, SyncOptions::default())
            .await
            .expect("the run happens")
    }

    /// `services::sync::sync_partner` for the demo partner, now.
    pub async fn sync_partner(
        &self,
        scope: Scope,
        dry_run: bool,
        force: bool,
    ) -> Result<SyncReport, PartnerSyncError> {
        let req = SyncRequest {
            partner: PARTNER.into(),
            scope,
            dry_run,
            force,
            concurrency: 4,
            full_sync_hours: None,
        };
        sync::sync_partner(&self.store, &self.events, &self.connector, &req, self.now()).await
    }
}
