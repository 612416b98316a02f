//! The partner file (`partner.yaml`) an operator applies: settings, product mapping and company
//! mapping in the words an MSP uses (product identifiers, storage location names, company
//! identifiers). [`resolve`] turns it into a [`Partner`] once the PSA catalogue and the
//! platform's storage locations are known, naming every problem it finds.

use crate::model::{
    AutotaskSettings, CloudProduct, CloudVendor, GuardSettings, ItemKey, ItemMapping, Partner,
    PeriodType, ProductMapping, ProductRef, ProvisioningSettings, PsaKind, StorageUsageProducts,
    Switches, TwoWaySettings,
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
    /// One product per public cloud storage vendor (R-MAP-4).
    #[serde(default)]
    pub public_cloud: Vec<CloudProductSpec>,
    /// Two-way sync defaults (R-TWO-1); required when `switches.two_way_sync` is on.
    #[serde(default)]
    pub two_way: Option<TwoWaySpec>,
    /// Autotask specifics (the PAYG contract field, R-PROV-3).
    #[serde(default)]
    pub autotask: AutotaskSettings,
    #[serde(default)]
    pub companies: Vec<CompanySpec>,
}

/// A public cloud vendor's product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudProductSpec {
    pub vendor: CloudVendor,
    pub product: String,
}

/// Two-way sync defaults: the allocation code (name or id) and the period type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwoWaySpec {
    pub allocation_code: String,
    #[serde(default)]
    pub period_type: PeriodType,
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
    /// Storage only: the class 1 (free) usage product (R-MAP-3).
    #[serde(default)]
    pub class1: Option<String>,
    /// Storage only: the class 2 (billed) usage product (R-MAP-3).
    #[serde(default)]
    pub class2: Option<String>,
    /// Storage only: the geo-redundant usage product (R-MAP-3).
    #[serde(default)]
    pub geo: Option<String>,
    /// Autotask with two-way sync: create the service `product` names when the PSA lacks it,
    /// with the two-way defaults (allocation code, period type).
    #[serde(default)]
    pub create: bool,
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
    /// What the entry asks for. A tenant id is given in lower case, as the platform writes it.
    pub fn request(&self) -> MappingRequest {
        match self.tenant.trim() {
            "new" => MappingRequest::New,
            "none" | "" => MappingRequest::Remove,
            t => MappingRequest::Existing(t.to_ascii_lowercase()),
        }
    }
}

/// A platform tenant id: a UUID in its hyphenated form (`8-4-4-4-12` hex digits, any case).
fn is_tenant_id(t: &str) -> bool {
    t.len() == 36 && uuid::Uuid::try_parse(t).is_ok()
}

/// R-CO-5: each company is listed once in a partner file (compared as the PSA lookup compares
/// them: trimmed, case-insensitively), even when both entries name the same tenant. R-CO-1:
/// each names a tenant id (a UUID), `new` or `none`.
fn check_companies(companies: &[CompanySpec], errors: &mut Vec<String>) {
    let mut seen: Vec<&str> = Vec::new();
    for c in companies {
        let name = c.company.trim();
        if name.is_empty() {
            errors.push("companies: an entry has an empty company".to_owned());
        } else if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            errors.push(format!(
                "company {name:?} is listed more than once in companies (names are compared \
                 case-insensitively); a company maps to at most one tenant, list it once (R-CO-5)"
            ));
        } else {
            seen.push(name);
        }
        let t = c.tenant.trim();
        if !matches!(t, "new" | "none" | "") && !is_tenant_id(t) {
            errors.push(format!(
                "company {name:?}: tenant {t:?} is not a tenant id; give the tenant's UUID \
                 (e.g. 3f2b6c1e-8d4a-4b9e-9a57-0c6d2e4f8a10), new (create one) or none (remove \
                 the mapping) (R-CO-1)"
            ));
        }
    }
}

/// A storage location the platform offers the partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageLocation {
    pub infra_id: String,
    pub name: String,
    /// The platform's `backend_type` (`acronis`, `azure`, …).
    #[serde(default)]
    pub backend: Option<String>,
}

impl StorageLocation {
    /// The public cloud vendor of this storage; `None` for the platform's own storage.
    pub fn vendor(&self) -> Option<CloudVendor> {
        self.backend.as_deref().and_then(CloudVendor::from_backend)
    }
}

/// What the partner file is resolved against: the PSA's products and allocation codes and the
/// platform's storage locations and offering items.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub products: Vec<ProductRef>,
    /// Autotask billing codes (allocation codes); empty for ConnectWise.
    pub allocation_codes: Vec<ProductRef>,
    pub locations: Vec<StorageLocation>,
    /// The names of the offering items the platform offers the partner (`workstations`,
    /// `servers`, `mailboxes`, …), as the platform spells them. Every `products[].item` without
    /// a `location` must be one of them; storage items are checked against `locations`. Empty:
    /// not known, and item names are not checked.
    pub offering_items: Vec<String>,
}

impl Catalog {
    fn product(&self, name: &str) -> Option<&ProductRef> {
        let name = name.trim();
        self.products
            .iter()
            .find(|c| c.identifier.eq_ignore_ascii_case(name) || c.id == name)
    }
}

/// The largest partner file accepted, checked before it is parsed.
pub const MAX_FILE_BYTES: usize = 256 * 1024;

/// The deepest `[ ]` / `{ }` nesting accepted, checked before the file is parsed (the schema
/// itself needs 3; the parser's time grows with the square of the depth).
pub const MAX_FLOW_DEPTH: usize = 32;

/// Parses a partner file, naming the line and field of a problem.
///
/// A file over [`MAX_FILE_BYTES`], or nested deeper than [`MAX_FLOW_DEPTH`], is refused before
/// it is parsed.
///
/// YAML as the deployment has always read it (`serde_norway`, the maintained fork of the
/// `serde_yaml` 0.9 this file was first read with, same parser and same schema): every key must
/// be known (`deny_unknown_fields`), so a misspelt key or a merge key (`<<`) is refused; a key
/// given twice and more than one document are refused; anchors and aliases are expanded (the
/// parser bounds how often); `yes`/`on` are strings, not booleans (YAML 1.2).
pub fn parse(yaml: &str) -> Result<PartnerSpec, String> {
    if yaml.len() > MAX_FILE_BYTES {
        return Err(format!(
            "partner file is not valid: it has {} bytes, more than the {} KiB a partner file may \
             have",
            yaml.len(),
            MAX_FILE_BYTES / 1024
        ));
    }
    if let Some(line) = flow_too_deep(yaml, MAX_FLOW_DEPTH) {
        return Err(format!(
            "partner file is not valid: nested more than {MAX_FLOW_DEPTH} levels deep in [ ] or \
             {{ }} at line {line}"
        ));
    }
    serde_norway::from_str(yaml).map_err(|e| format!("partner file is not valid: {e}"))
}

/// The line on which the `[ ]` / `{ }` nesting of a YAML text first goes deeper than `limit`.
/// Brackets inside quoted scalars and comments do not count; one in a plain or block scalar
/// does, which can only ever refuse a file whose text holds more than `limit` unclosed brackets.
fn flow_too_deep(yaml: &str, limit: usize) -> Option<usize> {
    #[derive(PartialEq)]
    enum In {
        Plain,
        Single,
        Double,
        Comment,
    }
    let mut state = In::Plain;
    let (mut depth, mut line, mut prev) = (0usize, 1usize, '\n');
    let mut chars = yaml.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' {
            line += 1;
        }
        match state {
            In::Comment if c == '\n' => state = In::Plain,
            In::Comment => {}
            In::Double if c == '\\' => {
                if chars.next() == Some('\n') {
                    line += 1;
                }
                prev = ' ';
                continue;
            }
            In::Double if c == '"' => state = In::Plain,
            // `''` is a quote inside a single-quoted scalar.
            In::Single if c == '\'' && chars.peek() == Some(&'\'') => {
                chars.next();
            }
            In::Single if c == '\'' => state = In::Plain,
            In::Double | In::Single => {}
            In::Plain => {
                let token_start = prev.is_whitespace() || ":,[{-?".contains(prev);
                match c {
                    '#' if prev.is_whitespace() => state = In::Comment,
                    '"' if token_start => state = In::Double,
                    '\'' if token_start => state = In::Single,
                    '[' | '{' => {
                        depth += 1;
                        if depth > limit {
                            return Some(line);
                        }
                    }
                    ']' | '}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
        }
        prev = c;
    }
    None
}

/// The services the partner file asks to create (`create: true`) that the catalogue lacks.
pub fn products_to_create(spec: &PartnerSpec, catalog: &Catalog) -> Vec<String> {
    let mut out: Vec<String> = spec
        .products
        .iter()
        .filter(|p| p.create)
        .filter_map(|p| p.product.as_deref().map(str::trim))
        .filter(|name| catalog.product(name).is_none())
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The catalogue as it will be once `names` are created (placeholder ids), to check a partner
/// file completely before anything is created.
pub fn with_planned_products(catalog: &Catalog, names: &[String]) -> Catalog {
    let mut c = catalog.clone();
    c.products.extend(names.iter().map(|n| ProductRef {
        id: format!("(new) {n}"),
        identifier: n.clone(),
    }));
    c
}

/// Builds the partner from its file, the PSA catalogue and the platform's storage locations and
/// offering items. Every problem is listed, all together; nothing is half-resolved:
///
/// - R-SET-1: the settings are complete and consistent (see `rules::settings::check_partner`);
///   Autotask settings only on an Autotask partner; the switches of functions that are not
///   built yet (`usage`, `tickets`) stay off.
/// - R-MAP-1: each item is an offering item the platform offers the partner (when the catalogue
///   knows them), mapped at most once.
/// - R-MAP-2: a storage location is one offered to the partner; at most one is the default, and
///   one must be when any is mapped.
/// - R-MAP-3: class 1, class 2 and geo-redundant usage products belong to a storage location.
/// - R-MAP-4: a public cloud storage is mapped once per vendor under `public_cloud`, never as a
///   storage location.
/// - R-MAP-5: every product named exists in the PSA.
/// - R-TWO-1: two-way sync is for Autotask partners and needs an allocation code that exists;
///   `create` (a service the PSA lacks) needs both.
/// - R-CO-1, R-CO-5: each company is listed once, with a tenant id, `new` or `none`.
pub fn resolve(
    spec: &PartnerSpec,
    partner_tenant_id: &str,
    catalog: &Catalog,
    version: u64,
) -> Result<Partner, Vec<String>> {
    let mut errors = Vec::new();
    let mut items = Vec::new();
    let mut default_storage = None;
    let product = |what: &str, name: &Option<String>, errors: &mut Vec<String>| match name {
        None => Ok(None),
        Some(name) => match catalog.product(name) {
            Some(c) => Ok(Some(c.clone())),
            None => {
                errors.push(format!(
                    "{what}: product {name:?} does not exist in the partner's {} (R-MAP-5)",
                    spec.psa
                ));
                Err(())
            }
        },
    };
    for p in &spec.products {
        let what = format!("item {}", p.item);
        let offered = &catalog.offering_items;
        if p.location.is_none() && !offered.is_empty() && !offered.contains(&p.item) {
            let hint = match offered.iter().find(|o| o.eq_ignore_ascii_case(&p.item)) {
                Some(o) => format!(" (did you mean {o}?)"),
                None if p.item.eq_ignore_ascii_case("storage") => {
                    " (a storage item needs its location)".to_owned()
                }
                None => String::new(),
            };
            errors.push(format!(
                "{what}: the platform offers no offering item {:?} to this partner{hint} \
                 (known: {}) (R-MAP-1)",
                p.item,
                offered.join(", ")
            ));
        }
        let infra_id = match &p.location {
            None => None,
            Some(loc) => match catalog
                .locations
                .iter()
                .find(|l| l.infra_id == *loc || l.name.eq_ignore_ascii_case(loc))
            {
                Some(l) => {
                    if let Some(v) = l.vendor() {
                        errors.push(format!(
                            "{what}: storage location {loc:?} is a public cloud storage ({v}); \
                             map its vendor under public_cloud instead (R-MAP-4)"
                        ));
                        continue;
                    }
                    Some(l.infra_id.clone())
                }
                None => {
                    errors.push(format!(
                        "{what}: storage location {loc:?} is not offered to this partner (known: {})",
                        catalog
                            .locations
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
                    "{what}: only a storage location can be the default storage"
                ));
            } else if default_storage.is_some() {
                errors.push("more than one storage location is marked default".to_owned());
            }
            default_storage = infra_id.clone().or(default_storage);
        }
        if p.create && !(spec.psa == PsaKind::Autotask && spec.two_way.is_some()) {
            errors.push(format!(
                "{what}: create needs an Autotask partner with two_way (allocation_code, \
                 period_type): new services get those defaults (R-TWO-1)"
            ));
        }
        let has_usage = p.class1.is_some() || p.class2.is_some() || p.geo.is_some();
        if has_usage && infra_id.is_none() {
            errors.push(format!(
                "{what}: class1, class2 and geo products belong to a storage location (R-MAP-3)"
            ));
            continue;
        }
        let resolved = (
            product(&what, &p.product, &mut errors),
            product(&format!("{what} class 1 usage"), &p.class1, &mut errors),
            product(&format!("{what} class 2 usage"), &p.class2, &mut errors),
            product(&format!("{what} geo-redundant usage"), &p.geo, &mut errors),
        );
        let (Ok(product), Ok(class1), Ok(class2), Ok(geo)) = resolved else {
            continue;
        };
        items.push(ItemMapping {
            item: ItemKey {
                name: p.item.clone(),
                infra_id,
            },
            product,
            free: p.free,
            usage: StorageUsageProducts {
                class1,
                class2,
                geo,
            },
        });
    }
    let mut public_cloud: Vec<CloudProduct> = Vec::new();
    for c in &spec.public_cloud {
        let what = format!("public cloud {}", c.vendor);
        if public_cloud.iter().any(|x| x.vendor == c.vendor) {
            errors.push(format!(
                "{what} is mapped more than once; a vendor maps to one product (R-MAP-4)"
            ));
            continue;
        }
        if let Ok(Some(product)) = product(&what, &Some(c.product.clone()), &mut errors) {
            public_cloud.push(CloudProduct {
                vendor: c.vendor,
                product,
            });
        }
    }
    let two_way = match (&spec.two_way, spec.switches.two_way_sync) {
        (None, true) => {
            errors.push(
                "switches.two_way_sync is on but two_way (allocation_code, period_type) is \
                 missing (R-TWO-1)"
                    .to_owned(),
            );
            TwoWaySettings::default()
        }
        (None, false) => TwoWaySettings::default(),
        (Some(t), _) => {
            let code = t.allocation_code.trim();
            let found = catalog
                .allocation_codes
                .iter()
                .find(|c| c.identifier.eq_ignore_ascii_case(code) || c.id == code);
            if found.is_none() {
                errors.push(format!(
                    "two_way.allocation_code {code:?} does not exist in the partner's {} \
                     (R-TWO-1)",
                    spec.psa
                ));
            }
            TwoWaySettings {
                allocation_code: found.cloned(),
                period_type: t.period_type,
            }
        }
    };
    if spec.psa != PsaKind::Autotask && spec.autotask != AutotaskSettings::default() {
        errors.push(format!(
            "autotask: settings for Autotask, but this partner's PSA is {}",
            spec.psa
        ));
    }
    if spec
        .autotask
        .payg_field
        .as_deref()
        .is_some_and(|f| f.trim().is_empty())
    {
        errors.push("autotask.payg_field is empty".to_owned());
    }
    check_companies(&spec.companies, &mut errors);
    for (on, switch, function) in [
        (spec.switches.usage, "usage", "publish-usage"),
        (spec.switches.tickets, "tickets", "alert-to-ticket"),
    ] {
        if on {
            errors.push(format!(
                "switches.{switch}: {function} is not built yet; leave the switch off (see the README)"
            ));
        }
    }
    if spec.switches.two_way_sync && spec.psa != PsaKind::Autotask {
        errors.push(format!(
            "switches.two_way_sync: two-way sync is an Autotask feature; {} partners sync one \
             way (R-TWO)",
            spec.psa
        ));
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
            public_cloud,
        },
        two_way,
        autotask: spec.autotask.clone(),
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

    fn product(id: &str, identifier: &str) -> ProductRef {
        ProductRef {
            id: id.into(),
            identifier: identifier.into(),
        }
    }

    fn catalog() -> Catalog {
        Catalog {
            products: vec![
                product("11", "ACR-WS"),
                product("12", "ACR-STOR"),
                product("13", "ACR-STOR-FREE"),
                product("14", "ACR-STOR-BILLED"),
                product("15", "ACR-AZURE"),
            ],
            allocation_codes: vec![product("900", "Cloud services")],
            locations: vec![
                StorageLocation {
                    infra_id: "infra-1".into(),
                    name: "Cloud storage".into(),
                    backend: Some("acronis".into()),
                },
                StorageLocation {
                    infra_id: "infra-az".into(),
                    name: "Azure West".into(),
                    backend: Some("azure".into()),
                },
            ],
            // The platform fake's catalogue (tests/sandbox COUNT_ITEMS) plus storage.
            offering_items: [
                "workstations",
                "servers",
                "vms",
                "mobiles",
                "web_hosting_servers",
                "mailboxes",
                "gsuite_seats",
                "storage",
            ]
            .map(String::from)
            .to_vec(),
        }
    }

    #[test]
    fn r_set_1_partner_file_resolves_to_settings_and_mapping() {
        let spec = parse(FILE).unwrap();
        let p = resolve(&spec, "ptid", &catalog(), 0).unwrap();
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
        let errs = resolve(&spec, "ptid", &catalog(), 0).unwrap_err();
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
        let errs = resolve(&spec, "t", &Catalog::default(), 0)
            .unwrap_err()
            .join("\n");
        assert!(errs.contains("partner id"), "{errs}");
        assert!(errs.contains("https"), "{errs}");
        assert!(errs.contains("Mars/Base"), "{errs}");
    }

    #[test]
    fn r_map_3_storage_location_takes_class1_class2_and_geo_products() {
        let file = FILE.replace(
            "product: ACR-STOR, default: true }",
            "product: ACR-STOR, class1: ACR-STOR-FREE, class2: ACR-STOR-BILLED, default: true }",
        );
        let p = resolve(&parse(&file).unwrap(), "ptid", &catalog(), 0).unwrap();
        let st = &p.mapping.items[2];
        assert_eq!(st.usage.class1.as_ref().unwrap().id, "13");
        assert_eq!(st.usage.class2.as_ref().unwrap().id, "14");
        assert!(st.usage.geo.is_none());
        assert!(p.mapping.maps_product("14"));
        // Usage products belong to a storage location.
        let bad = FILE.replace(
            "{ item: workstations, product: ACR-WS }",
            "{ item: workstations, product: ACR-WS, class2: ACR-STOR-BILLED }",
        );
        let errs = resolve(&parse(&bad).unwrap(), "ptid", &catalog(), 0)
            .unwrap_err()
            .join("\n");
        assert!(
            errs.contains("item workstations: class1, class2 and geo"),
            "{errs}"
        );
        let bad = file.replace("class1: ACR-STOR-FREE", "class1: ACR-NOPE");
        let errs = resolve(&parse(&bad).unwrap(), "ptid", &catalog(), 0)
            .unwrap_err()
            .join("\n");
        assert!(
            errs.contains("item storage class 1 usage: product \"ACR-NOPE\" does not exist"),
            "{errs}"
        );
    }

    #[test]
    fn r_map_4_public_cloud_maps_one_product_per_vendor_not_per_location() {
        let file = format!("{FILE}public_cloud:\n  - {{ vendor: azure, product: ACR-AZURE }}\n");
        let p = resolve(&parse(&file).unwrap(), "ptid", &catalog(), 0).unwrap();
        assert_eq!(p.mapping.public_cloud[0].vendor, CloudVendor::Azure);
        assert_eq!(p.mapping.public_cloud[0].product.id, "15");
        let twice = format!("{file}  - {{ vendor: azure, product: ACR-WS }}\n");
        let errs = resolve(&parse(&twice).unwrap(), "ptid", &catalog(), 0)
            .unwrap_err()
            .join("\n");
        assert!(errs.contains("mapped more than once"), "{errs}");
        let as_location = FILE.replace(
            "- { item: mailboxes, free: true }",
            "- { item: storage, location: Azure West, product: ACR-AZURE }",
        );
        let errs = resolve(&parse(&as_location).unwrap(), "ptid", &catalog(), 0)
            .unwrap_err()
            .join("\n");
        assert!(
            errs.contains("is a public cloud storage (Microsoft Azure)"),
            "{errs}"
        );
        assert_eq!(
            CloudVendor::from_backend("s3-compatible"),
            Some(CloudVendor::S3Compatible)
        );
        assert_eq!(
            CloudVendor::from_backend("amazon_s3"),
            Some(CloudVendor::AmazonS3)
        );
        assert_eq!(CloudVendor::from_backend("acronis"), None);
    }

    #[test]
    fn r_two_1_two_way_needs_an_existing_allocation_code_and_autotask() {
        let at = FILE.replace("psa: connectwise", "psa: autotask");
        let on = format!("{at}switches: {{ two_way_sync: true }}\n");
        let errs = resolve(&parse(&on).unwrap(), "ptid", &catalog(), 0)
            .unwrap_err()
            .join("\n");
        assert!(
            errs.contains("two_way (allocation_code, period_type) is missing"),
            "{errs}"
        );
        let good =
            format!("{on}two_way: {{ allocation_code: cloud services, period_type: quarterly }}\n");
        let p = resolve(&parse(&good).unwrap(), "ptid", &catalog(), 0).unwrap();
        assert_eq!(p.two_way.allocation_code.as_ref().unwrap().id, "900");
        assert_eq!(p.two_way.period_type, PeriodType::Quarterly);
        let unknown = good.replace("cloud services", "Nope");
        let errs = resolve(&parse(&unknown).unwrap(), "ptid", &catalog(), 0)
            .unwrap_err()
            .join("\n");
        assert!(
            errs.contains("allocation_code \"Nope\" does not exist"),
            "{errs}"
        );
        let cw = good.replace("psa: autotask", "psa: connectwise");
        let errs = resolve(&parse(&cw).unwrap(), "ptid", &catalog(), 0)
            .unwrap_err()
            .join("\n");
        assert!(
            errs.contains("two-way sync is an Autotask feature"),
            "{errs}"
        );
        // Autotask settings on a ConnectWise partner, an empty PAYG field name, `create` without
        // the two-way defaults: each named.
        let cw_field = format!("{FILE}autotask: {{ payg_field: Acronis PAYG }}\n");
        let errs = resolve(&parse(&cw_field).unwrap(), "ptid", &catalog(), 0)
            .unwrap_err()
            .join("\n");
        assert!(errs.contains("settings for Autotask"), "{errs}");
        let empty = format!("{at}autotask: {{ payg_field: \"  \" }}\n");
        let errs = resolve(&parse(&empty).unwrap(), "ptid", &catalog(), 0)
            .unwrap_err()
            .join("\n");
        assert!(errs.contains("payg_field is empty"), "{errs}");
        let create = at.replace("product: ACR-WS }", "product: ACR-NEW, create: true }");
        let errs = resolve(&parse(&create).unwrap(), "ptid", &catalog(), 0)
            .unwrap_err()
            .join("\n");
        assert!(
            errs.contains("create needs an Autotask partner with two_way"),
            "{errs}"
        );
    }

    // How partner files are read, pinned when `serde_yaml` was replaced by `serde_norway`: the
    // same files parse to the same settings, and the same files are refused.
    const BASE: &str = "id: acme\npsa: connectwise\nplatform: { url: \"https://x\" }\n";

    #[test]
    fn yaml_anchors_and_aliases_are_expanded_as_before() {
        let spec = parse(&format!("{BASE}name: &n Acme\ntime_zone: *n\n")).unwrap();
        assert_eq!(spec.name.as_deref(), Some("Acme"));
        assert_eq!(spec.time_zone, "Acme");
        let spec = parse(&format!(
            "{BASE}products:\n  - &w {{ item: workstations, product: A }}\n  - *w\n"
        ))
        .unwrap();
        assert_eq!(spec.products.len(), 2);
        assert_eq!(spec.products[0], spec.products[1]);
        let err = parse(&format!("{BASE}name: *nowhere\n")).unwrap_err();
        assert!(err.contains("unknown anchor"), "{err}");
    }

    #[test]
    fn yaml_merge_keys_are_refused_as_unknown_fields() {
        let err = parse(&format!(
            "{BASE}products:\n  - &w {{ item: workstations, product: A }}\n  - {{ <<: *w, item: servers }}\n"
        ))
        .unwrap_err();
        assert!(err.contains("products[1]: unknown field `<<`"), "{err}");
    }

    #[test]
    fn yaml_unknown_keys_are_refused_at_every_level_naming_key_and_line() {
        let err = parse(&format!("{BASE}nope: 1\n")).unwrap_err();
        assert!(
            err.contains("unknown field `nope`") && err.contains("line 4"),
            "{err}"
        );
        let err = parse(&format!(
            "{BASE}products:\n  - {{ item: servers, prodcut: A }}\n"
        ))
        .unwrap_err();
        assert!(
            err.contains("products[0]: unknown field `prodcut`"),
            "{err}"
        );
        let err = parse(&format!(
            "{BASE}companies:\n  - {{ company: A, tenant: new, x: 1 }}\n"
        ))
        .unwrap_err();
        assert!(err.contains("companies[0]: unknown field `x`"), "{err}");
        let err = parse("id: a\npsa: connectwise\nplatform: { url: x, region: eu }\n").unwrap_err();
        assert!(err.contains("platform: unknown field `region`"), "{err}");
    }

    #[test]
    fn yaml_duplicate_keys_and_several_documents_are_refused() {
        let err = parse(&format!("{BASE}name: a\nname: b\n")).unwrap_err();
        assert!(err.contains("duplicate field `name`"), "{err}");
        let err = parse(&format!("{BASE}---\n{BASE}")).unwrap_err();
        assert!(err.contains("more than one document"), "{err}");
        assert!(parse("").unwrap_err().contains("missing field `id`"));
        // One document with its start marker is one document.
        assert!(parse(&format!("---\n{BASE}")).is_ok());
    }

    #[test]
    fn yaml_nesting_deeper_than_the_schema_is_refused() {
        let deep = |open: &str, close: &str| {
            format!("{BASE}products: {}{}\n", open.repeat(30), close.repeat(30))
        };
        let err = parse(&deep("[", "]")).unwrap_err();
        assert!(err.contains("products[0]: invalid type: sequence"), "{err}");
        let err = parse(&format!(
            "{BASE}switches: {}{}\n",
            "{a: ".repeat(30),
            "}".repeat(30)
        ))
        .unwrap_err();
        assert!(err.contains("switches: unknown field `a`"), "{err}");
        let err = parse(&format!(
            "{BASE}name: {}x{}\n",
            "[".repeat(30),
            "]".repeat(30)
        ))
        .unwrap_err();
        assert!(err.contains("name: invalid type: sequence"), "{err}");
    }

    #[test]
    fn yaml_scalars_read_as_before_yes_is_a_string_and_0x10_a_number() {
        let err = parse(&format!("{BASE}enabled: yes\n")).unwrap_err();
        assert!(err.contains("expected a boolean"), "{err}");
        assert!(!parse(&format!("{BASE}enabled: False\n")).unwrap().enabled);
        let spec = parse(&format!(
            "{BASE}name: 123\nsync: {{ full_every_hours: 0x10 }}\n"
        ))
        .unwrap();
        assert_eq!(spec.name.as_deref(), Some("123"));
        assert_eq!(spec.sync.full_every_hours, 16);
        assert_eq!(parse(&format!("{BASE}name: ~\n")).unwrap().name, None);
        assert!(parse(&BASE.replace('\n', "\r\n")).is_ok());
        let err = parse(&format!("{BASE}sync:\n\tfull_every_hours: 3\n")).unwrap_err();
        assert!(err.contains("line 5"), "{err}");
    }

    #[test]
    fn partner_file_over_256_kib_is_refused_before_parsing() {
        let mut big = FILE.to_owned();
        while big.len() <= MAX_FILE_BYTES {
            big.push_str("# padding padding padding padding padding padding padding padding\n");
        }
        let err = parse(&big).unwrap_err();
        assert!(err.contains("more than the 256 KiB"), "{err}");
        // At the limit it is read (comments only add bytes).
        big.truncate(MAX_FILE_BYTES);
        let cut = big.rfind('\n').unwrap() + 1;
        big.truncate(cut);
        assert!(parse(&big).is_ok());
    }

    #[test]
    fn partner_file_nested_deeper_than_32_is_refused_before_parsing_naming_the_line() {
        let deep = format!("{BASE}products: {}\n", "[".repeat(100_000));
        let t = std::time::Instant::now();
        let err = parse(&deep).unwrap_err();
        assert!(
            err.contains("more than 32 levels deep") && err.contains("line 4"),
            "{err}"
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            t.elapsed()
        );
        let err = parse(&format!("{BASE}guard: {}\n", "{a: ".repeat(33))).unwrap_err();
        assert!(err.contains("more than 32 levels deep"), "{err}");
        // Brackets in quoted scalars and comments are text, not nesting; closed ones do not add up.
        let text = format!(
            "{BASE}name: \"{o}\"\ntime_zone: '{o}''{o}'\n# {o}\nproducts: [{{ item: \"a[\", product: 'b{{' }}{p}]\n",
            o = "[".repeat(40),
            p = ", [ ]".repeat(40),
        );
        let err = parse(&text).unwrap_err();
        assert!(err.contains("products[1]: invalid type: sequence"), "{err}");
        let spec = parse(&text.replace(&", [ ]".repeat(40), "")).unwrap();
        assert_eq!(spec.name.as_deref(), Some("[".repeat(40).as_str()));
        assert_eq!(spec.products[0].item, "a[");
    }

    fn errors_of(file: &str) -> String {
        resolve(&parse(file).unwrap(), "ptid", &catalog(), 0)
            .unwrap_err()
            .join("\n")
    }

    #[test]
    fn r_set_1_partner_id_with_capitals_or_underscore_is_refused_naming_the_allowed_characters() {
        let errs = errors_of(&FILE.replace("id: acme", "id: Demo_MSP"));
        assert!(
            errs.contains("partner id \"Demo_MSP\" must be 1-64 characters of a-z, 0-9 and -"),
            "{errs}"
        );
        let long = format!("id: {}", "a".repeat(65));
        let errs = errors_of(&FILE.replace("id: acme", &long));
        assert!(errs.contains("must be 1-64 characters"), "{errs}");
        let max = format!("id: {}", "a".repeat(64));
        assert!(resolve(
            &parse(&FILE.replace("id: acme", &max)).unwrap(),
            "p",
            &catalog(),
            0
        )
        .is_ok());
        let errs = errors_of(&FILE.replace("id: acme", "id: \"\""));
        assert!(errs.contains("partner id \"\""), "{errs}");
    }

    #[test]
    fn r_set_1_switches_of_functions_not_built_yet_are_refused() {
        for (switch, function) in [("usage", "publish-usage"), ("tickets", "alert-to-ticket")] {
            let file = format!("{FILE}switches: {{ {switch}: true }}\n");
            let errs = errors_of(&file);
            assert!(
                errs.contains(&format!("switches.{switch}: {function} is not built yet")),
                "{errs}"
            );
        }
    }

    #[test]
    fn r_set_1_partner_id_starting_or_ending_with_a_hyphen_is_refused() {
        for id in ["-acme", "acme-", "-"] {
            let errs = errors_of(&FILE.replace("id: acme", &format!("id: \"{id}\"")));
            assert!(
                errs.contains(&format!("partner id {id:?} must not start or end with -")),
                "{id}: {errs}"
            );
        }
        let ok = FILE.replace("id: acme", "id: acme-eu-2");
        assert!(resolve(&parse(&ok).unwrap(), "ptid", &catalog(), 0).is_ok());
    }

    #[test]
    fn r_co_5_a_company_listed_twice_is_refused_even_to_the_same_tenant_case_insensitively() {
        let t = "3f2b6c1e-8d4a-4b9e-9a57-0c6d2e4f8a10";
        let twice = format!(
            "{FILE}  - {{ company: acme-cust, tenant: {t} }}\n  - {{ company: OTHER, tenant: new }}\n"
        );
        let errs = errors_of(&twice);
        assert!(
            errs.contains("company \"acme-cust\" is listed more than once"),
            "{errs}"
        );
        assert_eq!(errs.matches("more than once").count(), 1, "{errs}");
        let same_tenant = format!(
            "{FILE}  - {{ company: X, tenant: {t} }}\n  - {{ company: \" x \", tenant: {t} }}\n"
        );
        let errs = errors_of(&same_tenant);
        assert!(
            errs.contains("company \"x\" is listed more than once"),
            "{errs}"
        );
        let distinct = format!("{FILE}  - {{ company: X, tenant: {t} }}\n");
        assert!(resolve(&parse(&distinct).unwrap(), "ptid", &catalog(), 0).is_ok());
    }

    #[test]
    fn r_co_1_a_tenant_that_is_not_a_uuid_new_or_none_is_refused_naming_company_and_tenant() {
        let file = |tenant: &str| format!("{FILE}  - {{ company: B, tenant: \"{tenant}\" }}\n");
        for bad in [
            "t-123",
            "NEW",
            "3f2b6c1e8d4a4b9e9a570c6d2e4f8a10",
            "{3f2b6c1e-8d4a-4b9e-9a57-0c6d2e4f8a10}",
            "3f2b6c1e-8d4a-4b9e-9a57-0c6d2e4f8a1z",
        ] {
            let errs = errors_of(&file(bad));
            assert!(
                errs.contains(&format!("company \"B\": tenant {bad:?} is not a tenant id")),
                "{bad}: {errs}"
            );
            assert!(errs.contains("new (create one) or none"), "{errs}");
        }
        for good in [
            "3f2b6c1e-8d4a-4b9e-9a57-0c6d2e4f8a10",
            "3F2B6C1E-8D4A-4B9E-9A57-0C6D2E4F8A10",
            "new",
            "none",
            "",
        ] {
            let spec = parse(&file(good)).unwrap();
            assert!(resolve(&spec, "ptid", &catalog(), 0).is_ok(), "{good}");
        }
        let upper = parse(&file("3F2B6C1E-8D4A-4B9E-9A57-0C6D2E4F8A10")).unwrap();
        assert_eq!(
            upper.companies[1].request(),
            MappingRequest::Existing("3f2b6c1e-8d4a-4b9e-9a57-0c6d2e4f8a10".into())
        );
    }

    #[test]
    fn every_partner_file_mistake_is_reported_together() {
        let bad = format!(
            "{}  - {{ company: acme-cust, tenant: nope }}\n",
            FILE.replace("id: acme", "id: acme-")
                .replace("ACR-WS }", "ACR-NOPE }")
        );
        let errs = resolve(&parse(&bad).unwrap(), "ptid", &catalog(), 0).unwrap_err();
        let all = errs.join("\n");
        for want in [
            "product \"ACR-NOPE\" does not exist",
            "must not start or end with -",
            "listed more than once",
            "tenant \"nope\" is not a tenant id",
        ] {
            assert!(all.contains(want), "{want}: {all}");
        }
    }

    #[test]
    fn r_map_1_an_unknown_offering_item_is_refused_naming_it_and_the_known_ones() {
        let bad = FILE.replace("item: workstations", "item: serverz");
        let errs = errors_of(&bad);
        assert!(
            errs.contains(
                "item serverz: the platform offers no offering item \"serverz\" to this partner"
            ),
            "{errs}"
        );
        assert!(errs.contains("known: workstations, servers, vms"), "{errs}");
        let errs = errors_of(&FILE.replace("item: workstations", "item: Workstations"));
        assert!(errs.contains("(did you mean workstations?)"), "{errs}");
        // Storage is checked against the storage locations, not against the item names.
        let mut c = catalog();
        c.offering_items.retain(|i| i != "storage");
        assert!(resolve(&parse(FILE).unwrap(), "ptid", &c, 0).is_ok());
        let errs = resolve(
            &parse(&FILE.replace(
                "{ item: mailboxes, free: true }",
                "{ item: storage, free: true }",
            ))
            .unwrap(),
            "ptid",
            &c,
            0,
        )
        .unwrap_err()
        .join("\n");
        assert!(
            errs.contains("(a storage item needs its location)"),
            "{errs}"
        );
    }

    #[test]
    fn r_map_1_offering_items_are_not_checked_when_the_catalogue_does_not_know_them() {
        let c = Catalog {
            offering_items: Vec::new(),
            ..catalog()
        };
        let spec = parse(&FILE.replace("item: workstations", "item: serverz")).unwrap();
        assert!(resolve(&spec, "ptid", &c, 0).is_ok());
    }
}
