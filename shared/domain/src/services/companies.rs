//! Companies: list with filters (R-CO-2, R-CO-4), map and unmap (R-CO-1, R-CO-3, R-CO-5).

use super::partners::partner;
use super::OpError;
use crate::model::{CompanyRecord, Partner, PsaCompany, Tenant};
use crate::ports::{CompanyQuery, CompanyStore, Connector, PartnerClients, PartnerStore};
use crate::rules::companies::{self, CompanyFilter, CompanyRow, MappingRequest};

/// The PSA company a partner file or an operator names: by identifier (case-insensitive),
/// else by id.
pub fn find<'a>(all: &'a [PsaCompany], key: &str) -> Option<&'a PsaCompany> {
    all.iter()
        .find(|c| c.identifier.eq_ignore_ascii_case(key))
        .or_else(|| all.iter().find(|c| c.id == key))
}

/// A configured partner's clients and every company of its PSA.
async fn psa_companies(
    store: &(impl PartnerStore + ?Sized),
    connector: &dyn Connector,
    id: &str,
) -> Result<(Partner, PartnerClients, Vec<PsaCompany>), OpError> {
    let p = partner(store, id).await?;
    let clients = connector
        .connect(&p)
        .await
        .map_err(OpError::port(id, "reaching its systems"))?;
    let all = clients
        .psa
        .companies(&CompanyQuery::default())
        .await
        .map_err(OpError::port(id, "reading the PSA's companies"))?;
    Ok((p, clients, all))
}

/// `companies list`: the PSA's companies with their mapping, filtered (R-CO-2, R-CO-4).
pub async fn list(
    store: &(impl PartnerStore + CompanyStore + ?Sized),
    connector: &dyn Connector,
    id: &str,
    filter: &CompanyFilter,
) -> Result<Vec<CompanyRow>, OpError> {
    let (_, _, all) = psa_companies(store, connector, id).await?;
    let records = store
        .companies(id)
        .await
        .map_err(OpError::port(id, "reading the company records"))?;
    Ok(companies::list_companies(&all, &records, filter))
}

/// The record a mapping request would write for `company` (`None`: nothing changes), checked
/// against the platform and the store (R-CO-1, R-CO-3, R-CO-5). `planned` are records decided
/// in the same operation but not written yet: a tenant they take is taken.
pub async fn plan_mapping(
    store: &(impl CompanyStore + ?Sized),
    clients: &PartnerClients,
    partner: &str,
    partner_tenant: &str,
    company: &PsaCompany,
    request: &MappingRequest,
    planned: &[CompanyRecord],
) -> Result<Option<CompanyRecord>, OpError> {
    let current = store
        .company(partner, &company.id)
        .await
        .map_err(OpError::port(
            partner,
            format!("reading company {}", company.id),
        ))?;
    let (tenant, holder): (Option<Tenant>, Option<String>) = match request {
        MappingRequest::Existing(t) => {
            let (found, _) = clients
                .platform
                .customers(std::slice::from_ref(t))
                .await
                .map_err(OpError::port(partner, format!("reading tenant {t}")))?;
            // R-CO-5 by the platform's spelling of the id.
            let t = found.first().map_or(t, |f| &f.tenant.id);
            let holder = match planned.iter().find(|r| r.tenant_id() == Some(t.as_str())) {
                Some(r) => Some(r.company_id.clone()),
                None => store
                    .tenant_holder(partner, t)
                    .await
                    .map_err(OpError::port(
                        partner,
                        format!("reading tenant {t}'s mapping"),
                    ))?,
            };
            (found.into_iter().next().map(|t| t.tenant), holder)
        }
        _ => (None, None),
    };
    let rec = companies::apply_request(
        partner_tenant,
        current.as_ref(),
        &company.id,
        &company.name,
        request,
        tenant.as_ref(),
        holder.as_deref(),
    )
    .map_err(|e| OpError::invalid(partner, e.to_string()))?;
    Ok((current.as_ref() != Some(&rec)).then_some(rec))
}

/// `companies map` / `companies unmap`: one company's mapping, checked, then written.
/// Returns the record when it changed.
pub async fn map(
    store: &(impl PartnerStore + CompanyStore + ?Sized),
    connector: &dyn Connector,
    id: &str,
    company: &str,
    request: &MappingRequest,
) -> Result<Option<CompanyRecord>, OpError> {
    let (p, clients, all) = psa_companies(store, connector, id).await?;
    let c = find(&all, company).ok_or_else(|| {
        OpError::invalid(id, format!("company {company:?} does not exist in the PSA"))
    })?;
    let Some(rec) =
        plan_mapping(store, &clients, id, &p.partner_tenant_id, c, request, &[]).await?
    else {
        return Ok(None);
    };
    let rec = store
        .put_company(id, &rec)
        .await
        .map_err(OpError::port(id, format!("saving company {}", c.id)))?;
    Ok(Some(rec))
}
