//! Offering items and usages of the fake platform: a tenant's items (filters), what a child
//! may get, `PUT /tenants/{id}/offering_items` (quota versions, `check_usage`), the batch
//! `GET /tenants/offering_items` (cursor paging), and usages per tenant and in batch (one entry
//! per usage name; `PUT /tenants/usages` is in `usage.rs`).

use std::ops::Bound;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::Response,
    routing::get,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    routes::{
        batch_envelope, check_keys, csv, decode_cursor, encode_cursor, flag, parse_json,
        parse_limit, parse_since, query, visible, Listing, OnTenant, Pf,
    },
    state::{CatalogEntry, IKey, Item, PfState, Tenant},
    usage::{self, ukey},
    wire::{bad_request, conflict, forbidden, rfc3339},
    APPLICATION_ID, DEFAULT_LIMIT,
};
use crate::common::{self, Routes};

/// The routes of this file (merged into [`super::routes::router`]).
pub(super) fn routes() -> Routes<Pf> {
    Routes::new()
        .route("GET", "/api/2/tenants/offering_items", get(list_all_items))
        .route(
            "GET PUT",
            "/api/2/tenants/usages",
            get(batch_usages).put(usage::put_usages),
        )
        .route(
            "GET PUT",
            "/api/2/tenants/{id}/offering_items",
            get(tenant_items).put(put_items),
        )
        .route(
            "GET",
            "/api/2/tenants/{id}/offering_items/available_for_child",
            get(available_for_child),
        )
        .route("GET", "/api/2/tenants/{id}/usages", get(tenant_usages))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ItemCursor {
    root: String,
    updated_since: Option<DateTime<Utc>>,
    allow_deleted: bool,
    usage_names: Option<Vec<String>>,
    editions: Option<Vec<String>>,
    names: Option<Vec<String>>,
    limit: usize,
    ts: DateTime<Utc>,
    last: Option<IKey>,
}

async fn tenant_items(r: OnTenant) -> Response {
    r.run(|st, _, t, now| {
        let q = &r.q;
        let usage_names = csv(q, "usage_names");
        let edition = q
            .get("edition")
            .cloned()
            .unwrap_or_else(|| "standard".into());
        let status = match q.get("status").map(|v| v.trim().parse::<u8>()) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => return bad_request("'status' must be 0 or 1."),
        };
        let typ = q.get("type");
        let infra = q.get("infra_uuid");
        let items: Vec<Value> = st
            .tenant_items(t)
            .filter(|_| edition == "*" || edition == "standard")
            .filter(|i| {
                usage_names
                    .as_ref()
                    .is_none_or(|u| u.contains(&i.usage_name))
            })
            .filter(|i| status.is_none_or(|s| i.status == s))
            .filter(|i| typ.is_none_or(|t| t == i.item_type))
            .filter(|i| infra.is_none_or(|x| i.infra_id.as_deref() == Some(x.as_str())))
            .map(|i| st.item_json(i))
            .collect();
        items_response(&now, items)
    })
}

async fn available_for_child(r: OnTenant) -> Response {
    r.run(|st, _, t, now| {
        let id = &t.id;
        let typ = r.q.get("type");
        let items: Vec<Value> = if st.catalog.contains_key(id) {
            st.catalog[id]
                .iter()
                .filter(|e| typ.is_none_or(|t| t == e.item_type))
                .map(|e| st.item_json(&Item::new(id, e, 1, t.created_at)))
                .collect()
        } else {
            st.tenant_items(t)
                .filter(|i| i.status == 1)
                .filter(|i| typ.is_none_or(|t| t == i.item_type))
                .map(|i| st.item_json(i))
                .collect()
        };
        items_response(&now, items)
    })
}

/// `{timestamp, items}` of the item endpoints.
fn items_response(now: &DateTime<Utc>, items: Vec<Value>) -> Response {
    common::json_response(
        StatusCode::OK,
        &json!({"timestamp": rfc3339(now), "items": items}),
    )
}

/// A tenant's usages (one per usage name of each item: its own always, the others when set),
/// optionally only those with the given usage names.
fn usages_of(
    st: &PfState,
    t: &Tenant,
    names: &Option<Vec<String>>,
    now: DateTime<Utc>,
) -> Vec<Value> {
    let mut out = Vec::new();
    for i in st.tenant_items(t) {
        for un in st.usage_names(i, false) {
            if names.as_ref().is_none_or(|n| n.contains(&un)) {
                let value = st.current(&ukey(&t.id, &i.name, i.infra_id.as_deref(), &un));
                out.push(st.usage_json(t, i, &un, value, now));
            }
        }
    }
    out
}

struct ItemChange {
    entry: CatalogEntry,
    status: Option<u8>,
    quota: Option<(Option<f64>, Option<f64>)>,
}

fn quota_number(q: &Value, key: &str, item: &str) -> Result<Option<f64>, Response> {
    match q.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(bad_request(&format!(
            "Offering item '{item}': quota.{key} must be a number or null."
        ))),
    }
}

async fn put_items(r: OnTenant, body: Bytes) -> Response {
    r.run(|st, _, t, now| {
        let id = &t.id;
        let b = tri!(parse_json(&body));
        tri!(check_keys(&b, &["offering_items", "check_usage"]));
        let Some(reqs) = b.get("offering_items").and_then(Value::as_array) else {
            return bad_request("'offering_items' (array) is required.");
        };
        let check_usage = b.get("check_usage").and_then(Value::as_bool).unwrap_or(false);
        let available = st.available(id).to_vec();
        let mut changes = Vec::new();
        let mut conflicts = Vec::new();
        for r in reqs {
            let Some(name) = r.get("name").and_then(Value::as_str) else {
                return bad_request("Every offering item needs a 'name'.");
            };
            if let Some(app) = r.get("application_id").and_then(Value::as_str) {
                if app != APPLICATION_ID {
                    return bad_request(&format!(
                        "Offering item '{name}': unknown application_id '{app}'."
                    ));
                }
            }
            let infra = r.get("infra_id").and_then(Value::as_str);
            let Some(entry) = available
                .iter()
                .find(|e| e.name == name && e.infra_id.as_deref() == infra)
                .cloned()
            else {
                let msg = match (infra, available.iter().any(|e| e.name == name && e.infra_id.is_some())) {
                    (None, true) => format!("Offering item '{name}' requires 'infra_id'."),
                    (Some(i), _) => format!(
                        "Offering item '{name}' with infra_id '{i}' is not available for tenant {id}."
                    ),
                    (None, false) => format!("Offering item '{name}' is not available for tenant {id}."),
                };
                return bad_request(&msg);
            };
            let status = match r.get("status") {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_u64() {
                    Some(s @ (0 | 1)) => Some(s as u8),
                    _ => {
                        return bad_request(&format!(
                            "Offering item '{name}': status must be 0 or 1."
                        ))
                    }
                },
            };
            let key = st.ikey(id, name, infra).expect("tenant");
            let existing = st.items.get(&key);
            let quota = match r.get("quota") {
                None | Some(Value::Null) => None,
                Some(q @ Value::Object(_)) => {
                    if let Some(v) = q.get("version").filter(|v| !v.is_null()) {
                        let current = existing.map(|i| i.quota_version).unwrap_or(0);
                        if v.as_i64() != Some(current) {
                            conflicts.push(format!(
                                "{name}{}: quota version {v} != {current}",
                                infra.map(|i| format!("/{i}")).unwrap_or_default()
                            ));
                        }
                    }
                    Some((
                        tri!(quota_number(q, "value", name)),
                        tri!(quota_number(q, "overage", name)),
                    ))
                }
                Some(_) => return bad_request(&format!("Offering item '{name}': quota must be an object.")),
            };
            if check_usage && status == Some(0) && existing.is_some_and(|i| i.status == 1) {
                let used = st.usage(id, name, infra);
                if used > 0.0 {
                    return bad_request(&format!(
                        "Offering item '{name}' cannot be disabled: it has usage ({used})."
                    ));
                }
            }
            changes.push(ItemChange {
                entry,
                status,
                quota,
            });
        }
        if !conflicts.is_empty() {
            return conflict(
                "QuotaVersionConflict",
                &format!(
                    "Offering item quota was modified concurrently: {}.",
                    conflicts.join("; ")
                ),
            );
        }
        let mut updated: Vec<IKey> = changes
            .iter()
            .map(|c| st.change_item(id, &c.entry, c.status, c.quota, now))
            .collect();
        updated.dedup();
        let items: Vec<Value> = updated
            .iter()
            .filter_map(|k| st.items.get(k))
            .map(|i| st.item_json(i))
            .collect();
        items_response(&now, items)
    })
}

async fn list_all_items(State(s): State<Pf>, h: HeaderMap, uri: Uri) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, now| -> Listing {
        let limit_q = parse_limit(&q)?;
        let mut cursor = match q.get("after") {
            Some(a) => decode_cursor::<ItemCursor>(a)?,
            None => {
                let root = match q.get("subtree_root_tenant_id") {
                    Some(r) => {
                        visible(st, p, r, true)?;
                        r.clone()
                    }
                    None => p.tenant_id.clone(),
                };
                ItemCursor {
                    root,
                    updated_since: parse_since(&q)?,
                    allow_deleted: flag(&q, "allow_deleted"),
                    usage_names: csv(&q, "usage_names"),
                    editions: csv(&q, "editions"),
                    names: csv(&q, "offering_items"),
                    limit: DEFAULT_LIMIT,
                    ts: now,
                    last: None,
                }
            }
        };
        if let Some(l) = limit_q {
            cursor.limit = l;
        }
        if !st.in_subtree(&cursor.root, &p.tenant_id) {
            return Err(forbidden(
                "Access to the subtree is denied for this client.",
            ));
        }
        let range = match &cursor.last {
            Some(k) => (Bound::Excluded(k.clone()), Bound::Unbounded),
            None => (Bound::Unbounded, Bound::Unbounded),
        };
        // Items of one tenant are contiguous: cache the subtree verdict per tenant.
        let mut last_tenant: Option<(&str, bool)> = None;
        let mut it = st.items.range(range).filter(|(_, i)| {
            let inside = match last_tenant {
                Some((t, v)) if t == i.tenant_id => v,
                _ => {
                    let v = st.in_subtree(&i.tenant_id, &cursor.root);
                    last_tenant = Some((&i.tenant_id, v));
                    v
                }
            };
            inside
                && (cursor.allow_deleted || i.deleted_at.is_none())
                && cursor.updated_since.is_none_or(|s| i.updated_at > s)
                && cursor
                    .usage_names
                    .as_ref()
                    .is_none_or(|u| u.contains(&i.usage_name))
                && cursor
                    .editions
                    .as_ref()
                    .is_none_or(|e| e.iter().any(|e| e == "*" || e == "standard"))
                && cursor.names.as_ref().is_none_or(|n| n.contains(&i.name))
        });
        let page: Vec<(&IKey, &Item)> = it.by_ref().take(cursor.limit).collect();
        let more = it.next().is_some();
        let next = match (more, page.last()) {
            (true, Some((k, _))) => {
                let mut c = cursor.clone();
                c.last = Some((*k).clone());
                Some(encode_cursor(&c))
            }
            _ => None,
        };
        let items = page.iter().map(|(_, i)| st.item_json(i)).collect();
        batch_envelope(&cursor.ts, next, items)
    })
}

async fn tenant_usages(r: OnTenant) -> Response {
    r.run(|st, _, t, now| {
        let items = usages_of(st, t, &csv(&r.q, "usage_names"), now);
        common::json_response(StatusCode::OK, &json!({ "items": items }))
    })
}

async fn batch_usages(State(s): State<Pf>, h: HeaderMap, uri: Uri) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, now| {
        let Some(ids) = csv(&q, "tenants") else {
            return bad_request("Query parameter 'tenants' is required.");
        };
        let names = csv(&q, "usage_names");
        let mut out = Vec::new();
        for id in ids {
            let t = tri!(visible(st, p, &id, false));
            let usages = usages_of(st, t, &names, now);
            out.push(json!({"tenant": id, "usages": usages}));
        }
        common::json_response(StatusCode::OK, &json!({ "items": out }))
    })
}
