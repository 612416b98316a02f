//! publish-usage: the platform's usage on the PSA's billing lines (SPEC §6).
//!
//! Events (EventBridge shape):
//! - dispatch — `psa-bridge.schedule` / `PublishDispatch` (EventBridge Scheduler, hourly): one
//!   `PublishPartner` event per enabled partner with usage publishing on whose automatic
//!   publish is due in its own time zone (R-USE-6).
//! - work — `psa-bridge` / `PublishPartner` `{partner}`: the automatic publishes that are due
//!   (claimed in the period ledger, R-USE-6/10); with `initiator` it is a manual "publish now"
//!   `{partner, initiator, companies?, period?: "YYYY-MM", dry_run?}` (R-USE-4), recorded but
//!   not consuming the period's automatic publish. Every publish ends with a
//!   `UsagePublished` / `UsagePublishPartlyFailed` / `UsagePublishFailed` event (R-USE-9).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use domain::ports::{BusEvent, Clock, Connector, Events, PublishRecord, PublishTrigger, Store};
use domain::rules::schedule::{due_period, parse_month};
use domain::services::publish::{
    publish_due, publish_now, PublishOptions, PublishPeriod, PublishRequest,
};
use domain::services::OpError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

pub const DETAIL_PUBLISH_PARTNER: &str = "PublishPartner";

/// What the handler needs, built once in `main`.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn Store>,
    pub events: Arc<dyn Events>,
    pub connector: Arc<dyn Connector>,
    pub clock: Arc<dyn Clock>,
    pub concurrency: usize,
}

/// A failed invocation: Lambda retries it, then the dead-letter queue keeps it (R-REL-3).
#[derive(Debug, thiserror::Error)]
pub enum PublishFailure {
    #[error("unexpected event {event_source}/{detail_type}: publish-usage handles PublishDispatch and PublishPartner")]
    UnknownEvent {
        event_source: String,
        detail_type: String,
    },
    #[error("{detail_type} event has a malformed detail: {reason}")]
    BadDetail { detail_type: String, reason: String },
    #[error(transparent)]
    Op(#[from] OpError),
}

impl PublishFailure {
    /// Throttling and outages are retried by Lambda; the rest are permanent.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PublishFailure::Op(OpError::Port { source, .. }) if source.is_retryable())
    }
}

impl From<PublishFailure> for lambda_runtime::Diagnostic {
    fn from(e: PublishFailure) -> Self {
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

/// The detail of a `PublishPartner` event.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PublishDetail {
    pub partner: String,
    /// Who asked for a manual publish (user name or e-mail); absent: the schedule.
    #[serde(default)]
    pub initiator: Option<String>,
    /// A manual publish of these companies only.
    #[serde(default)]
    pub companies: Vec<String>,
    /// A manual publish of this closed calendar month (`YYYY-MM`); absent: month to date.
    #[serde(default)]
    pub period: Option<String>,
    #[serde(default)]
    pub dry_run: bool,
}

/// The Lambda entry point's logic; `run_id` names the invocation in the ledger and history.
pub async fn handle(
    deps: &Deps,
    event: EventBridgeEvent<Value>,
    run_id: &str,
) -> Result<Value, PublishFailure> {
    match (event.source.as_str(), event.detail_type.as_str()) {
        ("psa-bridge.schedule", "PublishDispatch") | ("aws.events", "Scheduled Event") => {
            dispatch(deps).await
        }
        ("psa-bridge", DETAIL_PUBLISH_PARTNER) => {
            let detail: PublishDetail =
                serde_json::from_value(event.detail.clone()).map_err(|e| {
                    PublishFailure::BadDetail {
                        detail_type: event.detail_type.clone(),
                        reason: e.to_string(),
                    }
                })?;
            let records = work(deps, &detail, run_id).await?;
            Ok(json!({ "publishes": records }))
        }
        (source, detail_type) => Err(PublishFailure::UnknownEvent {
            event_source: source.to_owned(),
            detail_type: detail_type.to_owned(),
        }),
    }
}

/// Dispatch: one work event per partner whose automatic publish is due in its time zone.
pub async fn dispatch(deps: &Deps) -> Result<Value, PublishFailure> {
    let port = |what: &'static str| OpError::port("*", what);
    let partners = deps
        .store
        .partners()
        .await
        .map_err(port("listing the partners"))?;
    let now = deps.clock.now();
    let mut events = Vec::new();
    for p in partners.iter().filter(|p| p.enabled && p.switches.usage) {
        let Ok(tz) = p.time_zone.parse::<chrono_tz::Tz>() else {
            tracing::warn!(partner = %p.id, time_zone = %p.time_zone, "not an IANA time zone: no publish");
            continue;
        };
        let last = deps
            .store
            .last_publish(&p.id)
            .await
            .map_err(port("reading a period ledger"))?;
        if due_period(&p.usage_period, last, now, tz).is_some() {
            events.push(BusEvent {
                detail_type: DETAIL_PUBLISH_PARTNER.into(),
                detail: json!({ "partner": p.id }),
            });
        }
    }
    deps.events
        .publish(&events)
        .await
        .map_err(port("dispatching the publishes"))?;
    tracing::info!(partners = events.len(), "dispatched publish");
    Ok(json!({ "dispatched": events.len() }))
}

/// Work mode for one partner: its due automatic publishes, or a manual one.
pub async fn work(
    deps: &Deps,
    d: &PublishDetail,
    run_id: &str,
) -> Result<Vec<PublishRecord>, PublishFailure> {
    let now = deps.clock.now();
    let options = PublishOptions {
        companies: d.companies.clone(),
        dry_run: d.dry_run,
        concurrency: deps.concurrency,
    };
    let Some(initiator) = &d.initiator else {
        if !d.companies.is_empty() || d.period.is_some() || d.dry_run {
            return Err(PublishFailure::BadDetail {
                detail_type: DETAIL_PUBLISH_PARTNER.into(),
                reason:
                    "companies, period and dry_run belong to a manual publish: name its initiator"
                        .into(),
            });
        }
        let records = publish_due(
            deps.store.as_ref(),
            deps.events.as_ref(),
            deps.connector.as_ref(),
            &d.partner,
            &options,
            now,
            run_id,
        )
        .await?;
        return Ok(records);
    };
    let period = d
        .period
        .as_deref()
        .map(parse_month)
        .transpose()
        .map_err(|reason| PublishFailure::BadDetail {
            detail_type: DETAIL_PUBLISH_PARTNER.into(),
            reason,
        })?
        .map(PublishPeriod::from);
    let req = PublishRequest {
        partner: d.partner.clone(),
        trigger: PublishTrigger::Manual {
            initiator: initiator.clone(),
        },
        period,
        options,
    };
    let rec = publish_now(
        deps.store.as_ref(),
        deps.events.as_ref(),
        deps.connector.as_ref(),
        &req,
        now,
        run_id,
    )
    .await?;
    Ok(vec![rec])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_use_4_a_work_detail_parses_and_rejects_unknown_fields() {
        let d: PublishDetail = serde_json::from_value(json!({
            "partner": "acme", "initiator": "finance@acme.example",
            "companies": ["19300"], "period": "2026-11"
        }))
        .unwrap();
        assert_eq!(d.companies, vec!["19300"]);
        assert!(
            serde_json::from_value::<PublishDetail>(json!({"partner": "a", "perod": "x"})).is_err()
        );
    }
}
