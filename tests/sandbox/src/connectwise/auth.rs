//! Authentication of the fake ConnectWise Manage (Basic `{companyId}+{publicKey}:{privateKey}`,
//! a required `clientId` header, the instance's codebase) and the request wrapper that runs a
//! handler on the authenticated instance under the state lock.

use axum::{
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    errors::{cw_error, unauthorized},
    state::{CwState, Instance},
};
use crate::common::{basic_credentials, lock, whole_seconds, Server};

/// `(company id, public key, private key)` of the Basic credentials.
fn credentials(headers: &HeaderMap) -> Option<(String, String, String)> {
    let (user, private) = basic_credentials(headers)?;
    let (company, public) = user.split_once('+')?;
    Some((company.to_string(), public.to_string(), private))
}

fn authenticate<'a>(
    st: &'a mut CwState,
    headers: &HeaderMap,
    codebase: &str,
) -> Result<&'a mut Instance, Response> {
    let bad = || unauthorized("Authentication credentials were missing or incorrect.");
    let (company, public, private) = credentials(headers).ok_or_else(bad)?;
    let inst = st
        .instances
        .get_mut(&company.to_lowercase())
        .ok_or_else(bad)?;
    if inst.public_key != public || inst.private_key != private {
        return Err(bad());
    }
    let client_id = headers
        .get("clientId")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    if client_id.is_empty() {
        return Err(unauthorized(
            "A clientId header is required. Register at developer.connectwise.com to obtain a clientId.",
        ));
    }
    if format!("{codebase}/") != inst.codebase {
        return Err(cw_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("Codebase '{codebase}/' is not served for this company."),
            Value::Null,
        ));
    }
    Ok(inst)
}

impl Server<CwState> {
    /// Runs `f` under the state lock; its result is turned into a response (serialized)
    /// after the lock is released.
    pub(super) fn with_instance<R: IntoResponse>(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        f: impl FnOnce(&mut Instance, DateTime<Utc>) -> R,
    ) -> Response {
        let now = whole_seconds(self.common.clock.now());
        let out = {
            let mut st = lock(&self.state);
            match authenticate(&mut st, headers, codebase) {
                Ok(inst) => Ok(f(inst, now)),
                Err(r) => Err(r),
            }
        };
        match out {
            Ok(r) => r.into_response(),
            Err(r) => r,
        }
    }
}
