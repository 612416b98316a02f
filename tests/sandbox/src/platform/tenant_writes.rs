//! Tenant writes of the fake platform: `POST /tenants`, `PUT /tenants/{id}` (optimistic
//! `version`, `update_lock`), `DELETE /tenants/{id}?version=` (soft delete).

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{post, put},
};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::{
    render::Lod,
    routes::{check_keys, opt_bool, opt_string, parse_json, visible, OnTenant, Pf},
    state::{item_range, new_id, Tenant},
    wire::{am_time, bad_request, conflict, forbidden},
};
use crate::common::{self, Routes};

/// The routes of this file (merged into [`super::routes::router`]).
pub(super) fn routes() -> Routes<Pf> {
    Routes::new()
        .route("POST", "/api/2/tenants", post(create_tenant))
        .route(
            "PUT DELETE",
            "/api/2/tenants/{id}",
            put(update_tenant).delete(delete_tenant),
        )
}

const POST_KEYS: &[&str] = &[
    "name",
    "parent_id",
    "kind",
    "contact",
    "company_billing_contact",
    "enabled",
    "customer_id",
    "internal_tag",
    "language",
    "default_idp_id",
    "update_lock",
    "ancestral_access",
    "settings",
    "customer_type",
];

const PUT_KEYS: &[&str] = &[
    "name",
    "customer_type",
    "parent_id",
    "kind",
    "contact",
    "enabled",
    "customer_id",
    "version",
    "brand_id",
    "internal_tag",
    "language",
    "default_idp_id",
    "update_lock",
    "ancestral_access",
    "external_operation_status",
    "mfa_status",
];

fn merge_contact(existing: &Value, patch: &Value, now: DateTime<Utc>) -> Result<Value, Response> {
    let Some(patch) = patch.as_object() else {
        return Err(bad_request("'contact' must be an object."));
    };
    let mut c = match existing {
        Value::Object(m) => m.clone(),
        _ => {
            let mut m = Map::new();
            m.insert("id".into(), json!(new_id()));
            m.insert("types".into(), json!(["legal"]));
            m.insert("created_at".into(), json!(am_time(&now)));
            m
        }
    };
    for (k, v) in patch {
        if k != "id" {
            c.insert(k.clone(), v.clone());
        }
    }
    c.insert("updated_at".into(), json!(am_time(&now)));
    Ok(Value::Object(c))
}

/// 409 unless `version` is the tenant's current one.
fn check_version(t: &Tenant, version: i64) -> Result<(), Response> {
    if version == t.version {
        return Ok(());
    }
    Err(conflict(
        "VersionConflict",
        &format!(
            "Tenant {} was modified: version {version} is stale (current {}).",
            t.id, t.version
        ),
    ))
}

async fn create_tenant(State(s): State<Pf>, h: HeaderMap, body: Bytes) -> Response {
    s.authed(&h, |st, p, now| {
        let b = tri!(parse_json(&body));
        tri!(check_keys(&b, POST_KEYS));
        let name = match b.get("name").and_then(Value::as_str).map(str::trim) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => return bad_request("'name' is required."),
        };
        let Some(parent_id) = b.get("parent_id").and_then(Value::as_str) else {
            return bad_request("'parent_id' is required.");
        };
        let kind = match b.get("kind").and_then(Value::as_str) {
            Some(k @ ("customer" | "folder" | "unit" | "partner")) => k.to_string(),
            Some(k) => return bad_request(&format!("Unsupported tenant kind '{k}'.")),
            None => return bad_request("'kind' is required."),
        };
        tri!(visible(st, p, parent_id, false));
        let customer_id = tri!(opt_string(&b, "customer_id")).flatten();
        let internal_tag = tri!(opt_string(&b, "internal_tag")).flatten();
        let language = tri!(opt_string(&b, "language")).flatten();
        let enabled = tri!(opt_bool(&b, "enabled"));
        let ancestral = tri!(opt_bool(&b, "ancestral_access"));
        let lock_enabled = b
            .get("update_lock")
            .and_then(|u| u.get("enabled"))
            .and_then(Value::as_bool);
        let contact = match b.get("contact") {
            None | Some(Value::Null) => Value::Null,
            Some(c) => tri!(merge_contact(&Value::Null, c, now)),
        };
        let id = tri!(st.create_tenant(Some(parent_id), &name, &kind, customer_id.as_deref(), now));
        if kind == "partner" {
            // A sub-partner resells its parent's catalogue.
            let parent_cat = st.available(parent_id).to_vec();
            for e in &parent_cat {
                st.put_item(&id, e, 0, now);
            }
            st.catalog.insert(id.clone(), parent_cat);
        }
        let t = st.tenants.get_mut(&id).expect("created");
        t.internal_tag = internal_tag;
        if let Some(l) = language {
            t.language = l;
        }
        if let Some(e) = enabled {
            t.enabled = e;
        }
        if let Some(a) = ancestral {
            t.ancestral_access = a;
        }
        if let Some(l) = lock_enabled {
            t.update_lock = l;
            t.update_lock_owner = l.then(|| p.tenant_id.clone());
        }
        if let Some(ct) = b.get("customer_type").and_then(Value::as_str) {
            t.customer_type = ct.to_string();
        }
        t.contact = contact;
        let t = st.tenants[&id].clone();
        common::json_response(
            StatusCode::CREATED,
            &st.tenant_json(&t, Lod::Full, false, false),
        )
    })
}

async fn update_tenant(r: OnTenant, body: Bytes) -> Response {
    r.run(|st, p, t, now| {
        let id = &t.id;
        let b = tri!(parse_json(&body));
        tri!(check_keys(&b, PUT_KEYS));
        let version = match b.get("version").and_then(Value::as_i64) {
            Some(v) => v,
            None => {
                return conflict(
                    "VersionConflict",
                    "The 'version' of the tenant is required for an update.",
                )
            }
        };
        tri!(check_version(t, version));
        if t.update_lock && t.update_lock_owner.as_deref() != Some(p.tenant_id.as_str()) {
            return forbidden(&format!(
                "Tenant {id} is locked for updates (update_lock) by its owner."
            ));
        }
        if let Some(pid) = b.get("parent_id").and_then(Value::as_str) {
            if Some(pid) != t.parent_id.as_deref() {
                return bad_request("Moving tenants is not supported by the sandbox.");
            }
        }
        if let Some(k) = b.get("kind").and_then(Value::as_str) {
            if k != t.kind {
                return bad_request("Changing a tenant's kind is not supported.");
            }
        }
        let mut n = t.clone();
        if let Some(v) = b.get("name") {
            match v.as_str().map(str::trim) {
                Some(name) if !name.is_empty() => {
                    if let Some(pid) = &t.parent_id {
                        if st.live_sibling_named(pid, name, Some(id)) {
                            return conflict(
                                "TenantNameExists",
                                &format!("Tenant with name '{name}' already exists."),
                            );
                        }
                    }
                    n.name = name.to_string();
                }
                _ => return bad_request("'name' must be a non-empty string."),
            }
        }
        if let Some(e) = tri!(opt_bool(&b, "enabled")) {
            n.enabled = e;
        }
        if let Some(c) = tri!(opt_string(&b, "customer_id")) {
            n.customer_id = c;
        }
        if let Some(c) = tri!(opt_string(&b, "internal_tag")) {
            n.internal_tag = c;
        }
        if let Some(Some(l)) = tri!(opt_string(&b, "language")) {
            n.language = l;
        }
        if let Some(Some(ct)) = tri!(opt_string(&b, "customer_type")) {
            n.customer_type = ct;
        }
        if let Some(a) = tri!(opt_bool(&b, "ancestral_access")) {
            n.ancestral_access = a;
        }
        if let Some(l) = b
            .get("update_lock")
            .and_then(|u| u.get("enabled"))
            .and_then(Value::as_bool)
        {
            n.update_lock = l;
            n.update_lock_owner = l.then(|| p.tenant_id.clone());
        }
        if let Some(m) = tri!(opt_string(&b, "mfa_status")) {
            match m.as_deref() {
                Some(v @ ("disabled" | "enabled" | "setup_required" | "forcibly_disabled")) => {
                    n.mfa_status = v.to_string()
                }
                _ => return bad_request("Invalid 'mfa_status'."),
            }
        }
        if let Some(c) = b.get("contact") {
            if !c.is_null() {
                n.contact = tri!(merge_contact(&t.contact, c, now));
            }
        }
        n.touch(now);
        let json = st.tenant_json(&n, Lod::Full, false, false);
        if let Some(pid) = &t.parent_id {
            st.live_names.remove(&(pid.clone(), t.name.to_lowercase()));
            st.live_names
                .insert((pid.clone(), n.name.to_lowercase()), id.clone());
        }
        st.tenants.insert(id.clone(), n);
        common::json_response(StatusCode::OK, &json)
    })
}

async fn delete_tenant(r: OnTenant) -> Response {
    r.run(|st, p, t, now| {
        if t.id == p.tenant_id {
            return forbidden("A client cannot delete its own tenant.");
        }
        let version = match r.q.get("version").map(|v| v.trim().parse::<i64>()) {
            Some(Ok(v)) => v,
            Some(Err(_)) => return bad_request("'version' must be an integer."),
            None => return bad_request("Query parameter 'version' is required."),
        };
        tri!(check_version(t, version));
        if st.has_children(t) {
            return conflict(
                "TenantHasChildren",
                "Tenant has child tenants; delete them first.",
            );
        }
        if let Some(pid) = &t.parent_id {
            st.live_names.remove(&(pid.clone(), t.name.to_lowercase()));
        }
        let tm = st.tenants.get_mut(&t.id).expect("exists");
        tm.deleted_at = Some(now);
        tm.touch(now);
        for (_, it) in st.items.range_mut(item_range(t.key)) {
            it.deleted_at = Some(now);
            it.updated_at = now;
        }
        StatusCode::NO_CONTENT.into_response()
    })
}
