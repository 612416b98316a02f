//! Tenant reads of the fake platform: `GET /tenants` (scopes, `lod`, `updated_since`, cursor
//! paging), `GET /tenants/{id}`, its children and users.

use std::ops::Bound;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::Response,
    routing::get,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    render::Lod,
    routes::{
        batch_envelope, csv, decode_cursor, encode_cursor, flag, parse_limit, parse_since, query,
        visible, Listing, OnTenant, Pf,
    },
    state::{OKey, PfState, Tenant},
    wire::bad_request,
    DEFAULT_LIMIT,
};
use crate::common::{self, Routes};

/// The routes of this file (merged into [`super::routes::router`]).
pub(super) fn routes() -> Routes<Pf> {
    Routes::new()
        .route("GET", "/api/2/tenants", get(list_tenants))
        .route("GET", "/api/2/tenants/{id}", get(get_tenant))
        .route("GET", "/api/2/tenants/{id}/children", get(tenant_children))
        .route("GET", "/api/2/tenants/{id}/users", get(tenant_users))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Scope {
    Parent(String),
    Subtree(String),
    Uuids(Vec<String>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TenantCursor {
    scope: Scope,
    updated_since: Option<DateTime<Utc>>,
    allow_deleted: bool,
    /// `expand_offering_items`: embed every tenant's `offering_items`.
    expand_items: bool,
    /// `with_offering_items`: only tenants with (enabled) count offering items.
    with_count_items: bool,
    /// `with_infra_offering_items`: only tenants with (enabled) infra offering items.
    with_infra_items: bool,
    lod: Lod,
    limit: usize,
    ts: DateTime<Utc>,
    last: OKey,
}

async fn list_tenants(State(s): State<Pf>, h: HeaderMap, uri: Uri) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, now| -> Listing {
        let st: &PfState = st;
        let limit_q = parse_limit(&q)?;
        let mut cursor = match q.get("after") {
            Some(a) => decode_cursor::<TenantCursor>(a)?,
            None => {
                let given = ["uuids", "parent_id", "subtree_root_id"]
                    .iter()
                    .filter(|k| q.contains_key(**k))
                    .count();
                if given > 1 {
                    return Err(bad_request(
                        "uuids, parent_id and subtree_root_id are mutually exclusive.",
                    ));
                }
                let scope = if let Some(u) = csv(&q, "uuids") {
                    if u.len() > 100 {
                        return Err(bad_request("At most 100 uuids may be given."));
                    }
                    Scope::Uuids(u)
                } else if let Some(pid) = q.get("parent_id") {
                    visible(st, p, pid, true)?;
                    Scope::Parent(pid.clone())
                } else if let Some(r) = q.get("subtree_root_id") {
                    visible(st, p, r, true)?;
                    Scope::Subtree(r.clone())
                } else {
                    Scope::Subtree(p.tenant_id.clone())
                };
                let lod = match q.get("lod").map(|s| s.to_ascii_lowercase()) {
                    None => Lod::Full,
                    Some(l) if l == "full" => Lod::Full,
                    Some(l) if l == "basic" => Lod::Basic,
                    Some(l) if l == "stamps" => Lod::Stamps,
                    Some(l) => return Err(bad_request(&format!("Unknown lod '{l}'."))),
                };
                TenantCursor {
                    scope,
                    updated_since: parse_since(&q)?,
                    allow_deleted: flag(&q, "allow_deleted"),
                    expand_items: flag(&q, "expand_offering_items"),
                    with_count_items: flag(&q, "with_offering_items"),
                    with_infra_items: flag(&q, "with_infra_offering_items"),
                    lod,
                    limit: DEFAULT_LIMIT,
                    ts: now,
                    last: (0, 0),
                }
            }
        };
        if let Some(l) = limit_q {
            cursor.limit = l;
        }
        let keep = |t: &Tenant| {
            (cursor.allow_deleted || t.deleted_at.is_none())
                && cursor.updated_since.is_none_or(|s| t.updated_at > s)
                && st.in_subtree(&t.id, &p.tenant_id)
                && (!cursor.with_count_items || st.has_items(t, "count"))
                && (!cursor.with_infra_items || st.has_items(t, "infra"))
        };
        let after = (Bound::Excluded(cursor.last), Bound::Unbounded);
        let candidates: Box<dyn Iterator<Item = &Tenant>> = match &cursor.scope {
            Scope::Parent(pid) => Box::new(st.children_in(pid, after)),
            Scope::Subtree(root) => {
                let root = root.clone();
                Box::new(
                    st.order
                        .range(after)
                        .map(|(_, id)| &st.tenants[id])
                        .filter(move |t| st.in_subtree(&t.id, &root)),
                )
            }
            Scope::Uuids(ids) => {
                let mut ts: Vec<&Tenant> = ids
                    .iter()
                    .filter_map(|id| st.tenant(id))
                    .filter(|t| t.key > cursor.last)
                    .collect();
                ts.sort_by_key(|t| t.key);
                ts.dedup_by_key(|t| t.key);
                Box::new(ts.into_iter())
            }
        };
        let mut it = candidates.filter(|t| keep(t));
        let page: Vec<&Tenant> = it.by_ref().take(cursor.limit).collect();
        let more = it.next().is_some();
        let next = match (more, page.last()) {
            (true, Some(last)) => {
                let mut c = cursor.clone();
                c.last = last.key;
                Some(encode_cursor(&c))
            }
            _ => None,
        };
        let items = page
            .iter()
            .map(|t| {
                let expand = cursor.expand_items && st.listings_embed_items;
                st.tenant_json(t, cursor.lod, true, expand)
            })
            .collect();
        batch_envelope(&cursor.ts, next, items)
    })
}

async fn get_tenant(r: OnTenant) -> Response {
    r.run_allowing_deleted(flag(&r.q, "allow_deleted"), |st, _, t, _| {
        common::json_response(StatusCode::OK, &st.tenant_json(t, Lod::Full, false, false))
    })
}

async fn tenant_children(r: OnTenant) -> Response {
    r.run(|st, _, t, _| {
        let ids: Vec<&String> = st
            .children_of(&t.id)
            .filter(|t| t.deleted_at.is_none())
            .map(|t| &t.id)
            .collect();
        common::json_response(StatusCode::OK, &json!({ "items": ids }))
    })
}

async fn tenant_users(r: OnTenant) -> Response {
    r.run(|st, _, t, _| {
        let ids: Vec<&Value> = st
            .users
            .values()
            .filter(|u| u["tenant_id"] == json!(t.id))
            .map(|u| &u["id"])
            .collect();
        common::json_response(StatusCode::OK, &json!({ "items": ids }))
    })
}
