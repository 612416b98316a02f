//! Outbound HTTP shared by the vendor adapters: one reqwest client, a concurrency cap, a request
//! counter, and retries with jittered exponential backoff on 429 (honouring `Retry-After`), 5xx,
//! timeouts and lost connections (R-REL-1). Requests go only to the adapter's configured origin.
//!
//! - [`errors`]: one status → [`PortError`] classification for every vendor;
//! - [`retry`]: jittered exponential backoff within the policy's attempts and budget and the
//!   invocation's [`Deadline`];
//! - [`paging`]: every paging loop makes progress and stops at a page cap;
//! - [`time`]: one parser for the vendors' timestamps.

pub mod errors;
pub mod paging;
pub mod retry;
pub mod time;

pub use errors::{ErrorDialect, Forbidden};
pub use paging::Pages;
pub use retry::{retry_after, Backoff, Deadline, Retry, DEADLINE_MARGIN};
pub use time::{parse_day, parse_time};

use bytes::Bytes;
use domain::{PortError, System};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use url::Url;

/// How hard to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; longer answers fail as transient (the run retries later).
    pub max_retry_after: Duration,
    /// Give up retrying after this much time in total (the Lambda's remaining budget).
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            budget: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// Fast retries for tests and the local stack (the sandbox answers `Retry-After: 0/1`).
    pub fn quick() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(50),
            max_retry_after: Duration::from_secs(2),
            budget: Duration::from_secs(20),
        }
    }
}

/// Most looks [`Endpoint::poll`] takes at work still in progress.
pub const POLL_ATTEMPTS: u32 = 40;

/// Settings shared by every adapter of a process.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub retry: RetryPolicy,
    pub timeout: Duration,
    /// Requests in flight at once per vendor client.
    pub concurrency: usize,
    /// When the current invocation must stop retrying (shared; set per invocation).
    pub deadline: Deadline,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
            concurrency: 8,
            deadline: Deadline::default(),
        }
    }
}

/// Whether a URL's host is this machine: the domain's one rule.
pub use domain::rules::settings::is_loopback;

/// Builds the process's one reqwest client.
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(30))
        .user_agent(concat!("psa-bridge/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("the HTTP client builds")
}

/// A vendor endpoint: origin, limits, counter.
#[derive(Clone)]
pub struct Endpoint {
    pub system: System,
    pub vendor: &'static str,
    client: reqwest::Client,
    origin: Url,
    limiter: Arc<Semaphore>,
    counter: Arc<AtomicU64>,
    retry: RetryPolicy,
    /// [`Self::poll`]'s policy: the retry backoff and budget, with more attempts.
    poll: RetryPolicy,
    timeout: Duration,
    deadline: Deadline,
}

/// A vendor's answer that is not retried: status, headers and the whole body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Whether a request may be sent again after a lost answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// GET, PUT with a version, DELETE: safe to repeat.
    Safe,
    /// POST that creates: repeat only when the server certainly did not process it (429).
    Unsafe,
}

impl Endpoint {
    pub fn new(
        system: System,
        vendor: &'static str,
        client: reqwest::Client,
        origin: Url,
        settings: &HttpSettings,
    ) -> Self {
        Endpoint {
            system,
            vendor,
            client,
            origin,
            limiter: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            counter: Arc::new(AtomicU64::new(0)),
            retry: settings.retry.clone(),
            poll: RetryPolicy {
                max_attempts: POLL_ATTEMPTS,
                ..settings.retry.clone()
            },
            timeout: settings.timeout,
            deadline: settings.deadline.clone(),
        }
    }

    pub fn origin(&self) -> &Url {
        &self.origin
    }

    /// Waits for work the vendor does in the background (a report being built): this
    /// endpoint's backoff between looks, within its retry budget and the invocation's deadline,
    /// at most [`POLL_ATTEMPTS`] looks.
    pub fn poll(&self) -> Retry<'_> {
        Retry::new(&self.poll, &self.deadline, self.system, self.vendor)
    }

    pub fn requests(&self) -> u64 {
        self.counter.load(Ordering::Relaxed)
    }

    pub fn counter(&self) -> Arc<AtomicU64> {
        self.counter.clone()
    }

    /// A URL on this endpoint's origin; refuses any other origin (credentials never leave it).
    pub fn url(&self, path_and_query: &str) -> Result<Url, PortError> {
        let u = self
            .origin
            .join(path_and_query)
            .map_err(|e| self.rejected(format!("bad URL {path_and_query}: {e}")))?;
        self.same_origin(&u)?;
        Ok(u)
    }

    pub fn same_origin(&self, u: &Url) -> Result<(), PortError> {
        if u.origin() != self.origin.origin() {
            return Err(self.rejected(format!(
                "refusing to send credentials to {} (not the configured origin {})",
                u.origin().ascii_serialization(),
                self.origin.origin().ascii_serialization()
            )));
        }
        Ok(())
    }

    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.client.request(method, url)
    }

    fn rejected(&self, message: String) -> PortError {
        PortError::Rejected {
            system: self.system,
            message: format!("{}: {message}", self.vendor),
        }
    }

    /// Sends a request built by `build` (called once per attempt) and reads its answer,
    /// retrying per the policy within the invocation's deadline — the one retry loop of every
    /// call (R-REL-1): 429 always (the request was not processed), honouring `Retry-After`;
    /// for [`Idempotency::Safe`] requests also server failures the vendor's `dialect` calls
    /// retryable (`Retry-After` honoured on 503), timeouts, lost connections and answers that
    /// broke off. Returns the first answer that is not retried (2xx, a 4xx, or a 5xx to a
    /// write).
    pub async fn send<D: ErrorDialect>(
        &self,
        dialect: &D,
        idempotency: Idempotency,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Answer, PortError> {
        let mut retry = Retry::new(&self.retry, &self.deadline, self.system, self.vendor);
        loop {
            let left = self.deadline.remaining();
            if left == Some(Duration::ZERO) {
                return Err(PortError::Transient {
                    system: self.system,
                    message: format!(
                        "{}: not sent, this invocation's time is used up",
                        self.vendor
                    ),
                });
            }
            let result = {
                let _permit = self.limiter.acquire().await.expect("semaphore open");
                self.counter.fetch_add(1, Ordering::Relaxed);
                let mut rb = build();
                if let Some(left) = left.filter(|l| *l < self.timeout) {
                    rb = rb.timeout(left);
                }
                rb.send().await
            };
            let (wait, why) = match result {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let ra = headers
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| retry_after(v, chrono::Utc::now()));
                    match resp.bytes().await {
                        Ok(_) if status == StatusCode::TOO_MANY_REQUESTS => {
                            (ra, format!("{} throttled the request (429)", self.vendor))
                        }
                        Ok(body)
                            if status.is_server_error()
                                && idempotency == Idempotency::Safe
                                && dialect.server_error_retryable(
                                    status,
                                    &String::from_utf8_lossy(&body),
                                ) =>
                        {
                            let text = dialect.redact(String::from_utf8_lossy(&body).into_owned());
                            (
                                ra.filter(|_| status == StatusCode::SERVICE_UNAVAILABLE),
                                format!("{} answered {status}: {}", self.vendor, snippet(&text)),
                            )
                        }
                        Ok(body) => {
                            return Ok(Answer {
                                status,
                                headers,
                                body,
                            })
                        }
                        Err(e) if idempotency == Idempotency::Safe => (
                            None,
                            format!(
                                "{}: the answer ({status}) broke off: {}",
                                self.vendor,
                                error_chain(&e.without_url())
                            ),
                        ),
                        Err(e) => {
                            return Err(PortError::Transient {
                                system: self.system,
                                message: format!(
                                    "{}: the answer ({status}) broke off: {}",
                                    self.vendor,
                                    error_chain(&e.without_url())
                                ),
                            })
                        }
                    }
                }
                Err(e) => {
                    // Never the URL: a query can carry a user name (Autotask zone discovery).
                    let retryable = e.is_timeout() || e.is_connect() || e.is_request();
                    let why = format!(
                        "{} did not answer: {}",
                        self.vendor,
                        error_chain(&e.without_url())
                    );
                    if idempotency == Idempotency::Safe && retryable {
                        (None, why)
                    } else {
                        return Err(PortError::Transient {
                            system: self.system,
                            message: why,
                        });
                    }
                }
            };
            retry.pause(why, wait).await?;
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The first 300 characters of a body, for error messages.
pub fn snippet(body: &str) -> String {
    let b = body.trim();
    if b.chars().count() > 300 {
        format!("{}…", b.chars().take(300).collect::<String>())
    } else {
        b.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_decided_by_the_parsed_host() {
        let at = |s: &str| is_loopback(&Url::parse(s).unwrap());
        assert!(at("http://127.0.0.1:4000/") && at("http://127.9.9.9/") && at("http://[::1]:80/"));
        assert!(at("http://LOCALHOST:8080/x"));
        assert!(!at("http://localhost.evil.example/"));
        assert!(!at("http://127.0.0.1.evil.example/"));
        assert!(!at("http://10.0.0.1/"));
    }
}
