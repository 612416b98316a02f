//! HTTP helpers the fakes share: JSON responses, `Retry-After`, case-insensitive query
//! parameters, Basic credentials, number and time normalisation, the [`Server`] a fake's
//! handle and handlers share, and the handle methods every fake has ([`fake_handle!`]).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    http::{header, HeaderMap, HeaderValue, StatusCode, Uri},
    response::{IntoResponse, Response},
    Json,
};
use base64::Engine;
use chrono::{DateTime, Timelike, Utc};
use serde_json::{json, Value};

use super::Common;

/// What a fake's handle and its HTTP handlers share: the base URL, the common machinery and
/// the fake's state (one mutex, never held across an await).
pub(crate) struct Server<S> {
    pub(crate) url: String,
    pub(crate) common: Arc<Common>,
    pub(crate) state: Mutex<S>,
}

impl<S> Server<S> {
    pub(crate) fn new(local: SocketAddr, common: Arc<Common>, state: S) -> Arc<Self> {
        Arc::new(Server {
            url: format!("http://{local}"),
            common,
            state: Mutex::new(state),
        })
    }
}

/// JSON response with a status code.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
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

/// Adds a `Retry-After: {secs}` header when `secs` is given.
pub(crate) fn with_retry_after(mut resp: Response, secs: Option<u64>) -> Response {
    if let Some(secs) = secs {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&secs.to_string()).expect("digits"),
        );
    }
    resp
}

/// `Authorization: Basic …` decoded to `(user, password)` (split at the first `:`).
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (user, password) = s.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Query parameters, looked up case-insensitively (as Manage and Autotask treat them).
pub(crate) struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    pub(crate) fn from_uri(uri: &Uri) -> Self {
        QueryParams {
            pairs: url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }
    /// The first value of `key` (any case); a blank value counts as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.trim().is_empty())
    }
    /// `{base}?{query}` with the `drop` keys removed and `set` appended.
    pub(crate) fn link(&self, base: &str, drop: &[&str], set: &[(&str, String)]) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.pairs {
            if !drop.iter().any(|d| d.eq_ignore_ascii_case(k)) {
                ser.append_pair(k, v);
            }
        }
        for (k, v) in set {
            ser.append_pair(k, v);
        }
        format!("{base}?{}", ser.finish())
    }
}

/// Drops sub-second precision (ConnectWise emits whole seconds).
pub(crate) fn whole_seconds(d: DateTime<Utc>) -> DateTime<Utc> {
    d.with_nanosecond(0).unwrap_or(d)
}

/// Drops sub-millisecond precision (Autotask emits milliseconds).
pub(crate) fn whole_millis(d: DateTime<Utc>) -> DateTime<Utc> {
    d.with_nanosecond(d.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(d)
}

/// Integral numbers as JSON integers (like the vendors), others as floats.
pub(crate) fn num_json(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// The handle methods every fake shares: `Debug`, `start`, its URL, request statistics, faults
/// and clock. The handle must have `inner: Arc<Server<_>>` and an `async fn start_on`.
macro_rules! fake_handle {
    ($fake:ident) => {
        impl std::fmt::Debug for $fake {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($fake))
                    .field("url", &self.inner.url)
                    .finish()
            }
        }

        impl $fake {
            /// Starts the fake on `127.0.0.1:0`.
            pub async fn start() -> std::io::Result<$fake> {
                Self::start_on(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await
            }
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
            /// Every vendor route the fake serves, `(method, path template)` sorted, e.g.
            /// `("GET", "/api/2/tenants/{id}")` (the `/_sandbox/*` control API is not listed).
            pub fn routes(&self) -> Vec<(String, String)> {
                self.inner.common.routes.get().cloned().unwrap_or_default()
            }
        }
    };
}
pub(crate) use fake_handle;
