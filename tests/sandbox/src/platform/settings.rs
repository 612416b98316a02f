//! Tenant settings of the fake platform: `/tenants/{id}/pricing` and `/tenants/{id}/mfa/status`.

use axum::{body::Bytes, http::StatusCode, response::Response, routing::get};
use serde_json::{json, Value};

use super::{
    routes::{check_keys, opt_string, parse_json, OnTenant, Pf},
    state::{PfState, Tenant},
    wire::{am_time_opt, bad_request, conflict},
};
use crate::common::{self, Routes};

/// The routes of this file (merged into [`super::routes::router`]).
pub(super) fn routes() -> Routes<Pf> {
    Routes::new()
        .route(
            "GET PUT",
            "/api/2/tenants/{id}/pricing",
            get(get_pricing).put(put_pricing),
        )
        .route(
            "GET PUT",
            "/api/2/tenants/{id}/mfa/status",
            get(get_mfa).put(put_mfa),
        )
}

fn pricing_json(t: &Tenant) -> Value {
    json!({
        "mode": t.pricing_mode,
        "currency": t.currency,
        "version": t.pricing_version,
        "production_start_date": am_time_opt(&t.production_start_date),
    })
}

async fn get_pricing(r: OnTenant) -> Response {
    r.run(|_, _, t, _| common::json_response(StatusCode::OK, &pricing_json(t)))
}

async fn put_pricing(r: OnTenant, body: Bytes) -> Response {
    r.run(|st, _, t, now| {
        let b = tri!(parse_json(&body));
        tri!(check_keys(&b, &["mode", "currency", "version"]));
        let Some(version) = b.get("version").and_then(Value::as_i64) else {
            return bad_request("'version' is required.");
        };
        if version != t.pricing_version {
            return conflict(
                "VersionConflict",
                &format!(
                    "Pricing version {version} is stale (current {}).",
                    t.pricing_version
                ),
            );
        }
        let mut n = t.clone();
        if let Some(mode) = b.get("mode").and_then(Value::as_str) {
            // A tenant that has used nothing yet (just created) may still be put in trial, as
            // integrations do right after POST /tenants; later, production is final.
            let used = st
                .usages
                .iter()
                .any(|((tenant, _, _, _), v)| tenant == &t.id && *v > 0.0);
            match (t.pricing_mode.as_str(), mode) {
                (_, "trial") if t.pricing_mode != "trial" && used => {
                    return bad_request("Switching from production to trial mode is not allowed.")
                }
                (_, "trial") if t.pricing_mode != "trial" => {
                    n.production_start_date = None;
                }
                (_, "trial" | "production" | "suspended") => {}
                _ => return bad_request(&format!("Unknown pricing mode '{mode}'.")),
            }
            if mode == "production" && t.pricing_mode == "trial" {
                n.production_start_date = Some(now);
            }
            n.pricing_mode = mode.to_string();
        }
        if let Some(c) = tri!(opt_string(&b, "currency")) {
            n.currency = c;
        }
        n.pricing_version = st.next_version(now);
        n.touch(now);
        let json = pricing_json(&n);
        st.tenants.insert(t.id.clone(), n);
        common::json_response(StatusCode::OK, &json)
    })
}

fn mfa_json(st: &PfState, t: &Tenant) -> Value {
    let users = st
        .users
        .values()
        .filter(|u| u["tenant_id"] == json!(t.id))
        .count();
    json!({
        "mfa_status": t.mfa_status,
        "users_count": users,
        "users_with_totp_enabled_count": 0,
        "update_allowed": true,
    })
}

async fn get_mfa(r: OnTenant) -> Response {
    r.run(|st, _, t, _| common::json_response(StatusCode::OK, &mfa_json(st, t)))
}

async fn put_mfa(r: OnTenant, body: Bytes) -> Response {
    r.run(|st, _, t, now| {
        let b = tri!(parse_json(&body));
        let Some(enabled) = b.get("enabled").and_then(Value::as_bool) else {
            return bad_request("'enabled' (boolean) is required.");
        };
        let t = st.tenants.get_mut(&t.id).expect("exists");
        t.mfa_status = if enabled { "enabled" } else { "disabled" }.into();
        t.touch(now);
        let t = t.clone();
        common::json_response(StatusCode::OK, &mfa_json(st, &t))
    })
}
