//! SPEC §3 — Company mapping (R-CO).

use crate::model::{CompanyRecord, Mapping, PsaCompany, Tenant, TenantKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// R-CO-1: what an operator asks for a company: map it to an existing customer tenant, to a
/// new one created by the next sync, or remove its mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "map", content = "tenant_id")]
pub enum MappingRequest {
    /// Map to an existing customer tenant.
    Existing(String),
    /// Map to a new customer tenant, created by the next sync.
    New,
    /// Remove the mapping.
    Remove,
}

/// Why a mapping is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingRefused {
    #[error("tenant {0} is in self-service mode; switch it to managed by service provider first (R-CO-3)")]
    SelfService(String),
    #[error("tenant {0} has support access disabled; enable support access first (R-CO-3)")]
    NoSupportAccess(String),
    #[error("tenant {0} does not exist under this partner or was deleted")]
    NoSuchTenant(String),
    #[error("tenant {0} is a folder or a unit; a company maps to a customer tenant or a sub-partner (R-CO-6)")]
    NotMappable(String),
    #[error("tenant {0} is the partner's own tenant; a company maps to a customer tenant or a sub-partner under it (R-CO-6)")]
    PartnerItself(String),
    #[error("tenant {tenant} is already mapped to company {company} (R-CO-5)")]
    TenantTaken { tenant: String, company: String },
}

/// Whether two spellings name the same tenant (UUIDs: case and surrounding blanks aside).
pub fn same_tenant(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// R-CO-3: a customer tenant in self-service mode, or with support access disabled, cannot be
/// mapped (and a mapped one cannot be managed until that is undone).
///
/// R-CO-6: a customer or a sub-partner (a partner tenant) can be mapped; a folder or a unit not.
pub fn can_map(t: &Tenant) -> Result<(), MappingRefused> {
    if t.deleted {
        return Err(MappingRefused::NoSuchTenant(t.id.clone()));
    }
    if t.kind == TenantKind::Other {
        return Err(MappingRefused::NotMappable(t.id.clone()));
    }
    if t.self_service {
        return Err(MappingRefused::SelfService(t.id.clone()));
    }
    if !t.support_access {
        return Err(MappingRefused::NoSupportAccess(t.id.clone()));
    }
    Ok(())
}

/// R-CO-1, R-CO-3, R-CO-5: the company record after an operator's mapping request.
/// `tenant` is the tenant named by `Existing` (None if it does not exist); `holder` is the
/// company that holds that tenant now, if any. R-CO-3: a tenant in self-service mode or without
/// support access is refused with that reason. R-CO-5: a tenant another company holds is
/// refused, naming that company. R-CO-6: a sub-partner under the partner can be mapped, the
/// partner's own tenant (`partner_tenant`) not.
pub fn apply_request(
    partner_tenant: &str,
    current: Option<&CompanyRecord>,
    company_id: &str,
    company_name: &str,
    request: &MappingRequest,
    tenant: Option<&Tenant>,
    holder: Option<&str>,
) -> Result<CompanyRecord, MappingRefused> {
    let mut rec = current
        .cloned()
        .unwrap_or_else(|| CompanyRecord::new(company_id, company_name, Mapping::Unmapped));
    let mapping = match request {
        MappingRequest::Existing(tid) => {
            if same_tenant(tid, partner_tenant) {
                return Err(MappingRefused::PartnerItself(partner_tenant.to_owned()));
            }
            let t = tenant.ok_or_else(|| MappingRefused::NoSuchTenant(tid.clone()))?;
            if same_tenant(&t.id, partner_tenant) {
                return Err(MappingRefused::PartnerItself(partner_tenant.to_owned()));
            }
            can_map(t)?;
            if let Some(other) = holder.filter(|h| *h != company_id) {
                return Err(MappingRefused::TenantTaken {
                    tenant: tid.clone(),
                    company: other.to_owned(),
                });
            }
            // The platform's spelling of the id, whatever the request's was.
            Mapping::Tenant(t.id.clone())
        }
        MappingRequest::New => match &rec.mapping {
            Mapping::Tenant(t) => Mapping::Tenant(t.clone()),
            _ => Mapping::NewTenant,
        },
        MappingRequest::Remove => Mapping::Unmapped,
    };
    rec.map_to(mapping);
    rec.last_error = None;
    Ok(rec)
}

/// Which companies a list shows (R-CO-2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyFilter {
    /// Some(true): mapped only (including "to be mapped to a new tenant"); Some(false): not mapped.
    pub mapped: Option<bool>,
    /// Company type name, case-insensitive.
    pub company_type: Option<String>,
    /// Part of the name or identifier, case-insensitive.
    pub search: Option<String>,
}

/// A row of a company list: the PSA company with its mapping and last sync (R-CO-2, R-CO-4).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompanyRow {
    pub id: String,
    pub identifier: String,
    pub name: String,
    pub types: Vec<String>,
    pub mapping: Mapping,
    pub last_sync: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// R-CO-2: filter companies by mapped / not mapped, type and name.
pub fn list_companies(
    companies: &[PsaCompany],
    records: &[CompanyRecord],
    filter: &CompanyFilter,
) -> Vec<CompanyRow> {
    let by_id: std::collections::HashMap<&str, &CompanyRecord> =
        records.iter().map(|r| (r.company_id.as_str(), r)).collect();
    let needle = filter.search.as_deref().map(str::to_lowercase);
    let ty = filter.company_type.as_deref().map(str::to_lowercase);
    companies
        .iter()
        .filter_map(|c| {
            let rec = by_id.get(c.id.as_str());
            let mapping = rec.map_or(Mapping::Unmapped, |r| r.mapping.clone());
            let is_mapped = mapping != Mapping::Unmapped;
            if filter.mapped.is_some_and(|want| want != is_mapped) {
                return None;
            }
            if let Some(ty) = &ty {
                if !c.types.iter().any(|t| t.to_lowercase() == *ty) {
                    return None;
                }
            }
            if let Some(n) = &needle {
                if !c.name.to_lowercase().contains(n) && !c.identifier.to_lowercase().contains(n) {
                    return None;
                }
            }
            Some(CompanyRow {
                id: c.id.clone(),
                identifier: c.identifier.clone(),
                name: c.name.clone(),
                types: c.types.clone(),
                mapping,
                last_sync: rec.and_then(|r| r.last_sync),
                last_error: rec.and_then(|r| r.last_error.clone()),
            })
        })
        .collect()
}

/// R-CO-4: record the outcome of a company's sync on its record: the time of its last sync and
/// its error, if any (a sync without error clears the last one).
pub fn record_outcome(rec: &mut CompanyRecord, now: DateTime<Utc>, error: Option<String>) {
    rec.last_sync = Some(now);
    rec.last_error = error;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str, self_service: bool, support: bool) -> Tenant {
        Tenant {
            id: id.into(),
            kind: TenantKind::Customer,
            parent_id: Some("p".into()),
            name: id.into(),
            enabled: true,
            customer_id: None,
            version: 1,
            self_service,
            support_access: support,
            pricing_mode: Some("production".into()),
            deleted: false,
        }
    }

    fn company(id: &str, name: &str, types: &[&str]) -> PsaCompany {
        PsaCompany {
            id: id.into(),
            identifier: format!("{name}Id"),
            name: name.into(),
            types: types.iter().map(|s| s.to_string()).collect(),
            status: Some("Active".into()),
            active: true,
            primary_contact: None,
            updated_at: None,
        }
    }

    #[test]
    fn r_co_3_self_service_or_no_support_access_is_refused() {
        let rows: [(&str, bool, bool, Option<&str>); 4] = [
            ("managed, support on", false, true, None),
            ("self-service", true, true, Some("self-service")),
            (
                "support access off",
                false,
                false,
                Some("support access disabled"),
            ),
            ("both", true, false, Some("self-service")),
        ];
        for (case, ss, sa, want) in rows {
            let got = can_map(&tenant("t1", ss, sa)).err().map(|e| e.to_string());
            match want {
                None => assert!(got.is_none(), "{case}: {got:?}"),
                Some(w) => assert!(got.as_deref().unwrap_or("").contains(w), "{case}: {got:?}"),
            }
        }
    }

    #[test]
    fn r_co_1_map_new_existing_and_remove() {
        let t = tenant("t1", false, true);
        let new = apply_request("p", None, "c1", "Acme", &MappingRequest::New, None, None).unwrap();
        assert_eq!(new.mapping, Mapping::NewTenant);
        let ex = apply_request(
            "p",
            Some(&new),
            "c1",
            "Acme",
            &MappingRequest::Existing("t1".into()),
            Some(&t),
            None,
        )
        .unwrap();
        assert_eq!(ex.mapping, Mapping::Tenant("t1".into()));
        let rm = apply_request(
            "p",
            Some(&ex),
            "c1",
            "Acme",
            &MappingRequest::Remove,
            None,
            None,
        )
        .unwrap();
        assert_eq!(rm.mapping, Mapping::Unmapped);
        let missing = apply_request(
            "p",
            None,
            "c1",
            "Acme",
            &MappingRequest::Existing("nope".into()),
            None,
            None,
        );
        assert_eq!(missing, Err(MappingRefused::NoSuchTenant("nope".into())));
    }

    #[test]
    fn r_co_3_mapping_to_self_service_tenant_is_refused_with_reason() {
        let t = tenant("t9", true, true);
        let err = apply_request(
            "p",
            None,
            "c1",
            "Acme",
            &MappingRequest::Existing("t9".into()),
            Some(&t),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("self-service"), "{err}");
    }

    #[test]
    fn r_co_5_a_tenant_maps_to_one_company_only() {
        let t = tenant("t1", false, true);
        let err = apply_request(
            "p",
            None,
            "c2",
            "Beta",
            &MappingRequest::Existing("t1".into()),
            Some(&t),
            Some("c1"),
        )
        .unwrap_err();
        assert_eq!(
            err,
            MappingRefused::TenantTaken {
                tenant: "t1".into(),
                company: "c1".into()
            }
        );
        // the holder itself may re-apply its own mapping (idempotent)
        assert!(apply_request(
            "p",
            None,
            "c1",
            "Acme",
            &MappingRequest::Existing("t1".into()),
            Some(&t),
            Some("c1")
        )
        .is_ok());
    }

    #[test]
    fn r_co_6_a_sub_partner_maps_but_not_a_folder_nor_the_partner_itself() {
        let existing = |t: &Tenant| {
            apply_request(
                "p",
                None,
                "c1",
                "Acme",
                &MappingRequest::Existing(t.id.clone()),
                Some(t),
                None,
            )
        };
        let sub = Tenant {
            kind: TenantKind::Partner,
            ..tenant("sub", false, true)
        };
        assert_eq!(
            existing(&sub).unwrap().mapping,
            Mapping::Tenant("sub".into())
        );
        let folder = Tenant {
            kind: TenantKind::Other,
            ..tenant("f1", false, true)
        };
        assert_eq!(
            existing(&folder).unwrap_err(),
            MappingRefused::NotMappable("f1".into())
        );
        let own = Tenant {
            kind: TenantKind::Partner,
            parent_id: Some("root".into()),
            ..tenant("p", false, true)
        };
        let err = existing(&own).unwrap_err();
        assert_eq!(err, MappingRefused::PartnerItself("p".into()));
        // Spelled another way, it is still the partner's own tenant.
        let loud = apply_request(
            "p",
            None,
            "c1",
            "Acme",
            &MappingRequest::Existing(" P ".into()),
            Some(&own),
            None,
        );
        assert_eq!(loud.unwrap_err(), MappingRefused::PartnerItself("p".into()));
        assert!(err.to_string().contains("partner's own tenant"), "{err}");
        assert_eq!(TenantKind::of(Some("partner")), TenantKind::Partner);
        assert_eq!(TenantKind::of(Some("unit")), TenantKind::Other);
        assert_eq!(TenantKind::of(None), TenantKind::Customer);
    }

    #[test]
    fn r_co_2_filters_by_mapping_type_and_name() {
        let companies = vec![
            company("1", "Acme Corp", &["Customer"]),
            company("2", "Beta Ltd", &["Prospect"]),
            company("3", "Acme Labs", &["Customer", "Partner"]),
        ];
        let records = vec![CompanyRecord::new(
            "1",
            "Acme Corp",
            Mapping::Tenant("t1".into()),
        )];
        let rows: [(&str, CompanyFilter, &[&str]); 5] = [
            ("all", CompanyFilter::default(), &["1", "2", "3"]),
            (
                "mapped",
                CompanyFilter {
                    mapped: Some(true),
                    ..Default::default()
                },
                &["1"],
            ),
            (
                "unmapped",
                CompanyFilter {
                    mapped: Some(false),
                    ..Default::default()
                },
                &["2", "3"],
            ),
            (
                "type customer",
                CompanyFilter {
                    company_type: Some("customer".into()),
                    ..Default::default()
                },
                &["1", "3"],
            ),
            (
                "search acme, unmapped",
                CompanyFilter {
                    mapped: Some(false),
                    search: Some("ACME".into()),
                    ..Default::default()
                },
                &["3"],
            ),
        ];
        for (case, f, want) in rows {
            let got: Vec<String> = list_companies(&companies, &records, &f)
                .into_iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn r_co_4_outcome_is_recorded() {
        let mut rec = CompanyRecord::new("1", "Acme", Mapping::Tenant("t".into()));
        let now = "2026-11-22T10:00:00Z".parse().unwrap();
        record_outcome(&mut rec, now, Some("platform said 400".into()));
        assert_eq!(rec.last_sync, Some(now));
        assert_eq!(rec.last_error.as_deref(), Some("platform said 400"));
        record_outcome(&mut rec, now, None);
        assert_eq!(rec.last_error, None);
    }
}
