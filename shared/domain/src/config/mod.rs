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
    /// When usage is published (R-USE-5, R-USE-6).
    #[serde(default)]
    pub usage: UsageSpec,
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
fn full_every_hours() -> u32 {
    24
}
fn line_refresh_hours() -> u32 {
    crate::rules::lines::DEFAULT_REFRESH_HOURS
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
    #[serde(default = "full_every_hours")]
    pub full_every_hours: u32,
    /// R-PROV-8: re-read every mapped company's lines at least this often (1..=168 hours).
    #[serde(default = "line_refresh_hours")]
    pub line_refresh_hours: u32,
}

impl Default for SyncSpec {
    fn default() -> Self {
        SyncSpec {
            full_every_hours: full_every_hours(),
            line_refresh_hours: crate::rules::lines::DEFAULT_REFRESH_HOURS,
        }
    }
}

/// The partner file's `usage:` section: the reporting period (R-USE-5) and, for a billing
/// month, the day it is published on (R-USE-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct UsageSpec {
    #[serde(default)]
    pub period: Option<PeriodKind>,
    #[serde(default)]
    pub day: Option<u32>,
}

/// `usage.period` of the partner file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    CurrentMonth,
    PreviousMonth,
    BillingMonth,
}

impl UsageSpec {
    /// R-USE-5 / R-USE-6: the reporting period, by default a billing month published on day 1;
    /// `day` is 1–31 and belongs to a billing month only.
    pub fn reporting_period(&self) -> Result<crate::rules::schedule::ReportingPeriod, String> {
        use crate::rules::schedule::ReportingPeriod as R;
        match (self.period.unwrap_or(PeriodKind::BillingMonth), self.day) {
            (PeriodKind::BillingMonth, None) => Ok(R::BillingMonth { day: 1 }),
            (PeriodKind::BillingMonth, Some(day @ 1..=31)) => Ok(R::BillingMonth { day }),
            (PeriodKind::BillingMonth, Some(day)) => Err(format!(
                "usage.day: {day} is not a day of the month (1-31; 29-31 publish on the last \
                 day of a shorter month)"
            )),
            (kind, Some(_)) => Err(format!(
                "usage.day: only a billing_month has a publish day; {kind:?} publishes daily \
                 (remove usage.day or set usage.period: billing_month)"
            )),
            (PeriodKind::CurrentMonth, None) => Ok(R::CurrentMonth),
            (PeriodKind::PreviousMonth, None) => Ok(R::PreviousMonth),
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
///   Autotask settings only on an Autotask partner; the switch of a function that is not built
///   yet (`tickets`) stays off.
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
/// - R-USE-5, R-USE-6: `usage.period` is current_month, previous_month or billing_month
///   (default, on `usage.day` 1–31, default 1).
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
    for (on, switch, function) in [(spec.switches.tickets, "tickets", "alert-to-ticket")] {
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
        line_refresh_hours: spec.sync.line_refresh_hours,
        usage_period: spec.usage.reporting_period().unwrap_or_else(|e| {
            errors.push(e);
            Default::default()
        }),
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
mod tests;
