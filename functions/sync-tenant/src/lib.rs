//! sync-tenant: PSA companies and agreements drive the platform's customer tenants and quotas.
//!
//! Events (EventBridge shape; `aws_lambda_events::eventbridge::EventBridgeEvent`):
//! - dispatch — `psa-bridge.schedule` / `SyncDispatch` (EventBridge Scheduler, every 15 minutes)
//!   or a plain `aws.events` / `Scheduled Event`: one `SyncPartner` event per enabled partner.
//! - work — `psa-bridge` / `SyncPartner` `{partner, pass?: incremental|full, dry_run?, force?}`,
//!   `SyncCompany` `{partner, company_id}`, `PsaChanged` `{partner, company_id}` (from the
//!   webhook receiver): plan → guard → apply, then a `SyncCompleted` summary event.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use domain::ports::{BusEvent, Clock, Connector, Events, Store};
use domain::services::sync::{self, PartnerSyncError, Scope, SyncReport, SyncRequest};
pub use domain::services::sync::{
    report_view, ReportView, DETAIL_CREDENTIALS_FAILED, DETAIL_SYNC_COMPLETED,
};
use domain::PortError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// What the handler needs, built once in `main`.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub events: Arc<dyn Events>,
    pub connector: Arc<dyn Connector>,
    pub clock: Arc<dyn Clock>,
    pub concurrency: usize,
    /// Deployment-wide ceiling on the full-pass cadence (`PSA_BRIDGE_FULL_SYNC_HOURS`); a
    /// partner's own `sync.full_every_hours` may only be shorter.
    pub full_sync_hours: Option<u32>,
}

/// A failed invocation. Lambda retries it and then sends it to the dead-letter queue with this
/// message (R-REL-3).
#[derive(Debug, thiserror::Error)]
pub enum SyncFailure {
    #[error("unexpected event {event_source}/{detail_type}: sync-tenant handles SyncDispatch, SyncPartner, SyncCompany and PsaChanged")]
    UnknownEvent {
        event_source: String,
        detail_type: String,
    },
    #[error("{detail_type} event has a malformed detail: {reason}")]
    BadDetail { detail_type: String, reason: String },
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

/// The detail of a work event.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyncDetail {
    pub partner: String,
    #[serde(default)]
    pub pass: Option<Pass>,
    #[serde(default)]
    pub company_id: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub force: bool,
    /// Extra fields a PSA change event carries (webhook-receiver): the topic it is routed
    /// by, the entity kind, record id and action, and the delivery's identity.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub entity: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub delivery: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Pass {
    Incremental,
    Full,
}

pub const DETAIL_SYNC_PARTNER: &str = "SyncPartner";
pub const DETAIL_SYNC_COMPANY: &str = "SyncCompany";
pub const DETAIL_PSA_CHANGED: &str = "PsaChanged";

/// The Lambda entry point's logic.
pub async fn handle(deps: &Deps, event: EventBridgeEvent<Value>) -> Result<Value, SyncFailure> {
    match (event.source.as_str(), event.detail_type.as_str()) {
        ("psa-bridge.schedule", "SyncDispatch") | ("aws.events", "Scheduled Event") => {
            dispatch(deps).await
        }
        ("psa-bridge", DETAIL_SYNC_PARTNER | DETAIL_SYNC_COMPANY | DETAIL_PSA_CHANGED) => {
            let detail: SyncDetail = serde_json::from_value(event.detail.clone()).map_err(|e| {
                SyncFailure::BadDetail {
                    detail_type: event.detail_type.clone(),
                    reason: e.to_string(),
                }
            })?;
            if event.detail_type != DETAIL_SYNC_PARTNER && detail.company_id.is_none() {
                return Err(SyncFailure::BadDetail {
                    detail_type: event.detail_type,
                    reason: "company_id is required".into(),
                });
            }
            let report = work(deps, &detail).await?;
            Ok(serde_json::to_value(report_view(&report)).expect("report serialises"))
        }
        (source, detail_type) => Err(SyncFailure::UnknownEvent {
            event_source: source.to_owned(),
            detail_type: detail_type.to_owned(),
        }),
    }
}

/// Dispatch mode: one work event per enabled partner; one partner never blocks another.
pub async fn dispatch(deps: &Deps) -> Result<Value, SyncFailure> {
    let port = |source| SyncFailure::Port {
        partner: "*".into(),
        source,
    };
    let partners = deps.store.partners().await.map_err(port)?;
    let events: Vec<BusEvent> = partners
        .iter()
        .filter(|p| p.enabled && p.switches.provisioning)
        .map(|p| BusEvent {
            detail_type: DETAIL_SYNC_PARTNER.into(),
            detail: json!({"partner": p.id, "pass": "incremental"}),
        })
        .collect();
    deps.events.publish(&events).await.map_err(port)?;
    tracing::info!(partners = events.len(), "dispatched sync");
    Ok(json!({"dispatched": events.len()}))
}

/// Work mode for one partner (or one company of it): the domain's partner sync.
pub async fn work(deps: &Deps, d: &SyncDetail) -> Result<SyncReport, SyncFailure> {
    let scope = match (&d.company_id, d.pass) {
        (Some(c), _) => Scope::Company(c.clone()),
        (None, Some(Pass::Full)) => Scope::Full,
        (None, _) => Scope::Incremental,
    };
    let req = SyncRequest {
        partner: d.partner.clone(),
        scope,
        dry_run: d.dry_run,
        force: d.force,
        concurrency: deps.concurrency,
        full_sync_hours: deps.full_sync_hours,
    };
    let now = deps.clock.now();
    sync::sync_partner(
        deps.store.as_ref(),
        deps.events.as_ref(),
        deps.connector.as_ref(),
        &req,
        now,
    )
    .await
    .map_err(|e| match e {
        PartnerSyncError::UnknownPartner(p) => SyncFailure::UnknownPartner(p),
        PartnerSyncError::Port { partner, source } => SyncFailure::Port { partner, source },
    })
}

impl SyncFailure {
    /// Retryable failures (throttling, outages) vs permanent ones (bad event, unknown partner,
    /// rejected credentials): the diagnostic's type says which, for alarms and the DLQ.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SyncFailure::Port { source, .. } if source.is_retryable())
    }
}

impl From<SyncFailure> for lambda_runtime::Diagnostic {
    fn from(e: SyncFailure) -> Self {
        lambda_runtime::Diagnostic {
            error_type: if e.is_retryable() {
                "psa-bridge.Retryable".into()
            } else {
                "psa-bridge.Permanent".into()
            },
            error_message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_event_detail_parses_and_rejects_unknown_fields() {
        let ev: EventBridgeEvent<Value> = serde_json::from_value(json!({
            "version": "0", "id": "1", "detail-type": "SyncPartner", "source": "psa-bridge",
            "account": "123456789012", "time": "2026-11-22T10:00:00Z", "region": "us-east-1",
            "resources": [], "detail": {"partner": "acme", "pass": "full"}
        }))
        .unwrap();
        let d: SyncDetail = serde_json::from_value(ev.detail).unwrap();
        assert_eq!(d.pass, Some(Pass::Full));
        assert!(
            serde_json::from_value::<SyncDetail>(json!({"partner": "a", "pas": "full"})).is_err()
        );
    }
}
