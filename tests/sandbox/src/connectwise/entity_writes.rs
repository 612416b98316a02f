//! The writes a person in Manage makes, through the API: `POST` and `PATCH` of companies,
//! contacts, agreements and tickets (additions are in `writes.rs`).
//!
//! Each write builds the whole record from a JSON document (the POST body, or the stored
//! record with the PATCH operations applied) and validates it like the vendor's schema:
//! required fields (`Company`: identifier, name; `Agreement`: name, type, company, contact;
//! `Ticket`: summary, company; `Contact`: firstName, company — UNCONFIRMED, the partial spec
//! has no Contact schema), references by `id` (or `identifier` / `name`) that must exist.
//! POST → 201 with the record, PATCH → 200 with the record.

use axum::{
    http::{HeaderMap, StatusCode},
    response::Response,
};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{
    errors::{bad_request, invalid, not_found},
    query::parse_id,
    records::{
        CwAgreement, CwCommunicationItem, CwCompany, CwCompanyRef, CwContact, CwInfo, CwRef,
        CwTicket,
    },
    state::{CwState, Instance, Res},
    writes::apply_patch,
};
use crate::{
    common::{self, whole_seconds, Server},
    conditions,
};

type R<T> = Result<T, Response>;

/// Agreement types of every instance.
const AGREEMENT_TYPES: &[(i64, &str)] = &[(1, "Managed Services"), (2, "Block Time")];
/// Service boards, ticket statuses and priorities of every instance (invented).
const BOARDS: &[(i64, &str)] = &[(1, "Help Desk"), (2, "Alerts")];
const TICKET_STATUSES: &[(i64, &str)] = &[(1, "New"), (2, "In Progress"), (3, ">Closed")];
const PRIORITIES: &[(i64, &str)] = &[
    (1, "Priority 1 - Emergency Response"),
    (3, "Priority 3 - Normal Response"),
    (4, "Priority 4 - Schedule Maintenance"),
];

impl Server<CwState> {
    /// `POST {resource}` (`id = None`) or `PATCH {resource}/{id}` of a company, contact,
    /// agreement or ticket.
    pub(super) fn entity_write(
        &self,
        codebase: &str,
        headers: &HeaderMap,
        res: Res,
        id: Option<&str>,
        body: &[u8],
    ) -> Response {
        self.with_instance(codebase, headers, |inst, now| {
            let parsed: Value = match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(e) => return bad_request(&format!("The request body is not valid JSON: {e}")),
            };
            let (existing, doc) = match id {
                None if parsed.is_object() => (None, parsed),
                None => return bad_request("The request body must be a JSON object."),
                Some(s) => {
                    let Some(current) = parse_id(s).and_then(|n| inst.row(res, n).map(|v| (n, v)))
                    else {
                        return not_found(res, s);
                    };
                    let (n, v) = (current.0, current.1.clone());
                    let patchable: Vec<String> = res
                        .fields()
                        .into_iter()
                        .filter(|f| !matches!(f.as_str(), "id" | "_info" | "lastUpdated"))
                        .collect();
                    let patchable: Vec<&str> = patchable.iter().map(String::as_str).collect();
                    match apply_patch(v, &parsed, res.label(), &patchable) {
                        Ok(doc) => (Some(n), doc),
                        Err(e) => return e,
                    }
                }
            };
            let saved = match res {
                Res::Companies => save_company(inst, existing, &doc, now),
                Res::Contacts => save_contact(inst, existing, &doc, now),
                Res::Agreements => save_agreement(inst, existing, &doc, now),
                Res::Tickets => save_ticket(inst, existing, &doc, now),
                _ => unreachable!("no entity writes for {res:?}"),
            };
            let new_id = match saved {
                Ok(id) => id,
                Err(e) => return e,
            };
            let json = inst.row(res, new_id).cloned().expect("stored record");
            let status = if existing.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            common::json_response(status, &json)
        })
    }
}

// ------------------------------------------------------------------ field helpers

fn text(doc: &Value, res: &str, key: &str, required: bool, max: usize) -> R<Option<String>> {
    match doc.get(key) {
        None | Some(Value::Null) if required => {
            Err(invalid(res, key, &format!("The {key} field is required.")))
        }
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if required && s.trim().is_empty() => {
            Err(invalid(res, key, &format!("The {key} field is required.")))
        }
        Some(Value::String(s)) if s.chars().count() > max => Err(invalid(
            res,
            key,
            &format!("{key} may be at most {max} characters."),
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(res, key, &format!("{key} must be a string."))),
    }
}

fn flag(doc: &Value, res: &str, key: &str) -> R<bool> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(res, key, &format!("{key} must be true or false."))),
    }
}

fn date(doc: &Value, res: &str, key: &str) -> R<Option<DateTime<Utc>>> {
    match doc.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => conditions::parse_datetime(s)
            .map(|d| Some(whole_seconds(d)))
            .ok_or_else(|| invalid(res, key, &format!("{key} is not a valid date."))),
        Some(_) => Err(invalid(res, key, &format!("{key} must be a date string."))),
    }
}

/// A reference object `{id}` or `{name}` into a fixed list; `None` when absent.
fn named_ref<'a>(
    doc: &Value,
    res: &str,
    key: &str,
    known: impl IntoIterator<Item = (i64, &'a str)>,
) -> R<Option<CwRef>> {
    let v = match doc.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(v @ Value::Object(_)) => v,
        Some(_) => {
            return Err(invalid(
                res,
                key,
                &format!("{key} must be a reference object."),
            ))
        }
    };
    let by_id = v.get("id").and_then(Value::as_i64);
    let by_name = v.get("name").and_then(Value::as_str);
    known
        .into_iter()
        .find(|(id, name)| match (by_id, by_name) {
            (Some(i), _) => i == *id,
            (None, Some(n)) => n.eq_ignore_ascii_case(name),
            (None, None) => false,
        })
        .map(|(id, name)| {
            Some(CwRef {
                id,
                name: name.to_string(),
            })
        })
        .ok_or_else(|| invalid(res, key, &format!("{key} {v} was not found.")))
}

fn required<T>(v: Option<T>, res: &str, key: &str) -> R<T> {
    v.ok_or_else(|| invalid(res, key, &format!("The {key} field is required.")))
}

/// `company: {id}` or `{identifier}`.
fn company_ref(inst: &Instance, doc: &Value, res: &str) -> R<CwCompanyRef> {
    let v = required(doc.get("company").filter(|v| !v.is_null()), res, "company")?;
    let found = match (
        v.get("id").and_then(Value::as_i64),
        v.get("identifier").and_then(Value::as_str),
    ) {
        (Some(id), _) => inst.company_ref(id),
        (None, Some(ident)) => inst
            .companies
            .records()
            .find(|c| c.identifier.eq_ignore_ascii_case(ident))
            .and_then(|c| inst.company_ref(c.id)),
        (None, None) => None,
    };
    found.ok_or_else(|| invalid(res, "company", &format!("company {v} was not found.")))
}

/// `contact: {id}` of a contact of `company` (`None` when absent).
fn contact_ref(inst: &Instance, doc: &Value, res: &str, company: i64) -> R<Option<CwRef>> {
    let Some(v) = doc.get("contact").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let c = v
        .get("id")
        .and_then(Value::as_i64)
        .and_then(|id| inst.contacts.get(id))
        .ok_or_else(|| invalid(res, "contact", &format!("contact {v} was not found.")))?;
    if c.company.id != company {
        return Err(invalid(
            res,
            "contact",
            "The contact does not belong to the company.",
        ));
    }
    Ok(Some(contact_name(c)))
}

fn contact_name(c: &CwContact) -> CwRef {
    CwRef {
        id: c.id,
        name: format!("{} {}", c.first_name, c.last_name)
            .trim()
            .to_string(),
    }
}

// ------------------------------------------------------------------ entities

fn save_company(inst: &mut Instance, id: Option<i64>, doc: &Value, now: DateTime<Utc>) -> R<i64> {
    let res = "company";
    let identifier = required(text(doc, res, "identifier", true, 25)?, res, "identifier")?;
    let name = required(text(doc, res, "name", true, 50)?, res, "name")?;
    if inst
        .companies
        .records()
        .any(|c| Some(c.id) != id && c.identifier.eq_ignore_ascii_case(&identifier))
    {
        return Err(invalid(
            res,
            "identifier",
            &format!("The identifier '{identifier}' is already in use."),
        ));
    }
    let statuses: Vec<(i64, String)> = inst
        .statuses
        .values()
        .map(|r| (r.id, r.name.clone()))
        .collect();
    let status = named_ref(
        doc,
        res,
        "status",
        statuses.iter().map(|(i, n)| (*i, n.as_str())),
    )?
    .unwrap_or_else(|| inst.statuses["active"].clone());
    let known: Vec<(i64, String)> = inst
        .types
        .values()
        .map(|r| (r.id, r.name.clone()))
        .collect();
    let types = match doc.get("types") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| {
                named_ref(
                    &json!({ "types": t }),
                    res,
                    "types",
                    known.iter().map(|(i, n)| (*i, n.as_str())),
                )
                .map(|r| r.expect("present"))
            })
            .collect::<R<Vec<_>>>()?,
        Some(_) => return Err(invalid(res, "types", "types must be an array.")),
    };
    let default_contact = match (id, doc.get("defaultContact").filter(|v| !v.is_null())) {
        (_, None) => None,
        (None, Some(_)) => {
            return Err(invalid(
                res,
                "defaultContact",
                "A new company has no contacts yet: create the contact with defaultFlag true.",
            ))
        }
        (Some(cid), Some(_)) => {
            contact_ref(inst, &json!({"contact": doc["defaultContact"]}), res, cid)?
        }
    };
    let rec = CwCompany {
        id: 0,
        identifier,
        name,
        status,
        types,
        deleted_flag: flag(doc, res, "deletedFlag")?,
        default_contact,
        info: CwInfo::default(),
    };
    let new_id = inst.companies.save(id, rec, now);
    // the references other records hold follow the company
    let r = inst.company_ref(new_id).expect("saved");
    inst.agreements
        .modify_where(|a| a.company.id == new_id, |a| a.company = r.clone());
    inst.contacts
        .modify_where(|c| c.company.id == new_id, |c| c.company = r.clone());
    inst.tickets
        .modify_where(|t| t.company.id == new_id, |t| t.company = r.clone());
    Ok(new_id)
}

fn save_contact(inst: &mut Instance, id: Option<i64>, doc: &Value, now: DateTime<Utc>) -> R<i64> {
    let res = "contact";
    let first_name = required(text(doc, res, "firstName", true, 30)?, res, "firstName")?;
    let last_name = text(doc, res, "lastName", false, 30)?.unwrap_or_default();
    let company = company_ref(inst, doc, res)?;
    let mut items = Vec::new();
    match doc.get("communicationItems") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for item in list {
                let kind = named_ref(
                    item,
                    res,
                    "type",
                    [(1, "Email"), (2, "Direct"), (3, "Mobile"), (4, "Fax")],
                )?
                .unwrap_or(CwRef {
                    id: 1,
                    name: "Email".into(),
                });
                let value = required(
                    text(item, res, "value", true, 250)?,
                    res,
                    "communicationItems/value",
                )?;
                let comm_id = match item.get("id").and_then(Value::as_i64) {
                    Some(i) => i,
                    None => {
                        inst.next_comm_id += 1;
                        inst.next_comm_id - 1
                    }
                };
                items.push(CwCommunicationItem {
                    id: comm_id,
                    communication_type: if kind.name == "Email" {
                        "Email"
                    } else {
                        "Phone"
                    }
                    .into(),
                    item_type: kind,
                    value,
                    default_flag: flag(item, res, "defaultFlag")?,
                });
            }
        }
        Some(_) => return Err(invalid(res, "communicationItems", "must be an array.")),
    }
    let default_flag = flag(doc, res, "defaultFlag")?;
    let rec = CwContact {
        id: 0,
        first_name,
        last_name,
        company: company.clone(),
        inactive_flag: flag(doc, res, "inactiveFlag")?,
        default_flag,
        communication_items: items,
        info: CwInfo::default(),
    };
    let new_id = inst.contacts.save(id, rec, now);
    // A default contact becomes its company's `defaultContact` (and the only default one).
    if default_flag {
        let r = contact_name(inst.contacts.get(new_id).expect("saved"));
        inst.contacts.modify_where(
            |c| c.company.id == company.id && c.id != new_id && c.default_flag,
            |c| c.default_flag = false,
        );
        inst.companies
            .update(company.id, now, |c| c.default_contact = Some(r));
    }
    Ok(new_id)
}

fn save_agreement(inst: &mut Instance, id: Option<i64>, doc: &Value, now: DateTime<Utc>) -> R<i64> {
    let res = "agreement";
    let name = required(text(doc, res, "name", true, 100)?, res, "name")?;
    let agreement_type = required(
        named_ref(doc, res, "type", AGREEMENT_TYPES.iter().copied())?,
        res,
        "type",
    )?;
    let company = company_ref(inst, doc, res)?;
    let contact = required(contact_ref(inst, doc, res, company.id)?, res, "contact")?;
    let end_date = date(doc, res, "endDate")?;
    let no_ending_date_flag = flag(doc, res, "noEndingDateFlag")?;
    let cancelled_flag = flag(doc, res, "cancelledFlag")?;
    let rec = CwAgreement {
        id: 0,
        name,
        agreement_type,
        company,
        contact: Some(contact),
        start_date: date(doc, res, "startDate")?,
        end_date,
        no_ending_date_flag,
        cancelled_flag,
        date_cancelled: date(doc, res, "dateCancelled")?,
        agreement_status: agreement_status(cancelled_flag, no_ending_date_flag, end_date, now)
            .into(),
        info: CwInfo::default(),
    };
    Ok(inst.agreements.save(id, rec, now))
}

/// `Cancelled` when cancelled, `Expired` when `end_date` is past without `noEndingDateFlag`,
/// else `Active` (computed when the agreement is written).
pub(super) fn agreement_status(
    cancelled: bool,
    no_end: bool,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> &'static str {
    if cancelled {
        "Cancelled"
    } else if !no_end && end.is_some_and(|e| e < now) {
        "Expired"
    } else {
        "Active"
    }
}

fn save_ticket(inst: &mut Instance, id: Option<i64>, doc: &Value, now: DateTime<Utc>) -> R<i64> {
    let res = "ticket";
    let summary = required(text(doc, res, "summary", true, 100)?, res, "summary")?;
    let company = company_ref(inst, doc, res)?;
    let contact = contact_ref(inst, doc, res, company.id)?;
    let pick = |key: &str, list: &[(i64, &str)]| -> R<CwRef> {
        Ok(
            named_ref(doc, res, key, list.iter().copied())?.unwrap_or(CwRef {
                id: list[0].0,
                name: list[0].1.to_string(),
            }),
        )
    };
    let status = pick("status", TICKET_STATUSES)?;
    let record_type = match text(doc, res, "recordType", false, 20)?.as_deref() {
        None => "ServiceTicket".to_string(),
        Some(t @ ("ServiceTicket" | "ProjectTicket" | "ProjectIssue")) => t.to_string(),
        Some(other) => {
            return Err(invalid(
                res,
                "recordType",
                &format!("'{other}' is not a valid recordType."),
            ))
        }
    };
    let rec = CwTicket {
        id: 0,
        summary,
        record_type,
        board: pick("board", BOARDS)?,
        closed_flag: status.name.starts_with('>') || flag(doc, res, "closedFlag")?,
        status,
        priority: named_ref(doc, res, "priority", PRIORITIES.iter().copied())?.unwrap_or(CwRef {
            id: 3,
            name: PRIORITIES[1].1.to_string(),
        }),
        company,
        contact,
        initial_description: text(doc, res, "initialDescription", false, 10_000)?,
        info: CwInfo::default(),
    };
    Ok(inst.tickets.save(id, rec, now))
}
