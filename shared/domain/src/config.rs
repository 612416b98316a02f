//! The partner file (`partner.yaml`) an operator applies: settings, product mapping and company
//! mapping in the words an MSP uses (product identifiers, storage location names, company
//! identifiers). [`resolve`] turns it into a [`Partner`] once the PSA catalogue and the
//! platform's storage locations are known, naming every problem it finds.

use crate::model::{
    GuardSettings, ItemKey, ItemMapping, Partner, ProductMapping, ProductRef, ProvisioningSettings,
    PsaKind, Switches,
};
use crate::rules::companies::MappingRequest;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerSpec {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub psa: PsaKind,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub platform: PlatformSpec,
    #[serde(default = "utc")]
    pub time_zone: String,
    #[serde(default)]
    pub switches: Switches,
    #[serde(default)]
    pub provisioning: ProvisioningSettings,
    #[serde(default)]
    pub guard: GuardSettings,
    #[serde(default)]
    pub sync: SyncSpec,
    #[serde(default)]
    pub products: Vec<ProductSpec>,
    #[serde(default)]
    pub companies: Vec<CompanySpec>,
}

fn yes() -> bool {
    true
}
fn utc() -> String {
    "UTC".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformSpec {
    /// Data center base URL.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSpec {
    pub full_every_hours: u32,
}

impl Default for SyncSpec {
    fn default() -> Self {
        SyncSpec {
            full_every_hours: 24,
        }
    }
}

/// One offering item's mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductSpec {
    /// Offering item name on the platform (`workstations`, `storage`, …).
    pub item: String,
    /// For storage: the storage location (infra) name or id.
    #[serde(default)]
    pub location: Option<String>,
    /// PSA product identifier (ConnectWise catalog identifier, Autotask service name) or id.
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub free: bool,
    /// This storage location is the default storage.
    #[serde(default)]
    pub default: bool,
}

/// One company's mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanySpec {
    /// PSA company identifier or id.
    pub company: String,
    /// A tenant id, `new` (create one at the next sync) or `none` (remove the mapping).
    pub tenant: String,
}

impl CompanySpec {
    pub fn request(&self) -> MappingRequest {
        match self.tenant.trim() {
            "new" => MappingRequest::New,
            "none" | "" => MappingRequest::Remove,
            t => MappingRequest::Existing(t.to_owned()),
        }
    }
}

/// A storage location the platform offers the partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageLocation {
    pub infra_id: String,
    pub name: String,
}

/// Parses a partner file, naming the line and field of a problem.
pub fn parse(yaml: &str) -> Result<PartnerSpec, String> {
    serde_yaml::from_str(yaml).map_err(|e| format!("partner file is not valid: {e}"))
}

/// Builds the partner from its file, the PSA catalogue and the platform's storage locations.
/// Every problem is listed (R-SET-1, R-MAP-1, R-MAP-2, R-MAP-5); nothing is half-resolved.
pub fn resolve(
    spec: &PartnerSpec,
    partner_tenant_id: &str,
    catalog: &[ProductRef],
    locations: &[StorageLocation],
    version: u64,
) -> Result<Partner, Vec<String>> {
    let mut errors = Vec::new();
    let mut items = Vec::new();
    let mut default_storage = None;
    for p in &spec.products {
        let infra_id = match &p.location {
            None => None,
            Some(loc) => match locations
                .iter()
                .find(|l| l.infra_id == *loc || l.name.eq_ignore_ascii_case(loc))
            {
                Some(l) => Some(l.infra_id.clone()),
                None => {
                    errors.push(format!(
                        "item {}: storage location {loc:?} is not offered to this partner (known: {})",
                        p.item,
                        locations
                            .iter()
                            .map(|l| l.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                    continue;
                }
            },
        };
        if p.default {
            if infra_id.is_none() {
                errors.push(format!(
                    "item {}: only a storage location can be the default storage",
                    p.item
                ));
            } else if default_storage.is_some() {
                errors.push("more than one storage location is marked default".to_owned());
            }
            default_storage = infra_id.clone().or(default_storage);
        }
        let product = match &p.product {
            None => None,
            Some(name) => match catalog
                .iter()
                .find(|c| c.identifier.eq_ignore_ascii_case(name) || c.id == *name)
            {
                Some(c) => Some(c.clone()),
                None => {
                    errors.push(format!(
                        "item {}: product {name:?} does not exist in the partner's {} (R-MAP-5)",
                        p.item, spec.psa
                    ));
                    continue;
                }
            },
        };
        items.push(ItemMapping {
            item: ItemKey {
                name: p.item.clone(),
                infra_id,
            },
            product,
            free: p.free,
        });
    }
    let partner = Partner {
        id: spec.id.clone(),
        name: spec.name.clone().unwrap_or_else(|| spec.id.clone()),
        psa: spec.psa,
        enabled: spec.enabled,
        platform_url: spec.platform.url.trim_end_matches('/').to_owned(),
        partner_tenant_id: partner_tenant_id.to_owned(),
        switches: spec.switches.clone(),
        provisioning: spec.provisioning.clone(),
        guard: spec.guard.clone(),
        mapping: ProductMapping {
            items,
            default_storage,
        },
        time_zone: spec.time_zone.clone(),
        full_sync_hours: spec.sync.full_every_hours,
        version,
    };
    if let Err(mut e) = crate::rules::settings::check_partner(&partner) {
        errors.append(&mut e);
    }
    if errors.is_empty() {
        Ok(partner)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
id: acme
name: Acme MSP
psa: connectwise
platform: { url: "https://eu2-cloud.acronis.com" }
time_zone: Europe/Berlin
provisioning: { auto_create: true, mode: trial }
products:
  - { item: workstations, product: ACR-WS }
  - { item: mailboxes, free: true }
  - { item: storage, location: Cloud storage, product: ACR-STOR, default: true }
companies:
  - { company: "ACME-CUST", tenant: new }
"#;

    fn catalog() -> Vec<ProductRef> {
        vec![
            ProductRef {
                id: "11".into(),
                identifier: "ACR-WS".into(),
            },
            ProductRef {
                id: "12".into(),
                identifier: "ACR-STOR".into(),
            },
        ]
    }

    fn locations() -> Vec<StorageLocation> {
        vec![StorageLocation {
            infra_id: "infra-1".into(),
            name: "Cloud storage".into(),
        }]
    }

    #[test]
    fn r_set_1_partner_file_resolves_to_settings_and_mapping() {
        let spec = parse(FILE).unwrap();
        let p = resolve(&spec, "ptid", &catalog(), &locations(), 0).unwrap();
        assert_eq!(p.mapping.default_storage.as_deref(), Some("infra-1"));
        assert_eq!(p.mapping.items[0].product.as_ref().unwrap().id, "11");
        assert!(p.mapping.items[1].free);
        assert!(p.provisioning.auto_create);
        assert_eq!(spec.companies[0].request(), MappingRequest::New);
    }

    #[test]
    fn r_map_5_unknown_product_and_location_are_named_and_nothing_resolves() {
        let bad = FILE
            .replace("ACR-WS }", "ACR-NOPE }")
            .replace("Cloud storage", "Mars");
        let spec = parse(&bad).unwrap();
        let errs = resolve(&spec, "ptid", &catalog(), &locations(), 0).unwrap_err();
        let all = errs.join("\n");
        assert!(all.contains("product \"ACR-NOPE\" does not exist"), "{all}");
        assert!(all.contains("storage location \"Mars\""), "{all}");
    }

    #[test]
    fn r_set_1_malformed_partner_file_names_the_field() {
        let err = parse(
            "id: acme\npsa: connectwise\nplatform: {url: x}\nswitches: {provisionning: true}\n",
        )
        .unwrap_err();
        assert!(err.contains("provisionning"), "{err}");
        let err = parse("id: acme\npsa: halo\nplatform: {url: x}\n").unwrap_err();
        assert!(err.contains("halo"), "{err}");
        let spec = parse(
            "id: Acme!\npsa: connectwise\nplatform: {url: 'http://x'}\ntime_zone: Mars/Base\n",
        )
        .unwrap();
        let errs = resolve(&spec, "t", &[], &[], 0).unwrap_err().join("\n");
        assert!(errs.contains("partner id"), "{errs}");
        assert!(errs.contains("https"), "{errs}");
        assert!(errs.contains("Mars/Base"), "{errs}");
    }
}
