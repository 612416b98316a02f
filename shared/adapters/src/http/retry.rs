//! Retry pacing (R-REL-1): jittered exponential backoff within a policy's attempts and time
//! budget, with `Retry-After` honoured up to the policy's limit. One loop state for every
//! vendor: [`super::Endpoint::send`] and the Autotask adapter's own 500-deciding loop.

use super::RetryPolicy;
use domain::{PortError, System};
use rand::Rng;
use std::time::{Duration, Instant};

/// Growth of the interval between attempts.
const MULTIPLIER: u32 = 2;
/// Each wait is drawn from `interval × [1 − JITTER, 1 + JITTER]`.
const JITTER: f64 = 0.5;

/// Jittered exponential backoff: the interval starts at `initial`, doubles after every wait up
/// to `max`, and each wait is drawn at random within ±50 % of the current interval (so that
/// clients throttled together do not come back together).
#[derive(Debug, Clone)]
pub struct Backoff {
    interval: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            interval: initial.min(max),
            max,
        }
    }

    /// The next wait; the interval grows for the one after.
    pub fn next_wait(&mut self) -> Duration {
        let base = self.interval.as_secs_f64();
        let wait = if base > 0.0 {
            let (lo, hi) = (base * (1.0 - JITTER), base * (1.0 + JITTER));
            Duration::from_secs_f64(rand::thread_rng().gen_range(lo..=hi))
        } else {
            Duration::ZERO
        };
        self.interval = self.interval.saturating_mul(MULTIPLIER).min(self.max);
        wait
    }
}

/// The state of one request's retries: attempts made, time spent, the backoff.
pub struct Retry<'a> {
    policy: &'a RetryPolicy,
    system: System,
    vendor: &'static str,
    started: Instant,
    attempts: u32,
    backoff: Backoff,
}

impl<'a> Retry<'a> {
    pub fn new(policy: &'a RetryPolicy, system: System, vendor: &'static str) -> Self {
        Retry {
            policy,
            system,
            vendor,
            started: Instant::now(),
            attempts: 0,
            backoff: Backoff::new(policy.initial_backoff, policy.max_backoff),
        }
    }

    /// After a failed attempt (`why`): how long to wait before the next one, or the transient
    /// error to give up with (attempts or budget used up, or a `Retry-After` beyond the
    /// policy's limit).
    pub fn after_failure(
        &mut self,
        why: String,
        retry_after: Option<Duration>,
    ) -> Result<Duration, PortError> {
        self.attempts += 1;
        let wait = match retry_after {
            Some(ra) if ra > self.policy.max_retry_after => {
                return Err(self.give_up(format!(
                    "{why}; Retry-After {}s is beyond this run's budget",
                    ra.as_secs()
                )))
            }
            Some(ra) => ra,
            None => self.backoff.next_wait(),
        };
        if self.attempts >= self.policy.max_attempts
            || self.started.elapsed() + wait > self.policy.budget
        {
            let attempts = self.attempts;
            return Err(self.give_up(format!("{why} (gave up after {attempts} attempts)")));
        }
        tracing::debug!(
            vendor = self.vendor,
            attempt = self.attempts,
            wait_ms = wait.as_millis() as u64,
            %why,
            "retrying"
        );
        Ok(wait)
    }

    /// [`Self::after_failure`], then the wait itself.
    pub async fn pause(
        &mut self,
        why: String,
        retry_after: Option<Duration>,
    ) -> Result<(), PortError> {
        let wait = self.after_failure(why, retry_after)?;
        tokio::time::sleep(wait).await;
        Ok(())
    }

    fn give_up(&self, message: String) -> PortError {
        PortError::Transient {
            system: self.system,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn r_rel_1_backoff_grows_to_the_max_with_jitter_around_the_interval() {
        let mut b = Backoff::new(ms(100), ms(400));
        for interval in [100.0, 200.0, 400.0, 400.0, 400.0] {
            let w = b.next_wait().as_secs_f64() * 1000.0;
            assert!(
                (interval * 0.5 - 1e-6..=interval * 1.5 + 1e-6).contains(&w),
                "{w} ms for an interval of {interval} ms"
            );
        }
        assert_eq!(
            Backoff::new(Duration::ZERO, ms(10)).next_wait(),
            Duration::ZERO
        );
    }

    #[test]
    fn r_rel_1_retries_stop_at_the_attempts_and_at_a_long_retry_after() {
        let policy = RetryPolicy {
            max_attempts: 3,
            initial_backoff: ms(1),
            max_backoff: ms(2),
            max_retry_after: Duration::from_secs(5),
            budget: Duration::from_secs(60),
        };
        let mut r = Retry::new(&policy, System::Psa, "X");
        assert!(r.after_failure("x answered 503".into(), None).is_ok());
        assert_eq!(
            r.after_failure("x throttled".into(), Some(Duration::from_secs(2)))
                .ok(),
            Some(Duration::from_secs(2))
        );
        let e = r.after_failure("x answered 503".into(), None).unwrap_err();
        assert!(e.is_retryable());
        assert!(e.to_string().contains("gave up after 3 attempts"), "{e}");

        let mut r = Retry::new(&policy, System::Platform, "X");
        let e = r
            .after_failure("x throttled".into(), Some(Duration::from_secs(90)))
            .unwrap_err();
        assert!(e.to_string().contains("Retry-After 90s is beyond"), "{e}");
    }
}
