//! The fake ConnectWise Manage's router: `/login/companyinfo/{id}`, `system/info`, the list,
//! count and record routes of every resource, and the writes of callbacks and additions.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, Uri},
    response::Response,
    routing::get,
    Router,
};
use serde_json::{json, Value};

use super::{
    errors::cw_error,
    state::{CwState, Res},
    writes::Write,
};
use crate::common::{self, lock, Routes, Server};

pub(super) type Cw = Arc<Server<CwState>>;

const API: &str = "/{codebase}/apis/3.0";

pub(super) fn router(inner: Cw) -> (Router, Vec<(String, String)>) {
    let mut r: Routes<Cw> = Routes::new()
        .route("GET", "/login/companyinfo/{company}", get(company_info))
        .route("GET", &format!("{API}/system/info"), get(system_info));
    for (path, res) in [
        ("company/companies", Res::Companies),
        ("company/contacts", Res::Contacts),
        ("finance/agreements", Res::Agreements),
        ("procurement/catalog", Res::Catalog),
        ("system/callbacks", Res::Callbacks),
        ("service/tickets", Res::Tickets),
    ] {
        let base = format!("{API}/{path}");
        let mut list = get(
            move |State(s): State<Cw>, Path(cb): Path<String>, h: HeaderMap, uri: Uri| async move {
                s.list(&cb, &h, &uri, res, None, false)
            },
        );
        let mut one = get(
            move |State(s): State<Cw>,
                  Path((cb, id)): Path<(String, String)>,
                  h: HeaderMap,
                  uri: Uri| async move { s.get_one(&cb, &h, &uri, res, None, &id) },
        );
        let (mut list_methods, mut one_methods) = ("GET", "GET");
        if matches!(
            res,
            Res::Companies | Res::Contacts | Res::Agreements | Res::Tickets
        ) {
            (list_methods, one_methods) = ("GET POST", "GET PATCH");
            list =
                list.post(
                    move |State(s): State<Cw>,
                          Path(cb): Path<String>,
                          h: HeaderMap,
                          body: Bytes| async move {
                        s.entity_write(&cb, &h, res, None, &body)
                    },
                );
            one = one.patch(
                move |State(s): State<Cw>,
                      Path((cb, id)): Path<(String, String)>,
                      h: HeaderMap,
                      body: Bytes| async move {
                    s.entity_write(&cb, &h, res, Some(&id), &body)
                },
            );
        }
        if res == Res::Callbacks {
            (list_methods, one_methods) = ("GET POST", "GET PUT DELETE");
            list = list.post(
                |State(s): State<Cw>, Path(cb): Path<String>, h: HeaderMap, body: Bytes| async move {
                    s.callback_write(&cb, &h, None, &body)
                },
            );
            one = one
                .put(
                    |State(s): State<Cw>,
                     Path((cb, id)): Path<(String, String)>,
                     h: HeaderMap,
                     body: Bytes| async move {
                        s.callback_write(&cb, &h, Some(&id), &body)
                    },
                )
                .delete(
                    |State(s): State<Cw>, Path((cb, id)): Path<(String, String)>, h: HeaderMap| async move {
                        s.callback_delete(&cb, &h, &id)
                    },
                );
        }
        r =
            r.route(list_methods, &base, list)
                .route(
                    "GET",
                    &format!("{base}/count"),
                    get(
                        move |State(s): State<Cw>,
                              Path(cb): Path<String>,
                              h: HeaderMap,
                              uri: Uri| async move {
                            s.list(&cb, &h, &uri, res, None, true)
                        },
                    ),
                )
                .route(one_methods, &format!("{base}/{{id}}"), one);
    }
    let add = format!("{API}/finance/agreements/{{parentId}}/additions");
    r = r
        .route(
            "GET POST",
            &add,
            get(
                |State(s): State<Cw>,
                 Path((cb, p)): Path<(String, String)>,
                 h: HeaderMap,
                 uri: Uri| async move {
                    s.list(&cb, &h, &uri, Res::Additions(0), Some(&p), false)
                },
            )
            .post(
                |State(s): State<Cw>,
                 Path((cb, p)): Path<(String, String)>,
                 h: HeaderMap,
                 body: Bytes| async move {
                    s.addition_write(&cb, &h, &p, None, Write::Post, &body)
                },
            ),
        )
        .route(
            "GET",
            &format!("{add}/count"),
            get(
                |State(s): State<Cw>,
                 Path((cb, p)): Path<(String, String)>,
                 h: HeaderMap,
                 uri: Uri| async move {
                    s.list(&cb, &h, &uri, Res::Additions(0), Some(&p), true)
                },
            ),
        )
        .route(
            "GET PUT PATCH DELETE",
            &format!("{add}/{{id}}"),
            get(
                |State(s): State<Cw>,
                 Path((cb, p, id)): Path<(String, String, String)>,
                 h: HeaderMap,
                 uri: Uri| async move {
                    s.get_one(&cb, &h, &uri, Res::Additions(0), Some(&p), &id)
                },
            )
            .put(
                |State(s): State<Cw>,
                 Path((cb, p, id)): Path<(String, String, String)>,
                 h: HeaderMap,
                 body: Bytes| async move {
                    s.addition_write(&cb, &h, &p, Some(&id), Write::Put, &body)
                },
            )
            .patch(
                |State(s): State<Cw>,
                 Path((cb, p, id)): Path<(String, String, String)>,
                 h: HeaderMap,
                 body: Bytes| async move {
                    s.addition_write(&cb, &h, &p, Some(&id), Write::Patch, &body)
                },
            )
            .delete(
                |State(s): State<Cw>,
                 Path((cb, p, id)): Path<(String, String, String)>,
                 h: HeaderMap| async move { s.addition_delete(&cb, &h, &p, &id) },
            ),
        );
    let (router, list) = r.into_parts();
    let router = router
        .fallback(|| async {
            cw_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "The requested resource does not exist.",
                Value::Null,
            )
        })
        .with_state(inner);
    (router, list)
}

async fn company_info(State(s): State<Cw>, Path(company): Path<String>) -> Response {
    let st = lock(&s.state);
    let body = match st.instances.get(&company.to_lowercase()) {
        Some(i) => json!({
            "CompanyName": i.login_company_id,
            "Codebase": i.codebase,
            "VersionCode": "v2025.1",
            "VersionNumber": "v2025.1.100000",
            "CompanyID": i.login_company_id,
            "IsCloud": true,
        }),
        None => Value::Null,
    };
    common::json_response(StatusCode::OK, &body)
}

async fn system_info(State(s): State<Cw>, Path(cb): Path<String>, h: HeaderMap) -> Response {
    s.with_instance(&cb, &h, |_, _| {
        common::json_response(
            StatusCode::OK,
            &json!({
                "version": "v2025.1.100000",
                "isCloud": true,
                "serverTimeZone": "Eastern Standard Time",
                "licenseBits": [],
                "cloudRegion": "NA",
                "maxWorkFlowRecordsAllowed": 500,
            }),
        )
    })
}

#[derive(serde::Deserialize)]
struct AdditionEdits {
    touch_agreement: bool,
}

/// `/_sandbox/connectwise/*`, beside the common control API (never counted, never faulted):
/// `POST addition-edits {"touch_agreement": bool}` sets
/// [`ConnectWiseFake::set_addition_touches_agreement`](super::ConnectWiseFake::set_addition_touches_agreement);
/// `GET addition-edits` reads it.
pub(super) fn control_router(inner: Cw) -> Router {
    Router::new()
        .route(
            "/_sandbox/connectwise/addition-edits",
            axum::routing::post(
                |State(s): State<Cw>, axum::Json(b): axum::Json<AdditionEdits>| async move {
                    lock(&s.state).addition_touches_agreement = b.touch_agreement;
                    StatusCode::NO_CONTENT
                },
            )
            .get(|State(s): State<Cw>| async move {
                axum::Json(json!({
                    "touch_agreement": lock(&s.state).addition_touches_agreement
                }))
            }),
        )
        .with_state(inner)
}
