//! The fake Autotask's error responses (`{"errors":[…]}`).

use axum::{http::StatusCode, response::Response};
use serde_json::json;

use super::THREAD_LIMIT;
use crate::common;

pub(super) fn at_error(status: StatusCode, message: &str) -> Response {
    common::json_response(status, &json!({ "errors": [message] }))
}

pub(super) fn err500(message: &str) -> Response {
    at_error(StatusCode::INTERNAL_SERVER_ERROR, message)
}

/// Error response for `Status` faults.
pub(super) fn fault_response(status: StatusCode, retry_after: Option<u64>) -> Response {
    let message = match status.as_u16() {
        429 => "Too many requests. Please retry later.".to_string(),
        500 => "An unexpected error has occurred. Please try again.".to_string(),
        401 => "Authentication failed: the UserName or Secret is incorrect.".to_string(),
        403 => "Access denied.".to_string(),
        404 => "The requested resource does not exist.".to_string(),
        503 => "The service is temporarily unavailable.".to_string(),
        _ => format!(
            "Injected fault: {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        ),
    };
    common::with_retry_after(at_error(status, &message), retry_after)
}

pub(super) fn thread_limit_response(key: &str) -> Response {
    let entity = key.rsplit(' ').next().unwrap_or(key);
    at_error(
        StatusCode::TOO_MANY_REQUESTS,
        &format!(
            "Thread limit exceeded: at most {THREAD_LIMIT} concurrent requests are allowed per \
             integration and entity ({entity}). Retry when a previous request has completed."
        ),
    )
}
