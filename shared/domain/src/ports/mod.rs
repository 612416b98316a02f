//! Ports: the small traits the services need from the outside world. Adapters implement them.

use crate::error::PortResult;
use crate::model::{
    Agreement, CompanyRecord, Contact, CurrentItem, ItemKey, Line, Partner, ProductRef, PsaCompany,
    Quota, Tenant,
};
use crate::rules::settings::{PlatformCredentials, PsaCredentials};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

mod hooks;
mod usage;
pub use hooks::{
    CallbackSite, Claim, Deliveries, HookSecrets, SigningKeys, WebhookSecret, CLAIM_STALE_SECS,
    DELIVERY_TTL_SECS,
};
pub use usage::{
    CompanyPublish, LineQuantities, Measure, PeriodUsage, PublishLedger, PublishRecord,
    PublishResult, PublishTrigger, PublishedLine, SubtreeTenant, TenantUsage, UsageFigure,
    UsageSource, HISTORY_LEN,
};

/// Which companies to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompanyQuery {
    /// Only companies changed after this instant.
    pub changed_since: Option<DateTime<Utc>>,
    /// Only these ids (empty: all).
    pub ids: Vec<String>,
}

/// Which agreements to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgreementQuery {
    pub changed_since: Option<DateTime<Utc>>,
    /// Only agreements of these companies (empty: all).
    pub company_ids: Vec<String>,
}

/// The PSA's reads for provisioning: companies, agreements and their lines, the product
/// catalogue. Every PSA implements it.
#[async_trait]
pub trait PsaDirectory: Send + Sync {
    async fn check_login(&self) -> PortResult<()>;
    async fn companies(&self, q: &CompanyQuery) -> PortResult<Vec<PsaCompany>>;
    async fn agreements(&self, q: &AgreementQuery) -> PortResult<Vec<Agreement>>;
    async fn lines(&self, agreement_id: &str) -> PortResult<Vec<Line>>;
    async fn products(&self) -> PortResult<Vec<ProductRef>>;
    /// The company's primary contact with its e-mail address (for the activation e-mail).
    async fn primary_contact(&self, company_id: &str) -> PortResult<Option<Contact>>;
}

/// The PSA's contract writes (two-way sync, R-TWO-1/2). Only a PSA psa-bridge writes to
/// implements it (Autotask today): [`PartnerClients::contracts`] is `None` for the others.
#[async_trait]
pub trait ContractWriter: Send + Sync {
    /// Allocation codes (Autotask billing codes) two-way sync may use (R-TWO-1).
    async fn allocation_codes(&self) -> PortResult<Vec<ProductRef>>;
    /// Creates a product (an Autotask service) with two-way sync's default allocation code and
    /// period type (R-TWO-1); the partner file asks for it with `create: true`.
    async fn create_product(
        &self,
        name: &str,
        defaults: &crate::model::TwoWaySettings,
    ) -> PortResult<ProductRef>;
    /// Adds a product to an agreement with quantity 0; returns the new line's id (R-TWO-1).
    async fn add_line(&self, agreement_id: &str, product_id: &str) -> PortResult<String>;
    /// Sets a line's quantity from today on. Absolute: the adapter reads the current quantity
    /// and changes it by the difference, so a repeated call changes nothing. With `from`, a
    /// line that holds neither `from` nor `quantity` (changed in the PSA since it was read) is
    /// left alone: `Conflict`.
    async fn set_line_quantity(
        &self,
        agreement_id: &str,
        line_id: &str,
        from: Option<f64>,
        quantity: f64,
    ) -> PortResult<()>;
}

/// What a PSA without contract writes answers to one.
pub fn one_way(psa: crate::model::PsaKind) -> crate::error::PortError {
    crate::error::PortError::Rejected {
        system: crate::error::System::Psa,
        message: format!("{psa} is synced one way: psa-bridge does not write its agreements"),
    }
}

/// A tenant with its offering items.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantWithItems {
    pub tenant: Tenant,
    pub items: Vec<CurrentItem>,
}

/// A customer tenant to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTenant {
    pub name: String,
    /// The PSA company id, stamped in `customer_id` so a lost mapping can be rebuilt.
    pub customer_id: String,
}

/// One offering item to set.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaSet {
    pub item: ItemKey,
    pub enabled: bool,
    pub quota: Quota,
}

/// The platform's reads: the partner's customer tenants and their offering items.
#[async_trait]
pub trait TenantDirectory: Send + Sync {
    /// Verifies the API client and returns the partner tenant it acts for.
    async fn check_login(&self) -> PortResult<String>;
    /// Customer tenants under the partner, with their items (all when `ids` is empty), and
    /// the platform's timestamp of the answer.
    async fn customers(&self, ids: &[String]) -> PortResult<(Vec<TenantWithItems>, String)>;
    /// [`TenantDirectory::customers`] keeping only the offering items `keep` accepts; adapters
    /// filter page by page so that unmanaged items are never held.
    async fn customers_keeping(
        &self,
        ids: &[String],
        keep: &(dyn for<'k> Fn(&'k ItemKey) -> bool + Sync),
    ) -> PortResult<(Vec<TenantWithItems>, String)> {
        let (mut tenants, stamp) = self.customers(ids).await?;
        for t in &mut tenants {
            t.items.retain(|i| keep(&i.key));
        }
        Ok((tenants, stamp))
    }
    /// Tenants whose offering items changed after `cursor` (with the latest change of each),
    /// and the next cursor.
    async fn items_changed(
        &self,
        cursor: Option<&str>,
    ) -> PortResult<(Vec<(String, DateTime<Utc>)>, String)>;
    /// The customer tenant stamped with this PSA company id, if any.
    async fn find_customer(&self, customer_id: &str) -> PortResult<Option<TenantWithItems>>;
    async fn storage_locations(&self) -> PortResult<Vec<crate::config::StorageLocation>>;
    /// The names of the offering items the partner can give a customer tenant (workloads and
    /// storage), to check a partner file's item names against.
    async fn offering_items(&self) -> PortResult<Vec<String>>;
}

/// The platform's writes: customer tenants and their offering items.
#[async_trait]
pub trait TenantAdmin: Send + Sync {
    /// Creates a customer tenant, and only the tenant (its set-up steps are separate calls, so
    /// that a failed one is known and completed later, R-PROV-11); a retried create finds its
    /// tenant by `customer_id`.
    async fn create_customer(&self, req: &NewTenant) -> PortResult<Tenant>;
    /// Sets offering items; re-reads and retries on a quota version conflict. `basis` is what
    /// the run read of the tenant's managed items: the write is refused (`Conflict`) when the
    /// tenant no longer holds one of them as read — a later run or a person moved it (R-REL-4,
    /// `rules::provisioning::basis_moved`), checked on every read before a write. Returns the
    /// platform's time of the change (so the change is not mistaken for a hand edit).
    async fn set_quotas(
        &self,
        tenant_id: &str,
        items: &[QuotaSet],
        basis: &[QuotaSet],
    ) -> PortResult<Option<DateTime<Utc>>>;
    async fn set_enabled(&self, tenant_id: &str, enabled: bool) -> PortResult<()>;
    async fn delete_tenant(&self, tenant_id: &str) -> PortResult<()>;
    /// Sets a tenant's pricing mode; setting the mode it has changes nothing.
    async fn set_pricing_mode(
        &self,
        tenant_id: &str,
        mode: crate::model::PricingMode,
    ) -> PortResult<()>;
    /// Turns two-factor authentication on for a tenant; repeated, changes nothing.
    async fn enable_two_factor(&self, tenant_id: &str) -> PortResult<()>;
    /// Invites a tenant's administrator (activation e-mail); an existing login is left alone.
    async fn invite_admin(&self, tenant_id: &str, admin: &Contact) -> PortResult<()>;
}

/// Where a partner's sync passes left off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyncCursor {
    /// Latest PSA change seen (companies, agreements); kept for records written before the
    /// per-entity cursors, which start from it.
    pub psa_since: Option<DateTime<Utc>>,
    /// PSA companies read by incremental passes (R-PROV-8).
    #[serde(default)]
    pub companies: crate::rules::cursor::EntityCursor,
    /// PSA agreements read by incremental passes (R-PROV-8).
    #[serde(default)]
    pub agreements: crate::rules::cursor::EntityCursor,
    /// Opaque platform cursor for changed offering items.
    pub platform_since: Option<String>,
    /// When the last full pass finished.
    pub last_full: Option<DateTime<Utc>>,
    /// The fencing token of the run that wrote it (R-REL-4): a cursor is never written over
    /// one of a later run (a greater token).
    #[serde(default)]
    pub fence: u64,
    /// Where the rolling re-read of the mapped companies' lines continues (R-PROV-8: line
    /// edits that no change time shows).
    #[serde(default)]
    pub lines: crate::rules::lines::LineSlice,
}

/// A credential problem seen by a run (R-SET-4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialState {
    pub ok: bool,
    pub checked_at: DateTime<Utc>,
    /// What failed, never the secret itself.
    pub problem: Option<String>,
}

/// The outcome of one sync run (R-STAT-1, R-CO-4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub scope: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub dry_run: bool,
    pub companies: usize,
    pub changes: usize,
    pub applied: usize,
    pub failed: usize,
    /// Why the run did not run or stopped (unusable mapping, guard, credentials).
    pub blocked: Option<String>,
    pub psa_requests: u64,
    pub platform_requests: u64,
}

/// What the store keeps per partner for its status.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartnerStatus {
    pub credentials: Option<CredentialState>,
    pub last_sync: Option<RunSummary>,
    /// Non-zero quotas across the partner's tenants at the last full pass (R-PROV-10's base
    /// for incremental passes, which do not read every company).
    #[serde(default)]
    pub nonzero_quotas: usize,
}

/// Partner settings (DynamoDB `PARTNER#p | CONFIG`).
#[async_trait]
pub trait PartnerStore: Send + Sync {
    async fn partner(&self, id: &str) -> PortResult<Option<Partner>>;
    async fn partners(&self) -> PortResult<Vec<Partner>>;
    /// Writes a partner if `p.version` is the stored version (0: new); returns it with the new version.
    async fn put_partner(&self, p: &Partner) -> PortResult<Partner>;
}

/// Company records: each company's mapping and sync state (`PARTNER#p | COMPANY#c`).
#[async_trait]
pub trait CompanyStore: Send + Sync {
    async fn companies(&self, partner: &str) -> PortResult<Vec<CompanyRecord>>;
    /// Records due for a look without any change on either side: a last error, waiting for a
    /// new tenant, or a review date on or before `today` (a sparse index, not a scan).
    async fn companies_due(
        &self,
        partner: &str,
        today: NaiveDate,
    ) -> PortResult<Vec<CompanyRecord>>;
    /// The records of these companies (absent ones are skipped).
    async fn companies_by_id(
        &self,
        partner: &str,
        ids: &[String],
    ) -> PortResult<Vec<CompanyRecord>>;
    /// The records mapped to these tenants.
    async fn companies_by_tenant(
        &self,
        partner: &str,
        tenants: &[String],
    ) -> PortResult<Vec<CompanyRecord>>;
    async fn company(&self, partner: &str, company_id: &str) -> PortResult<Option<CompanyRecord>>;
    /// Writes a record if `rec.version` is the stored version, keeping a tenant mapped to one
    /// company only (R-CO-5); returns it with the new version.
    async fn put_company(&self, partner: &str, rec: &CompanyRecord) -> PortResult<CompanyRecord>;
    /// [`CompanyStore::put_company`] for a caller that holds the record it replaces (`None`:
    /// there was none), so that the store need not read it. A `previous` that is no longer the
    /// stored record is refused like a stale version.
    async fn put_company_replacing(
        &self,
        partner: &str,
        rec: &CompanyRecord,
        previous: Option<&CompanyRecord>,
    ) -> PortResult<CompanyRecord> {
        let _ = previous;
        self.put_company(partner, rec).await
    }
    /// The company a tenant is mapped to, if any.
    async fn tenant_holder(&self, partner: &str, tenant_id: &str) -> PortResult<Option<String>>;
}

/// Where a partner's passes left off, and its status (R-STAT-1).
#[async_trait]
pub trait SyncState: Send + Sync {
    async fn cursor(&self, partner: &str) -> PortResult<SyncCursor>;
    async fn put_cursor(&self, partner: &str, c: &SyncCursor) -> PortResult<()>;
    async fn status(&self, partner: &str) -> PortResult<PartnerStatus>;
    async fn put_status(&self, partner: &str, s: &PartnerStatus) -> PortResult<()>;
}

/// Leases that serialise one kind of write across runs: a partner's runs (`run`, R-REL-4) and
/// a company's contract writes (two-way sync).
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes the lease `key` for `owner` for `secs` seconds of the store's own (wall) clock — a
    /// conditional write. Returns its fencing token, greater than every token given out for
    /// `key` before, or `None` when another owner holds an unexpired lease.
    async fn lease(
        &self,
        partner: &str,
        key: &str,
        owner: &str,
        secs: u32,
    ) -> PortResult<Option<u64>>;
    /// Extends a lease its holder still has (same owner and token); false when it was lost
    /// (expired and taken by another owner).
    async fn renew(
        &self,
        partner: &str,
        key: &str,
        owner: &str,
        token: u64,
        secs: u32,
    ) -> PortResult<bool>;
    /// Gives the lease back (only if `owner` still holds it); its token is kept, so that the
    /// next one is greater.
    async fn release(&self, partner: &str, key: &str, owner: &str) -> PortResult<()>;
    /// R-REL-4: notes that a company has a change for the run holding the partner's lease
    /// (a company event folded into that run). A new note replaces the company's older one.
    async fn wait_for_run(&self, partner: &str, company_id: &str) -> PortResult<()>;
    /// The companies noted by [`Leases::wait_for_run`], each with its note's identity.
    async fn waiting(&self, partner: &str) -> PortResult<Vec<(String, String)>>;
    /// Removes notes a run has handled; a note written again since (another identity) stays.
    async fn done_waiting(&self, partner: &str, notes: &[(String, String)]) -> PortResult<()>;
}

/// Every store port at once, for wiring (`main`, the CLI): services name the parts they use.
pub trait Store: PartnerStore + CompanyStore + SyncState + Leases + PublishLedger {}

impl<T: PartnerStore + CompanyStore + SyncState + Leases + PublishLedger + ?Sized> Store for T {}

/// A partner's credentials (Secrets Manager).
#[async_trait]
pub trait Secrets: Send + Sync {
    async fn psa(&self, partner: &str) -> PortResult<PsaCredentials>;
    async fn platform(&self, partner: &str) -> PortResult<PlatformCredentials>;
    async fn put_psa(&self, partner: &str, c: &PsaCredentials) -> PortResult<()>;
    async fn put_platform(&self, partner: &str, c: &PlatformCredentials) -> PortResult<()>;
    /// Drops what a cache holds of the partner's secrets, so the next read is fresh (after a
    /// vendor rejected them: they may have been rotated). Nothing to do without a cache.
    async fn forget(&self, _partner: &str) {}
}

/// An event for the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusEvent {
    pub detail_type: String,
    pub detail: serde_json::Value,
}

/// The event bus (EventBridge).
#[async_trait]
pub trait Events: Send + Sync {
    async fn publish(&self, events: &[BusEvent]) -> PortResult<()>;
}

/// Clients for one partner's PSA and platform.
#[derive(Clone)]
pub struct PartnerClients {
    pub psa: Arc<dyn PsaDirectory>,
    /// The PSA's contract writes, for a PSA psa-bridge writes to (two-way sync); else `None`.
    pub contracts: Option<Arc<dyn ContractWriter>>,
    pub platform: Arc<dyn TenantDirectory>,
    pub tenants: Arc<dyn TenantAdmin>,
    /// The platform's usage figures (publish-usage, R-USE).
    pub usage: Arc<dyn UsageSource>,
    /// The PSA's line quantities, where published usage goes (R-USE-1).
    pub quantities: Arc<dyn LineQuantities>,
    /// Requests made so far by these clients: (PSA, platform).
    pub counters: Arc<dyn Fn() -> (u64, u64) + Send + Sync>,
}

impl PartnerClients {
    /// The contract writes, or the error of a PSA synced one way.
    pub fn contracts(&self, psa: crate::model::PsaKind) -> PortResult<&dyn ContractWriter> {
        self.contracts.as_deref().ok_or_else(|| one_way(psa))
    }
}

/// Builds a partner's clients from its settings and secrets.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Clients from the partner's stored secrets.
    async fn connect(&self, partner: &Partner) -> PortResult<PartnerClients>;
    /// Clients from credentials in hand (to verify them before they are stored).
    async fn connect_with(
        &self,
        partner: &Partner,
        psa: &PsaCredentials,
        platform: &PlatformCredentials,
    ) -> PortResult<PartnerClients>;
    /// Clients from the partner's secrets read afresh (not from a cache): after a vendor
    /// rejected the credentials (R-SET-4), once.
    async fn reconnect(&self, partner: &Partner) -> PortResult<PartnerClients> {
        self.connect(partner).await
    }
}

/// The time. Injected everywhere; tests move it.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// A clock stopped at one instant (a run pinned with `--now`, tests).
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

/// The real clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
