//! Picklists and user-defined fields, read from the tenant (never hard-coded) and cached per
//! process for an hour; refreshed once when a label or value is missing.

use super::wire::{picklist_values, WireFields};
use super::{rejected, Autotask, CONTRACT_ACTIVE, METADATA_TTL, VENDOR};
use domain::PortResult;
use reqwest::Method;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// One value of a picklist (`entityInformation/fields`, `picklistValues`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PicklistValue {
    pub value: String,
    pub label: String,
    pub is_active: bool,
}

#[derive(Debug, Clone)]
pub(super) struct UdfDef {
    name: String,
    picklist: Option<Vec<PicklistValue>>,
}

pub(super) type Picklists = HashMap<String, Vec<PicklistValue>>;
type Cache<T> = OnceLock<Mutex<HashMap<String, (Instant, Arc<T>)>>>;

/// Per-process caches, keyed by API base + API user (one Autotask database) + entity.
static PICKLISTS: Cache<Picklists> = OnceLock::new();
static UDFS: Cache<Vec<UdfDef>> = OnceLock::new();

fn cache_get<T>(cache: &'static Cache<T>, key: &str) -> Option<Arc<T>> {
    let map = cache.get_or_init(Default::default);
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.get(key)
        .filter(|(at, _)| at.elapsed() < METADATA_TTL)
        .map(|(_, v)| v.clone())
}

fn cache_put<T>(cache: &'static Cache<T>, key: String, v: Arc<T>) {
    let map = cache.get_or_init(Default::default);
    map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, (Instant::now(), v));
}

/// How a contract's PAYG field is read.
pub(super) enum PaygDef {
    /// The tenant has no such UDF.
    Missing,
    Text,
    Picklist(Vec<PicklistValue>),
}

/// What mapping a contract needs: the Active status value and the PAYG field.
pub(super) struct ContractCtx {
    pub active: String,
    pub field: String,
    pub payg: PaygDef,
}

impl Autotask {
    pub(super) async fn picklists(
        &self,
        entity: &str,
        refresh: bool,
    ) -> PortResult<Arc<Picklists>> {
        let api = self.api().await?;
        let key = format!("{}|{entity}", api.key);
        if !refresh {
            if let Some(p) = cache_get(&PICKLISTS, &key) {
                return Ok(p);
            }
        }
        let url = api.ep.url(&format!("{entity}/entityInformation/fields"))?;
        let v: WireFields = self.call(Method::GET, url, None).await?;
        let mut out = Picklists::new();
        for f in v.fields {
            let (Some(name), Some(values)) = (f.name, f.picklist_values) else {
                continue;
            };
            out.insert(name.to_ascii_lowercase(), picklist_values(values));
        }
        let out = Arc::new(out);
        cache_put(&PICKLISTS, key, out.clone());
        Ok(out)
    }

    pub(super) async fn udfs(&self, entity: &str, refresh: bool) -> PortResult<Arc<Vec<UdfDef>>> {
        let api = self.api().await?;
        let key = format!("{}|{entity}", api.key);
        if !refresh {
            if let Some(u) = cache_get(&UDFS, &key) {
                return Ok(u);
            }
        }
        let url = api
            .ep
            .url(&format!("{entity}/entityInformation/userDefinedFields"))?;
        let v: WireFields = self.call(Method::GET, url, None).await?;
        let out: Vec<UdfDef> = v
            .fields
            .into_iter()
            .filter_map(|f| {
                Some(UdfDef {
                    name: f.name?,
                    picklist: f.picklist_values.map(picklist_values),
                })
            })
            .collect();
        let out = Arc::new(out);
        cache_put(&UDFS, key, out.clone());
        Ok(out)
    }

    /// The values of a picklist field (e.g. `("Services", "periodType")`), from the tenant.
    pub async fn picklist(&self, entity: &str, field: &str) -> PortResult<Vec<PicklistValue>> {
        let lists = self.picklists(entity, false).await?;
        match lists.get(&field.to_ascii_lowercase()) {
            Some(l) => Ok(l.clone()),
            None => Ok(self
                .picklists(entity, true)
                .await?
                .get(&field.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default()),
        }
    }

    /// The value of a picklist label (case-insensitive), re-reading the picklist once when the
    /// label is not known yet.
    pub async fn picklist_value(
        &self,
        entity: &str,
        field: &str,
        label: &str,
    ) -> PortResult<String> {
        for refresh in [false, true] {
            let lists = self.picklists(entity, refresh).await?;
            if let Some(v) = lists
                .get(&field.to_ascii_lowercase())
                .and_then(|l| l.iter().find(|p| p.label.eq_ignore_ascii_case(label)))
            {
                return Ok(v.value.clone());
            }
        }
        Err(rejected(format!(
            "{VENDOR} {entity}.{field} has no picklist value labelled {label:?}"
        )))
    }

    /// Services.periodType (Monthly, Quarterly, Semi-Annual, Yearly in a default tenant).
    pub async fn period_types(&self) -> PortResult<Vec<PicklistValue>> {
        self.picklist("Services", "periodType").await
    }

    /// Labels of `values` in a picklist; re-reads the picklist once when one is missing.
    pub(super) async fn labels(
        &self,
        entity: &str,
        field: &str,
        values: &BTreeSet<String>,
    ) -> PortResult<HashMap<String, String>> {
        let key = field.to_ascii_lowercase();
        let mut lists = self.picklists(entity, false).await?;
        let known = |l: &Picklists, v: &String| {
            l.get(&key).is_some_and(|p| p.iter().any(|x| &x.value == v))
        };
        if !values.iter().all(|v| known(&lists, v)) {
            lists = self.picklists(entity, true).await?;
        }
        Ok(lists
            .get(&key)
            .map(|l| {
                l.iter()
                    .map(|p| (p.value.clone(), p.label.clone()))
                    .collect()
            })
            .unwrap_or_default())
    }

    pub(super) async fn contract_ctx(&self) -> PortResult<ContractCtx> {
        let active = self
            .picklist_value("Contracts", "status", CONTRACT_ACTIVE)
            .await?;
        let field = self.cfg.payg_field.clone();
        let mut payg = PaygDef::Missing;
        for refresh in [false, true] {
            let defs = self.udfs("Contracts", refresh).await?;
            if let Some(d) = defs.iter().find(|d| d.name.eq_ignore_ascii_case(&field)) {
                payg = match &d.picklist {
                    Some(p) => PaygDef::Picklist(p.clone()),
                    None => PaygDef::Text,
                };
                break;
            }
        }
        Ok(ContractCtx {
            active,
            field,
            payg,
        })
    }
}
