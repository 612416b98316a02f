//! Shared machinery of the fakes: request statistics, fault injection, the fake clock, the
//! serving loop (with a per-connection "kill switch" used by
//! [`FaultKind::DropResponseAfterWrite`]), an optional per-endpoint concurrency limit (the
//! Autotask thread limit) and the `/_sandbox/*` control API.

use std::{
    collections::{BTreeMap, HashMap},
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    extract::{connect_info::Connected, ConnectInfo, MatchedPath, Request, State},
    http::{Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::{get, post},
    serve::{IncomingStream, Listener},
    Json, Router,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};

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
// Faults
// ---------------------------------------------------------------------------------------------

/// One injected fault. It matches a request when `method` (case-insensitive, `None` = any) and
/// `path_contains` (substring of the path and query, `None` = any) both match, and fires `times`
/// times; then it is spent and removed.
///
/// JSON form (control API): `{"method":"GET","path_contains":"/tenants","times":2,
/// "kind":{"type":"status","code":429,"retry_after_secs":1}}`; other kinds:
/// `{"type":"latency","ms":500}`, `{"type":"drop_response_after_write"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path_contains: Option<String>,
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// A fault of `kind` for any request, firing once.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            method: None,
            path_contains: None,
            kind,
            times: 1,
        }
    }
    /// Convenience: a `Status` fault.
    pub fn status(code: u16, retry_after_secs: Option<u64>) -> Self {
        Self::new(FaultKind::Status {
            code,
            retry_after_secs,
        })
    }
    /// Builder: restrict to an HTTP method.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_string());
        self
    }
    /// Builder: restrict to paths containing `needle`.
    pub fn path_contains(mut self, needle: &str) -> Self {
        self.path_contains = Some(needle.to_string());
        self
    }
    /// Builder: number of times the fault fires.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    fn matches(&self, method: &Method, path_and_query: &str) -> bool {
        if let Some(m) = &self.method {
            if !m.eq_ignore_ascii_case(method.as_str()) {
                return false;
            }
        }
        if let Some(p) = &self.path_contains {
            if !path_and_query.contains(p.as_str()) {
                return false;
            }
        }
        true
    }
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FaultKindRepr", into = "FaultKindRepr")]
pub enum FaultKind {
    /// Answer with this status code and the vendor's error body, without processing the
    /// request. `retry_after_secs` adds a `Retry-After` header (use 0 or 1 in tests).
    Status {
        code: u16,
        retry_after_secs: Option<u64>,
    },
    /// Wait this long, then process the request normally.
    Latency(Duration),
    /// Process the request (state changes happen), then close the connection without sending
    /// any response bytes.
    DropResponseAfterWrite,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FaultKindRepr {
    Status {
        code: u16,
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    Latency {
        ms: u64,
    },
    DropResponseAfterWrite,
}

impl From<FaultKindRepr> for FaultKind {
    fn from(r: FaultKindRepr) -> Self {
        match r {
            FaultKindRepr::Status {
                code,
                retry_after_secs,
            } => FaultKind::Status {
                code,
                retry_after_secs,
            },
            FaultKindRepr::Latency { ms } => FaultKind::Latency(Duration::from_millis(ms)),
            FaultKindRepr::DropResponseAfterWrite => FaultKind::DropResponseAfterWrite,
        }
    }
}

impl From<FaultKind> for FaultKindRepr {
    fn from(k: FaultKind) -> Self {
        match k {
            FaultKind::Status {
                code,
                retry_after_secs,
            } => FaultKindRepr::Status {
                code,
                retry_after_secs,
            },
            FaultKind::Latency(d) => FaultKindRepr::Latency {
                ms: d.as_millis() as u64,
            },
            FaultKind::DropResponseAfterWrite => FaultKindRepr::DropResponseAfterWrite,
        }
    }
}

/// Fault registry of one fake (a cheap clone handle).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultsState>>,
}

#[derive(Debug, Default)]
struct FaultsState {
    list: Vec<Fault>,
    latency: Duration,
}

impl Faults {
    /// Adds a fault (faults are checked in insertion order; the first match fires).
    pub fn push(&self, fault: Fault) {
        if fault.times > 0 {
            lock(&self.inner).list.push(fault);
        }
    }
    /// Latency added to every request (benchmarks); `Duration::ZERO` turns it off.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.inner).latency = latency;
    }
    /// Removes all pending faults and resets the added latency to zero.
    pub fn clear(&self) {
        let mut s = lock(&self.inner);
        s.list.clear();
        s.latency = Duration::ZERO;
    }
    /// Faults not yet spent (with their remaining `times`).
    pub fn pending(&self) -> Vec<Fault> {
        lock(&self.inner).list.clone()
    }

    /// Base latency plus the first matching fault (consuming one of its `times`).
    fn take(&self, method: &Method, path_and_query: &str) -> (Duration, Option<FaultKind>) {
        let mut s = lock(&self.inner);
        let latency = s.latency;
        let idx = s
            .list
            .iter()
            .position(|f| f.matches(method, path_and_query));
        let kind = idx.map(|i| {
            let f = &mut s.list[i];
            f.times -= 1;
            let kind = f.kind.clone();
            if f.times == 0 {
                s.list.remove(i);
            }
            kind
        });
        (latency, kind)
    }
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

// ---------------------------------------------------------------------------------------------
// Serving with a per-connection kill switch
// ---------------------------------------------------------------------------------------------

/// Per-connection flag; once set, every read/write on the connection fails, so hyper drops it.
#[derive(Debug, Clone)]
pub(crate) struct ConnKill(Arc<AtomicBool>);

pub(crate) struct KillListener(TcpListener);

pub(crate) struct KillableStream {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

impl KillableStream {
    fn dead(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

fn killed_err() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "psa-sandbox: response dropped",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.dead() {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.dead() {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.dead() {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.dead() {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.dead() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Listener for KillListener {
    type Io = KillableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (inner, addr) = Listener::accept(&mut self.0).await;
        let _ = inner.set_nodelay(true);
        (
            KillableStream {
                inner,
                killed: Arc::new(AtomicBool::new(false)),
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, KillListener>> for ConnKill {
    fn connect_info(stream: IncomingStream<'_, KillListener>) -> Self {
        ConnKill(stream.io().killed.clone())
    }
}

/// Binds a listener on `addr` (use port 0 for a free port).
pub(crate) async fn bind(addr: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves `app` on `listener` on a tokio task.
pub(crate) fn spawn(listener: TcpListener, app: Router) {
    let listener = KillListener(listener);
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<ConnKill>(),
        )
        .await;
    });
}

/// Adds the tracking middleware to the vendor routes and merges in the control API.
pub(crate) fn assemble(vendor: Router, common: &Arc<Common>) -> Router {
    vendor
        .route_layer(axum::middleware::from_fn_with_state(common.clone(), track))
        .merge(control_router(common.clone()))
}

/// JSON response with a status code.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}

/// A pre-serialized JSON body.
pub(crate) fn raw_json(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The handle methods every fake shares: its URL, request statistics, faults and clock.
macro_rules! fake_handle {
    ($fake:ty) => {
        impl $fake {
            /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
            pub fn url(&self) -> String {
                self.inner.url.clone()
            }
            /// Requests, writes, concurrency and counts per route since the last reset.
            pub fn stats(&self) -> $crate::common::Stats {
                self.inner.common.stats()
            }
            pub fn reset_stats(&self) {
                self.inner.common.reset_stats()
            }
            /// Fault injection (a cheap clone of the fake's fault list).
            pub fn faults(&self) -> $crate::common::Faults {
                self.inner.common.faults.clone()
            }
            /// Pins the fake's clock (timestamps, expiry, windows).
            pub fn set_now(&self, now: chrono::DateTime<chrono::Utc>) {
                self.inner.common.clock.set(Some(now))
            }
            /// Back to system time.
            pub fn clear_now(&self) {
                self.inner.common.clock.set(None)
            }
        }
    };
}
pub(crate) use fake_handle;

/// A record with its JSON, kept in step so listings do not serialise on every read.
pub(crate) struct Row<T> {
    pub(crate) rec: T,
    pub(crate) json: serde_json::Value,
}

/// One entity's records by id (ordered, so paging by id is a range), and the next id to give.
pub(crate) struct Table<T> {
    pub(crate) rows: std::collections::BTreeMap<i64, Row<T>>,
    pub(crate) next_id: i64,
}

impl<T: Serialize> Table<T> {
    pub(crate) fn new(first_id: i64) -> Self {
        Table {
            rows: std::collections::BTreeMap::new(),
            next_id: first_id,
        }
    }
    pub(crate) fn alloc(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }
    pub(crate) fn put(&mut self, id: i64, rec: T) {
        let json = serde_json::to_value(&rec).expect("record serializes");
        self.rows.insert(id, Row { rec, json });
    }
    pub(crate) fn get(&self, id: i64) -> Option<&T> {
        self.rows.get(&id).map(|r| &r.rec)
    }
    /// Mutates a record and refreshes its JSON.
    pub(crate) fn modify(&mut self, id: i64, f: impl FnOnce(&mut T)) -> bool {
        match self.rows.get_mut(&id) {
            Some(row) => {
                f(&mut row.rec);
                row.json = serde_json::to_value(&row.rec).expect("record serializes");
                true
            }
            None => false,
        }
    }
}
