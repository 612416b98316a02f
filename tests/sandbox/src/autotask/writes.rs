//! Writes of the fake Autotask: root creates/updates (`POST`/`PATCH /Companies`, `/Contracts`,
//! `/Services`), contract services through their contract, and ContractServiceAdjustments;
//! the body binding (coercion, read-only fields, UDFs, required fields) they share.

use axum::{
    http::{HeaderMap, StatusCode},
    response::Response,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use super::{
    entities::{Entity, FieldDef, Ty, COMPANY_FIELDS},
    errors::{at_error, err500},
    query::{get_ci, get_ci_map, scalar_text},
    records::{at_format, parse_dt, AtCompany, AtContract, AtContractService, AtService},
    state::AtState,
    DEFAULT_BILLING_CODE_ID, DEFAULT_OWNER_RESOURCE_ID, RECURRING_SERVICE,
};
use crate::common::{Record, Server, Table};

/// The parent id from the path (`None` on root routes) and the JSON object body of a write.
fn write_input(
    parent: Option<&str>,
    body: &[u8],
) -> Result<(Option<i64>, Map<String, Value>), Response> {
    let parent_id = match parent.map(|p| p.trim().parse::<i64>()) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => return Err(at_error(StatusCode::NOT_FOUND, "Parent was not found.")),
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok((parent_id, m)),
        _ => Err(err500("The request body must be a JSON object.")),
    }
}

/// 404 unless the parent contract exists.
fn parent_contract(st: &AtState, id: i64) -> Result<(), Response> {
    match st.contracts.get(id) {
        Some(_) => Ok(()),
        None => Err(at_error(
            StatusCode::NOT_FOUND,
            &format!("Contract with id {id} was not found."),
        )),
    }
}

impl Server<AtState> {
    pub(super) fn write(
        &self,
        e: Entity,
        parent: Option<&str>,
        update: bool,
        h: &HeaderMap,
        body: &[u8],
    ) -> Response {
        let today = self.today();
        let (parent_id, body) = match write_input(parent, body) {
            Ok(v) => v,
            Err(r) => return r,
        };
        self.api(h, true, |st, ctx| {
            let w = RootWrite {
                e,
                body: &body,
                update,
                now: ctx.now,
            };
            let id = match e {
                Entity::Companies => write_company(st, &w),
                Entity::Contracts => write_contract(st, &w),
                Entity::Services => write_service(st, &w),
                Entity::Tickets => super::people_writes::write_ticket(st, &w),
                Entity::Contacts => {
                    let company = parent_id.expect("child route");
                    super::people_writes::write_contact(st, company, &w)
                }
                Entity::ContractServices => {
                    let parent_id = parent_id.expect("child route");
                    parent_contract(st, parent_id)?;
                    write_contract_service(st, parent_id, &body, update, today)
                }
                _ => Err(format!("{} cannot be written.", e.name())),
            }
            .map_err(|m| err500(&m))?;
            Ok(json!({ "itemId": id }))
        })
    }

    pub(super) fn adjustment(&self, parent: Option<&str>, h: &HeaderMap, body: &[u8]) -> Response {
        let (parent_id, body) = match write_input(parent, body) {
            Ok(v) => v,
            Err(r) => return r,
        };
        self.api(h, true, |st, _| {
            if let Some(p) = parent_id {
                parent_contract(st, p)?;
            }
            let e = Entity::ContractServiceAdjustments;
            let field = |name: &str| -> Result<Value, Response> {
                let def = e.field(name).expect("field");
                match get_ci_map(&body, name) {
                    None => Ok(Value::Null),
                    Some(v) => coerce(def, v).map_err(|m| err500(&m)),
                }
            };
            let contract_id = match (parent_id, field("contractID")?) {
                (Some(p), Value::Null) => p,
                (Some(p), v) if v.as_i64() == Some(p) => p,
                (Some(p), _) => {
                    return Err(err500(&format!(
                        "contractID does not match the parent contract {p}."
                    )))
                }
                (None, v) => v
                    .as_i64()
                    .ok_or_else(|| err500("Field contractID is required."))?,
            };
            let Some(unit_change) = field("unitChange")?.as_f64() else {
                return Err(err500("Field unitChange is required."));
            };
            let effective = match get_ci_map(&body, "effectiveDate") {
                Some(Value::String(s)) => effective_date(s)
                    .ok_or_else(|| err500(&format!("effectiveDate '{s}' is not a valid date.")))?,
                Some(Value::Null) | None => return Err(err500("Field effectiveDate is required.")),
                Some(other) => {
                    return Err(err500(&format!(
                        "effectiveDate {other} is not a valid date."
                    )))
                }
            };
            let id = st
                .adjust(
                    contract_id,
                    field("contractServiceID")?.as_i64(),
                    field("serviceID")?.as_i64(),
                    unit_change,
                    effective,
                    field("adjustedUnitPrice")?.as_f64(),
                    field("adjustedUnitCost")?.as_f64(),
                    field("allowRepeatService")?.as_bool().unwrap_or(false),
                )
                .map_err(|m| err500(&m))?;
            Ok(json!({ "itemId": id }))
        })
    }
}

/// `effectiveDate` is a date: the date part as sent, without time-zone conversion.
fn effective_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let date_part = s.split(['T', ' ']).next().unwrap_or(s);
    NaiveDate::parse_from_str(date_part, "%Y-%m-%d")
        .ok()
        .or_else(|| parse_dt(s).map(|d| d.date_naive()))
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

/// Converts a JSON body value to the field's wire form (as the .NET binder would).
fn coerce(def: &FieldDef, v: &Value) -> Result<Value, String> {
    let bad = || {
        format!(
            "Unable to convert value {v} for field '{}' ({}).",
            def.name,
            def.ty.name()
        )
    };
    if v.is_null() {
        return Ok(Value::Null);
    }
    Ok(match def.ty {
        Ty::Int | Ty::Long => {
            let n = match v {
                Value::Number(n) => n.as_f64().ok_or_else(bad)?,
                Value::String(s) => s.trim().parse::<f64>().map_err(|_| bad())?,
                _ => return Err(bad()),
            };
            if n.fract() != 0.0 {
                return Err(bad());
            }
            json!(n as i64)
        }
        Ty::Double => match v {
            Value::Number(n) => json!(n.as_f64().ok_or_else(bad)?),
            Value::String(s) => json!(s.trim().parse::<f64>().map_err(|_| bad())?),
            _ => return Err(bad()),
        },
        Ty::Bool => match v {
            Value::Bool(b) => json!(b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => json!(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => json!(false),
            Value::Number(n) if n.as_f64() == Some(1.0) => json!(true),
            Value::Number(n) if n.as_f64() == Some(0.0) => json!(false),
            _ => return Err(bad()),
        },
        Ty::Date => match v {
            Value::String(s) => json!(at_format(&parse_dt(s).ok_or_else(bad)?)),
            _ => return Err(bad()),
        },
        Ty::Str => json!(scalar_text(v).ok_or_else(bad)?),
    })
}

/// Overlays the writable body fields onto a record's JSON. Unknown and read-only properties
/// are ignored; `userDefinedFields` entries must name defined UDFs.
fn overlay(
    st: &AtState,
    e: Entity,
    json: &mut Value,
    body: &Map<String, Value>,
) -> Result<(), String> {
    let obj = json.as_object_mut().expect("record object");
    for (k, v) in body {
        if k.eq_ignore_ascii_case("userDefinedFields") && e.has_udfs() {
            let Some(list) = v.as_array() else {
                if v.is_null() {
                    continue;
                }
                return Err("userDefinedFields must be an array of {name, value}.".into());
            };
            for u in list {
                let name = get_ci(u, "name")
                    .and_then(Value::as_str)
                    .ok_or("Each userDefinedFields entry needs a name.")?;
                let def = st.udf_def(e, name).ok_or_else(|| {
                    format!(
                        "Unable to find user-defined field '{name}' in the {} entity.",
                        e.name()
                    )
                })?;
                let value = match get_ci(u, "value") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(
                        scalar_text(v)
                            .ok_or_else(|| format!("Invalid value {v} for UDF '{name}'."))?,
                    ),
                };
                if let (Some(list), Some(val)) = (&def.picklist, &value) {
                    if !list.iter().any(|(pv, _)| pv == val) {
                        return Err(format!(
                            "'{val}' is not a valid picklist value for UDF '{}'.",
                            def.name
                        ));
                    }
                }
                let udfs = obj
                    .entry("userDefinedFields")
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .expect("array");
                match udfs.iter_mut().find(|x| {
                    x.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.eq_ignore_ascii_case(&def.name))
                }) {
                    Some(x) => x["value"] = Value::from(value),
                    None => udfs.push(json!({"name": def.name, "value": value})),
                }
            }
            continue;
        }
        let Some(def) = e.field(k) else { continue };
        if def.read_only() {
            continue;
        }
        obj.insert(def.name.to_string(), coerce(def, v)?);
    }
    Ok(())
}

fn check_required(e: Entity, json: &Value) -> Result<(), String> {
    for f in e.fields().iter().filter(|f| f.required() && !f.read_only()) {
        match json.get(f.name) {
            None | Some(Value::Null) => return Err(format!("Field {} is required.", f.name)),
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(format!("Field {} is required.", f.name))
            }
            _ => {}
        }
    }
    Ok(())
}

fn body_id(body: &Map<String, Value>) -> Result<i64, String> {
    match get_ci_map(body, "id") {
        Some(v) => coerce(&COMPANY_FIELDS[0], v)?
            .as_i64()
            .ok_or_else(|| "Field id is required for an update.".to_string()),
        None => Err("Field id is required for an update.".into()),
    }
}

pub(super) fn from_json<T: DeserializeOwned>(v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("Invalid record: {e}"))
}

pub(super) fn check_pick(st: &AtState, e: Entity, field: &str, value: i64) -> Result<(), String> {
    if st.pick_valid(e, field, value) {
        Ok(())
    } else {
        Err(format!(
            "'{value}' is not a valid value for picklist field {field}."
        ))
    }
}

/// A create (`POST`) or sparse update (`PATCH`, id in the body) of a root entity.
pub(super) struct RootWrite<'a> {
    pub(super) e: Entity,
    pub(super) body: &'a Map<String, Value>,
    pub(super) update: bool,
    pub(super) now: DateTime<Utc>,
}

/// The steps every root write shares: start from `fresh` without the `must_send` fields (a
/// create has no defaults for them) or from the current JSON (an update), overlay the body,
/// check the required fields, let `build` make and validate the record (it gets the updated
/// id), then stamp and store it.
pub(super) fn save_root<T: Record + DeserializeOwned>(
    st: &mut AtState,
    w: &RootWrite<'_>,
    table: fn(&mut AtState) -> &mut Table<T>,
    fresh: T,
    must_send: &[&str],
    build: impl FnOnce(&AtState, Value, Option<i64>) -> Result<T, String>,
) -> Result<i64, String> {
    let (existing, mut json) = if w.update {
        let id = body_id(w.body)?;
        let json = table(st)
            .json(id)
            .cloned()
            .ok_or_else(|| format!("{} with id {id} was not found.", w.e.singular()))?;
        (Some(id), json)
    } else {
        let mut json = serde_json::to_value(fresh).expect("record serializes");
        for f in must_send {
            json[*f] = Value::Null;
        }
        (None, json)
    };
    overlay(st, w.e, &mut json, w.body)?;
    check_required(w.e, &json)?;
    let rec = build(st, json, existing)?;
    Ok(table(st).save(existing, rec, w.now))
}

fn write_company(st: &mut AtState, w: &RootWrite<'_>) -> Result<i64, String> {
    let fresh = AtCompany {
        is_active: true,
        owner_resource_id: DEFAULT_OWNER_RESOURCE_ID,
        create_date: w.now,
        user_defined_fields: st.blank_udfs(w.e),
        ..Default::default()
    };
    let must_send = ["companyName", "companyType"];
    save_root(
        st,
        w,
        |st| &mut st.companies,
        fresh,
        &must_send,
        |st, json, existing| {
            let rec: AtCompany = from_json(json)?;
            check_pick(st, w.e, "companyType", rec.company_type)?;
            if let Some(p) = rec.parent_company_id {
                if st.companies.get(p).is_none() || Some(p) == existing {
                    return Err(format!(
                        "parentCompanyID: Company {p} is not a valid parent."
                    ));
                }
            }
            Ok(rec)
        },
    )
}

fn write_contract(st: &mut AtState, w: &RootWrite<'_>) -> Result<i64, String> {
    let fresh = AtContract {
        status: 1,
        contract_period_type: 1,
        user_defined_fields: st.blank_udfs(w.e),
        ..Default::default()
    };
    let must_send = [
        "companyID",
        "contractName",
        "contractType",
        "startDate",
        "endDate",
    ];
    save_root(
        st,
        w,
        |st| &mut st.contracts,
        fresh,
        &must_send,
        |st, json, _| {
            let rec: AtContract = from_json(json)?;
            if st.companies.get(rec.company_id).is_none() {
                return Err(format!(
                    "companyID: Company {} does not exist.",
                    rec.company_id
                ));
            }
            check_pick(st, w.e, "contractType", rec.contract_type)?;
            check_pick(st, w.e, "status", rec.status)?;
            check_pick(st, w.e, "contractPeriodType", rec.contract_period_type)?;
            if let Some(c) = rec.contract_category {
                check_pick(st, w.e, "contractCategory", c)?;
            }
            if rec.end_date < rec.start_date {
                return Err("endDate must not be before startDate.".into());
            }
            Ok(rec)
        },
    )
}

fn write_service(st: &mut AtState, w: &RootWrite<'_>) -> Result<i64, String> {
    let fresh = AtService {
        is_active: true,
        billing_code_id: Some(DEFAULT_BILLING_CODE_ID),
        user_defined_fields: st.blank_udfs(w.e),
        ..Default::default()
    };
    let must_send = ["name", "periodType"];
    save_root(
        st,
        w,
        |st| &mut st.services,
        fresh,
        &must_send,
        |st, mut json, _| {
            if json.get("unitPrice").is_none_or(Value::is_null) {
                json["unitPrice"] = json!(0.0);
            }
            let rec: AtService = from_json(json)?;
            check_pick(st, w.e, "periodType", rec.period_type)?;
            Ok(rec)
        },
    )
}

fn write_contract_service(
    st: &mut AtState,
    contract_id: i64,
    body: &Map<String, Value>,
    update: bool,
    today: NaiveDate,
) -> Result<i64, String> {
    let e = Entity::ContractServices;
    if update {
        let id = body_id(body)?;
        let current = match st.contract_services.get(id) {
            Some(cs) if cs.contract_id == contract_id => {
                st.contract_services.json(id).cloned().expect("stored")
            }
            _ => {
                return Err(format!(
                    "ContractService with id {id} was not found on contract {contract_id}."
                ))
            }
        };
        let mut json = current.clone();
        overlay(st, e, &mut json, body)?;
        for f in e.fields().iter().filter(|f| !f.read_only()) {
            let allowed = matches!(f.name, "unitPrice" | "invoiceDescription");
            if !allowed && json.get(f.name) != current.get(f.name) {
                return Err(format!(
                    "Field {} is read-only on update (only unitPrice and invoiceDescription \
                     can be changed).",
                    f.name
                ));
            }
        }
        if json.get("unitPrice").is_none_or(Value::is_null) {
            return Err("Field unitPrice cannot be null.".into());
        }
        let rec: AtContractService = from_json(json)?;
        let price_changed = st
            .contract_services
            .get(id)
            .is_some_and(|c| c.unit_price != rec.unit_price);
        st.contract_services.put(id, rec.clone());
        if price_changed {
            // The new price applies to current and future periods.
            let ids: Vec<i64> = st.units.child_ids(id).collect();
            for u in ids {
                st.units.modify(u, |u| {
                    if u.end_date.date_naive() >= today {
                        u.price = rec.unit_price;
                    }
                });
            }
        }
        return Ok(id);
    }
    let c = st
        .contracts
        .get(contract_id)
        .cloned()
        .ok_or_else(|| format!("Contract {contract_id} does not exist."))?;
    if c.contract_type != RECURRING_SERVICE {
        return Err(format!(
            "contractID must reference a Recurring Service type contract (contractType = \
             {RECURRING_SERVICE}); contract {contract_id} has contractType {}.",
            c.contract_type
        ));
    }
    let mut json = serde_json::to_value(AtContractService::default()).expect("serializes");
    json["serviceID"] = Value::Null;
    json["unitPrice"] = Value::Null;
    overlay(st, e, &mut json, body)?;
    if let Some(cid) = json.get("contractID").and_then(Value::as_i64) {
        if cid != 0 && cid != contract_id {
            return Err(format!(
                "contractID {cid} does not match the parent contract {contract_id}."
            ));
        }
    }
    let service_id = json
        .get("serviceID")
        .and_then(Value::as_i64)
        .ok_or("Field serviceID is required.")?;
    let text = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_string);
    st.create_contract_service(
        contract_id,
        service_id,
        json.get("unitPrice").and_then(Value::as_f64),
        json.get("unitCost").and_then(Value::as_f64),
        text("invoiceDescription"),
        text("internalDescription"),
        0.0,
        today,
    )
}
