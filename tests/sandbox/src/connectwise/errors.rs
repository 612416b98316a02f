//! The fake ConnectWise Manage's error responses (`{"code","message","errors"}`, and the
//! throttling body of a 429).

use axum::{http::StatusCode, response::Response};
use serde_json::{json, Value};

use super::state::Res;
use crate::common;

pub(super) fn cw_error(status: StatusCode, code: &str, message: &str, errors: Value) -> Response {
    common::json_response(
        status,
        &json!({"code": code, "message": message, "errors": errors}),
    )
}

pub(super) fn not_found(res: Res, id: &str) -> Response {
    cw_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{} recordId {} not found.", res.label(), id),
        Value::Null,
    )
}

pub(super) fn invalid(resource: &str, field: &str, message: &str) -> Response {
    cw_error(
        StatusCode::BAD_REQUEST,
        "InvalidObject",
        &format!("{resource} object is invalid"),
        json!([{
            "code": "InvalidField",
            "message": message,
            "resource": resource,
            "field": field,
        }]),
    )
}

pub(super) fn bad_request(message: &str) -> Response {
    cw_error(
        StatusCode::BAD_REQUEST,
        "InvalidObject",
        message,
        json!([{"code": "InvalidObject", "message": message}]),
    )
}

pub(super) fn unauthorized(message: &str) -> Response {
    cw_error(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        message,
        Value::Null,
    )
}

/// Error response for `Status` faults.
pub(super) fn fault_response(status: StatusCode, retry_after: Option<u64>) -> Response {
    let resp = match status.as_u16() {
        429 => common::json_response(
            status,
            &json!({
                "error": "ConnectWiseAPI",
                "message": format!(
                    "Too many requests. Please try again in {} seconds.",
                    retry_after.unwrap_or(30)
                ),
            }),
        ),
        500 => cw_error(
            status,
            "UnexpectedServerError",
            "An unexpected server error has occurred.",
            Value::Null,
        ),
        401 => unauthorized("Authentication credentials were missing or incorrect."),
        404 => cw_error(status, "NotFound", "Not found.", Value::Null),
        400 => bad_request("Bad request."),
        409 => cw_error(status, "Conflict", "Conflict.", Value::Null),
        _ => cw_error(
            status,
            status.canonical_reason().unwrap_or("Error"),
            "Injected fault.",
            Value::Null,
        ),
    };
    common::with_retry_after(resp, retry_after)
}
