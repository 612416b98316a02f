//! Wire records of the fake ConnectWise Manage (field names as the REST 3.0 API sends them),
//! the `2026-11-22T00:00:00Z` datetime format, and the inputs of the handle's `add_*` methods.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::common::impl_record;

// ---------------------------------------------------------------------------------------------
// Wire datetime format: "2026-11-22T00:00:00Z"
// ---------------------------------------------------------------------------------------------

/// Formats a datetime the way Manage does (`2026-11-22T00:00:00Z`, whole seconds).
pub fn cw_format(d: &DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

mod cw_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::cw_format(d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        crate::conditions::parse_datetime(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid datetime {s}")))
    }
}

mod cw_time_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::cw_format(d)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) => crate::conditions::parse_datetime(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid datetime {s}"))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// `_info` block; `lastUpdated` is stamped with the fake's clock on every change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CwInfo {
    #[serde(rename = "lastUpdated", with = "cw_time")]
    pub last_updated: DateTime<Utc>,
    #[serde(rename = "updatedBy")]
    pub updated_by: String,
}

/// `{id, name}` reference (status, type, contact …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CwRef {
    pub id: i64,
    pub name: String,
}

/// `CompanyReference` `{id, identifier, name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CwCompanyRef {
    pub id: i64,
    pub identifier: String,
    pub name: String,
}

/// `IvItemReference` `{id, identifier}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CwProductRef {
    pub id: i64,
    pub identifier: String,
}

/// `company/companies` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwCompany {
    pub id: i64,
    pub identifier: String,
    pub name: String,
    pub status: CwRef,
    pub types: Vec<CwRef>,
    pub deleted_flag: bool,
    pub default_contact: Option<CwRef>,
    #[serde(rename = "_info")]
    pub info: CwInfo,
}

/// One entry of a contact's `communicationItems`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwCommunicationItem {
    pub id: i64,
    #[serde(rename = "type")]
    pub item_type: CwRef,
    pub value: String,
    pub default_flag: bool,
    pub communication_type: String,
}

/// `company/contacts` record (made for a company's primary contact).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwContact {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub company: CwCompanyRef,
    pub inactive_flag: bool,
    pub default_flag: bool,
    pub communication_items: Vec<CwCommunicationItem>,
    #[serde(rename = "_info")]
    pub info: CwInfo,
}

/// `finance/agreements` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwAgreement {
    pub id: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub agreement_type: CwRef,
    pub company: CwCompanyRef,
    pub contact: Option<CwRef>,
    #[serde(with = "cw_time_opt")]
    pub start_date: Option<DateTime<Utc>>,
    #[serde(with = "cw_time_opt")]
    pub end_date: Option<DateTime<Utc>>,
    pub no_ending_date_flag: bool,
    pub cancelled_flag: bool,
    #[serde(with = "cw_time_opt")]
    pub date_cancelled: Option<DateTime<Utc>>,
    /// `Active | Cancelled | Expired | Inactive`.
    pub agreement_status: String,
    #[serde(rename = "_info")]
    pub info: CwInfo,
}

/// `finance/agreements/{parentId}/additions` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwAddition {
    pub id: i64,
    pub product: CwProductRef,
    pub quantity: f64,
    pub less_included: f64,
    pub unit_price: f64,
    /// `Billable | DoNotBill | NoCharge`.
    pub bill_customer: String,
    #[serde(with = "cw_time_opt")]
    pub effective_date: Option<DateTime<Utc>>,
    #[serde(with = "cw_time_opt")]
    pub cancelled_date: Option<DateTime<Utc>>,
    pub agreement_id: i64,
    pub description: String,
    pub invoice_description: Option<String>,
    #[serde(rename = "_info")]
    pub info: CwInfo,
}

/// `procurement/catalog` record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwCatalogItem {
    pub id: i64,
    pub identifier: String,
    pub description: String,
    pub customer_description: String,
    /// `ProductSubCategoryReference` (required by the schema); the sandbox files every item
    /// under `{id: 1, name: "Cloud Services"}`.
    pub subcategory: CwRef,
    /// `ProductTypeReference` (required by the schema); always `{id: 1, name: "Service"}`.
    #[serde(rename = "type")]
    pub item_type: CwRef,
    pub inactive_flag: bool,
    pub product_class: String,
    pub recurring_flag: bool,
    #[serde(rename = "_info")]
    pub info: CwInfo,
}

/// `service/tickets` record (written only through the API).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwTicket {
    pub id: i64,
    pub summary: String,
    /// `ServiceTicket | ProjectTicket | ProjectIssue`.
    pub record_type: String,
    pub board: CwRef,
    pub status: CwRef,
    pub priority: CwRef,
    pub company: CwCompanyRef,
    pub contact: Option<CwRef>,
    pub initial_description: Option<String>,
    pub closed_flag: bool,
    #[serde(rename = "_info")]
    pub info: CwInfo,
}

/// Input of [`ConnectWiseFake::add_company`](super::ConnectWiseFake::add_company).
#[derive(Debug, Clone, Default)]
pub struct NewCompany {
    pub identifier: String,
    pub name: String,
    /// Company type name (e.g. "Client"); `None` = no types.
    pub type_name: Option<String>,
    /// Status name; `None` = "Active".
    pub status_name: Option<String>,
    /// `(first name, last name, email)`; creates a contact and sets `defaultContact`.
    pub primary_contact: Option<(String, String, String)>,
}

/// Input of [`ConnectWiseFake::add_agreement`](super::ConnectWiseFake::add_agreement).
#[derive(Debug, Clone, Default)]
pub struct NewAgreement {
    pub company_id: i64,
    pub name: String,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub no_ending_date_flag: bool,
    pub cancelled_flag: bool,
    pub date_cancelled: Option<DateTime<Utc>>,
}

/// Input of [`ConnectWiseFake::add_addition`](super::ConnectWiseFake::add_addition).
#[derive(Debug, Clone, Default)]
pub struct NewAddition {
    pub product_id: i64,
    pub quantity: f64,
    pub less_included: f64,
    pub effective_date: Option<DateTime<Utc>>,
    pub cancelled_date: Option<DateTime<Utc>>,
}

impl CwInfo {
    /// The `_info` of a record the sandbox changed at `now`.
    pub(super) fn at(now: DateTime<Utc>) -> CwInfo {
        CwInfo {
            last_updated: now,
            updated_by: "psa-sandbox".into(),
        }
    }
}

impl_record! {
    CwCompany: |r, now| r.info = CwInfo::at(now);
    CwContact: |r, now| r.info = CwInfo::at(now);
    CwAgreement: |r, now| r.info = CwInfo::at(now);
    CwAddition: |r, now| r.info = CwInfo::at(now);
    CwCatalogItem: |r, now| r.info = CwInfo::at(now);
    CwTicket: |r, now| r.info = CwInfo::at(now);
}
