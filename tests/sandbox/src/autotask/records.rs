//! Wire records of the fake Autotask (field names as in the vendor Swagger), the zone-less
//! `2026-11-22T00:00:00.000Z` datetime format, and the inputs of the handle's `add_*` methods.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::common::{impl_record, whole_millis};

// ---------------------------------------------------------------------------------------------
// Wire datetime format: "2026-11-22T00:00:00.123Z"
// ---------------------------------------------------------------------------------------------

/// Formats a datetime the way Autotask answers carry it (UTC, milliseconds, `Z`:
/// `2026-11-22T10:00:00.123Z`). Inputs are accepted with or without zone and fractions.
pub fn at_format(d: &DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub(super) fn at_midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

pub(super) fn parse_dt(s: &str) -> Option<DateTime<Utc>> {
    crate::conditions::parse_datetime(s.trim()).map(whole_millis)
}

mod at_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::at_format(d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_dt(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid datetime {s}")))
    }
}

mod at_time_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::at_format(d)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => super::parse_dt(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid datetime {s}"))),
        }
    }
}

/// Emits integral numbers as JSON integers (Autotask's `units`/`unitChange` are int32).
mod int_num {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            s.serialize_i64(*v as i64)
        } else {
            s.serialize_f64(*v)
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        f64::deserialize(d)
    }
}

// ---------------------------------------------------------------------------------------------
// Records (field names as in the vendor Swagger)
// ---------------------------------------------------------------------------------------------

/// One entry of `userDefinedFields`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AtUdf {
    pub name: String,
    pub value: Option<String>,
}

/// `Companies` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtCompany {
    pub id: i64,
    pub company_name: String,
    pub company_number: Option<String>,
    /// Picklist value (e.g. 1 = Customer).
    pub company_type: i64,
    pub is_active: bool,
    #[serde(rename = "parentCompanyID")]
    pub parent_company_id: Option<i64>,
    #[serde(rename = "ownerResourceID")]
    pub owner_resource_id: i64,
    pub phone: Option<String>,
    #[serde(with = "at_time")]
    pub create_date: DateTime<Utc>,
    #[serde(with = "at_time")]
    pub last_tracked_modified_date_time: DateTime<Utc>,
    pub user_defined_fields: Vec<AtUdf>,
}

/// `Contacts` record (made for a company's primary contact).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtContact {
    pub id: i64,
    #[serde(rename = "companyID")]
    pub company_id: i64,
    pub first_name: String,
    pub last_name: String,
    pub email_address: Option<String>,
    /// 1 = active, 0 = inactive (an integer in the vendor schema).
    pub is_active: i64,
    pub primary_contact: bool,
    #[serde(with = "at_time")]
    pub last_modified_date: DateTime<Utc>,
    pub user_defined_fields: Vec<AtUdf>,
}

/// `Contracts` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtContract {
    pub id: i64,
    #[serde(rename = "companyID")]
    pub company_id: i64,
    pub contract_name: String,
    pub contract_number: Option<String>,
    /// Picklist value (7 = Recurring Service).
    pub contract_type: i64,
    pub contract_category: Option<i64>,
    /// Picklist value (1 = Monthly); sets the ContractServiceUnits period length.
    pub contract_period_type: i64,
    /// Picklist value (1 = Active, 0 = Inactive).
    pub status: i64,
    #[serde(with = "at_time")]
    pub start_date: DateTime<Utc>,
    #[serde(with = "at_time")]
    pub end_date: DateTime<Utc>,
    pub is_default_contract: bool,
    pub description: Option<String>,
    #[serde(with = "at_time")]
    pub last_modified_date_time: DateTime<Utc>,
    pub user_defined_fields: Vec<AtUdf>,
}

/// `ContractServices` record (no quantity: see [`AtContractServiceUnit`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtContractService {
    pub id: i64,
    #[serde(rename = "contractID")]
    pub contract_id: i64,
    #[serde(rename = "serviceID")]
    pub service_id: i64,
    pub unit_price: f64,
    pub unit_cost: Option<f64>,
    pub invoice_description: Option<String>,
    pub internal_description: Option<String>,
}

/// `ContractServiceUnits` record: the units of one contract service for one date range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtContractServiceUnit {
    pub id: i64,
    #[serde(rename = "contractID")]
    pub contract_id: i64,
    #[serde(rename = "contractServiceID")]
    pub contract_service_id: i64,
    #[serde(rename = "serviceID")]
    pub service_id: i64,
    #[serde(with = "int_num")]
    pub units: f64,
    pub price: f64,
    pub cost: Option<f64>,
    #[serde(with = "at_time")]
    pub start_date: DateTime<Utc>,
    #[serde(with = "at_time")]
    pub end_date: DateTime<Utc>,
    #[serde(with = "at_time_opt")]
    pub approve_and_post_date: Option<DateTime<Utc>>,
}

/// `ContractServiceAdjustments` record (create-only over HTTP; kept for inspection).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtContractServiceAdjustment {
    pub id: i64,
    #[serde(rename = "contractID")]
    pub contract_id: i64,
    #[serde(rename = "contractServiceID")]
    pub contract_service_id: Option<i64>,
    #[serde(rename = "serviceID")]
    pub service_id: Option<i64>,
    #[serde(with = "int_num")]
    pub unit_change: f64,
    #[serde(with = "at_time")]
    pub effective_date: DateTime<Utc>,
    pub adjusted_unit_price: Option<f64>,
    pub adjusted_unit_cost: Option<f64>,
    pub allow_repeat_service: bool,
}

/// `Services` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtService {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub invoice_description: Option<String>,
    pub unit_price: f64,
    pub unit_cost: Option<f64>,
    /// Picklist value (1 = Monthly).
    pub period_type: i64,
    #[serde(rename = "billingCodeID")]
    pub billing_code_id: Option<i64>,
    pub is_active: bool,
    pub sku: Option<String>,
    #[serde(rename = "externalID")]
    pub external_id: Option<String>,
    #[serde(with = "at_time")]
    pub last_modified_date: DateTime<Utc>,
    pub user_defined_fields: Vec<AtUdf>,
}

/// `BillingCodes` record (an allocation code; read only here).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtBillingCode {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub is_active: bool,
    /// Picklist value (2 = Recurring Contract Service, the kind services use).
    pub use_type: i64,
}

/// Input of [`AutotaskFake::add_company`](super::AutotaskFake::add_company).
#[derive(Debug, Clone, Default)]
pub struct AtNewCompany {
    pub name: String,
    /// companyType label (e.g. "Customer", the default).
    pub company_type: Option<String>,
    /// `(first name, last name, email)`; creates a Contacts record with `primaryContact`.
    pub primary_contact: Option<(String, String, String)>,
}

/// Input of [`AutotaskFake::add_contract`](super::AutotaskFake::add_contract) (a Recurring Service contract, monthly periods).
#[derive(Debug, Clone, Default)]
pub struct AtNewContract {
    pub company_id: i64,
    pub name: String,
    /// `None` = first day of the fake clock's month.
    pub start_date: Option<DateTime<Utc>>,
    /// `None` = start + 12 months - 1 day.
    pub end_date: Option<DateTime<Utc>>,
    /// `status` 1 (Active) when true, 0 (Inactive) otherwise.
    pub status_active: bool,
    /// `(UDF name, value)`; names not yet defined are defined (text UDFs).
    pub udfs: Vec<(String, String)>,
}

/// `Tickets` record (written only through the API; `ticketNumber` `T{yyyymmdd}.{nnnn}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtTicket {
    pub id: i64,
    pub ticket_number: String,
    pub title: String,
    pub description: Option<String>,
    #[serde(rename = "companyID")]
    pub company_id: i64,
    #[serde(rename = "contactID")]
    pub contact_id: Option<i64>,
    #[serde(rename = "contractID")]
    pub contract_id: Option<i64>,
    #[serde(rename = "queueID")]
    pub queue_id: Option<i64>,
    pub status: i64,
    pub priority: i64,
    #[serde(with = "at_time_opt")]
    pub due_date_time: Option<DateTime<Utc>>,
    #[serde(with = "at_time")]
    pub create_date: DateTime<Utc>,
    #[serde(with = "at_time")]
    pub last_activity_date: DateTime<Utc>,
}

impl_record! {
    AtContact: |r, now| r.last_modified_date = now;
    AtTicket: |r, now| r.last_activity_date = now;
    AtCompany: |r, now| r.last_tracked_modified_date_time = now;
    AtContract: |r, now| r.last_modified_date_time = now;
    AtService: |r, now| r.last_modified_date = now;
}
