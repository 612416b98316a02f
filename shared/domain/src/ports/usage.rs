//! Ports of usage publishing (SPEC §6, R-USE): the platform's usage figures, and the PSA's
//! line writes that carry them to the invoice.

use crate::error::PortResult;
use crate::model::ItemKey;
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
    /// The customer tenants in the subtree of a sub-partner tenant (R-CO-6, R-USE-3: its usage
    /// is the sum over them).
    async fn subtree_customers(&self, tenant_id: &str) -> PortResult<Vec<String>>;
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
