//! Wire formats of the fake platform: record timestamps, the envelope `timestamp`, numbers,
//! and the Account Management error body `{"error":{"code","domain","message","details"}}`.

use axum::{http::StatusCode, response::Response};
use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, Timelike, Utc};
use serde_json::{json, Value};

use crate::common::{self, num_json};

/// Record timestamps, as in the vendor's examples: UTC without zone, microseconds
/// (`2026-11-22T00:00:00.000000`).
pub fn am_time(d: &DateTime<Utc>) -> String {
    // Hand-rolled: chrono's format-string path is slow in debug builds (hot in listings).
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        d.year(),
        d.month(),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.timestamp_subsec_micros().min(999_999)
    )
}

pub(super) fn am_time_opt(d: &Option<DateTime<Utc>>) -> Value {
    d.as_ref().map(|d| json!(am_time(d))).unwrap_or(Value::Null)
}

/// Envelope `timestamp`: RFC 3339 with `Z`, microseconds.
pub(super) fn rfc3339(d: &DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses RFC 3339, or a zone-less timestamp taken as UTC.
pub(super) fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s.trim()) {
        return Some(d.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// An optional number (integral ones as JSON integers), `null` when absent.
pub(super) fn num_opt(v: Option<f64>) -> Value {
    v.map(num_json).unwrap_or(Value::Null)
}

/// The platform's error body `{"error":{"code","domain","message","details"}}`.
pub(super) fn error_json(code: &str, message: &str) -> Value {
    json!({"error": {
        "code": code,
        "domain": "AccountServer",
        "message": message,
        "details": {},
    }})
}

pub(super) fn am_error(status: StatusCode, code: &str, message: &str) -> Response {
    common::json_response(status, &error_json(code, message))
}

pub(super) fn bad_request(message: &str) -> Response {
    am_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}
pub(super) fn not_found(message: &str) -> Response {
    am_error(StatusCode::NOT_FOUND, "NotFound", message)
}
pub(super) fn forbidden(message: &str) -> Response {
    am_error(StatusCode::FORBIDDEN, "Forbidden", message)
}
pub(super) fn conflict(code: &str, message: &str) -> Response {
    am_error(StatusCode::CONFLICT, code, message)
}

/// Error response for `Status` faults.
pub(super) fn fault_response(status: StatusCode, retry_after: Option<u64>) -> Response {
    let (code, message) = match status.as_u16() {
        429 => ("TooManyRequests", "Too many requests."),
        500 => ("InternalServerError", "Internal server error."),
        502 => ("BadGateway", "Bad gateway."),
        503 => ("ServiceUnavailable", "Service unavailable."),
        401 => ("Unauthorized", "Unauthorized."),
        403 => ("Forbidden", "Forbidden."),
        404 => ("NotFound", "Not found."),
        409 => ("Conflict", "Conflict."),
        _ => ("Error", "Injected fault."),
    };
    common::with_retry_after(am_error(status, code, message), retry_after)
}
