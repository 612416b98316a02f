//! The Autotask REST shapes we read, parsed by serde (every other field is skipped while
//! parsing), and their translation into the domain's model. Autotask writes ids, picklist
//! values and flags as numbers or strings depending on the field: [`text`], [`flag`] and
//! [`number`] read either.

use super::metadata::{ContractCtx, PaygDef, PicklistValue};
use crate::http::{parse_day, parse_time};
use chrono::{DateTime, NaiveDate, Utc};
use domain::model::{Agreement, Contact, PaygField};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A JSON scalar as text (`7` and `"7"` alike); null or absent: None.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    })
}

/// A flag as Autotask writes it: `true`, `1`, `"true"` or `"1"`; anything else is false.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Bool(b)) => Some(b),
        Some(Value::Number(n)) => Some(n.as_i64() == Some(1)),
        Some(Value::String(s)) => Some(matches!(s.to_ascii_lowercase().as_str(), "true" | "1")),
        Some(_) => Some(false),
        None => None,
    })
}

/// A number, or a string holding one.
fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// Records of a query have an id (paging by id continues after the largest one).
pub(super) trait HasId {
    fn id(&self) -> Option<i64>;
}

macro_rules! has_id {
    ($($t:ty),*) => {$(impl HasId for $t {
        fn id(&self) -> Option<i64> {
            self.id.as_deref()?.trim().parse().ok()
        }
    })*};
}

/// A page of `{Entity}/query`: `{items, pageDetails: {nextPageUrl}}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WirePage<W> {
    pub items: Option<Vec<W>>,
    #[serde(default)]
    pub page_details: Option<WirePageDetails>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WirePageDetails {
    #[serde(default)]
    pub next_page_url: Option<String>,
}

/// `GET {Entity}/{id}`: `{item}` (null when there is none).
#[derive(Deserialize)]
pub(super) struct WireItem<W> {
    pub item: Option<W>,
}

/// A create's answer: `{itemId}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireCreated {
    #[serde(default, deserialize_with = "text")]
    pub item_id: Option<String>,
}

/// `zoneInformation`: `{url, …}`.
#[derive(Deserialize)]
pub(super) struct WireZone {
    #[serde(default, deserialize_with = "text")]
    pub url: Option<String>,
}

/// `ThresholdInformation`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireThreshold {
    #[serde(default, deserialize_with = "number")]
    pub current_timeframe_request_count: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    pub external_request_threshold: Option<f64>,
}

impl WireThreshold {
    /// (requests used in the current hour, the hourly threshold).
    pub fn counts(&self) -> Option<(u64, u64)> {
        let n = |f: Option<f64>| f.map(|f| f.max(0.0) as u64);
        Some((
            n(self.current_timeframe_request_count)?,
            n(self.external_request_threshold)?,
        ))
    }
}

/// `entityInformation/fields` and `entityInformation/userDefinedFields`: `{fields}`.
#[derive(Deserialize)]
pub(super) struct WireFields {
    #[serde(default)]
    pub fields: Vec<WireField>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireField {
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
    #[serde(default)]
    pub picklist_values: Option<Vec<WirePicklistValue>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WirePicklistValue {
    #[serde(default, deserialize_with = "text")]
    value: Option<String>,
    #[serde(default, deserialize_with = "text")]
    label: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    is_active: Option<bool>,
}

/// The values of a picklist (those with a value and a label).
pub(super) fn picklist_values(values: Vec<WirePicklistValue>) -> Vec<PicklistValue> {
    values
        .into_iter()
        .filter_map(|p| {
            Some(PicklistValue {
                value: p.value?,
                label: p.label?,
                is_active: p.is_active.unwrap_or(true),
            })
        })
        .collect()
}

/// A company (`Companies`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireCompany {
    #[serde(default, deserialize_with = "text")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub company_number: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub company_name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub company_type: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "text")]
    pub last_tracked_modified_date_time: Option<String>,
}

/// A company as read, before its type label and primary contact are known.
pub(super) struct RawCompany {
    pub id: String,
    pub number: Option<String>,
    pub name: String,
    pub company_type: Option<String>,
    pub active: bool,
    pub updated_at: Option<DateTime<Utc>>,
}

pub(super) fn raw_company(c: WireCompany) -> Option<RawCompany> {
    Some(RawCompany {
        id: c.id?,
        number: c.company_number.filter(|n| !n.trim().is_empty()),
        name: c.company_name.unwrap_or_default(),
        company_type: c.company_type,
        active: c.is_active.unwrap_or(false),
        updated_at: time(c.last_tracked_modified_date_time),
    })
}

/// A contract (`Contracts`) with its user-defined fields.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireContract {
    #[serde(default, deserialize_with = "text")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    contract_name: Option<String>,
    #[serde(default, rename = "companyID", deserialize_with = "text")]
    company_id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    start_date: Option<String>,
    #[serde(default, deserialize_with = "text")]
    end_date: Option<String>,
    #[serde(default, deserialize_with = "text")]
    status: Option<String>,
    #[serde(default, deserialize_with = "text")]
    last_modified_date_time: Option<String>,
    #[serde(default)]
    user_defined_fields: Vec<WireUdf>,
}

/// One entry of `userDefinedFields`: `{name, value}`.
#[derive(Deserialize)]
struct WireUdf {
    #[serde(default, deserialize_with = "text")]
    name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    value: Option<String>,
}

impl WireContract {
    /// The value of a UDF (name case-insensitive).
    fn udf(&self, name: &str) -> Option<&str> {
        self.user_defined_fields
            .iter()
            .find(|u| {
                u.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .and_then(|u| u.value.as_deref())
    }
}

/// A contract as the domain sees it: `cancelled` unless its status is Active, and its PAYG
/// field as Autotask holds it (a picklist value shown by its label). Whether that field makes
/// the contract PAYG, prepaid or a problem is the domain's decision (R-PROV-3).
pub(super) fn agreement_from(c: WireContract, ctx: &ContractCtx) -> Option<Agreement> {
    let name = ctx.field.clone();
    let payg_field = match &ctx.payg {
        PaygDef::Missing => PaygField::Undefined { name },
        PaygDef::Text => PaygField::Value {
            value: c.udf(&name).map(str::to_owned),
            name,
        },
        PaygDef::Picklist(values) => PaygField::Value {
            value: c.udf(&name).map(|raw| {
                values
                    .iter()
                    .find(|p| p.value == raw)
                    .map_or_else(|| raw.to_owned(), |p| p.label.clone())
            }),
            name,
        },
    };
    Some(Agreement {
        company_id: c.company_id?,
        name: c.contract_name.unwrap_or_default(),
        start_date: day(c.start_date.as_deref()),
        end_date: day(c.end_date.as_deref()),
        no_end_date: false,
        cancelled: c.status.as_deref() != Some(ctx.active.as_str()),
        cancelled_date: None,
        updated_at: time(c.last_modified_date_time),
        payg_field: Some(payg_field),
        id: c.id?,
    })
}

/// A contract service (`ContractServices`): a line without its units.
#[derive(Deserialize)]
pub(super) struct WireContractService {
    #[serde(default, deserialize_with = "text")]
    pub id: Option<String>,
    #[serde(default, rename = "contractID", deserialize_with = "text")]
    pub contract_id: Option<String>,
    #[serde(default, rename = "serviceID", deserialize_with = "text")]
    pub service_id: Option<String>,
}

/// The units of a contract service for one period (`ContractServiceUnits`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireServiceUnits {
    #[serde(default, deserialize_with = "text")]
    pub id: Option<String>,
    #[serde(default, rename = "contractServiceID", deserialize_with = "text")]
    pub contract_service_id: Option<String>,
    #[serde(default, deserialize_with = "number")]
    pub units: Option<f64>,
    #[serde(default, deserialize_with = "text")]
    pub start_date: Option<String>,
}

impl WireServiceUnits {
    pub fn start(&self) -> Option<NaiveDate> {
        day(self.start_date.as_deref())
    }
}

/// A contact (`Contacts`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireContact {
    #[serde(default, deserialize_with = "text")]
    pub id: Option<String>,
    #[serde(default, rename = "companyID", deserialize_with = "text")]
    pub company_id: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    pub is_active: Option<bool>,
    #[serde(default, deserialize_with = "text")]
    first_name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    last_name: Option<String>,
    #[serde(default, deserialize_with = "text")]
    email_address: Option<String>,
}

impl WireContact {
    pub fn contact(self) -> Contact {
        Contact {
            first_name: self.first_name.unwrap_or_default(),
            last_name: self.last_name.unwrap_or_default(),
            email: self.email_address.filter(|e| !e.trim().is_empty()),
        }
    }
}

/// A named record (`Services`, `BillingCodes`).
#[derive(Deserialize)]
pub(super) struct WireNamed {
    #[serde(default, deserialize_with = "text")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "text")]
    pub name: Option<String>,
}

/// A service's price (`GET Services/{id}`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireService {
    #[serde(default, deserialize_with = "number")]
    pub unit_price: Option<f64>,
}

has_id!(
    WireCompany,
    WireContract,
    WireContractService,
    WireServiceUnits,
    WireContact,
    WireNamed
);

fn time(t: Option<String>) -> Option<DateTime<Utc>> {
    parse_time(&t?)
}

fn day(t: Option<&str>) -> Option<NaiveDate> {
    parse_day(t?)
}
