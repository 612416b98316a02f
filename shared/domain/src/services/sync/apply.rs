//! Applying a company's plan: the PSA's contract first (two-way sync, under a lease), then the
//! platform; the company's record is written after.

use crate::error::PortError;
use crate::model::{CompanyRecord, Mapping, Partner, SetupStep};
use crate::plan::{Change, CompanyPlan, CompanyProblem};
use crate::ports::{CompanyStore, Leases, NewTenant, PartnerClients, QuotaSet};
use crate::rules::{companies, provisioning, twoway};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// What applying one company's plan left: the changes applied, its failure, and the record to
/// write with the stored one it replaces.
pub(super) struct Applied {
    company_id: String,
    applied: usize,
    error: Option<String>,
    /// The failure was a system refusing psa-bridge's credentials (R-SET-4).
    credentials: bool,
    write: Option<(CompanyRecord, Option<CompanyRecord>)>,
}

/// What a company's failed apply left: changes applied before it, the reason, and whether a
/// system refused the credentials.
type Failed = (usize, String, bool);

/// Applies one company's plan (the PSA's contract first, then the platform); its record is
/// written by [`record_company`].
pub(super) async fn apply_company(
    partner: &Partner,
    clients: &PartnerClients,
    store: &(impl Leases + ?Sized),
    plan: CompanyPlan,
    original: Option<CompanyRecord>,
    now: DateTime<Utc>,
) -> Applied {
    let cid = plan.company_id.clone();
    let Some(mut record) = plan.record.clone() else {
        // Nothing to keep for it (not mapped), but a problem is still reported.
        return Applied {
            company_id: cid,
            applied: 0,
            error: plan.problem,
            credentials: false,
            write: None,
        };
    };
    if let Some(o) = &original {
        record.version = o.version;
    }
    let result = apply_changes(
        partner,
        clients,
        store,
        &plan.changes,
        &plan.basis,
        &mut record,
    )
    .await;
    let (applied, error, credentials) = match result {
        Ok(n) => {
            // Platform changes carried to the PSA are settled: later ones are a person's again.
            record.platform_written = record.platform_written.max(plan.platform_seen);
            (n, plan.problem.clone(), false)
        }
        Err((n, e, credentials)) => (n, Some(e), credentials),
    };
    // A held change stays a person's, whatever else was written to the tenant.
    record.platform_written = twoway::settled_before(record.platform_written, plan.hold_from);
    let changed = applied > 0
        || original.as_ref() != Some(&record)
        || original.as_ref().map(|o| &o.last_error) != Some(&error);
    let write = changed.then(|| {
        companies::record_outcome(&mut record, now, error.clone());
        (record, original)
    });
    Applied {
        company_id: cid,
        applied,
        error,
        credentials,
        write,
    }
}

/// A company whose plan was not applied (nothing written), with the reason.
pub(super) fn not_applied(company_id: String, reason: String) -> Applied {
    Applied {
        company_id,
        applied: 0,
        error: Some(reason),
        credentials: false,
        write: None,
    }
}

/// Writes a company's record after its plan was applied; returns the number of changes applied,
/// its failure, if any, and whether that failure was a refusal of the credentials.
pub(super) async fn record_company(
    partner: &Partner,
    store: &(impl CompanyStore + ?Sized),
    a: Applied,
) -> (usize, Option<CompanyProblem>, bool) {
    let cid = a.company_id;
    if let Some((record, original)) = &a.write {
        if let Err(e) = store
            .put_company_replacing(&partner.id, record, original.as_ref())
            .await
        {
            return (
                a.applied,
                Some(CompanyProblem {
                    company_id: cid.clone(),
                    reason: format!("company {cid}: could not record the sync: {e}"),
                }),
                a.credentials,
            );
        }
    }
    (
        a.applied,
        a.error.map(|reason| CompanyProblem {
            company_id: cid,
            reason,
        }),
        a.credentials,
    )
}

async fn apply_changes(
    partner: &Partner,
    clients: &PartnerClients,
    store: &(impl Leases + ?Sized),
    changes: &[Change],
    basis: &[QuotaSet],
    record: &mut CompanyRecord,
) -> Result<usize, Failed> {
    let platform = clients.tenants.as_ref();
    let cid = record.company_id.clone();
    let fail = |n: usize, what: &str, e: PortError| {
        let credentials = matches!(e, PortError::Credentials { .. });
        (n, format!("company {cid}: {what}: {e}"), credentials)
    };
    let mut applied = 0;
    // Two-way sync's PSA writes come first (the quota changes below assume them), by one run
    // at a time per company (a lease), each after a fresh read of the contract.
    let psa_writes: Vec<&Change> = changes.iter().filter(|c| c.writes_psa()).collect();
    if !psa_writes.is_empty() {
        let key = format!("psa-lines#{cid}");
        let owner = uuid::Uuid::new_v4().to_string();
        match store.lease(&partner.id, &key, &owner, LEASE_SECS).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err((
                    0,
                    format!(
                        "company {cid}: another run is updating its contract; it is synced \
                         again at the next pass"
                    ),
                    false,
                ))
            }
            Err(e) => return Err(fail(0, "taking the lease on its contract failed", e)),
        }
        let written = match clients.contracts(partner.psa) {
            Ok(writer) => write_lines(clients.psa.as_ref(), writer, &psa_writes).await,
            Err(e) => Err((0, e)),
        };
        if let Err(e) = store.release(&partner.id, &key, &owner).await {
            tracing::warn!(company_id = %cid, error = %e, "lease not released; it expires");
        }
        applied += written.map_err(|(n, e)| fail(n, "updating its contract failed", e))?;
    }
    let mut tenant_id = record.tenant_id().map(str::to_owned);
    let record_tenant_read = tenant_id.clone();
    let mut quotas: BTreeMap<String, Vec<QuotaSet>> = BTreeMap::new();
    for c in changes {
        match c {
            Change::CreateTenant {
                tenant_name,
                unique_name,
                trial,
                two_factor,
                admin,
                ..
            } => {
                let req = NewTenant {
                    name: tenant_name.clone(),
                    customer_id: cid.clone(),
                };
                let t = create_or_adopt(clients, req, unique_name)
                    .await
                    .map_err(|e| fail(applied, "creating its tenant failed", e))?;
                applied += 1;
                // Recorded once, with the quotas' outcome (a failure too); a run that dies
                // before leaves a tenant stamped with the company id, adopted next time.
                record.map_to(Mapping::Tenant(t.id.clone()));
                tenant_id = Some(t.id.clone());
                let admin = admin_with_email(clients, &cid, admin).await;
                record.pending_setup = provisioning::setup_steps(
                    *trial,
                    *two_factor,
                    t.pricing_mode.as_deref(),
                    admin.as_ref(),
                );
                finish_setup(platform, &t.id, record)
                    .await
                    .map_err(|e| fail(applied, "setting up its new tenant failed", e))?;
            }
            Change::AdoptTenant { tenant_id: t, .. } => {
                record.mapping = Mapping::Tenant(t.clone());
                tenant_id = Some(t.clone());
                applied += 1;
            }
            Change::FinishSetup { tenant_id: t, .. } => {
                finish_setup(platform, t, record)
                    .await
                    .map_err(|e| fail(applied, "completing its tenant's set-up failed", e))?;
                applied += 1;
            }
            Change::SetQuota {
                tenant_id: t,
                item,
                new,
                enabled,
                ..
            } => {
                let Some(t) = t.clone().or_else(|| tenant_id.clone()) else {
                    continue;
                };
                quotas.entry(t).or_default().push(QuotaSet {
                    item: item.clone(),
                    enabled: *enabled,
                    quota: *new,
                });
            }
            _ => {}
        }
    }
    for (t, items) in &quotas {
        // The basis is of the tenant the run read (a tenant created by this plan has none).
        let read = if record_tenant_read.as_deref() == Some(t.as_str()) {
            basis
        } else {
            &[]
        };
        let written = platform
            .set_quotas(t, items, read)
            .await
            .map_err(|e| fail(applied, "setting quotas failed", e))?;
        record.platform_written = record.platform_written.max(written);
        applied += items.len();
    }
    for c in changes {
        let r = match c {
            Change::EnableTenant { tenant_id, .. } => platform
                .set_enabled(tenant_id, true)
                .await
                .map_err(|e| fail(applied, "enabling its tenant failed", e)),
            Change::SwitchToProduction { tenant_id, .. } => platform
                .set_pricing_mode(tenant_id, crate::model::PricingMode::Production)
                .await
                .map_err(|e| fail(applied, "switching its tenant to production failed", e)),
            Change::DisableTenant { tenant_id, .. } => platform
                .set_enabled(tenant_id, false)
                .await
                .map_err(|e| fail(applied, "disabling its tenant failed", e)),
            Change::DeleteTenant { tenant_id, .. } => platform
                .delete_tenant(tenant_id)
                .await
                .map_err(|e| fail(applied, "deleting its tenant failed", e)),
            _ => continue,
        };
        r?;
        applied += 1;
    }
    Ok(applied)
}

/// Runs the set-up steps `record` owes its tenant, in order (R-PROV-11); what a failure leaves
/// stays owed in the record, for the next pass.
async fn finish_setup(
    platform: &dyn crate::ports::TenantAdmin,
    tenant_id: &str,
    record: &mut CompanyRecord,
) -> Result<(), PortError> {
    while let Some(step) = record.pending_setup.first() {
        match step {
            SetupStep::TwoFactor => platform.enable_two_factor(tenant_id).await?,
            SetupStep::Pricing(mode) => platform.set_pricing_mode(tenant_id, *mode).await?,
            SetupStep::InviteAdmin(admin) => platform.invite_admin(tenant_id, admin).await?,
        }
        record.pending_setup.remove(0);
    }
    Ok(())
}

/// Creates a company's tenant. A refused name (409) is either this company's own tenant — a
/// create whose answer or record was lost: adopted (R-PROV-11) — or another tenant's: the
/// tenant is created under `unique_name` (R-CO-7).
async fn create_or_adopt(
    clients: &PartnerClients,
    req: NewTenant,
    unique_name: &str,
) -> Result<crate::model::Tenant, PortError> {
    match clients.tenants.create_customer(&req).await {
        Err(PortError::Conflict { .. }) => {
            if let Some(own) = clients.platform.find_customer(&req.customer_id).await? {
                tracing::info!(company_id = %req.customer_id, tenant = %own.tenant.id, "adopted the company's own tenant after a refused create (R-PROV-11)");
                return Ok(own.tenant);
            }
            tracing::info!(company_id = %req.customer_id, name = %req.name, unique_name, "tenant name taken by another tenant; using the unique name (R-CO-7)");
            clients
                .tenants
                .create_customer(&NewTenant {
                    name: unique_name.to_owned(),
                    ..req
                })
                .await
        }
        other => other,
    }
}

/// How long a company's contract lease lasts (the store's own clock; renewed by nothing: a
/// run that dies holding it delays that company's contract writes by this much).
const LEASE_SECS: u32 = 300;

/// Two-way sync's PSA writes (R-TWO-1, R-TWO-2). Each reads the contract first: a product the
/// contract already holds is not added again (a retried or concurrent run, a lost answer), and
/// quantities are absolute.
async fn write_lines(
    psa: &dyn crate::ports::PsaDirectory,
    writer: &dyn crate::ports::ContractWriter,
    writes: &[&Change],
) -> Result<usize, (usize, PortError)> {
    let mut done = 0;
    for c in writes {
        let r = match c {
            Change::AddLine {
                agreement_id,
                product,
                quantity,
                ..
            } => {
                let find = || async {
                    Ok::<_, PortError>(
                        psa.lines(agreement_id)
                            .await?
                            .into_iter()
                            .find(|l| l.product_id == product.id)
                            .map(|l| l.id),
                    )
                };
                let line_id = match find().await {
                    Ok(Some(id)) => Ok(id),
                    Ok(None) => match writer.add_line(agreement_id, &product.id).await {
                        Ok(id) => Ok(id),
                        // The answer may have been lost after the write: look again.
                        Err(e) if e.is_retryable() => match find().await {
                            Ok(Some(id)) => Ok(id),
                            _ => Err(e),
                        },
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                };
                match line_id {
                    Ok(id) if *quantity != 0.0 => {
                        writer
                            .set_line_quantity(agreement_id, &id, None, *quantity)
                            .await
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            // Planned from what this run read: a line changed in the PSA since then is left
            // alone (Conflict) and planned again at the next pass.
            Change::SetLineQuantity {
                agreement_id,
                line_id,
                old,
                new,
                ..
            } => {
                writer
                    .set_line_quantity(agreement_id, line_id, Some(*old), *new)
                    .await
            }
            _ => continue,
        };
        r.map_err(|e| (done, e))?;
        done += 1;
    }
    Ok(done)
}

/// The administrator to invite: the plan's contact, completed with its e-mail from the PSA
/// when the company listing did not carry it. A lookup failure only skips the invitation.
async fn admin_with_email(
    clients: &PartnerClients,
    company_id: &str,
    admin: &Option<crate::model::Contact>,
) -> Option<crate::model::Contact> {
    let a = admin.as_ref()?;
    if a.email.is_some() {
        return Some(a.clone());
    }
    match clients.psa.primary_contact(company_id).await {
        Ok(c) => c.filter(|c| c.email.is_some()),
        Err(e) => {
            tracing::warn!(company_id, error = %e, "primary contact not readable; no activation e-mail");
            None
        }
    }
}
