//! Locations, infrastructure and users of the fake platform.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{json, Value};

use super::{
    auth::Principal,
    routes::{csv, parse_json, query, visible, OnTenant, Pf},
    state::{new_id, PfState},
    wire::{am_error, am_time, bad_request, conflict, forbidden, not_found},
};
use crate::common::{self, Routes};

/// The routes of this file (merged into [`super::routes::router`]).
pub(super) fn routes() -> Routes<Pf> {
    Routes::new()
        .route(
            "GET",
            "/api/2/tenants/{id}/locations",
            get(tenant_locations),
        )
        .route("GET", "/api/2/locations/{id}/infra", get(location_infra))
        .route("GET", "/api/2/infra", get(list_infra))
        .route("POST", "/api/2/users", post(create_user))
        .route("GET", "/api/2/users/check_login", get(check_login))
        .route("GET", "/api/2/users/{id}", get(get_user))
        .route(
            "POST",
            "/api/2/users/{id}/send-activation-email",
            post(send_activation),
        )
}

// ------------------------------------------------------------------ locations, infra

async fn tenant_locations(r: OnTenant) -> Response {
    r.run(|st, _, t, _| {
        let partner = st.partner_of(&t.id).unwrap_or_default();
        let mut locs: Vec<&str> = st
            .visible_infra(&partner)
            .into_iter()
            .map(|i| i.location_id.as_str())
            .collect();
        locs.sort();
        locs.dedup();
        common::json_response(StatusCode::OK, &json!({ "locations": locs }))
    })
}

async fn location_infra(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        let partner = st.partner_of(&p.tenant_id).unwrap_or_default();
        let infras: Vec<&str> = st
            .visible_infra(&partner)
            .into_iter()
            .filter(|i| i.location_id == id)
            .map(|i| i.id.as_str())
            .collect();
        if infras.is_empty() {
            return not_found(&format!("Location {id} not found."));
        }
        common::json_response(StatusCode::OK, &json!({ "infras": infras }))
    })
}

async fn list_infra(State(s): State<Pf>, h: HeaderMap, uri: Uri) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, _| {
        let partner = st.partner_of(&p.tenant_id).unwrap_or_default();
        let wanted = csv(&q, "uuids");
        let items: Vec<Value> = st
            .visible_infra(&partner)
            .into_iter()
            .filter(|i| wanted.as_ref().is_none_or(|w| w.contains(&i.id)))
            .map(|i| st.infra_json(i))
            .collect();
        common::json_response(StatusCode::OK, &json!({ "items": items }))
    })
}

// ------------------------------------------------------------------ users

async fn create_user(State(s): State<Pf>, h: HeaderMap, body: Bytes) -> Response {
    s.authed(&h, |st, p, now| {
        let b = tri!(parse_json(&body));
        let Some(tenant_id) = b.get("tenant_id").and_then(Value::as_str) else {
            return bad_request("'tenant_id' is required.");
        };
        tri!(visible(st, p, tenant_id, false));
        let Some(contact) = b.get("contact").and_then(Value::as_object) else {
            return bad_request("'contact' with 'email' is required.");
        };
        let email = match contact.get("email").and_then(Value::as_str) {
            Some(e) if e.contains('@') => e.to_string(),
            _ => return bad_request("'contact.email' must be a valid e-mail address."),
        };
        let login = b
            .get("login")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| email.clone());
        if st.logins.contains_key(&login.to_lowercase()) {
            return conflict(
                "LoginAlreadyExists",
                &format!("Login '{login}' is already taken."),
            );
        }
        let id = new_id();
        let mut c = contact.clone();
        c.insert("id".into(), json!(new_id()));
        c.insert("created_at".into(), json!(am_time(&now)));
        c.insert("updated_at".into(), json!(am_time(&now)));
        c.entry("types").or_insert(json!([]));
        let user = json!({
            "id": id,
            "version": 1,
            "tenant_id": tenant_id,
            "login": login,
            "contact": c,
            "activated": false,
            "enabled": b.get("enabled").and_then(Value::as_bool).unwrap_or(true),
            "created_at": am_time(&now),
            "updated_at": am_time(&now),
            "deleted_at": null,
            "language": b.get("language").and_then(Value::as_str).unwrap_or("en"),
            "business_types": b.get("business_types").cloned().unwrap_or(json!([])),
            "notifications": b.get("notifications").cloned().unwrap_or(json!([])),
            "mfa_status": "disabled",
        });
        st.logins.insert(login.to_lowercase(), id.clone());
        st.users.insert(id, user.clone());
        // The vendor spec documents 200 (not 201) for POST /users.
        common::json_response(StatusCode::OK, &user)
    })
}

async fn check_login(State(s): State<Pf>, h: HeaderMap, uri: Uri) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, _, _| match q.get("username") {
        None => am_error(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptable",
            "Query parameter 'username' is required.",
        ),
        Some(u) if st.logins.contains_key(&u.to_lowercase()) => conflict(
            "LoginAlreadyExists",
            &format!("Login '{u}' is already taken."),
        ),
        Some(_) => StatusCode::NO_CONTENT.into_response(),
    })
}

fn visible_user<'a>(st: &'a PfState, p: &Principal, id: &str) -> Result<&'a Value, Response> {
    let u = st
        .users
        .get(id)
        .ok_or_else(|| not_found(&format!("User {id} not found.")))?;
    let tenant = u["tenant_id"].as_str().unwrap_or("");
    if !st.in_subtree(tenant, &p.tenant_id) {
        return Err(forbidden("Access to this user is denied."));
    }
    Ok(u)
}

async fn get_user(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        let u = tri!(visible_user(st, p, &id));
        common::json_response(StatusCode::OK, u)
    })
}

/// `POST /users/{id}/send-activation-email`: the spec defines no request body, so any body
/// (even `{}`) is refused with 400 (UNCONFIRMED: the stricter reading; the real server may
/// ignore it).
async fn send_activation(
    State(s): State<Pf>,
    Path(id): Path<String>,
    h: HeaderMap,
    body: Bytes,
) -> Response {
    s.authed(&h, |st, p, _| {
        if !body.is_empty() {
            return bad_request("send-activation-email takes no request body");
        }
        let u = tri!(visible_user(st, p, &id));
        let email = u["contact"]["email"].as_str().unwrap_or("").to_string();
        st.activation_emails.push(email);
        StatusCode::NO_CONTENT.into_response()
    })
}
