//! Status (R-STAT-1, R-CO-4): what a partner's operator needs to see.

use super::partners::partner;
use super::OpError;
use crate::model::{Mapping, Switches};
use crate::ports::{CompanyStore, PartnerStatus, PartnerStore, SyncState};
use serde::Serialize;

/// What `status` shows (R-STAT-1).
#[derive(Debug, Serialize)]
pub struct StatusView {
    pub partner: String,
    pub psa: String,
    pub enabled: bool,
    pub switches: Switches,
    pub mapping_usable: Result<(), String>,
    pub status: PartnerStatus,
    pub companies_mapped: usize,
    pub companies_to_create: usize,
    /// Companies whose last sync failed, with the reason (R-CO-4).
    pub failing: Vec<(String, String)>,
}

pub async fn status(
    store: &(impl PartnerStore + CompanyStore + SyncState + ?Sized),
    id: &str,
) -> Result<StatusView, OpError> {
    let p = partner(store, id).await?;
    let records = store
        .companies(id)
        .await
        .map_err(OpError::port(id, "reading the company records"))?;
    let status = store
        .status(id)
        .await
        .map_err(OpError::port(id, "reading its status"))?;
    Ok(StatusView {
        partner: p.id.clone(),
        psa: p.psa.to_string(),
        enabled: p.enabled,
        switches: p.switches.clone(),
        mapping_usable: crate::rules::mapping::usable(&p.mapping),
        status,
        companies_mapped: records
            .iter()
            .filter(|r| matches!(r.mapping, Mapping::Tenant(_)))
            .count(),
        companies_to_create: records
            .iter()
            .filter(|r| r.mapping == Mapping::NewTenant)
            .count(),
        failing: records
            .iter()
            .filter_map(|r| r.last_error.clone().map(|e| (r.company_id.clone(), e)))
            .collect(),
    })
}
