//! The fake platform's router and the request helpers its handlers share (query parameters,
//! JSON bodies, tenant visibility).

use std::{collections::HashMap, sync::Arc};

use axum::{
    extract::{rejection::PathRejection, FromRequestParts, Path},
    http::{request::Parts, HeaderMap, Uri},
    response::Response,
    Json, Router,
};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{
    auth::{self, Principal},
    directory, items, reports, settings,
    state::{PfState, Tenant},
    tenant_writes, tenants,
    wire::{bad_request, forbidden, not_found, parse_ts, rfc3339},
};
use crate::common::{Routes, Server};

pub(super) type Pf = Arc<Server<PfState>>;

pub(super) fn router(inner: Pf) -> (Router, Vec<(String, String)>) {
    let (router, list) = Routes::new()
        .merge(auth::routes())
        .merge(tenants::routes())
        .merge(tenant_writes::routes())
        .merge(settings::routes())
        .merge(items::routes())
        .merge(directory::routes())
        .merge(reports::routes())
        .into_parts();
    let router = router
        .fallback(|| async { not_found("The requested resource does not exist.") })
        .with_state(inner);
    (router, list)
}

pub(super) fn query(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(super) fn flag(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

pub(super) fn csv(q: &HashMap<String, String>, key: &str) -> Option<Vec<String>> {
    q.get(key).map(|v| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

pub(super) fn parse_json(body: &[u8]) -> Result<Value, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(bad_request("Request body must be a JSON object.")),
        Err(e) => Err(bad_request(&format!("Malformed JSON: {e}"))),
    }
}

/// Looks up a tenant visible to the principal.
pub(super) fn visible<'a>(
    st: &'a PfState,
    p: &Principal,
    id: &str,
    allow_deleted: bool,
) -> Result<&'a Tenant, Response> {
    let t = st
        .tenant(id)
        .filter(|t| allow_deleted || t.deleted_at.is_none())
        .ok_or_else(|| not_found(&format!("Tenant {id} not found.")))?;
    if !st.in_subtree(id, &p.tenant_id) {
        return Err(forbidden(&format!(
            "Access to tenant {id} is denied for this client."
        )));
    }
    Ok(t)
}

/// A request about one tenant (`/api/2/tenants/{id}…`): the fake, the tenant id from the path,
/// the headers and the query parameters.
pub(super) struct OnTenant {
    s: Pf,
    id: String,
    h: HeaderMap,
    pub(super) q: HashMap<String, String>,
}

impl FromRequestParts<Pf> for OnTenant {
    type Rejection = PathRejection;

    async fn from_request_parts(parts: &mut Parts, s: &Pf) -> Result<Self, Self::Rejection> {
        let Path(id) = Path::<String>::from_request_parts(parts, s).await?;
        Ok(OnTenant {
            s: s.clone(),
            id,
            h: parts.headers.clone(),
            q: query(&parts.uri),
        })
    }
}

impl OnTenant {
    /// Authenticates the client and runs `f` under the state lock with (a copy of) the tenant,
    /// if the client may see it and it is not deleted.
    pub(super) fn run(
        &self,
        f: impl FnOnce(&mut PfState, &Principal, &Tenant, DateTime<Utc>) -> Response,
    ) -> Response {
        self.run_allowing_deleted(false, f)
    }

    /// [`OnTenant::run`], admitting a deleted tenant when `allow_deleted`.
    pub(super) fn run_allowing_deleted(
        &self,
        allow_deleted: bool,
        f: impl FnOnce(&mut PfState, &Principal, &Tenant, DateTime<Utc>) -> Response,
    ) -> Response {
        self.s.authed(&self.h, |st, p, now| {
            let t = tri!(visible(st, p, &self.id, allow_deleted)).clone();
            f(st, p, &t, now)
        })
    }
}

// --- paging -------------------------------------------------------------------------------

pub(super) fn encode_cursor<T: Serialize>(c: &T) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(c).expect("cursor serializes"))
}

pub(super) fn decode_cursor<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, Response> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| bad_request("Invalid paging cursor 'after'."))
}

pub(super) fn parse_limit(q: &HashMap<String, String>) -> Result<Option<usize>, Response> {
    match q.get("limit") {
        None => Ok(None),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(bad_request("limit must be a positive integer.")),
        },
    }
}

pub(super) fn parse_since(q: &HashMap<String, String>) -> Result<Option<DateTime<Utc>>, Response> {
    match q.get("updated_since") {
        None => Ok(None),
        Some(v) => parse_ts(v).map(Some).ok_or_else(|| {
            bad_request(&format!("updated_since '{v}' is not an RFC3339 timestamp."))
        }),
    }
}

/// Paged envelope; serialized by the caller after the state lock is released.
pub(super) type Listing = Result<Json<Value>, Response>;

pub(super) fn batch_envelope(
    ts: &DateTime<Utc>,
    after: Option<String>,
    items: Vec<Value>,
) -> Listing {
    let mut cursors = Map::new();
    if let Some(a) = after {
        cursors.insert("after".into(), json!(a));
    }
    Ok(Json(json!({
        "timestamp": rfc3339(ts),
        "paging": {"cursors": cursors},
        "items": items,
    })))
}

// --- request bodies -----------------------------------------------------------------------

pub(super) fn opt_string(b: &Value, key: &str) -> Result<Option<Option<String>>, Response> {
    match b.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(bad_request(&format!("'{key}' must be a string or null."))),
    }
}

pub(super) fn opt_bool(b: &Value, key: &str) -> Result<Option<bool>, Response> {
    match b.get(key) {
        None => Ok(None),
        Some(Value::Bool(v)) => Ok(Some(*v)),
        Some(_) => Err(bad_request(&format!("'{key}' must be a boolean."))),
    }
}

pub(super) fn check_keys(b: &Value, allowed: &[&str]) -> Result<(), Response> {
    if let Some(k) = b
        .as_object()
        .and_then(|o| o.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        return Err(bad_request(&format!("Unexpected field '{k}'.")));
    }
    Ok(())
}
