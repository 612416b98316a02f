//! The platform's answers as serde shapes (every other field is skipped while parsing), their
//! translation into the domain's model, and how its error answers read.

use crate::http::{parse_time, ErrorDialect, Forbidden};
use chrono::{DateTime, Utc};
use domain::model::{CurrentItem, ItemKey, Quota, Tenant, TenantKind};
use domain::ports::TenantWithItems;
use domain::{PortError, System};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;

/// How platform error answers read: `{"error": {"code", "message", …}}`, or OAuth's
/// `{"error", "error_description"}` from the token endpoint.
pub(super) struct PlatformErrors;

impl ErrorDialect for PlatformErrors {
    const SYSTEM: System = System::Platform;
    const VENDOR: &'static str = "platform";

    fn message(&self, body: &str) -> Option<String> {
        let v: Value = serde_json::from_str(body).ok()?;
        v.pointer("/error/message")
            .and_then(Value::as_str)
            .or_else(|| v.get("error_description").and_then(Value::as_str))
            .map(str::to_owned)
    }

    fn unauthorized(&self) -> &'static str {
        "check the API client id and secret"
    }

    fn forbidden(&self) -> Forbidden {
        Forbidden::Rejected("the API client may not act on this tenant")
    }
}

pub(super) fn err(status: StatusCode, body: &str, what: &str) -> PortError {
    PlatformErrors.classify(status, body, what)
}

/// A page of a cursor-paged list.
#[derive(Deserialize)]
pub(super) struct WirePage<T> {
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub paging: Option<WirePaging>,
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
}

#[derive(Deserialize)]
pub(super) struct WirePaging {
    #[serde(default)]
    pub cursors: Option<WireCursors>,
}

#[derive(Deserialize)]
pub(super) struct WireCursors {
    #[serde(default)]
    pub after: Option<String>,
}

/// The fields of a listed tenant that we use (everything else is skipped while parsing).
#[derive(Deserialize)]
pub(super) struct WireTenant {
    pub id: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub version: Option<u64>,
    #[serde(default)]
    pub update_lock: Option<WireLock>,
    #[serde(default)]
    pub ancestral_access: Option<bool>,
    #[serde(default)]
    pub pricing_mode: Option<String>,
    #[serde(default)]
    pub deleted_at: Option<String>,
    #[serde(default)]
    pub offering_items: Option<Vec<WireItem>>,
}

#[derive(Deserialize)]
pub(super) struct WireLock {
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Deserialize)]
pub(super) struct WireItem {
    pub name: String,
    #[serde(default)]
    pub infra_id: Option<String>,
    #[serde(default)]
    pub status: Option<i64>,
    #[serde(default)]
    pub quota: Option<WireQuota>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct WireQuota {
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub overage: Option<f64>,
}

impl WireItem {
    pub fn into_domain(self) -> CurrentItem {
        let (value, overage) = self.quota.map_or((None, None), |q| (q.value, q.overage));
        CurrentItem {
            key: ItemKey {
                name: self.name,
                infra_id: self.infra_id,
            },
            enabled: self.status == Some(1),
            quota: Quota { value, overage },
            updated_at: self.updated_at.as_deref().and_then(parse_time),
        }
    }
}

impl WireTenant {
    /// A tenant from an answer already read as JSON (a create's answer).
    pub fn from_value(v: Value) -> Option<Tenant> {
        let t: WireTenant = serde_json::from_value(v).ok()?;
        t.into_domain().map(|t| t.tenant)
    }

    pub fn into_domain(self) -> Option<TenantWithItems> {
        Some(TenantWithItems {
            items: self
                .offering_items
                .unwrap_or_default()
                .into_iter()
                .map(WireItem::into_domain)
                .collect(),
            tenant: Tenant {
                kind: TenantKind::of(self.kind.as_deref()),
                id: self.id,
                parent_id: self.parent_id,
                name: self.name.unwrap_or_default(),
                enabled: self.enabled.unwrap_or(true),
                customer_id: self.customer_id.filter(|c| !c.is_empty()),
                version: self.version.unwrap_or(0),
                self_service: self.update_lock.and_then(|l| l.enabled).unwrap_or(false),
                support_access: self.ancestral_access.unwrap_or(true),
                pricing_mode: self.pricing_mode,
                deleted: self.deleted_at.is_some(),
            },
        })
    }
}

pub(super) fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Platform timestamps: RFC 3339, sometimes without a zone (then UTC).
pub(super) fn time_of(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    parse_time(v.get(key)?.as_str()?)
}

pub(super) fn items_of(v: &Value) -> Vec<Value> {
    v.get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}
