//! Validation of a `POST /api/2/reports` body against the spec's `reportPost` schema, and the
//! report the platform answers (`report` schema).
//!
//! As the schema says: top level `additionalProperties: false`; `recipients`, `result_action`,
//! `parameters`, `schedule` required; `parameters.tenant_id`, `level`, `kind` required; UUID
//! patterns (36 characters, lower-case hex) on `recipients` and `parameters.tenant_id`; the enums
//! of `result_action`, `level`, `kind`, `formats`, `schedule.type`; dates `YYYY-MM-DD`.
//! Every 400 names the field that is wrong.
//!
//! UNCONFIRMED (the stricter readings):
//! * unknown keys inside `parameters`, `parameters.period` or `schedule` → 400;
//! * dates must be real dates; `period.start` ≤ `period.end`;
//! * `period` is required for kinds `usage_summary`, `usage_daily`, `usage_breakdown`;
//!   `usage_current` may omit it (the answer then carries today as start and end: the `report`
//!   schema requires a period);
//! * `formats` must not be empty nor repeat a format; `json_v2_0` (in `reportPost` but not in
//!   the `report` schema nor the stored reports' `report_format`) → 400; absent → `["csv"]`;
//! * `hide_zero_usage`/`show_skus` default to false and are always echoed;
//!   `schedule.enabled` defaults to true.

use axum::response::Response;
use chrono::NaiveDate;
use serde_json::{json, Map, Value};

use super::wire::bad_request;

const LEVELS: &[&str] = &[
    "itself",
    "direct_partners",
    "all_partners",
    "all_customers",
    "accounts",
];
const KINDS: &[&str] = &[
    "usage_daily",
    "usage_summary",
    "usage_current",
    "usage_breakdown",
];
const FORMATS: &[&str] = &["csv", "html", "json_v1", "csv_v2_0", "json_v2_0"];

/// A validated report request.
#[derive(Debug, Clone)]
pub(super) struct ReportReq {
    pub(super) recipients: Vec<String>,
    pub(super) result_action: String,
    pub(super) tenant_id: String,
    pub(super) level: String,
    pub(super) kind: String,
    pub(super) formats: Vec<String>,
    pub(super) period: Option<(NaiveDate, NaiveDate)>,
    pub(super) hide_zero_usage: bool,
    pub(super) show_skus: bool,
    pub(super) schedule_type: String,
    pub(super) schedule_enabled: bool,
    pub(super) generation_date: Option<NaiveDate>,
}

fn bad(field: &str, what: &str) -> Response {
    bad_request(&format!("'{field}' {what}"))
}

pub(super) fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_digit() || ('a'..='f').contains(&c),
        })
}

fn object<'a>(
    v: &'a Value,
    field: &str,
    keys: &[&str],
) -> Result<&'a Map<String, Value>, Response> {
    let o = v
        .as_object()
        .ok_or_else(|| bad(field, "must be an object."))?;
    if let Some(k) = o.keys().find(|k| !keys.contains(&k.as_str())) {
        let full = if field.is_empty() {
            k.clone()
        } else {
            format!("{field}.{k}")
        };
        return Err(bad_request(&format!("Unexpected field '{full}'.")));
    }
    Ok(o)
}

fn required<'a>(o: &'a Map<String, Value>, field: &str, key: &str) -> Result<&'a Value, Response> {
    o.get(key)
        .ok_or_else(|| bad(&join(field, key), "is required."))
}

fn join(field: &str, key: &str) -> String {
    if field.is_empty() {
        key.to_string()
    } else {
        format!("{field}.{key}")
    }
}

fn one_of(v: &Value, field: &str, allowed: &[&str]) -> Result<String, Response> {
    match v.as_str() {
        Some(s) if allowed.contains(&s) => Ok(s.to_string()),
        _ => Err(bad(
            field,
            &format!("must be one of {}.", allowed.join(", ")),
        )),
    }
}

fn boolean(o: &Map<String, Value>, field: &str, key: &str) -> Result<Option<bool>, Response> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(&join(field, key), "must be a boolean.")),
    }
}

/// A `YYYY-MM-DD` date that exists.
pub(super) fn date(v: &Value, field: &str) -> Result<NaiveDate, Response> {
    let s = v
        .as_str()
        .ok_or_else(|| bad(field, "must be a date string (YYYY-MM-DD)."))?;
    let shaped = s.len() == 10
        && s.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            _ => c.is_ascii_digit(),
        });
    if !shaped {
        return Err(bad(
            field,
            &format!("must be a date YYYY-MM-DD, not '{s}'."),
        ));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| bad(field, &format!("is not a valid date: '{s}'.")))
}

/// Validates a `POST /reports` body (400 naming the field).
pub(super) fn parse(b: &Value) -> Result<ReportReq, Response> {
    let top = object(
        b,
        "",
        &[
            "recipients",
            "result_action",
            "parameters",
            "schedule",
            "generation_date",
        ],
    )?;
    let rec = required(top, "", "recipients")?
        .as_array()
        .ok_or_else(|| bad("recipients", "must be an array of user ids (UUID)."))?;
    let mut recipients = Vec::new();
    for (n, r) in rec.iter().enumerate() {
        match r.as_str() {
            Some(s) if is_uuid(s) => recipients.push(s.to_string()),
            _ => return Err(bad(&format!("recipients[{n}]"), "must be a UUID.")),
        }
    }
    let result_action = one_of(
        required(top, "", "result_action")?,
        "result_action",
        &["save", "send"],
    )?;
    let params = object(
        required(top, "", "parameters")?,
        "parameters",
        &[
            "tenant_id",
            "level",
            "kind",
            "formats",
            "period",
            "hide_zero_usage",
            "show_skus",
        ],
    )?;
    let tenant_id = match required(params, "parameters", "tenant_id")?.as_str() {
        Some(s) if is_uuid(s) => s.to_string(),
        _ => return Err(bad("parameters.tenant_id", "must be a UUID.")),
    };
    let level = one_of(
        required(params, "parameters", "level")?,
        "parameters.level",
        LEVELS,
    )?;
    let kind = one_of(
        required(params, "parameters", "kind")?,
        "parameters.kind",
        KINDS,
    )?;
    let formats = match params.get("formats") {
        None => vec!["csv".to_string()],
        Some(v) => {
            let a = v
                .as_array()
                .ok_or_else(|| bad("parameters.formats", "must be an array."))?;
            if a.is_empty() {
                return Err(bad("parameters.formats", "must not be empty."));
            }
            let mut out: Vec<String> = Vec::new();
            for (n, f) in a.iter().enumerate() {
                let field = format!("parameters.formats[{n}]");
                let f = one_of(f, &field, FORMATS)?;
                if f == "json_v2_0" {
                    return Err(bad(
                        &field,
                        "json_v2_0 is not supported for stored reports.",
                    ));
                }
                if out.contains(&f) {
                    return Err(bad(&field, &format!("repeats the format '{f}'.")));
                }
                out.push(f);
            }
            out
        }
    };
    let period = match params.get("period") {
        None if kind == "usage_current" => None,
        None => {
            return Err(bad(
                "parameters.period",
                &format!("is required for kind {kind}."),
            ))
        }
        Some(v) => {
            let p = object(v, "parameters.period", &["start", "end"])?;
            let start = date(
                required(p, "parameters.period", "start")?,
                "parameters.period.start",
            )?;
            let end = date(
                required(p, "parameters.period", "end")?,
                "parameters.period.end",
            )?;
            if start > end {
                return Err(bad(
                    "parameters.period.start",
                    &format!("({start}) must not be after parameters.period.end ({end})."),
                ));
            }
            Some((start, end))
        }
    };
    let hide_zero_usage = boolean(params, "parameters", "hide_zero_usage")?.unwrap_or(false);
    let show_skus = boolean(params, "parameters", "show_skus")?.unwrap_or(false);
    let schedule = object(
        required(top, "", "schedule")?,
        "schedule",
        &["type", "enabled"],
    )?;
    let schedule_type = one_of(
        required(schedule, "schedule", "type")?,
        "schedule.type",
        &["once", "monthly"],
    )?;
    let schedule_enabled = boolean(schedule, "schedule", "enabled")?.unwrap_or(true);
    let generation_date = match top.get("generation_date") {
        None => None,
        Some(v) => Some(date(v, "generation_date")?),
    };
    Ok(ReportReq {
        recipients,
        result_action,
        tenant_id,
        level,
        kind,
        formats,
        period,
        hide_zero_usage,
        show_skus,
        schedule_type,
        schedule_enabled,
        generation_date,
    })
}

/// The report as the platform answers it.
pub(super) fn report_json(id: &str, version: i64, r: &ReportReq, today: NaiveDate) -> Value {
    let (start, end) = r.period.unwrap_or((today, today));
    json!({
        "id": id,
        "version": version,
        "recipients": r.recipients,
        "parameters": {
            "tenant_id": r.tenant_id,
            "level": r.level,
            "kind": r.kind,
            "formats": r.formats,
            "period": {"start": start.to_string(), "end": end.to_string()},
            "hide_zero_usage": r.hide_zero_usage,
            "show_skus": r.show_skus,
        },
        "schedule": {"type": r.schedule_type, "enabled": r.schedule_enabled},
        "result_action": r.result_action,
        "generation_date": r.generation_date.unwrap_or(today).to_string(),
    })
}
