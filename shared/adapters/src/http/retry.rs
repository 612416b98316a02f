//! Retry pacing (R-REL-1): jittered exponential backoff within a policy's attempts and time
//! budget and the invocation's [`Deadline`], with `Retry-After` (seconds or an HTTP date)
//! honoured up to the policy's limit. One loop state for every vendor, in
//! [`super::Endpoint::send`].

use super::RetryPolicy;
use chrono::{DateTime, Utc};
use domain::{PortError, System};
use rand::Rng;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time kept back from a Lambda's deadline: after its last retry a run still writes its cursor
/// and status and publishes its summary.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// When the current invocation must be done with retrying, shared by every client of the
/// process (the handler sets it from the Lambda context at the start of each invocation).
/// Unset (the CLI, tests that do not care): only the policy's own budget applies.
#[derive(Debug, Clone, Default)]
pub struct Deadline(Arc<Mutex<Option<Instant>>>);

impl Deadline {
    /// From a Lambda context's deadline (milliseconds since the epoch), less
    /// [`DEADLINE_MARGIN`].
    pub fn set_epoch_ms(&self, deadline_ms: u64) {
        let at = UNIX_EPOCH + Duration::from_millis(deadline_ms);
        let left = at.duration_since(SystemTime::now()).unwrap_or_default();
        self.set_in(left.saturating_sub(DEADLINE_MARGIN));
    }

    /// Retries stop `left` from now.
    pub fn set_in(&self, left: Duration) {
        *self.0.lock().expect("deadline lock") = Some(Instant::now() + left);
    }

    pub fn clear(&self) {
        *self.0.lock().expect("deadline lock") = None;
    }

    /// Time left, if a deadline is set.
    pub fn remaining(&self) -> Option<Duration> {
        self.0
            .lock()
            .expect("deadline lock")
            .map(|at| at.saturating_duration_since(Instant::now()))
    }
}

/// A `Retry-After` value (RFC 9110 §10.2.3): delay seconds or an HTTP date (a date in the past
/// is no wait). `None` when it is neither.
pub fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or_default())
}

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
    deadline: &'a Deadline,
    system: System,
    vendor: &'static str,
    started: Instant,
    attempts: u32,
    backoff: Backoff,
}

impl<'a> Retry<'a> {
    pub fn new(
        policy: &'a RetryPolicy,
        deadline: &'a Deadline,
        system: System,
        vendor: &'static str,
    ) -> Self {
        Retry {
            policy,
            deadline,
            system,
            vendor,
            started: Instant::now(),
            attempts: 0,
            backoff: Backoff::new(policy.initial_backoff, policy.max_backoff),
        }
    }

    /// After a failed attempt (`why`): how long to wait before the next one, or the transient
    /// error to give up with (attempts, budget or the invocation's time used up, or a
    /// `Retry-After` beyond the policy's limit).
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
        let attempts = self.attempts;
        if attempts >= self.policy.max_attempts
            || self.started.elapsed() + wait > self.policy.budget
        {
            return Err(self.give_up(format!("{why} (gave up after {attempts} attempts)")));
        }
        if let Some(left) = self.deadline.remaining().filter(|left| wait > *left) {
            return Err(self.give_up(format!(
                "{why} (gave up after {attempts} attempts: {} ms of this invocation's time left)",
                left.as_millis()
            )));
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
        let none = Deadline::default();
        let mut r = Retry::new(&policy, &none, System::Psa, "X");
        assert!(r.after_failure("x answered 503".into(), None).is_ok());
        assert_eq!(
            r.after_failure("x throttled".into(), Some(Duration::from_secs(2)))
                .ok(),
            Some(Duration::from_secs(2))
        );
        let e = r.after_failure("x answered 503".into(), None).unwrap_err();
        assert!(e.is_retryable());
        assert!(e.to_string().contains("gave up after 3 attempts"), "{e}");

        let mut r = Retry::new(&policy, &none, System::Platform, "X");
        let e = r
            .after_failure("x throttled".into(), Some(Duration::from_secs(90)))
            .unwrap_err();
        assert!(e.to_string().contains("Retry-After 90s is beyond"), "{e}");
    }

    #[test]
    fn r_rel_1_retries_stop_at_the_invocation_deadline() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: ms(1),
            max_backoff: ms(1),
            max_retry_after: Duration::from_secs(60),
            budget: Duration::from_secs(600),
        };
        let deadline = Deadline::default();
        deadline.set_in(Duration::from_secs(3));
        let mut r = Retry::new(&policy, &deadline, System::Psa, "X");
        assert_eq!(
            r.after_failure("x throttled".into(), Some(Duration::from_secs(1)))
                .ok(),
            Some(Duration::from_secs(1))
        );
        let e = r
            .after_failure("x throttled".into(), Some(Duration::from_secs(5)))
            .unwrap_err();
        assert!(e.is_retryable());
        assert!(
            e.to_string().contains("of this invocation's time left"),
            "{e}"
        );

        // From a Lambda context: the margin is kept back, a past deadline leaves nothing.
        let d = Deadline::default();
        assert_eq!(d.remaining(), None);
        let in_a_minute = SystemTime::now() + Duration::from_secs(60);
        d.set_epoch_ms(in_a_minute.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64);
        let left = d.remaining().unwrap();
        assert!(
            left <= Duration::from_secs(50) && left > Duration::from_secs(45),
            "{left:?}"
        );
        d.set_epoch_ms(1_000);
        assert_eq!(d.remaining(), Some(Duration::ZERO));
        let mut r = Retry::new(&policy, &d, System::Platform, "X");
        assert!(r.after_failure("x answered 503".into(), None).is_err());
    }

    #[test]
    fn r_rel_1_retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 02 Dec 2026 08:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Wed, 02 Dec 2026 07:59:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-3", now), None);
    }
}
