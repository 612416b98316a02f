//! Usages of the fake platform: the current value and the per-day history of every usage name
//! of an offering item, and `PUT /api/2/tenants/usages` (usage reporting).
//!
//! An item always has its own usage name (the catalogue entry's `usage_name`); a `storage`
//! (infra) item may also carry `<usage_name>_geo`, `<usage_name>_class1` and
//! `<usage_name>_class2` (UNCONFIRMED suffixes: the product reads usage names ending so as those
//! measures). Usage is absolute: the value on a day is the latest history entry on or before
//! that day (0 if none). The history entry of a day is the last write of that UTC day of the
//! fake clock.
//!
//! `PUT /tenants/usages` (UNCONFIRMED choices, the stricter readings):
//! * unknown keys (top level or in an item), a non-string id, a `usage_value` that is not a
//!   non-negative integer, an item mixing `resource_id` with per-tenant fields, or missing
//!   `tenant_id`/`resource_id`/`usage_type` → 400 naming the field, and nothing is applied;
//! * per-item `error` (the spec's `errorScheme`, `{"error":{code,domain,message,details}}`) for
//!   an unknown, deleted or invisible tenant, an item the tenant does not have (an infra item
//!   without its `infra_id` included), per-tenant reporting by `usage_type` alone, and every
//!   per-resource item (the fake has no resources);
//! * every result item carries all of `tenant_id`, `offering_item`, `infra_id`, `resource_id`,
//!   `usage_type`, empty strings where the spec says "empty".

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
};
use chrono::NaiveDate;
use serde_json::{json, Map, Value};

use super::{
    routes::{check_keys, parse_json, Pf},
    state::{Item, PfState, UKey},
    wire::{bad_request, error_json},
};
use crate::common;

/// The usage-name suffixes an infra item may carry besides its own usage name.
pub(super) const EXTRA_SUFFIXES: &[&str] = &["_geo", "_class1", "_class2"];

pub(super) fn ukey(tenant_id: &str, name: &str, infra: Option<&str>, usage_name: &str) -> UKey {
    (
        tenant_id.to_string(),
        name.to_string(),
        infra.unwrap_or("").to_string(),
        usage_name.to_string(),
    )
}

/// The keys in `map` of one item (any usage name).
fn names_in<'a, V>(
    map: &'a std::collections::BTreeMap<UKey, V>,
    tenant_id: &'a str,
    name: &'a str,
    infra: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    let start = (
        tenant_id.to_string(),
        name.to_string(),
        infra.to_string(),
        String::new(),
    );
    map.range(start..)
        .take_while(move |(k, _)| k.0 == tenant_id && k.1 == name && k.2 == infra)
        .map(|(k, _)| k.3.as_str())
}

impl PfState {
    /// The own usage name of a tenant's item: the item's, else its catalogue entry's, else the
    /// item name.
    pub(super) fn own_usage_name(
        &self,
        tenant_id: &str,
        name: &str,
        infra: Option<&str>,
    ) -> String {
        self.ikey(tenant_id, name, infra)
            .and_then(|k| self.items.get(&k))
            .map(|i| i.usage_name.clone())
            .or_else(|| {
                self.available(tenant_id)
                    .iter()
                    .find(|e| e.name == name && e.infra_id.as_deref() == infra)
                    .map(|e| e.usage_name.clone())
            })
            .unwrap_or_else(|| name.to_string())
    }

    /// The current usage of a tenant's item under its own usage name (0 when none was set).
    pub(super) fn usage(&self, tenant_id: &str, name: &str, infra_id: Option<&str>) -> f64 {
        let un = self.own_usage_name(tenant_id, name, infra_id);
        self.current(&ukey(tenant_id, name, infra_id, &un))
    }

    /// The current value of a usage (0 when none was set).
    pub(super) fn current(&self, k: &UKey) -> f64 {
        self.usages.get(k).copied().unwrap_or(0.0)
    }

    /// Sets the current value and `today`'s history entry.
    pub(super) fn set_current(&mut self, k: UKey, value: f64, today: NaiveDate) {
        self.history
            .entry(k.clone())
            .or_default()
            .insert(today, value);
        self.usages.insert(k, value);
    }

    /// Writes the history entry of `day` (and the current value when `day` is `today`).
    pub(super) fn set_day(&mut self, k: UKey, day: NaiveDate, value: f64, today: NaiveDate) {
        if day == today {
            self.set_current(k, value, today);
        } else {
            self.history.entry(k).or_default().insert(day, value);
        }
    }

    /// The value of a usage on `day`: the latest history entry on or before it (0 if none).
    pub(super) fn value_on(&self, k: &UKey, day: NaiveDate) -> f64 {
        self.history
            .get(k)
            .and_then(|h| h.range(..=day).next_back())
            .map(|(_, v)| *v)
            .unwrap_or(0.0)
    }

    /// The usage names of an item: its own first, then (sorted) the others that have a current
    /// value, or with `with_history` also those with only history.
    pub(super) fn usage_names(&self, it: &Item, with_history: bool) -> Vec<String> {
        let infra = it.infra_id.as_deref().unwrap_or("");
        let mut extra: Vec<&str> = names_in(&self.usages, &it.tenant_id, &it.name, infra).collect();
        if with_history {
            extra.extend(names_in(&self.history, &it.tenant_id, &it.name, infra));
        }
        extra.sort();
        extra.dedup();
        std::iter::once(it.usage_name.clone())
            .chain(
                extra
                    .into_iter()
                    .filter(|n| *n != it.usage_name)
                    .map(str::to_string),
            )
            .collect()
    }
}

/// One item of a `PUT /tenants/usages` body.
enum UsageReq {
    Tenant {
        tenant_id: String,
        offering_item: Option<String>,
        usage_type: Option<String>,
        infra_id: Option<String>,
        value: i64,
    },
    Resource {
        resource_id: String,
        usage_type: String,
    },
}

const ITEM_KEYS: &[&str] = &[
    "tenant_id",
    "resource_id",
    "usage_type",
    "offering_item",
    "infra_id",
    "usage_value",
];

fn parse_item(n: usize, r: &Value) -> Result<UsageReq, Response> {
    let at = |k: &str| format!("items[{n}].{k}");
    let Some(o) = r.as_object() else {
        return Err(bad_request(&format!("'items[{n}]' must be an object.")));
    };
    if let Some(k) = o.keys().find(|k| !ITEM_KEYS.contains(&k.as_str())) {
        return Err(bad_request(&format!("Unexpected field '{}'.", at(k))));
    }
    let s = |k: &str| -> Result<Option<String>, Response> {
        match o.get(k) {
            None => Ok(None),
            Some(Value::String(v)) => Ok(Some(v.clone())),
            Some(_) => Err(bad_request(&format!("'{}' must be a string.", at(k)))),
        }
    };
    let value = match o.get("usage_value") {
        None => {
            return Err(bad_request(&format!(
                "'{}' is required.",
                at("usage_value")
            )))
        }
        Some(v) => match v.as_i64() {
            Some(i) if i >= 0 => i,
            _ => {
                return Err(bad_request(&format!(
                    "'{}' must be a non-negative integer.",
                    at("usage_value")
                )))
            }
        },
    };
    let (tenant_id, offering_item, infra_id) =
        (s("tenant_id")?, s("offering_item")?, s("infra_id")?);
    let usage_type = s("usage_type")?;
    if let Some(resource_id) = s("resource_id")? {
        if let Some(k) = ["tenant_id", "offering_item", "infra_id"]
            .into_iter()
            .find(|k| o.contains_key(*k))
        {
            return Err(bad_request(&format!(
                "'{}' cannot be combined with '{}' (per-resource reporting).",
                at(k),
                at("resource_id")
            )));
        }
        let Some(usage_type) = usage_type else {
            return Err(bad_request(&format!("'{}' is required.", at("usage_type"))));
        };
        return Ok(UsageReq::Resource {
            resource_id,
            usage_type,
        });
    }
    let Some(tenant_id) = tenant_id else {
        return Err(bad_request(&format!(
            "'{}' or '{}' is required.",
            at("tenant_id"),
            at("resource_id")
        )));
    };
    if offering_item.is_none() && usage_type.is_none() {
        return Err(bad_request(&format!(
            "'{}' is required.",
            at("offering_item")
        )));
    }
    Ok(UsageReq::Tenant {
        tenant_id,
        offering_item,
        usage_type,
        infra_id,
        value,
    })
}

fn result_item(fields: [(&str, &str); 5], error: Option<Value>) -> Value {
    let mut m: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    if let Some(e) = error {
        m.insert("error".into(), e);
    }
    Value::Object(m)
}

/// `PUT /api/2/tenants/usages`.
pub(super) async fn put_usages(State(s): State<Pf>, h: HeaderMap, body: Bytes) -> Response {
    s.authed(&h, |st, p, now| {
        let b = tri!(parse_json(&body));
        tri!(check_keys(&b, &["items"]));
        let Some(reqs) = b.get("items").and_then(Value::as_array) else {
            return bad_request("'items' (array) is required.");
        };
        let mut parsed = Vec::new();
        for (n, r) in reqs.iter().enumerate() {
            parsed.push(tri!(parse_item(n, r)));
        }
        let today = now.date_naive();
        let mut out = Vec::new();
        for r in parsed {
            let (fields, error) = match r {
                UsageReq::Resource {
                    resource_id,
                    usage_type,
                } => {
                    let e = error_json(
                        "NotFound",
                        &format!("Resource {resource_id} not found."),
                    );
                    out.push(result_item(
                        [
                            ("tenant_id", ""),
                            ("offering_item", ""),
                            ("infra_id", ""),
                            ("resource_id", &resource_id),
                            ("usage_type", &usage_type),
                        ],
                        Some(e),
                    ));
                    continue;
                }
                UsageReq::Tenant {
                    tenant_id,
                    offering_item,
                    usage_type,
                    infra_id,
                    value,
                } => {
                    let item = offering_item.clone().unwrap_or_default();
                    let error = match st.tenant(&tenant_id).filter(|t| t.deleted_at.is_none()) {
                        None => Some(error_json(
                            "NotFound",
                            &format!("Tenant {tenant_id} not found."),
                        )),
                        Some(_) if !st.in_subtree(&tenant_id, &p.tenant_id) => Some(error_json(
                            "Forbidden",
                            &format!("Access to tenant {tenant_id} is denied for this client."),
                        )),
                        Some(_) if offering_item.is_none() => Some(error_json(
                            "BadRequest",
                            &format!(
                                "Usage '{}' cannot be reported per tenant without 'offering_item'.",
                                usage_type.unwrap_or_default()
                            ),
                        )),
                        Some(_) => {
                            let live = st
                                .ikey(&tenant_id, &item, infra_id.as_deref())
                                .and_then(|k| st.items.get(&k))
                                .filter(|i| i.deleted_at.is_none())
                                .map(|i| i.usage_name.clone());
                            match live {
                                Some(un) => {
                                    let k = ukey(&tenant_id, &item, infra_id.as_deref(), &un);
                                    st.set_current(k, value as f64, today);
                                    None
                                }
                                None => Some(error_json(
                                    "NotFound",
                                    &format!(
                                        "Offering item '{item}'{} not found for tenant {tenant_id}.",
                                        infra_id
                                            .as_deref()
                                            .map(|i| format!(" with infra_id '{i}'"))
                                            .unwrap_or_default()
                                    ),
                                )),
                            }
                        }
                    };
                    ((tenant_id, item, infra_id.unwrap_or_default()), error)
                }
            };
            out.push(result_item(
                [
                    ("tenant_id", &fields.0),
                    ("offering_item", &fields.1),
                    ("infra_id", &fields.2),
                    ("resource_id", ""),
                    ("usage_type", ""),
                ],
                error,
            ));
        }
        common::json_response(StatusCode::OK, &json!({ "items": out }))
    })
}
