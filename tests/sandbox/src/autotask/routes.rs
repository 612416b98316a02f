//! The fake Autotask's router: path canonicalisation (paths are case-insensitive), the
//! thread-limit key, zone/version/threshold information, and the entity routes.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, Request, State},
    http::{HeaderMap, StatusCode, Uri},
    middleware::Next,
    response::Response,
    routing::{get, post},
    Router,
};
use serde_json::json;

use super::{
    entities::{Entity, ALL_ENTITIES},
    errors::{at_error, err500},
    state::AtState,
    WINDOW_MINUTES, ZONE_NAME,
};
use crate::common::{self, lock, QueryParams, Routes, Server};

pub(super) type At = Arc<Server<AtState>>;

const V1: &str = "/ATServicesRest/V1.0";

/// Canonical spellings of the path segments the fake serves (paths are case-insensitive).
const CANONICAL_SEGMENTS: &[&str] = &[
    "V1.0",
    "VersionInformation",
    "ZoneInformation",
    "ThresholdInformation",
    "Companies",
    "Contacts",
    "Contracts",
    "ContractServices",
    "ContractServiceUnits",
    "ContractServiceAdjustments",
    "Services",
    "BillingCodes",
    "Tickets",
    "ServiceAdjustments",
    "ServiceUnits",
    "query",
    "count",
    "entityInformation",
    "fields",
    "userDefinedFields",
];

/// The canonical form of an `/ATServicesRest/…` path (`None` for other paths).
pub(super) fn canonical_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix('/')?;
    let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if !first.eq_ignore_ascii_case("ATServicesRest") {
        return None;
    }
    let mut out = String::from("/ATServicesRest");
    if rest.len() > first.len() {
        for seg in tail.split('/') {
            out.push('/');
            match CANONICAL_SEGMENTS
                .iter()
                .find(|c| c.eq_ignore_ascii_case(seg))
            {
                Some(c) => out.push_str(c),
                None => out.push_str(seg),
            }
        }
    }
    (out != path).then_some(out)
}

/// Rewrites `/atservicesrest/v1.0/companies/QUERY` to the canonical case before routing.
pub(super) async fn canonicalize(mut req: Request, next: Next) -> Response {
    if let Some(p) = canonical_path(req.uri().path()) {
        let pq = match req.uri().query() {
            Some(q) => format!("{p}?{q}"),
            None => p,
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(v) = pq.parse() {
            parts.path_and_query = Some(v);
            if let Ok(u) = Uri::from_parts(parts) {
                *req.uri_mut() = u;
            }
        }
    }
    next.run(req).await
}

/// Thread-limit key `"{ApiIntegrationCode} {Entity}"` (zone/version requests are exempt).
pub(super) fn endpoint_key(req: &Request) -> Option<String> {
    let segs: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    if segs.len() < 3
        || !segs[0].eq_ignore_ascii_case("ATServicesRest")
        || !segs[1].eq_ignore_ascii_case("V1.0")
        || segs[2].eq_ignore_ascii_case("ZoneInformation")
    {
        return None;
    }
    let parent = segs[2];
    let child = (segs.len() >= 5 && segs[3].parse::<i64>().is_ok()).then(|| segs[4]);
    let entity = match child {
        Some(c) if parent.eq_ignore_ascii_case("Contracts") => {
            if c.eq_ignore_ascii_case("Services") {
                "ContractServices".to_string()
            } else if c.eq_ignore_ascii_case("ServiceAdjustments") {
                "ContractServiceAdjustments".to_string()
            } else if c.eq_ignore_ascii_case("ServiceUnits") {
                "ContractServiceUnits".to_string()
            } else {
                format!("Contract{c}")
            }
        }
        Some(c) => c.to_string(),
        None => parent.to_string(),
    };
    let code = req
        .headers()
        .get("apiintegrationcode")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    Some(format!("{code} {entity}"))
}

pub(super) fn router(inner: At) -> (Router, Vec<(String, String)>) {
    let mut r: Routes<At> = Routes::new()
        .route(
            "GET",
            &format!("{V1}/ZoneInformation"),
            get(zone_information),
        )
        .route(
            "GET",
            "/ATServicesRest/VersionInformation",
            get(version_information),
        )
        .route(
            "GET",
            &format!("{V1}/ThresholdInformation"),
            get(threshold_information),
        );
    for e in ALL_ENTITIES {
        let base = format!("{V1}/{}", e.name());
        r = r
            .route(
                "GET",
                &format!("{base}/entityInformation"),
                get(move |State(s): State<At>, h: HeaderMap| async move { s.entity_info(e, &h) }),
            )
            .route(
                "GET",
                &format!("{base}/entityInformation/fields"),
                get(move |State(s): State<At>, h: HeaderMap| async move { s.field_info(e, &h) }),
            )
            .route(
                "GET",
                &format!("{base}/entityInformation/userDefinedFields"),
                get(move |State(s): State<At>, h: HeaderMap| async move { s.udf_info(e, &h) }),
            );
        if !e.can_query() {
            continue;
        }
        for count in [false, true] {
            let path = if count {
                format!("{base}/query/count")
            } else {
                format!("{base}/query")
            };
            r = r.route(
                "GET POST",
                &path,
                get(
                    move |State(s): State<At>, h: HeaderMap, uri: Uri| async move {
                        s.query(e, None, &h, &uri, &[], count)
                    },
                )
                .post(
                    move |State(s): State<At>, h: HeaderMap, uri: Uri, body: Bytes| async move {
                        s.query(e, None, &h, &uri, &body, count)
                    },
                ),
            );
        }
        r = r.route(
            "GET",
            &format!("{base}/{{id}}"),
            get(
                move |State(s): State<At>, h: HeaderMap, Path(id): Path<String>| async move {
                    s.get_one(e, None, &h, &id)
                },
            ),
        );
    }
    // Root writes.
    for e in [
        Entity::Companies,
        Entity::Contracts,
        Entity::Services,
        Entity::Tickets,
    ] {
        r = r.route(
            "POST PATCH",
            &format!("{V1}/{}", e.name()),
            post(
                move |State(s): State<At>, h: HeaderMap, body: Bytes| async move {
                    s.write(e, None, false, &h, &body)
                },
            )
            .patch(
                move |State(s): State<At>, h: HeaderMap, body: Bytes| async move {
                    s.write(e, None, true, &h, &body)
                },
            ),
        );
    }
    r = r.route(
        "POST",
        &format!("{V1}/ContractServiceAdjustments"),
        post(
            |State(s): State<At>, h: HeaderMap, body: Bytes| async move {
                s.adjustment(None, &h, &body)
            },
        ),
    );
    // Children of Contracts and Companies.
    for (parent, child, e) in [
        ("Contracts", "Services", Entity::ContractServices),
        ("Contracts", "ServiceUnits", Entity::ContractServiceUnits),
        ("Companies", "Contacts", Entity::Contacts),
    ] {
        let base = format!("{V1}/{parent}/{{id}}/{child}");
        let scope_field = if parent == "Contracts" {
            "contractID"
        } else {
            "companyID"
        };
        let mut list_methods = "GET";
        let mut list = get(
            move |State(s): State<At>, h: HeaderMap, uri: Uri, Path(p): Path<String>| async move {
                s.child_list(e, scope_field, &p, &h, &uri)
            },
        );
        if matches!(e, Entity::ContractServices | Entity::Contacts) {
            list_methods = "GET POST PATCH";
            list = list
                .post(
                    move |State(s): State<At>, h: HeaderMap, Path(p): Path<String>, body: Bytes| async move {
                        s.write(e, Some(&p), false, &h, &body)
                    },
                )
                .patch(
                    move |State(s): State<At>, h: HeaderMap, Path(p): Path<String>, body: Bytes| async move {
                        s.write(e, Some(&p), true, &h, &body)
                    },
                );
        }
        r =
            r.route(list_methods, &base, list).route(
                "GET",
                &format!("{base}/{{childId}}"),
                get(
                    move |State(s): State<At>,
                          h: HeaderMap,
                          Path((p, id)): Path<(String, String)>| async move {
                        s.get_one(e, Some((scope_field, &p)), &h, &id)
                    },
                ),
            );
    }
    r = r.route(
        "POST",
        &format!("{V1}/Contracts/{{id}}/ServiceAdjustments"),
        post(
            |State(s): State<At>, h: HeaderMap, Path(p): Path<String>, body: Bytes| async move {
                s.adjustment(Some(&p), &h, &body)
            },
        ),
    );
    let (router, list) = r.into_parts();
    let router = router
        .fallback(|uri: Uri| async move {
            at_error(
                StatusCode::NOT_FOUND,
                &format!(
                    "The requested resource does not exist or is not supported by this entity: {}",
                    uri.path()
                ),
            )
        })
        .with_state(inner);
    (router, list)
}

async fn zone_information(State(s): State<At>, uri: Uri) -> Response {
    let q = QueryParams::from_uri(&uri);
    let known = q
        .get("user")
        .is_some_and(|u| lock(&s.state).users.contains_key(&u.trim().to_lowercase()));
    if !known {
        return err500("Zone information could not be determined");
    }
    common::json_response(
        StatusCode::OK,
        &json!({
            "zoneName": ZONE_NAME,
            "url": format!("{}/ATServicesRest/", s.url),
            "webUrl": format!("{}/", s.url),
            "ci": 4242,
        }),
    )
}

async fn version_information() -> Response {
    common::json_response(StatusCode::OK, &json!({ "apiVersions": ["1.0"] }))
}

async fn threshold_information(State(s): State<At>, h: HeaderMap) -> Response {
    s.api(&h, false, |st, ctx| {
        let used = st.used(ctx.now);
        Ok(json!({
            "externalRequestThreshold": st.threshold,
            "requestThresholdTimeframe": WINDOW_MINUTES,
            "currentTimeframeRequestCount": used,
        }))
    })
}
