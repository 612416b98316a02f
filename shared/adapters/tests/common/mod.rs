//! What the adapters' integration tests share.

use domain::model::{
    GuardSettings, Partner, ProductMapping, ProvisioningSettings, PsaKind, Switches,
};

/// A partner `acme` on `psa` whose platform is the discard port on 127.0.0.1 (nothing answers).
pub fn partner(psa: PsaKind) -> Partner {
    Partner {
        id: "acme".into(),
        name: "Acme".into(),
        psa,
        enabled: true,
        platform_url: "http://127.0.0.1:9".into(),
        partner_tenant_id: "pt".into(),
        switches: Switches::default(),
        provisioning: ProvisioningSettings::default(),
        guard: GuardSettings::default(),
        mapping: ProductMapping::default(),
        two_way: Default::default(),
        autotask: Default::default(),
        time_zone: "UTC".into(),
        full_sync_hours: 24,
        line_refresh_hours: 24,
        usage_period: Default::default(),
        version: 0,
    }
}
