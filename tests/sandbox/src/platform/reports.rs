//! Usage reports of the fake platform: `POST /reports` (body rules in `report_post.rs`, content
//! in `report_csv.rs`), `GET`/`DELETE /reports/{id}`, the stored reports and their download,
//! and `GET /tenants/{id}/reports`.
//!
//! Readiness by the fake clock (UTC): the usage history of day D is complete at D+1 06:00. A
//! period ending yesterday before 06:00 → 400 with the spec's text; after 06:00 with the test
//! switch [`super::PlatformFake::set_usage_history_late`] → 500 with the spec's text.
//! The content is computed when the report is made (a snapshot of the history).
//! `result_action: save` + `schedule.type: once` → one stored report per format; `send` or
//! `monthly` → none (the fake never sends or generates later).
//!
//! UNCONFIRMED (the stricter readings):
//! * a period ending today or later → 400 (the period end must be a past day); kind
//!   `usage_current` is not checked for readiness;
//! * `parameters.tenant_id` unknown, deleted or outside the client's subtree → 403;
//! * only `csv_v2_0` content is generated: a stored report of another format ends `failed`;
//!   a stored report is `in_progress` (no `size`) for the first N `GET …/stored` answers
//!   ([`super::PlatformFake::set_report_polls_in_progress`], default 1); the download is 404
//!   (platform error body) while in progress, for a failed one, and for unknown ids;
//! * a report is visible (else 404) to clients whose tenant subtree holds its creator's tenant;
//!   `GET /tenants/{id}/reports` lists the reports made by clients of that tenant;
//! * `DELETE ?version=`: missing or not an integer → 400, not the current version → 409.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{header, HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::{DateTime, Duration, Timelike, Utc};
use serde_json::{json, Value};

use super::{
    auth::Principal,
    report_csv, report_post,
    routes::{parse_json, query, OnTenant, Pf},
    state::{new_id, PfState},
    wire::{am_error, am_time, bad_request, conflict, forbidden, not_found},
};
use crate::common::{self, Routes};

/// Message of the 400 while yesterday's history is not due (the spec's text).
pub(super) const NOT_READY: &str =
    "Usage history is not ready and shouldn't be ready yet (from 1 to 6 am).";
/// Message of the 500 when yesterday's history is late (the spec's text).
pub(super) const LATE: &str =
    "Usage history is not ready but should be available already (after 6 am).";

/// A usage report.
pub(super) struct Report {
    pub(super) id: String,
    pub(super) version: i64,
    /// Tenant of the client that made it.
    pub(super) creator: String,
    /// The report as `POST` answered it.
    pub(super) json: Value,
    pub(super) stored: Vec<Stored>,
}

/// A stored report (one format of a generated report).
pub(super) struct Stored {
    id: String,
    format: String,
    created_at: DateTime<Utc>,
    /// gzip-compressed content; `None` = generation failed.
    content: Option<Vec<u8>>,
    /// `GET …/stored` answers left showing it `in_progress`.
    polls_left: u32,
}

/// The routes of this file (merged into [`super::routes::router`]).
pub(super) fn routes() -> Routes<Pf> {
    Routes::new()
        .route("POST", "/api/2/reports", post(create))
        .route(
            "GET DELETE",
            "/api/2/reports/{report_id}",
            get(fetch).delete(delete),
        )
        .route("GET", "/api/2/reports/{report_id}/stored", get(stored_list))
        .route(
            "GET",
            "/api/2/reports/{report_id}/stored/{stored_report_id}",
            get(download),
        )
        .route("GET", "/api/2/tenants/{id}/reports", get(tenant_reports))
}

/// Index of a report the client may see (404 otherwise).
fn find(st: &PfState, p: &Principal, id: &str) -> Result<usize, Response> {
    st.reports
        .iter()
        .position(|r| r.id == id && st.in_subtree(&r.creator, &p.tenant_id))
        .ok_or_else(|| not_found(&format!("Report {id} not found.")))
}

/// Is the usage history of the period's end there (by the fake clock)?
fn check_ready(end: chrono::NaiveDate, now: DateTime<Utc>, late: bool) -> Result<(), Response> {
    let today = now.date_naive();
    if end >= today {
        return Err(bad_request(&format!(
            "'parameters.period.end' ({end}) must be a past day (today is {today})."
        )));
    }
    if end == today - Duration::days(1) {
        if now.hour() < 6 {
            return Err(bad_request(NOT_READY));
        }
        if late {
            return Err(am_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                LATE,
            ));
        }
    }
    Ok(())
}

async fn create(State(s): State<Pf>, h: HeaderMap, body: Bytes) -> Response {
    s.authed(&h, |st, p, now| {
        let b = tri!(parse_json(&body));
        let r = tri!(report_post::parse(&b));
        let tid = &r.tenant_id;
        if !st
            .tenant(tid)
            .is_some_and(|t| t.deleted_at.is_none() && st.in_subtree(tid, &p.tenant_id))
        {
            return forbidden(&format!(
                "Access to tenant {tid} is denied for this client."
            ));
        }
        if let (Some((_, end)), false) = (r.period, r.kind == "usage_current") {
            tri!(check_ready(end, now, st.usage_history_late));
        }
        let id = new_id();
        let version = st.next_version(now);
        let json = report_post::report_json(&id, version, &r, now.date_naive());
        let mut stored = Vec::new();
        if r.result_action == "save" && r.schedule_type == "once" {
            let csv = r
                .formats
                .iter()
                .any(|f| f == "csv_v2_0")
                .then(|| report_csv::gzip(&report_csv::build(st, &r)));
            for f in &r.formats {
                stored.push(Stored {
                    id: new_id(),
                    format: f.clone(),
                    created_at: now,
                    content: if f == "csv_v2_0" { csv.clone() } else { None },
                    polls_left: st.report_polls_in_progress,
                });
            }
        }
        st.reports.push(Report {
            id,
            version,
            creator: p.tenant_id.clone(),
            json: json.clone(),
            stored,
        });
        common::json_response(StatusCode::OK, &json)
    })
}

async fn fetch(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        let i = tri!(find(st, p, &id));
        common::json_response(StatusCode::OK, &st.reports[i].json)
    })
}

async fn delete(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap, uri: Uri) -> Response {
    let q = query(&uri);
    s.authed(&h, |st, p, _| {
        let version = match q.get("version").map(|v| v.trim().parse::<i64>()) {
            None => return bad_request("Query parameter 'version' is required."),
            Some(Err(_)) => return bad_request("'version' must be an integer."),
            Some(Ok(v)) => v,
        };
        let i = tri!(find(st, p, &id));
        let current = st.reports[i].version;
        if version != current {
            return conflict(
                "Conflict",
                &format!("Report {id}: version {version} is not the current version {current}."),
            );
        }
        st.reports.remove(i);
        StatusCode::NO_CONTENT.into_response()
    })
}

async fn stored_list(State(s): State<Pf>, Path(id): Path<String>, h: HeaderMap) -> Response {
    s.authed(&h, |st, p, _| {
        let i = tri!(find(st, p, &id));
        let items: Vec<Value> = st.reports[i]
            .stored
            .iter_mut()
            .map(|s| {
                let mut v = json!({
                    "id": s.id,
                    "report_format": s.format,
                    "created_at": am_time(&s.created_at),
                });
                if s.polls_left > 0 {
                    s.polls_left -= 1;
                    v["status"] = json!("in_progress");
                } else if let Some(c) = &s.content {
                    v["status"] = json!("saved");
                    v["size"] = json!(c.len());
                } else {
                    v["status"] = json!("failed");
                }
                v
            })
            .collect();
        common::json_response(StatusCode::OK, &json!({ "items": items }))
    })
}

async fn download(
    State(s): State<Pf>,
    Path((id, sid)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    s.authed(&h, |st, p, _| {
        let i = tri!(find(st, p, &id));
        let content = st.reports[i]
            .stored
            .iter()
            .find(|s| s.id == sid && s.polls_left == 0)
            .and_then(|s| s.content.clone());
        match content {
            Some(c) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/octet-stream")],
                c,
            )
                .into_response(),
            None => not_found(&format!("Stored report {sid} of report {id} not found.")),
        }
    })
}

async fn tenant_reports(r: OnTenant) -> Response {
    r.run(|st, _, t, _| {
        let items: Vec<&str> = st
            .reports
            .iter()
            .filter(|x| x.creator == t.id)
            .map(|x| x.id.as_str())
            .collect();
        common::json_response(StatusCode::OK, &json!({ "items": items }))
    })
}
