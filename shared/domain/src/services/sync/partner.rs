//! A partner's sync as one operation, the same for the Lambda handler and the CLI: load the
//! partner, connect, run, record a credential failure (R-SET-4), publish the summary event.

use super::{run, Scope, SyncOptions, SyncReport};
use crate::error::PortError;
use crate::error::System;
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
    let mut outcome = run(&partner, &clients, store, req.scope.clone(), opts, now).await;
    if let Err(e) = &outcome {
        if rejected_by_a_vendor(e.port()) {
            // R-SET-4: the keys may have been rotated since they were cached — read them again
            // and try once more before calling them failed.
            tracing::info!(partner = %partner.id, error = %e.port(), "credentials rejected; reading them again");
            outcome = match connector.reconnect(&partner).await {
                Ok(clients) => run(&partner, &clients, store, req.scope.clone(), opts, now).await,
                Err(e) => return Err(credentials_failed(store, events, &partner.id, e, now).await),
            };
        }
    }
    let report = match outcome {
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
    if let Some(problem) = &report.credentials_refused {
        publish_credentials_failed(events, &partner.id, problem, now).await;
    }
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

/// Whether the PSA or the platform refused the credentials (not a missing secret).
fn rejected_by_a_vendor(e: &PortError) -> bool {
    matches!(
        e,
        PortError::Credentials {
            system: System::Psa | System::Platform,
            ..
        }
    )
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
        publish_credentials_failed(events, partner, &e.to_string(), now).await;
    }
    PartnerSyncError::Port {
        partner: partner.to_owned(),
        source: e,
    }
}

/// Raises `CredentialsFailed` (R-SET-4); a failure to publish it is logged, not returned.
async fn publish_credentials_failed(
    events: &dyn Events,
    partner: &str,
    problem: &str,
    now: DateTime<Utc>,
) {
    let event = BusEvent {
        detail_type: DETAIL_CREDENTIALS_FAILED.into(),
        detail: json!({"partner": partner, "problem": problem, "at": now}),
    };
    if let Err(e) = events.publish(&[event]).await {
        tracing::warn!(partner, error = %e, "could not publish the credential failure");
    }
}

/// What a run reports: the summary, the changes it made (or would make) and the failures —
/// bounded, so that the summary event stays far below EventBridge's 256 KB (R-REL-3): at most
/// [`EVENT_CHANGES`] changes and [`EVENT_FAILURES`] failures are listed, each failure's reason
/// cut at [`EVENT_REASON_CHARS`]; the totals say how many there were.
#[derive(Debug, Serialize)]
pub struct ReportView<'a> {
    pub partner: &'a str,
    pub scope: &'a str,
    pub dry_run: bool,
    pub companies: usize,
    pub applied: usize,
    pub blocked: Option<&'a str>,
    /// R-REL-4: left for the run of the partner that was in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded: Option<&'a str>,
    /// R-PROV-8: the mapped companies re-read for line edits no change time shows (at most
    /// [`EVENT_CHANGES`] listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_refresh: Option<LineRefreshView<'a>>,
    pub psa_requests: u64,
    pub platform_requests: u64,
    pub changes_total: usize,
    pub changes: Vec<&'a Change>,
    pub failures_total: usize,
    pub failures: Vec<CompanyProblem>,
}

/// [`super::LineRefresh`] in a summary event.
#[derive(Debug, Serialize)]
pub struct LineRefreshView<'a> {
    pub reason: &'a str,
    pub companies_total: usize,
    pub companies: &'a [String],
    pub mapped: usize,
    pub every_hours: u32,
}

/// At most this many changes are listed in a summary event.
pub const EVENT_CHANGES: usize = 200;
/// At most this many failures are listed in a summary event.
pub const EVENT_FAILURES: usize = 100;
/// A failure's reason is cut after this many characters in a summary event.
pub const EVENT_REASON_CHARS: usize = 300;

pub fn report_view(r: &SyncReport) -> ReportView<'_> {
    ReportView {
        partner: &r.partner,
        scope: &r.scope,
        dry_run: r.dry_run,
        companies: r.companies,
        applied: r.applied,
        blocked: r.blocked.as_deref(),
        folded: r.folded.as_deref(),
        line_refresh: r.line_refresh.as_ref().map(|l| LineRefreshView {
            reason: &l.reason,
            companies_total: l.companies.len(),
            companies: &l.companies[..l.companies.len().min(EVENT_CHANGES)],
            mapped: l.mapped,
            every_hours: l.every_hours,
        }),
        psa_requests: r.psa_requests,
        platform_requests: r.platform_requests,
        changes_total: r.plan.changes.len(),
        changes: r.plan.changes.iter().take(EVENT_CHANGES).collect(),
        failures_total: r.failures.len(),
        failures: r
            .failures
            .iter()
            .take(EVENT_FAILURES)
            .map(|f| CompanyProblem {
                company_id: f.company_id.chars().take(EVENT_REASON_CHARS).collect(),
                reason: cut(&f.reason, EVENT_REASON_CHARS),
            })
            .collect(),
    }
}

/// `text` cut after `max` characters, marked with an ellipsis when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;

    // R-REL-3: a summary event is accepted by PutEvents (256 KB) however large the run.
    #[test]
    fn r_rel_3_the_summary_event_stays_under_the_put_events_limit() {
        let reason = "é".repeat(5_000);
        let failures: Vec<CompanyProblem> = (0..20_000)
            .map(|i| CompanyProblem {
                company_id: i.to_string(),
                reason: reason.clone(),
            })
            .collect();
        let r = SyncReport {
            partner: "acme".into(),
            scope: "full".into(),
            dry_run: false,
            started_at: chrono::DateTime::UNIX_EPOCH,
            companies: 20_000,
            plan: Plan::default(),
            applied: 0,
            failures,
            blocked: None,
            credentials_refused: None,
            psa_requests: 0,
            platform_requests: 0,
            folded: None,
            line_refresh: None,
        };
        let event = serde_json::to_vec(&report_view(&r)).unwrap();
        assert!(event.len() < 128 * 1024, "{} bytes", event.len());
        let v: serde_json::Value = serde_json::from_slice(&event).unwrap();
        assert_eq!(v["failures_total"], 20_000);
        assert_eq!(v["failures"].as_array().unwrap().len(), EVENT_FAILURES);
        let first = v["failures"][0]["reason"].as_str().unwrap();
        assert_eq!(first.chars().count(), EVENT_REASON_CHARS + 1, "cut, with …");
        assert!(first.ends_with('…'));
    }

    #[test]
    fn a_short_reason_is_kept_whole() {
        assert_eq!(cut("quota refused", 300), "quota refused");
        assert_eq!(cut("abcdef", 3), "abc…");
    }
}
