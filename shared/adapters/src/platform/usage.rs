//! The platform's usage figures (R-USE): current usages in batches, a closed period's from its
//! usage report ([`super::reports`]), the tenants under a sub-partner.

use super::{PlatformApi, PlatformErrors, LOG_SYSTEM, PAGE};
use crate::http::{ErrorDialect, Idempotency};
use async_trait::async_trait;
use chrono::NaiveDate;
use domain::model::{ItemKey, TenantKind};
use domain::ports::{Measure, PeriodUsage, SubtreeTenant, TenantUsage, UsageFigure, UsageSource};
use domain::PortResult;
use reqwest::Method;
use serde::Deserialize;

/// Tenants per `/tenants/usages` request.
pub const USAGE_BATCH: usize = 100;

/// The fields of a subtree listing's tenant that `subtree` needs.
#[derive(Deserialize)]
struct WireSubtreeTenant {
    id: String,
    #[serde(default)]
    parent_id: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct WireUsages {
    #[serde(default)]
    items: Vec<WireTenantUsages>,
}

#[derive(Deserialize)]
struct WireTenantUsages {
    tenant: String,
    #[serde(default)]
    usages: Vec<WireUsage>,
}

#[derive(Deserialize)]
struct WireUsage {
    name: String,
    #[serde(default)]
    usage_name: Option<String>,
    #[serde(default)]
    infra_id: Option<String>,
    #[serde(default)]
    absolute_value: Option<f64>,
    #[serde(default)]
    value: Option<f64>,
}

/// What a usage entry measures, by its usage name. The platform's names for the geo-redundant
/// copy and the class 1 / class 2 split are UNCONFIRMED (PLATFORM-API-NOTES §4): a usage name
/// ending in `_geo`, `_class1` or `_class2` is taken for them, any other for standard usage.
pub fn measure_of(usage_name: &str) -> Measure {
    if usage_name.ends_with("_geo") {
        Measure::Geo
    } else if usage_name.ends_with("_class1") {
        Measure::Class1
    } else if usage_name.ends_with("_class2") {
        Measure::Class2
    } else {
        Measure::Standard
    }
}

fn figure(u: WireUsage) -> Option<UsageFigure> {
    // PSA guidance bills PAYG from `absolute_value`; `value` when it is absent.
    let value = u.absolute_value.or(u.value)?;
    Some(UsageFigure {
        measure: measure_of(u.usage_name.as_deref().unwrap_or(&u.name)),
        item: ItemKey::new(u.name, u.infra_id.as_deref()),
        value,
    })
}

#[async_trait]
impl UsageSource for PlatformApi {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, tenants = tenant_ids.len())
    )]
    async fn current_usage(&self, tenant_ids: &[String]) -> PortResult<Vec<TenantUsage>> {
        let mut out = Vec::with_capacity(tenant_ids.len());
        for batch in tenant_ids.chunks(USAGE_BATCH) {
            let path = format!("api/2/tenants/usages?tenants={}", batch.join(","));
            let (_, body) = self
                .call_bytes(Method::GET, &path, None, Idempotency::Safe)
                .await?;
            let page: WireUsages = serde_json::from_slice(&body)
                .map_err(|e| PlatformErrors.unexpected_body("GET /api/2/tenants/usages", e))?;
            out.extend(page.items.into_iter().map(|t| TenantUsage {
                tenant_id: t.tenant,
                figures: t.usages.into_iter().filter_map(figure).collect(),
            }));
        }
        Ok(out)
    }

    async fn period_usage(
        &self,
        tenant_ids: &[String],
        start: NaiveDate,
        end: NaiveDate,
    ) -> PortResult<PeriodUsage> {
        self.report_usage(tenant_ids, start, end).await
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, tenant = tenant_id)
    )]
    async fn subtree(&self, tenant_id: &str) -> PortResult<Vec<SubtreeTenant>> {
        // The whole subtree (sub-partners' own subtrees too), basic detail (`id`, `parent_id`,
        // `kind`), deleted ones left out by the platform's default.
        let path = format!(
            "api/2/tenants?subtree_root_id={}&lod=basic&limit={PAGE}",
            url::form_urlencoded::byte_serialize(tenant_id.as_bytes()).collect::<String>()
        );
        let (tenants, _) = self
            .list(&path, |t: WireSubtreeTenant| {
                Some(SubtreeTenant {
                    kind: TenantKind::of(t.kind.as_deref()),
                    id: t.id,
                    parent_id: t.parent_id,
                })
            })
            .await?;
        Ok(tenants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_use_2_usage_names_give_the_measure_and_absolute_value_wins() {
        assert_eq!(measure_of("storage"), Measure::Standard);
        assert_eq!(measure_of("storage_geo"), Measure::Geo);
        assert_eq!(measure_of("storage_class1"), Measure::Class1);
        assert_eq!(measure_of("pw_storage_class2"), Measure::Class2);
        let u: WireUsage = serde_json::from_value(serde_json::json!({
            "name": "storage", "usage_name": "storage", "infra_id": "i-1",
            "value": 5.0, "absolute_value": 7.0
        }))
        .unwrap();
        let f = figure(u).unwrap();
        assert_eq!((f.value, f.measure), (7.0, Measure::Standard));
        assert_eq!(f.item, ItemKey::new("storage", Some("i-1")));
    }
}
