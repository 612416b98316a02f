//! The platform's usage figures (R-USE): current usages in batches, a closed period's usage
//! report, a sub-partner's subtree.

use super::PlatformApi;
use async_trait::async_trait;
use chrono::NaiveDate;
use domain::ports::{PeriodUsage, TenantUsage, UsageSource};
use domain::{PortError, PortResult, System};

fn not_built(what: &str) -> PortError {
    PortError::Rejected {
        system: System::Platform,
        message: format!("{what}: not built yet"),
    }
}

#[async_trait]
impl UsageSource for PlatformApi {
    async fn current_usage(&self, _tenant_ids: &[String]) -> PortResult<Vec<TenantUsage>> {
        Err(not_built("current usage"))
    }

    async fn period_usage(
        &self,
        _tenant_ids: &[String],
        _start: NaiveDate,
        _end: NaiveDate,
    ) -> PortResult<PeriodUsage> {
        Err(not_built("usage report"))
    }

    async fn subtree_customers(&self, _tenant_id: &str) -> PortResult<Vec<String>> {
        Err(not_built("subtree"))
    }
}
