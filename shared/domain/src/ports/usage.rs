//! Ports of usage publishing (SPEC §6, R-USE): the platform's usage figures, and the PSA's
//! line writes that carry them to the invoice.

use crate::error::PortResult;
use crate::model::{ItemKey, TenantKind};
use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// What one usage figure of an offering item measures (R-MAP-3, R-USE-2). Workloads have only
/// `Standard`; a storage location may also report its geo-redundant copy and the class 1
/// (free) / class 2 (billed) split. Total usage = standard + geo-redundant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    Standard,
    Geo,
    Class1,
    Class2,
}

/// One absolute usage figure of a tenant's offering item, in the item's own unit (a count, or
/// bytes for storage).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageFigure {
    pub item: ItemKey,
    pub measure: Measure,
    pub value: f64,
}

/// The usage figures of one tenant. An item or measure the platform does not report is absent
/// (and reads as 0).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TenantUsage {
    pub tenant_id: String,
    pub figures: Vec<UsageFigure>,
}

/// A tenant under a sub-partner (R-USE-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubtreeTenant {
    pub id: String,
    pub parent_id: Option<String>,
    pub kind: TenantKind,
}

/// The platform's usage for a closed period (R-USE-5).
#[derive(Debug, Clone, PartialEq)]
pub enum PeriodUsage {
    /// The figures of the asked tenants (a tenant without usage may be absent).
    Ready(Vec<TenantUsage>),
    /// The platform is still building the period's usage history (its usage report answers
    /// 400 "not ready" between 1 and 6 am): the period stays due, never published with other
    /// numbers. The text says what the platform answered.
    NotReady(String),
}

/// The platform's usage figures (R-USE-1, R-USE-3, R-USE-5).
#[async_trait]
pub trait UsageSource: Send + Sync {
    /// Current usage of these tenants (the current month: `/tenants/usages`, 100 tenants per
    /// request).
    async fn current_usage(&self, tenant_ids: &[String]) -> PortResult<Vec<TenantUsage>>;
    /// Usage of these tenants over the closed period `[start, end)` (dates), from the platform's
    /// usage report for that period, so that the same period read again gives the same
    /// numbers. A report that should be ready and is not (the report's 500) is `Transient`.
    async fn period_usage(
        &self,
        tenant_ids: &[String],
        start: NaiveDate,
        end: NaiveDate,
    ) -> PortResult<PeriodUsage>;
    /// The tenants under a sub-partner tenant, at any depth, with their parents and kinds
    /// (R-CO-6, R-USE-3: its usage is the sum over the customers not billed elsewhere).
    async fn subtree(&self, tenant_id: &str) -> PortResult<Vec<SubtreeTenant>>;
}

/// The PSA's write of published usage (R-USE-1): a PAYG line's quantity — a ConnectWise
/// addition's quantity, an Autotask contract service's units.
#[async_trait]
pub trait LineQuantities: Send + Sync {
    /// Sets a line's quantity to `quantity` (absolute: a repeated call changes nothing). A line
    /// that holds neither `from` (what the run read) nor `quantity` was changed in the PSA
    /// meanwhile and is left alone: `Conflict`. A line that is gone: `NotFound`.
    async fn set_quantity(
        &self,
        agreement_id: &str,
        line_id: &str,
        from: f64,
        quantity: f64,
    ) -> PortResult<()>;
}

/// Who started a publish (R-USE-4, R-USE-8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum PublishTrigger {
    /// The hourly schedule: an automatic publish, one per partner and period (R-USE-6).
    Schedule,
    /// "Publish now" by a person (recorded; it does not consume the period's automatic one).
    Manual { initiator: String },
}

impl PublishTrigger {
    pub fn initiator(&self) -> &str {
        match self {
            PublishTrigger::Schedule => "schedule",
            PublishTrigger::Manual { initiator } => initiator,
        }
    }
}

/// How a publish ended (R-USE-7, R-USE-9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishResult {
    /// Every company published.
    Published,
    /// Some companies failed, each with its reason; the others published.
    PartlyFailed,
    /// Nothing was published (credentials, the PSA or the platform down): retried.
    Failed,
    /// The platform's usage of the period is not ready yet: the period stays due.
    NotReady,
}

/// One company in a publish: every line of a mapped product with old → new and the rule, or
/// the reason it failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompanyPublish {
    pub company_id: String,
    pub name: String,
    pub tenant_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<PublishedLine>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One line as published: `old` → `new` (equal when nothing changed), or why it was left alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedLine {
    pub agreement_id: String,
    pub line_id: String,
    pub product_id: String,
    pub item: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untouched: Option<String>,
    pub rule: String,
}

/// One publish operation, as the history keeps it (R-USE-8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishRecord {
    pub run_id: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: chrono::DateTime<chrono::Utc>,
    #[serde(flatten)]
    pub trigger: PublishTrigger,
    /// The period published, e.g. `2026-11` or `2026-11-06..2026-12-05`.
    pub period: String,
    /// The automatic publish's slot (its ledger key), for a scheduled one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<NaiveDate>,
    pub dry_run: bool,
    pub result: PublishResult,
    /// Why the whole publish failed or is not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub companies: Vec<CompanyPublish>,
    /// Companies left out of this record to fit the store (failed and changed ones are kept
    /// first); the event and the run's own output had them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl PublishRecord {
    /// Companies that failed.
    pub fn failed(&self) -> usize {
        self.companies.iter().filter(|c| c.error.is_some()).count()
    }
    /// Lines whose quantity changed.
    pub fn changed_lines(&self) -> usize {
        self.companies
            .iter()
            .flat_map(|c| &c.lines)
            .filter(|l| l.new.is_some() && l.old != l.new)
            .count()
    }
}

/// How many publish operations the history keeps per partner (R-USE-8).
pub const HISTORY_LEN: usize = 10;

/// The period ledger and the publish history (R-USE-6, R-USE-8).
#[async_trait]
pub trait PublishLedger: Send + Sync {
    /// The slot of the partner's last automatic publish that completed.
    async fn last_publish(&self, partner: &str) -> PortResult<Option<NaiveDate>>;
    /// R-USE-6: claims the automatic publish of `slot` for `owner` for `secs` seconds — a
    /// conditional write: false when the slot is published already or another owner holds an
    /// unexpired claim (runs racing for one period: one publishes).
    async fn claim_publish(
        &self,
        partner: &str,
        slot: NaiveDate,
        owner: &str,
        secs: u32,
    ) -> PortResult<bool>;
    /// Ends `owner`'s claim: `published` marks the slot done for good (and the partner's last
    /// publish); otherwise the claim is given back and the next tick tries again (R-USE-10).
    async fn finish_publish(
        &self,
        partner: &str,
        slot: NaiveDate,
        owner: &str,
        published: bool,
    ) -> PortResult<()>;
    /// The most recent publish operations, newest first, at most [`HISTORY_LEN`].
    async fn publish_history(&self, partner: &str) -> PortResult<Vec<PublishRecord>>;
    /// Adds an operation to the history (the oldest beyond [`HISTORY_LEN`] drop out).
    async fn record_publish(&self, partner: &str, rec: &PublishRecord) -> PortResult<()>;
}
