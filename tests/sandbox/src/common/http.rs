//! HTTP helpers the fakes share: JSON responses and the handle methods every fake has
//! ([`fake_handle!`]).

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};

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
