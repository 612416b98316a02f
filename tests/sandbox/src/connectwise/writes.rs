//! Writes of the fake ConnectWise Manage: callbacks (POST/PUT/DELETE) and agreement additions
//! (POST, PUT = full replace, PATCH `[{op, path, value}]`, DELETE), with the vendor's
//! validation of addition documents.

use axum::{
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{
    errors::{bad_request, invalid, not_found},
    query::parse_id,
    records::{cw_format, CwAddition, CwInfo, CwProductRef},
    state::{CwState, Instance, Res},
};
use crate::{
    common::{self, whole_seconds, Server},
    conditions,
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    Post,
    Put,
    Patch,
}

impl Server<CwState> {
    pub(super) fn callback_write(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        id: Option<&str>,
        body: &[u8],
    ) -> Response {
        self.with_instance(codebase, headers, |inst, now| {
            let existing = match id {
                Some(s) => match parse_id(s).filter(|n| inst.callbacks.get(*n).is_some()) {
                    Some(n) => Some(n),
                    None => return not_found(Res::Callbacks, s),
                },
                None => None,
            };
            let b: Value = match serde_json::from_slice(body) {
                Ok(v @ Value::Object(_)) => v,
                _ => return bad_request("The request body must be a JSON object."),
            };
            for f in ["url", "objectId", "type", "level"] {
                if b.get(f).is_none_or(|v| v.is_null() || v == "") {
                    return invalid("callback", f, &format!("The {f} field is required."));
                }
            }
            let Some(object_id) = b["objectId"].as_i64() else {
                return invalid("callback", "objectId", "objectId must be an integer.");
            };
            let new_id = existing.unwrap_or_else(|| inst.callbacks.alloc());
            let s = |k: &str| b.get(k).cloned().unwrap_or(Value::Null);
            let rec = json!({
                "id": new_id,
                "description": b.get("description").cloned().unwrap_or(json!("")),
                "url": s("url"),
                "objectId": object_id,
                "type": s("type"),
                "level": s("level"),
                "memberId": 1,
                "payloadVersion": s("payloadVersion"),
                "inactiveFlag": b.get("inactiveFlag").and_then(Value::as_bool).unwrap_or(false),
                "isSoapCallbackFlag": b.get("isSoapCallbackFlag").and_then(Value::as_bool).unwrap_or(false),
                "isSelfSuppressedFlag": b.get("isSelfSuppressedFlag").and_then(Value::as_bool).unwrap_or(false),
                "connectWiseID": uuid::Uuid::new_v4().to_string(),
                "_info": {"lastUpdated": cw_format(&now), "updatedBy": "psa-sandbox"},
            });
            inst.callbacks.put(new_id, rec.clone());
            let status = if existing.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            common::json_response(status, &rec)
        })
    }

    pub(super) fn callback_delete(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        id: &str,
    ) -> Response {
        self.with_instance(codebase, headers, |inst, _| {
            match parse_id(id).filter(|n| inst.callbacks.remove(*n)) {
                Some(_) => StatusCode::NO_CONTENT.into_response(),
                None => not_found(Res::Callbacks, id),
            }
        })
    }

    pub(super) fn addition_write(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        parent: &str,
        id: Option<&str>,
        mode: Write,
        body: &[u8],
    ) -> Response {
        let touch = common::lock(&self.state).addition_touches_agreement;
        self.with_instance(codebase, headers, |inst, now| {
            let res = match Self::resolve(inst, Res::Additions(0), Some(parent)) {
                Ok(r) => r,
                Err(e) => return e,
            };
            let Res::Additions(agreement_id) = res else {
                unreachable!()
            };
            let existing = match id {
                Some(s) => {
                    match parse_id(s).filter(|n| inst.additions.is_child(agreement_id, *n)) {
                        Some(n) => Some(n),
                        None => return not_found(res, s),
                    }
                }
                None => None,
            };
            let parsed: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return bad_request(&format!("The request body is not valid JSON: {e}")),
            };
            let input = match mode {
                Write::Post | Write::Put => {
                    if !parsed.is_object() {
                        return bad_request("The request body must be a JSON object.");
                    }
                    parsed
                }
                Write::Patch => {
                    let current = inst.additions.json(existing.expect("id")).cloned();
                    let current = current.expect("stored addition");
                    match apply_patch(current, &parsed, "addition", PATCHABLE) {
                        Ok(v) => v,
                        Err(e) => return e,
                    }
                }
            };
            let mut rec = match addition_from_json(inst, &input, mode, now) {
                Ok(r) => r,
                Err(e) => return e,
            };
            rec.agreement_id = agreement_id;
            let new_id = inst.additions.save(existing, rec, now);
            inst.additions.link(agreement_id, new_id);
            if touch {
                inst.agreements.update(agreement_id, now, |_| {});
            }
            let json = inst
                .additions
                .json(new_id)
                .cloned()
                .expect("stored addition");
            let status = if mode == Write::Post {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            common::json_response(status, &json)
        })
    }

    pub(super) fn addition_delete(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        parent: &str,
        id: &str,
    ) -> Response {
        let touch = common::lock(&self.state).addition_touches_agreement;
        self.with_instance(codebase, headers, |inst, now| {
            let res = match Self::resolve(inst, Res::Additions(0), Some(parent)) {
                Ok(r) => r,
                Err(e) => return e,
            };
            let Res::Additions(agreement_id) = res else {
                unreachable!()
            };
            match parse_id(id).filter(|n| inst.additions.remove_child(agreement_id, *n)) {
                Some(_) => {
                    if touch {
                        inst.agreements.update(agreement_id, now, |_| {});
                    }
                    StatusCode::NO_CONTENT.into_response()
                }
                None => not_found(res, id),
            }
        })
    }
}

const PATCHABLE: &[&str] = &[
    "product",
    "quantity",
    "lessIncluded",
    "unitPrice",
    "billCustomer",
    "effectiveDate",
    "cancelledDate",
    "description",
    "invoiceDescription",
];

/// Applies a Manage PATCH document (`[{op, path, value}]`) to a record's JSON; `path` must be
/// one of `patchable` (case-sensitive, a leading `/` accepted).
pub(super) fn apply_patch(
    mut current: Value,
    ops: &Value,
    resource: &str,
    patchable: &[&str],
) -> Result<Value, Response> {
    let Some(ops) = ops.as_array() else {
        return Err(bad_request(
            "PATCH body must be a JSON array of {op, path, value} operations.",
        ));
    };
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_start_matches('/');
        if !patchable.contains(&path) {
            return Err(invalid(
                resource,
                path,
                &format!("Cannot find property '{path}' or it cannot be patched."),
            ));
        }
        let obj = current.as_object_mut().expect("record is an object");
        match kind.to_ascii_lowercase().as_str() {
            "replace" | "add" => {
                let Some(v) = op.get("value") else {
                    return Err(invalid(resource, path, "A value is required."));
                };
                obj.insert(path.to_string(), v.clone());
            }
            "remove" => {
                obj.insert(path.to_string(), Value::Null);
            }
            other => {
                return Err(bad_request(&format!(
                    "Unsupported patch operation '{other}'."
                )))
            }
        }
    }
    Ok(current)
}

fn num_field(b: &Value, key: &str) -> Result<f64, Response> {
    match b.get(key) {
        None | Some(Value::Null) => Ok(0.0),
        Some(Value::Number(n)) => Ok(n.as_f64().unwrap_or(0.0)),
        Some(_) => Err(invalid(
            "addition",
            key,
            &format!("{key} must be a number."),
        )),
    }
}

fn date_field(b: &Value, key: &str) -> Result<Option<DateTime<Utc>>, Response> {
    match b.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => conditions::parse_datetime(s)
            .map(|d| Some(whole_seconds(d)))
            .ok_or_else(|| invalid("addition", key, &format!("{key} is not a valid date."))),
        Some(_) => Err(invalid(
            "addition",
            key,
            &format!("{key} must be a date string."),
        )),
    }
}

/// Validates a (full) addition document, as POST/PUT send it.
fn addition_from_json(
    inst: &Instance,
    b: &Value,
    mode: Write,
    now: DateTime<Utc>,
) -> Result<CwAddition, Response> {
    let product = match b.get("product") {
        Some(Value::Object(p)) => {
            let by_id = p.get("id").and_then(Value::as_i64);
            let by_ident = p.get("identifier").and_then(Value::as_str);
            let found = match (by_id, by_ident) {
                (Some(id), _) => inst.products.get(id),
                (None, Some(ident)) => inst
                    .products
                    .records()
                    .find(|c| c.identifier.eq_ignore_ascii_case(ident)),
                (None, None) => None,
            };
            match found {
                Some(c) => c.clone(),
                None => {
                    return Err(invalid(
                        "addition",
                        "product",
                        "The product was not found in the catalog.",
                    ))
                }
            }
        }
        _ => {
            return Err(invalid(
                "addition",
                "product",
                "The product field is required.",
            ))
        }
    };
    let bill = match b.get("billCustomer").and_then(Value::as_str) {
        Some(s @ ("Billable" | "DoNotBill" | "NoCharge")) => s.to_string(),
        Some(other) => {
            return Err(invalid(
                "addition",
                "billCustomer",
                &format!("'{other}' is not a valid billCustomer (Billable, DoNotBill, NoCharge)."),
            ))
        }
        None => {
            return Err(invalid(
                "addition",
                "billCustomer",
                "The billCustomer field is required.",
            ))
        }
    };
    let effective_date = match (date_field(b, "effectiveDate")?, mode) {
        (None, Write::Post) => Some(whole_seconds(
            now.date_naive()
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc(),
        )),
        (d, _) => d,
    };
    let description = match b.get("description") {
        Some(Value::String(s)) => s.clone(),
        _ => product.description.clone(),
    };
    Ok(CwAddition {
        id: 0,
        product: CwProductRef {
            id: product.id,
            identifier: product.identifier.clone(),
        },
        quantity: num_field(b, "quantity")?,
        less_included: num_field(b, "lessIncluded")?,
        unit_price: num_field(b, "unitPrice")?,
        bill_customer: bill,
        effective_date,
        cancelled_date: date_field(b, "cancelledDate")?,
        agreement_id: 0,
        description,
        invoice_description: b
            .get("invoiceDescription")
            .and_then(Value::as_str)
            .map(str::to_string),
        info: CwInfo::default(),
    })
}
