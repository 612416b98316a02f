//! Plain data: partners and their settings, mappings, PSA companies and agreements,
//! platform tenants and offering items. No behaviour beyond small helpers; the rules
//! live in [`crate::rules`].

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which PSA a partner runs its business on (R-SET-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PsaKind {
    #[serde(alias = "ConnectWise", alias = "connect-wise")]
    Connectwise,
    #[serde(alias = "Autotask")]
    Autotask,
}

impl fmt::Display for PsaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PsaKind::Connectwise => "ConnectWise",
            PsaKind::Autotask => "Autotask",
        })
    }
}

/// Feature switches of a partner (R-SET-1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Switches {
    pub provisioning: bool,
    pub two_way_sync: bool,
    pub tickets: bool,
    pub usage: bool,
}

impl Default for Switches {
    fn default() -> Self {
        Switches {
            provisioning: true,
            two_way_sync: false,
            tickets: false,
            usage: false,
        }
    }
}

/// What a new customer tenant is named after (R-PROV-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TenantNameFrom {
    #[default]
    CompanyName,
    PrimaryContact,
}

/// Pricing mode of a newly provisioned tenant (R-PROV-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PricingMode {
    #[default]
    Production,
    Trial,
}

/// Deprovisioning switches, each off by default (R-PROV-7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Deprovisioning {
    /// Set every quota of a company without active lines to 0.
    pub zero_quotas: bool,
    /// Disable the tenant this many days after the company lost its last active line.
    pub disable_after_days: Option<u32>,
    /// Delete the tenant this many days after the company lost its last active line.
    pub delete_after_days: Option<u32>,
}

/// Provisioning settings (R-PROV-1, R-PROV-7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvisioningSettings {
    /// Create a tenant for an unmapped company with an active agreement.
    pub auto_create: bool,
    pub tenant_name: TenantNameFrom,
    pub activation_email: bool,
    pub two_factor: bool,
    pub mode: PricingMode,
    pub deprovision: Deprovisioning,
}

impl Default for ProvisioningSettings {
    fn default() -> Self {
        ProvisioningSettings {
            auto_create: false,
            tenant_name: TenantNameFrom::CompanyName,
            activation_email: true,
            two_factor: false,
            mode: PricingMode::Production,
            deprovision: Deprovisioning::default(),
        }
    }
}

/// Blast-radius guard (R-PROV-10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuardSettings {
    /// Largest share (0..=1) of the partner's non-zero quotas one run may set to 0.
    pub max_zero_share: f64,
    /// Below this many zeroed quotas the guard never trips (one small customer leaving).
    pub min_zeroed: usize,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            max_zero_share: 0.25,
            min_zeroed: 5,
        }
    }
}

/// A PSA product as the mapping refers to it: the PSA's id and its human identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProductRef {
    pub id: String,
    pub identifier: String,
}

/// Identifies an offering item of a tenant: its name, and for storage the infra (location).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemKey {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infra_id: Option<String>,
}

impl ItemKey {
    pub fn new(name: impl Into<String>, infra_id: Option<&str>) -> Self {
        ItemKey {
            name: name.into(),
            infra_id: infra_id.map(str::to_owned),
        }
    }
    pub fn is_storage(&self) -> bool {
        self.infra_id.is_some()
    }
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.infra_id {
            Some(infra) => write!(f, "{}@{}", self.name, infra),
            None => f.write_str(&self.name),
        }
    }
}

/// What a storage product of a location stands for (R-MAP-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageRole {
    /// Quota and total usage (standard + geo-redundant): the item's own product.
    Total,
    /// Class 1 (free) usage.
    Class1,
    /// Class 2 (billed) usage.
    Class2,
    /// Geo-redundant usage.
    Geo,
}

/// The usage products a storage location may carry besides its quota-and-total product (R-MAP-3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct StorageUsageProducts {
    pub class1: Option<ProductRef>,
    pub class2: Option<ProductRef>,
    pub geo: Option<ProductRef>,
}

impl StorageUsageProducts {
    pub fn is_empty(&self) -> bool {
        self.class1.is_none() && self.class2.is_none() && self.geo.is_none()
    }
}

/// One offering item's mapping (R-MAP-1, R-MAP-2, R-MAP-3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemMapping {
    pub item: ItemKey,
    /// The item's product; for storage, the "quota and total usage" product.
    pub product: Option<ProductRef>,
    pub free: bool,
    /// Storage only: the class 1, class 2 and geo-redundant usage products (R-MAP-3).
    #[serde(default, skip_serializing_if = "StorageUsageProducts::is_empty")]
    pub usage: StorageUsageProducts,
}

impl ItemMapping {
    /// Every product of the item with what it stands for: the item's own product first.
    pub fn products(&self) -> impl Iterator<Item = (StorageRole, &ProductRef)> {
        [
            (StorageRole::Total, self.product.as_ref()),
            (StorageRole::Class1, self.usage.class1.as_ref()),
            (StorageRole::Class2, self.usage.class2.as_ref()),
            (StorageRole::Geo, self.usage.geo.as_ref()),
        ]
        .into_iter()
        .filter_map(|(r, p)| p.map(|p| (r, p)))
    }
    /// Whether `product_id` is one of the item's products.
    pub fn has_product(&self, product_id: &str) -> bool {
        self.products().any(|(_, p)| p.id == product_id)
    }
}

/// A public cloud storage vendor (R-MAP-4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloudVendor {
    #[serde(alias = "microsoft_azure")]
    Azure,
    #[serde(alias = "s3", alias = "aws")]
    AmazonS3,
    #[serde(alias = "s3-compatible")]
    S3Compatible,
}

impl CloudVendor {
    /// The vendor of a storage by the platform's `backend_type`; `None` for the platform's
    /// own cloud storage. The backend names beyond `azure` are UNCONFIRMED: matched loosely.
    pub fn from_backend(backend: &str) -> Option<CloudVendor> {
        let b: String = backend
            .to_ascii_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        if b.contains("azure") {
            Some(CloudVendor::Azure)
        } else if b.contains("compatible") {
            Some(CloudVendor::S3Compatible)
        } else if b == "s3" || b.contains("amazon") || b.contains("aws") {
            Some(CloudVendor::AmazonS3)
        } else {
            None
        }
    }
}

impl fmt::Display for CloudVendor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CloudVendor::Azure => "Microsoft Azure",
            CloudVendor::AmazonS3 => "Amazon S3",
            CloudVendor::S3Compatible => "S3 compatible",
        })
    }
}

/// The single product a public cloud vendor maps to (R-MAP-4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudProduct {
    pub vendor: CloudVendor,
    pub product: ProductRef,
}

/// A partner's product mapping (R-MAP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProductMapping {
    pub items: Vec<ItemMapping>,
    /// The infra id of the default storage (R-MAP-2).
    pub default_storage: Option<String>,
    /// One product per public cloud vendor (R-MAP-4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_cloud: Vec<CloudProduct>,
}

impl ProductMapping {
    /// Whether `product_id` is mapped to an offering item (any of its roles) or a cloud vendor.
    pub fn maps_product(&self, product_id: &str) -> bool {
        self.items.iter().any(|m| m.has_product(product_id))
            || self.public_cloud.iter().any(|c| c.product.id == product_id)
    }
}

/// Service period of a service the two-way sync adds (R-TWO-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PeriodType {
    #[default]
    Monthly,
    Quarterly,
    #[serde(alias = "semi-annual")]
    SemiAnnual,
    Yearly,
}

impl PeriodType {
    /// The label Autotask's `periodType` picklist uses.
    pub fn label(self) -> &'static str {
        match self {
            PeriodType::Monthly => "Monthly",
            PeriodType::Quarterly => "Quarterly",
            PeriodType::SemiAnnual => "Semi-Annual",
            PeriodType::Yearly => "Yearly",
        }
    }
}

/// Autotask specifics of a partner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AutotaskSettings {
    /// The contract user-defined field that marks PAYG contracts (R-PROV-3); the deployment's
    /// default (`PAYG`) when absent.
    pub payg_field: Option<String>,
}

/// Two-way sync defaults (R-TWO-1): the allocation code (Autotask billing code) and period type
/// the services it adds carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct TwoWaySettings {
    /// The allocation code as resolved in the PSA.
    pub allocation_code: Option<ProductRef>,
    pub period_type: PeriodType,
}

/// A partner: everything the functions need except credentials (those live in Secrets Manager).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Partner {
    pub id: String,
    pub name: String,
    pub psa: PsaKind,
    pub enabled: bool,
    /// Base URL of the partner's platform data center, e.g. `https://eu2-cloud.acronis.com`.
    pub platform_url: String,
    /// The partner tenant on the platform under which customer tenants live.
    pub partner_tenant_id: String,
    pub switches: Switches,
    pub provisioning: ProvisioningSettings,
    pub guard: GuardSettings,
    pub mapping: ProductMapping,
    /// Two-way sync defaults (used when `switches.two_way_sync` is on).
    #[serde(default)]
    pub two_way: TwoWaySettings,
    #[serde(default)]
    pub autotask: AutotaskSettings,
    /// IANA time zone of the partner (dates such as "today" are taken there).
    pub time_zone: String,
    /// Full-pass cadence; the incremental pass runs every schedule tick.
    pub full_sync_hours: u32,
    /// R-PROV-8: each mapped company's lines are re-read at least this often by incremental
    /// passes (line edits no change time shows); 1..=168, partner file `sync.line_refresh_hours`.
    #[serde(default = "default_line_refresh_hours")]
    pub line_refresh_hours: u32,
    /// When usage is published (R-USE-5, R-USE-6): partner file `usage: {period, day}`.
    #[serde(default)]
    pub usage_period: crate::rules::schedule::ReportingPeriod,
    /// Optimistic-concurrency version of the stored config.
    #[serde(default)]
    pub version: u64,
}

fn default_line_refresh_hours() -> u32 {
    crate::rules::lines::DEFAULT_REFRESH_HOURS
}

/// A PSA company (ConnectWise Company, Autotask Company).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PsaCompany {
    pub id: String,
    pub identifier: String,
    pub name: String,
    pub types: Vec<String>,
    pub status: Option<String>,
    pub active: bool,
    pub primary_contact: Option<Contact>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
}

impl Contact {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
            .trim()
            .to_owned()
    }
}

/// A PSA agreement (ConnectWise Agreement, Autotask Contract) with the facts the line rules need
/// ([`crate::rules::psa::PsaRules`] decides with them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    pub id: String,
    pub company_id: String,
    pub name: String,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub no_end_date: bool,
    pub cancelled: bool,
    pub cancelled_date: Option<NaiveDate>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Autotask: the contract's PAYG user-defined field as the PSA holds it (R-PROV-3);
    /// ConnectWise: None.
    #[serde(default)]
    pub payg_field: Option<PaygField>,
}

/// R-PROV-3: the contract user-defined field that marks PAYG contracts (name configurable), as
/// the PSA holds it. Whether that means PAYG, prepaid or a problem to report is decided by
/// [`crate::rules::psa::PsaRules::agreement_kind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum PaygField {
    /// The PSA defines no contract field of this name.
    Undefined { name: String },
    /// The field's value on the contract (a picklist's label), None when empty.
    Value { name: String, value: Option<String> },
}

/// A PSA line (ConnectWise Addition, Autotask contract service).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub id: String,
    pub agreement_id: String,
    pub product_id: String,
    pub quantity: f64,
    pub less_included: f64,
    pub effective_date: Option<NaiveDate>,
    pub cancelled_date: Option<NaiveDate>,
}

/// An agreement with its lines, as read from the PSA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgreementWithLines {
    pub agreement: Agreement,
    pub lines: Vec<Line>,
}

/// A quota as the platform expresses it: `value` is the soft limit, `overage` the hard limit;
/// `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Quota {
    pub value: Option<f64>,
    pub overage: Option<f64>,
}

impl Quota {
    pub const UNLIMITED: Quota = Quota {
        value: None,
        overage: None,
    };
    pub const ZERO: Quota = Quota {
        value: Some(0.0),
        overage: Some(0.0),
    };
    /// Stopped at `n` (prepaid only).
    pub fn hard(n: f64) -> Quota {
        Quota {
            value: Some(n),
            overage: Some(n),
        }
    }
    /// `n` is a soft quota with unlimited overage (prepaid + PAYG).
    pub fn soft(n: f64) -> Quota {
        Quota {
            value: Some(n),
            overage: None,
        }
    }
    pub fn is_zero(&self) -> bool {
        self.value == Some(0.0) && self.overage.is_none_or(|o| o == 0.0)
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.value, self.overage) {
            (None, None) => f.write_str("unlimited"),
            (Some(v), None) => write!(f, "{v} (soft, unlimited overage)"),
            (Some(v), Some(o)) if v == o => write!(f, "{v}"),
            (v, o) => write!(
                f,
                "{} (overage {})",
                v.map_or("unlimited".into(), |v| v.to_string()),
                o.map_or("unlimited".into(), |o| o.to_string())
            ),
        }
    }
}

/// What a tenant is on the platform (its `kind`): a company maps to a customer tenant or to a
/// sub-partner — a partner tenant under the partner (R-CO-6).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TenantKind {
    #[default]
    Customer,
    Partner,
    /// A folder, a unit or the root: never mapped.
    Other,
}

impl TenantKind {
    /// The platform's `kind` field.
    pub fn of(kind: Option<&str>) -> TenantKind {
        match kind {
            None | Some("customer") => TenantKind::Customer,
            Some("partner") => TenantKind::Partner,
            Some(_) => TenantKind::Other,
        }
    }
}

/// A platform tenant a company maps to: a customer, or a sub-partner (R-CO-6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: String,
    #[serde(default)]
    pub kind: TenantKind,
    pub parent_id: Option<String>,
    pub name: String,
    pub enabled: bool,
    pub customer_id: Option<String>,
    pub version: u64,
    /// Self-service management mode (`update_lock.enabled`).
    pub self_service: bool,
    /// Support access (`ancestral_access`).
    pub support_access: bool,
    pub pricing_mode: Option<String>,
    pub deleted: bool,
}

/// An offering item of a tenant as it is now on the platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurrentItem {
    pub key: ItemKey,
    pub enabled: bool,
    pub quota: Quota,
    /// The platform's time of the item's last change.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
}

/// How a company is mapped (R-CO-1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "tenant_id", rename_all = "snake_case")]
pub enum Mapping {
    Unmapped,
    Tenant(String),
    /// To be mapped to a new customer tenant, created by the next sync.
    NewTenant,
}

/// What the store keeps per company of a partner (R-CO-1, R-CO-4, R-PROV-7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompanyRecord {
    pub company_id: String,
    pub name: String,
    pub mapping: Mapping,
    pub last_sync: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// First day on which the company had no active line (R-PROV-7).
    pub inactive_since: Option<NaiveDate>,
    /// The tenant was disabled by deprovisioning (and is enabled again when lines return).
    #[serde(default)]
    pub disabled_by_us: bool,
    /// Day the tenant was provisioned in trial mode (R-PROV-1: production after one month).
    pub trial_since: Option<NaiveDate>,
    /// Next day on which a line of this company changes state without any PSA edit.
    pub next_review: Option<NaiveDate>,
    /// Non-zero quotas this company had after its last sync (for R-PROV-10's denominator).
    #[serde(default)]
    pub nonzero_items: u32,
    /// Platform time of our own last write to the tenant's items: changes up to it are ours.
    #[serde(default)]
    pub platform_written: Option<DateTime<Utc>>,
    /// Lines the two-way sync took to 0 because their service was disabled on the platform
    /// (R-TWO-1): they count for nothing while they stay at 0 (Autotask cannot delete them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_lines: Vec<String>,
    /// Set-up steps its new tenant is still owed (a step failed, or the tenant was adopted):
    /// the next pass completes them (R-PROV-11).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_setup: Vec<SetupStep>,
    #[serde(default)]
    pub version: u64,
}

/// One step of a new customer tenant's set-up after it is created (R-PROV-1, R-PROV-11); each
/// can be repeated without changing more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "step", content = "with")]
pub enum SetupStep {
    /// Two-factor authentication on for its users.
    TwoFactor,
    /// Its pricing mode.
    Pricing(PricingMode),
    /// Its administrator invited (activation e-mail); an existing login is left alone.
    InviteAdmin(Contact),
}

impl CompanyRecord {
    pub fn new(company_id: impl Into<String>, name: impl Into<String>, mapping: Mapping) -> Self {
        CompanyRecord {
            company_id: company_id.into(),
            name: name.into(),
            mapping,
            last_sync: None,
            last_error: None,
            inactive_since: None,
            disabled_by_us: false,
            trial_since: None,
            next_review: None,
            nonzero_items: 0,
            platform_written: None,
            removed_lines: Vec::new(),
            pending_setup: Vec::new(),
            version: 0,
        }
    }
    pub fn tenant_id(&self) -> Option<&str> {
        match &self.mapping {
            Mapping::Tenant(t) => Some(t),
            _ => None,
        }
    }
    /// Changes the mapping; what belonged to the previous tenant (our last write to it, the
    /// lines two-way sync removed for it) goes with it.
    pub fn map_to(&mut self, mapping: Mapping) {
        let same_tenant = matches!((&self.mapping, &mapping),
            (Mapping::Tenant(a), Mapping::Tenant(b)) if a == b);
        if !same_tenant {
            self.platform_written = None;
            self.removed_lines.clear();
        }
        self.mapping = mapping;
    }
}
