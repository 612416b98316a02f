//! A partner's sync as one operation, the same for the Lambda handler and the CLI: load the
//! partner, connect, run, record a credential failure (R-SET-4), publish the summary event.

use super::{run, Scope, SyncOptions, SyncReport};
use crate::error::PortError;
use crate::plan::{Change, CompanyProblem};
use crate::ports::{
    BusEvent, CompanyStore, Connector, CredentialState, Events, Leases, PartnerStore, SyncState,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

pub const DETAIL_SYNC_COMPLETED: &str = "SyncCompleted";
pub const DETAIL_CREDENTIALS_FAILED: &str = "CredentialsFailed";

/// What to sync for a partner.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub partner: String,
    pub scope: Scope,
    pub dry_run: bool,
    pub force: bool,
    pub concurrency: usize,
    /// Deployment-wide ceiling on the full-pass cadence; a partner's own may only be shorter.
    pub full_sync_hours: Option<u32>,
}

/// A partner's sync that could not run (a company's failure is in the report, not here).
#[derive(Debug, thiserror::Error)]
pub enum PartnerSyncError {
    #[error(
        "unknown partner {0:?}: no such partner is configured (run `psa-bridge partner apply`)"
    )]
    UnknownPartner(String),
    #[error("partner {partner}: {source}")]
    Port {
        partner: String,
        #[source]
        source: PortError,
    },
}

impl PartnerSyncError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, PartnerSyncError::Port { source, .. } if source.is_retryable())
    }
}

/// Loads the partner, connects to its systems and runs the sync; a run that is not a dry run
/// ends with a `SyncCompleted` event. A credential failure is recorded on the status and raises
/// `CredentialsFailed`, and the run fails so the schedule retries it (R-SET-4).
pub async fn sync_partner<S>(
    store: &S,
    events: &dyn Events,
    connector: &dyn Connector,
    req: &SyncRequest,
    now: DateTime<Utc>,
) -> Result<SyncReport, PartnerSyncError>
where
    S: PartnerStore + CompanyStore + SyncState + Leases + ?Sized,
{
    let port = |source| PartnerSyncError::Port {
        partner: req.partner.clone(),
        source,
    };
    let mut partner = store
        .partner(&req.partner)
        .await
        .map_err(port)?
        .ok_or_else(|| PartnerSyncError::UnknownPartner(req.partner.clone()))?;
    if let Some(ceiling) = req.full_sync_hours.filter(|h| *h > 0) {
        partner.full_sync_hours = partner.full_sync_hours.min(ceiling);
    }
    let clients = match connector.connect(&partner).await {
        Ok(c) => c,
        Err(e) => return Err(credentials_failed(store, events, &partner.id, e, now).await),
    };
    let opts = SyncOptions {
        dry_run: req.dry_run,
        force: req.force,
        concurrency: req.concurrency,
    };
    let report = match run(&partner, &clients, store, req.scope.clone(), opts, now).await {
        Ok(r) => r,
        Err(e) => {
            let source = e.port().clone();
            return Err(credentials_failed(store, events, &partner.id, source, now).await);
        }
    };
    tracing::info!(
        partner = %partner.id,
        scope = %report.scope,
        companies = report.companies,
        changes = report.plan.changes.len(),
        applied = report.applied,
        failed = report.failures.len(),
        blocked = report.blocked.as_deref().unwrap_or(""),
        psa_requests = report.psa_requests,
        platform_requests = report.platform_requests,
        "sync finished"
    );
    if !report.dry_run {
        events
            .publish(&[BusEvent {
                detail_type: DETAIL_SYNC_COMPLETED.into(),
                detail: serde_json::to_value(report_view(&report)).expect("summary serialises"),
            }])
            .await
            .map_err(port)?;
    }
    Ok(report)
}

/// R-SET-4: a credential failure shows on the status and raises an event. Any error is
/// returned as the run's failure.
async fn credentials_failed(
    store: &(impl SyncState + ?Sized),
    events: &dyn Events,
    partner: &str,
    e: PortError,
    now: DateTime<Utc>,
) -> PartnerSyncError {
    if matches!(e, PortError::Credentials { .. }) {
        if let Ok(mut status) = store.status(partner).await {
            status.credentials = Some(CredentialState {
                ok: false,
                checked_at: now,
                problem: Some(e.to_string()),
            });
            if let Err(se) = store.put_status(partner, &status).await {
                tracing::warn!(partner, error = %se, "could not record the credential failure");
            }
        }
        let event = BusEvent {
            detail_type: DETAIL_CREDENTIALS_FAILED.into(),
            detail: json!({"partner": partner, "problem": e.to_string(), "at": now}),
        };
        if let Err(ee) = events.publish(&[event]).await {
            tracing::warn!(partner, error = %ee, "could not publish the credential failure");
        }
    }
    PartnerSyncError::Port {
        partner: partner.to_owned(),
        source: e,
    }
}

/// What a run reports: the summary, the changes it made (or would make) and the failures.
#[derive(Debug, Serialize)]
pub struct ReportView<'a> {
    pub partner: &'a str,
    pub scope: &'a str,
    pub dry_run: bool,
    pub companies: usize,
    pub applied: usize,
    pub blocked: Option<&'a str>,
    pub psa_requests: u64,
    pub platform_requests: u64,
    pub changes: Vec<&'a Change>,
    pub failures: &'a [CompanyProblem],
}

/// At most this many changes are listed in a summary event (EventBridge caps an event at 256 KB).
const EVENT_CHANGES: usize = 200;

pub fn report_view(r: &SyncReport) -> ReportView<'_> {
    ReportView {
        partner: &r.partner,
        scope: &r.scope,
        dry_run: r.dry_run,
        companies: r.companies,
        applied: r.applied,
        blocked: r.blocked.as_deref(),
        psa_requests: r.psa_requests,
        platform_requests: r.platform_requests,
        changes: r.plan.changes.iter().take(EVENT_CHANGES).collect(),
        failures: &r.failures,
    }
}
