//! Authentication of the fake Autotask (`ApiIntegrationCode`, `UserName`, `Secret` headers),
//! the rolling-hour request threshold, and the request wrapper that runs a handler under the
//! state lock.

use axum::{
    http::{HeaderMap, StatusCode},
    response::Response,
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::Value;

use super::{
    errors::{at_error, err500},
    state::AtState,
    WINDOW_MINUTES,
};
use crate::common::{self, lock, whole_millis, Server};

pub(super) struct Ctx {
    pub(super) now: DateTime<Utc>,
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn authenticate(st: &AtState, h: &HeaderMap) -> Result<(), Response> {
    let invalid_code = || err500("IntegrationCode is invalid.");
    let code = header_str(h, "apiintegrationcode").ok_or_else(invalid_code)?;
    if !st.codes.contains(code) {
        return Err(invalid_code());
    }
    let bad = || {
        at_error(
            StatusCode::UNAUTHORIZED,
            "Authentication failed: the UserName or Secret is incorrect.",
        )
    };
    let user_name = header_str(h, "username").ok_or_else(bad)?;
    let secret = h
        .get("secret")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(bad)?;
    let user = st.users.get(&user_name.to_lowercase()).ok_or_else(bad)?;
    if user.secret != secret {
        return Err(bad());
    }
    if !user.api_access {
        return Err(at_error(
            StatusCode::FORBIDDEN,
            &format!(
                "User '{}' is not an API user: only API-only users (security level 'API User \
                 (system)') with an API tracking identifier can access the REST API.",
                user.username
            ),
        ));
    }
    if user.integration_code.as_deref() != Some(code) {
        return Err(invalid_code());
    }
    Ok(())
}

impl Server<AtState> {
    pub(super) fn today(&self) -> NaiveDate {
        self.common.clock.now().date_naive()
    }

    /// Authenticates, applies the request threshold (when `counted`), and runs `f` under the
    /// state lock; the JSON body is serialized after the lock is released.
    pub(super) fn api(
        &self,
        h: &HeaderMap,
        counted: bool,
        f: impl FnOnce(&mut AtState, &Ctx) -> Result<Value, Response>,
    ) -> Response {
        let ctx = Ctx {
            now: whole_millis(self.common.clock.now()),
        };
        let out = {
            let mut st = lock(&self.state);
            match authenticate(&st, h) {
                Err(r) => Err(r),
                Ok(()) => {
                    let mut blocked = None;
                    if counted {
                        let used = st.used(ctx.now);
                        if used >= st.threshold {
                            let retry = st
                                .window
                                .front()
                                .map(|t| {
                                    (*t + Duration::minutes(WINDOW_MINUTES) - ctx.now)
                                        .num_seconds()
                                        .max(1) as u64
                                })
                                .unwrap_or(1);
                            blocked = Some(common::with_retry_after(
                                at_error(
                                    StatusCode::TOO_MANY_REQUESTS,
                                    &format!(
                                        "API request threshold exceeded: {used} of {} requests \
                                         used in the last {WINDOW_MINUTES} minutes. Requests are \
                                         blocked until usage falls below the threshold.",
                                        st.threshold
                                    ),
                                ),
                                Some(retry),
                            ));
                        } else {
                            st.window.push_back(ctx.now);
                        }
                    }
                    match blocked {
                        Some(r) => Err(r),
                        None => f(&mut st, &ctx),
                    }
                }
            }
        };
        match out {
            Ok(v) => common::raw_json(StatusCode::OK, serde_json::to_vec(&v).expect("serializes")),
            Err(r) => r,
        }
    }
}
