//! Shared machinery of the fakes: request statistics, fault injection ([`faults`]), the fake
//! clock, the tracking middleware with an optional per-endpoint concurrency limit (the Autotask
//! thread limit), the `/_sandbox/*` control API, the serving loop with its per-connection
//! kill switch ([`serve`]), HTTP helpers and the handle boilerplate ([`http`]), and the record
//! table every fake entity is kept in ([`table`]).

mod faults;
mod http;
mod routes;
mod serve;
mod table;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{Method, StatusCode},
    middleware::Next,
    response::Response,
    routing::{get, post},
    Json, Router,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use faults::{Fault, FaultKind, Faults};
pub(crate) use http::{
    basic_credentials, fake_handle, json_response, num_json, raw_json, whole_millis, whole_seconds,
    with_retry_after, QueryParams, Server,
};
pub(crate) use routes::Routes;
use serve::ConnKill;
pub(crate) use serve::{assemble, bind, spawn};
pub(crate) use table::{impl_record, JsonRows, Record, Table};

/// Locks a mutex, ignoring poisoning (a panicking test must not wedge the other tests' fakes).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------------------------

/// Request statistics of one fake (control-API calls are never counted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Every request that matched a vendor route (including ones answered by a fault).
    pub requests: u64,
    /// Mutating requests (POST/PUT/PATCH/DELETE) that matched a vendor route, excluding token
    /// issuance (`POST /api/2/idp/token`) and Autotask queries (`POST …/query[/count]`).
    pub writes: u64,
    /// Highest number of requests being processed at the same time (latency included).
    pub max_in_flight: usize,
    /// Requests per route template, e.g. `GET /api/2/tenants/{id}/offering_items`.
    pub by_route: BTreeMap<String, u64>,
    /// Highest number of requests in flight at the same time per endpoint key, counting
    /// requests rejected for exceeding the limit. Only fakes with an endpoint concurrency
    /// limit fill it (Autotask: key `"{ApiIntegrationCode} {Entity}"`); empty otherwise.
    #[serde(default)]
    pub max_in_flight_per_endpoint: BTreeMap<String, usize>,
}

// ---------------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------------

/// The fake's clock: system time unless pinned with `set_now`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Clock(Arc<Mutex<Option<DateTime<Utc>>>>);

impl Clock {
    pub(crate) fn now(&self) -> DateTime<Utc> {
        lock(&self.0).unwrap_or_else(Utc::now)
    }
    pub(crate) fn set(&self, now: Option<DateTime<Utc>>) {
        *lock(&self.0) = now;
    }
}

// ---------------------------------------------------------------------------------------------
// Common state + middleware
// ---------------------------------------------------------------------------------------------

/// Builds the vendor's error response for a `Status` fault.
pub(crate) type ErrorFn = fn(StatusCode, Option<u64>) -> Response;

/// A per-endpoint concurrency limit, checked by [`track`] after counting the request and
/// before latency/faults (so added latency keeps the slot occupied).
#[derive(Clone, Copy)]
pub(crate) struct EndpointLimit {
    /// The endpoint key of a request; `None` = exempt.
    pub(crate) key: fn(&Request) -> Option<String>,
    /// Requests allowed in flight per key.
    pub(crate) max: usize,
    /// Response for a request over the limit (gets the key).
    pub(crate) reject: fn(&str) -> Response,
}

pub(crate) struct Common {
    stats: Mutex<Stats>,
    in_flight: AtomicUsize,
    pub(crate) faults: Faults,
    pub(crate) clock: Clock,
    error_fn: ErrorFn,
    endpoint_limit: Option<EndpointLimit>,
    per_endpoint: Mutex<HashMap<String, usize>>,
    /// The vendor routes `(method, path template)` the fake serves (set once, when started).
    pub(crate) routes: std::sync::OnceLock<Vec<(String, String)>>,
}

impl Common {
    pub(crate) fn new(error_fn: ErrorFn) -> Arc<Self> {
        Self::build(error_fn, None)
    }
    /// Like [`Common::new`], with a per-endpoint concurrency limit.
    pub(crate) fn with_endpoint_limit(error_fn: ErrorFn, limit: EndpointLimit) -> Arc<Self> {
        Self::build(error_fn, Some(limit))
    }
    fn build(error_fn: ErrorFn, endpoint_limit: Option<EndpointLimit>) -> Arc<Self> {
        Arc::new(Common {
            stats: Mutex::new(Stats::default()),
            in_flight: AtomicUsize::new(0),
            faults: Faults::default(),
            clock: Clock::default(),
            error_fn,
            endpoint_limit,
            per_endpoint: Mutex::new(HashMap::new()),
            routes: std::sync::OnceLock::new(),
        })
    }
    pub(crate) fn stats(&self) -> Stats {
        lock(&self.stats).clone()
    }
    pub(crate) fn reset_stats(&self) {
        let mut s = lock(&self.stats);
        *s = Stats::default();
        // Requests still running count as in flight right now.
        s.max_in_flight = self.in_flight.load(Ordering::SeqCst);
        s.max_in_flight_per_endpoint = lock(&self.per_endpoint)
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k.clone(), *n))
            .collect();
    }
}

struct InFlight<'a>(&'a Common);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One request's slot under an [`EndpointLimit`] key.
struct EndpointSlot<'a>(&'a Common, String);

impl Drop for EndpointSlot<'_> {
    fn drop(&mut self) {
        let mut m = lock(&self.0.per_endpoint);
        if let Some(n) = m.get_mut(&self.1) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// Route-layer middleware: stats, latency, faults.
pub(crate) async fn track(State(common): State<Arc<Common>>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    // Token issuance and Autotask's `POST …/query` / `POST …/query/count` read nothing new.
    let is_write = matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && !template.ends_with("/idp/token")
        && !template.ends_with("/query")
        && !template.ends_with("/query/count");

    let now_in_flight = common.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(&common);
    {
        let mut s = lock(&common.stats);
        s.requests += 1;
        if is_write {
            s.writes += 1;
        }
        s.max_in_flight = s.max_in_flight.max(now_in_flight);
        *s.by_route
            .entry(format!("{} {}", method, template))
            .or_insert(0) += 1;
    }

    // Endpoint concurrency limit: the slot is held until the response is produced.
    let limited = common
        .endpoint_limit
        .and_then(|l| (l.key)(&req).map(|k| (l, k)));
    let _slot = match limited {
        Some((limit, key)) => {
            let now = {
                let mut m = lock(&common.per_endpoint);
                let n = m.entry(key.clone()).or_insert(0);
                *n += 1;
                *n
            };
            let slot = EndpointSlot(&common, key.clone());
            {
                let mut s = lock(&common.stats);
                let max = s.max_in_flight_per_endpoint.entry(key).or_insert(0);
                *max = (*max).max(now);
            }
            if now > limit.max {
                return (limit.reject)(&slot.1);
            }
            Some(slot)
        }
        None => None,
    };

    let (latency, fault) = common.faults.take(&method, &path_and_query);
    let extra = match &fault {
        Some(FaultKind::Latency(d)) => *d,
        _ => Duration::ZERO,
    };
    if !(latency + extra).is_zero() {
        tokio::time::sleep(latency + extra).await;
    }
    match fault {
        Some(FaultKind::Status {
            code,
            retry_after_secs,
        }) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (common.error_fn)(status, retry_after_secs)
        }
        Some(FaultKind::DropResponseAfterWrite) => {
            let kill = req.extensions().get::<ConnectInfo<ConnKill>>().cloned();
            let response = next.run(req).await;
            match kill {
                Some(ConnectInfo(k)) => {
                    // The connection's IO now fails, so hyper aborts it before any response
                    // byte reaches the client.
                    k.0.store(true, Ordering::SeqCst);
                    response
                }
                None => (common.error_fn)(StatusCode::BAD_GATEWAY, None),
            }
        }
        _ => next.run(req).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct LatencyBody {
    ms: u64,
}

#[derive(Deserialize)]
struct ClockBody {
    now: Option<DateTime<Utc>>,
}

/// `/_sandbox/*` routes (never counted, never faulted).
pub(crate) fn control_router(common: Arc<Common>) -> Router {
    Router::new()
        .route(
            "/_sandbox/stats",
            get(|State(c): State<Arc<Common>>| async move { Json(c.stats()) }),
        )
        .route(
            "/_sandbox/reset-stats",
            post(|State(c): State<Arc<Common>>| async move {
                c.reset_stats();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/_sandbox/faults",
            post(
                |State(c): State<Arc<Common>>, Json(f): Json<Fault>| async move {
                    c.faults.push(f);
                    StatusCode::NO_CONTENT
                },
            )
            .get(|State(c): State<Arc<Common>>| async move { Json(c.faults.pending()) })
            .delete(|State(c): State<Arc<Common>>| async move {
                c.faults.clear();
                StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/_sandbox/latency",
            post(
                |State(c): State<Arc<Common>>, Json(b): Json<LatencyBody>| async move {
                    c.faults.set_latency(Duration::from_millis(b.ms));
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .route(
            "/_sandbox/clock",
            post(
                |State(c): State<Arc<Common>>, Json(b): Json<ClockBody>| async move {
                    c.clock.set(b.now);
                    StatusCode::NO_CONTENT
                },
            ),
        )
        .with_state(common)
}
