//! Request economy (DESIGN "Outbound HTTP", R-REL-1): the per-entity thread limit, the request
//! budget of a run, and the hourly threshold Autotask shares among a database's integrations.

use super::wire::WireThreshold;
use super::{rejected, transient, Autotask, VENDOR};
use crate::http::Idempotency;
use domain::PortResult;
use reqwest::Method;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Request economy of one client (DESIGN "Outbound HTTP").
#[derive(Debug, Clone)]
pub struct AutotaskLimits {
    /// Requests in flight at once per entity endpoint (the vendor's thread limit is 3 per
    /// integration code and endpoint).
    pub per_endpoint: usize,
    /// Most requests this client may send (one partner's run); beyond it calls fail as
    /// transient, leaving the rest for the next run.
    pub request_budget: u64,
    /// Share of the hourly threshold above which every request is delayed.
    pub slow_above: f64,
    /// The delay added before each request while above `slow_above`.
    pub slow_delay: Duration,
    /// Share of the hourly threshold the client never passes: it stops before.
    pub stop_at: f64,
    /// Re-read `ThresholdInformation` every this many requests (0: only on `check_budget`).
    pub check_every: u64,
    /// When all agreements are listed, read the lines of the active ones in batches, so the
    /// `lines` calls that follow need no requests of their own.
    pub prefetch_lines: bool,
}

impl Default for AutotaskLimits {
    fn default() -> Self {
        AutotaskLimits {
            per_endpoint: 3,
            request_budget: 2_500,
            slow_above: 0.5,
            slow_delay: Duration::from_millis(250),
            stop_at: 0.95,
            check_every: 100,
            prefetch_lines: true,
        }
    }
}

impl AutotaskLimits {
    /// As the default, without the slow-down delay (tests, the local stack).
    pub fn quick() -> Self {
        AutotaskLimits {
            slow_delay: Duration::ZERO,
            ..Default::default()
        }
    }
}

impl Autotask {
    pub(super) fn semaphore(&self, entity: &str) -> Arc<Semaphore> {
        let mut sems = self.st.sems.lock().unwrap_or_else(|e| e.into_inner());
        sems.entry(entity.to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Semaphore::new(self.cfg.limits.per_endpoint.max(1))))
            .clone()
    }

    /// The request budget, the threshold check when due, and the slow-down delay.
    pub(super) async fn guard(&self) -> PortResult<()> {
        self.within_budget()?;
        let every = self.cfg.limits.check_every;
        if every > 0 {
            let used = self.requests();
            let due = self.st.next_check.load(Ordering::Relaxed);
            if used >= due
                && self
                    .st
                    .next_check
                    .compare_exchange(due, used + every, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                if let Err(e) = self.check_budget(every).await {
                    // Check again on the next call.
                    self.st.next_check.store(0, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        let delay = self.cfg.limits.slow_delay;
        if self.slowed_down() && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }

    pub(super) fn within_budget(&self) -> PortResult<()> {
        let budget = self.cfg.limits.request_budget;
        let used = self.requests();
        if used >= budget {
            return Err(transient(format!(
                "{VENDOR}: this run's request budget of {budget} requests is used up ({used} sent); \
                 the rest is left for the next run"
            )));
        }
        Ok(())
    }

    /// `ThresholdInformation`: (requests used in the current hour, the hourly threshold).
    pub async fn threshold(&self) -> PortResult<(u64, u64)> {
        let api = self.api().await?;
        let url = api.ep.url("ThresholdInformation")?;
        let v: WireThreshold = self
            .call_unguarded(Method::GET, url, None, Idempotency::Safe)
            .await?;
        v.counts().ok_or_else(|| {
            rejected(format!(
                "{VENDOR} ThresholdInformation: unexpected body: no currentTimeframeRequestCount \
                 and externalRequestThreshold"
            ))
        })
    }

    /// Refuses (transient) when `expected_requests` more would pass the stop share of the
    /// hourly threshold the partner's Autotask database shares with its other integrations;
    /// turns the per-request slow-down on above the slow-down share (off below it).
    pub async fn check_budget(&self, expected_requests: u64) -> PortResult<()> {
        let (used, limit) = self.threshold().await?;
        if limit == 0 {
            return Ok(());
        }
        let l = &self.cfg.limits;
        let stop = (limit as f64 * l.stop_at).floor() as u64;
        let pct = used as f64 * 100.0 / limit as f64;
        if used.saturating_add(expected_requests) > stop {
            return Err(transient(format!(
                "{VENDOR} API usage is {used} of {limit} requests this hour ({pct:.0}%); the \
                 {expected_requests} requests this work may need would pass {stop} ({:.0}% of the \
                 threshold shared with the partner's other integrations), so it stops here and \
                 resumes once usage has fallen",
                l.stop_at * 100.0
            )));
        }
        let slow = used as f64 > limit as f64 * l.slow_above;
        if self.st.slow.swap(slow, Ordering::Relaxed) != slow {
            if slow {
                tracing::warn!(
                    used,
                    limit,
                    "Autotask usage above {:.0}% of the hourly threshold: slowing down",
                    l.slow_above * 100.0
                );
            } else {
                tracing::info!(used, limit, "Autotask usage back below the slow-down share");
            }
        }
        Ok(())
    }
}
