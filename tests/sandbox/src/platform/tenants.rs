//! Tenant reads of the fake platform: `GET /tenants` (scopes, `lod`, `updated_since`, cursor
//! paging), `GET /tenants/{id}`, its children and users.

use std::ops::Bound;

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode, Uri},
    response::Response,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{
    render::Lod,
    routes::{
        batch_envelope, csv, decode_cursor, encode_cursor, flag, parse_limit, parse_since, query,
        visible, Listing, Pf,
    },
    state::{OKey, PfState, Tenant},
    wire::bad_request,
    DEFAULT_LIMIT,
};
use crate::common;

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
    with_items: bool,
    lod: Lod,
    limit: usize,
    ts: DateTime<Utc>,
    last: OKey,
}

pub(super) async fn list_tenants(State(s): State<Pf>, h: HeaderMap, uri: Uri) -> Response {
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
                    with_items: flag(&q, "with_offering_items")
                        || flag(&q, "expand_offering_items")
                        || flag(&q, "with_infra_offering_items"),
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
            .map(|t| st.tenant_json(t, cursor.lod, true, cursor.with_items))
            .collect();
        batch_envelope(&cursor.ts, next, items)
    })
}

pub(super) async fn get_tenant(
    State(s): State<Pf>,
    Path(id): Path<String>,
    h: HeaderMap,
    uri: Uri,
) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, _| {
        let t = tri!(visible(st, p, &id, flag(&q, "allow_deleted")));
        common::json_response(StatusCode::OK, &st.tenant_json(t, Lod::Full, false, false))
    })
}

pub(super) async fn tenant_children(
    State(s): State<Pf>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> Response {
    s.authed(&h, |st, p, _| {
        tri!(visible(st, p, &id, false));
        let ids: Vec<&String> = st
            .children_of(&id)
            .filter(|t| t.deleted_at.is_none())
            .map(|t| &t.id)
            .collect();
        common::json_response(StatusCode::OK, &json!({ "items": ids }))
    })
}

pub(super) async fn tenant_users(
    State(s): State<Pf>,
    Path(id): Path<String>,
    h: HeaderMap,
) -> Response {
    s.authed(&h, |st, p, _| {
        tri!(visible(st, p, &id, false));
        let ids: Vec<&Value> = st
            .users
            .values()
            .filter(|u| u["tenant_id"] == json!(id))
            .map(|u| &u["id"])
            .collect();
        common::json_response(StatusCode::OK, &json!({ "items": ids }))
    })
}
