//! How the fake platform renders its records: tenants (per level of detail), offering items,
//! usages and infrastructure.

use chrono::{DateTime, Datelike, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{
    state::{Infra, Item, PfState, Tenant},
    wire::{am_time, am_time_opt, num_opt},
    APPLICATION_ID,
};
use crate::common::num_json;

/// Level of detail of a tenant (`lod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Lod {
    Stamps,
    Basic,
    Full,
}

impl PfState {
    pub(super) fn item_json(&self, it: &Item) -> Value {
        let mut v = json!({
            "application_id": APPLICATION_ID,
            "name": it.name,
            "edition": "standard",
            "usage_name": it.usage_name,
            "tenant_id": it.tenant_id,
            "updated_at": am_time(&it.updated_at),
            "deleted_at": am_time_opt(&it.deleted_at),
            "status": it.status,
            "locked": false,
            "type": it.item_type,
            "measurement_unit": it.unit,
            "quota": quota_json(it),
        });
        with_infra(&mut v, it);
        v
    }

    pub(super) fn has_children(&self, t: &Tenant) -> bool {
        self.children_of(&t.id).any(|c| c.deleted_at.is_none())
    }

    pub(super) fn tenant_json(&self, t: &Tenant, lod: Lod, batch: bool, with_items: bool) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(t.id));
        m.insert("parent_id".into(), json!(t.parent_id));
        m.insert("version".into(), json!(t.version));
        m.insert("created_at".into(), json!(am_time(&t.created_at)));
        m.insert("updated_at".into(), json!(am_time(&t.updated_at)));
        m.insert("deleted_at".into(), am_time_opt(&t.deleted_at));
        if lod != Lod::Stamps {
            m.insert("name".into(), json!(t.name));
            m.insert("kind".into(), json!(t.kind));
            m.insert("enabled".into(), json!(t.enabled));
        }
        if lod == Lod::Full {
            m.insert("customer_type".into(), json!(t.customer_type));
            m.insert("customer_id".into(), json!(t.customer_id));
            m.insert("brand_id".into(), json!(1));
            m.insert("brand_enabled".into(), json!(true));
            // Invented constants (the full-lod schema requires them).
            m.insert(
                "brand_uuid".into(),
                json!("03fa8bf4-28f2-11e7-ba28-cbe99c3c450a"),
            );
            m.insert("barrier".into(), json!(0));
            m.insert(
                "default_idp_id".into(),
                json!("11111111-2222-4333-8444-555555555555"),
            );
            m.insert("internal_tag".into(), json!(t.internal_tag));
            m.insert("language".into(), json!(t.language));
            m.insert("owner_id".into(), Value::Null);
            m.insert("has_children".into(), json!(self.has_children(t)));
            m.insert("ancestral_access".into(), json!(t.ancestral_access));
            m.insert(
                "update_lock".into(),
                json!({"enabled": t.update_lock, "owner_id": t.update_lock_owner}),
            );
            m.insert("mfa_status".into(), json!(t.mfa_status));
            m.insert("pricing_mode".into(), json!(t.pricing_mode));
            m.insert(
                "production_start_date".into(),
                am_time_opt(&t.production_start_date),
            );
            m.insert("contact".into(), t.contact.clone());
            // "Empty array by default" (populated in listings, as `with_contacts` would).
            m.insert("contacts".into(), json!([]));
        }
        if batch {
            m.insert(
                "contacts".into(),
                if t.contact.is_null() {
                    json!([])
                } else {
                    json!([t.contact])
                },
            );
            // Filled only when asked for (`expand_offering_items`); the batch schema requires
            // the key, so it is `[]` otherwise.
            let items: Vec<Value> = if with_items {
                self.tenant_items(t).map(|i| self.item_json(i)).collect()
            } else {
                Vec::new()
            };
            m.insert("offering_items".into(), Value::Array(items));
        }
        Value::Object(m)
    }

    /// The usage entry of one usage name of an item, with its current value.
    pub(super) fn usage_json(
        &self,
        t: &Tenant,
        it: &Item,
        usage_name: &str,
        value: f64,
        now: DateTime<Utc>,
    ) -> Value {
        let range_start = Utc
            .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
            .single()
            .unwrap_or(now);
        let mut v = json!({
            "application_id": APPLICATION_ID,
            "name": it.name,
            "edition": "standard",
            "usage_name": usage_name,
            "type": it.item_type,
            "measurement_unit": it.unit,
            "tenant_uuid": t.id,
            "tenant_id": t.key.1,
            "range_start": am_time(&range_start),
            "value": num_json(value),
            "absolute_value": num_json(value),
            "offering_item": {
                "status": it.status,
                "quota": quota_json(it),
            },
        });
        with_infra(&mut v, it);
        v
    }

    pub(super) fn infra_json(&self, i: &Infra) -> Value {
        json!({
            "id": i.id,
            "owner_tenant_id": self.root_id,
            "location_id": i.location_id,
            "name": i.name,
            "url": i.url,
            "platform_owned": true,
            "capabilities": ["backup"],
            "backend_type": i.backend_type,
            "readonly": false,
            "version": 1,
        })
    }
}

fn quota_json(it: &Item) -> Value {
    json!({
        "value": num_opt(it.quota_value),
        "overage": num_opt(it.quota_overage),
        "version": it.quota_version,
    })
}

/// Adds `infra_id` to an item's JSON when it has one.
fn with_infra(v: &mut Value, it: &Item) {
    if let Some(infra) = &it.infra_id {
        v["infra_id"] = json!(infra);
    }
}
