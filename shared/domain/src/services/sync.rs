//! The sync service: read both sides, plan every company (rules), guard, apply the difference.
//! API calls grow with changes, not with the number of companies.

use crate::error::PortError;
use crate::model::{
    AgreementWithLines, CloudVendor, CompanyRecord, CurrentItem, ItemKey, Mapping, Partner,
    PsaCompany, PsaKind, Tenant,
};
use crate::plan::{Change, CompanyPlan, CompanyProblem, Plan};
use crate::ports::{
    AgreementQuery, CompanyQuery, NewTenant, PartnerClients, PartnerStatus, QuotaSet, RunSummary,
    Store, TenantWithItems,
};
use crate::rules::{companies, mapping, provisioning, twoway};
use chrono::{DateTime, NaiveDate, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What a run covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "pass", content = "company_id")]
pub enum Scope {
    /// Changes since the last cursor on both sides (becomes a full pass when one is due).
    Incremental,
    /// Every company and tenant.
    Full,
    /// One company (a PSA webhook, or an operator).
    Company(String),
}

impl Scope {
    pub fn name(&self) -> String {
        match self {
            Scope::Incremental => "incremental".into(),
            Scope::Full => "full".into(),
            Scope::Company(c) => format!("company {c}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SyncOptions {
    /// R-PROV-9: plan only.
    pub dry_run: bool,
    /// R-PROV-10: apply even when the guard trips.
    pub force: bool,
    /// Requests in flight at once to each system.
    pub concurrency: usize,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            dry_run: false,
            force: false,
            concurrency: 8,
        }
    }
}

/// The outcome of a run: the plan, what was applied, what failed.
#[derive(Debug, Clone, Serialize)]
pub struct SyncReport {
    pub partner: String,
    pub scope: String,
    pub dry_run: bool,
    pub started_at: DateTime<Utc>,
    pub companies: usize,
    pub plan: Plan,
    pub applied: usize,
    pub failures: Vec<CompanyProblem>,
    /// Why nothing was applied (R-MAP-6, R-PROV-10).
    pub blocked: Option<String>,
    pub psa_requests: u64,
    pub platform_requests: u64,
}

impl SyncReport {
    pub fn summary(&self, finished_at: DateTime<Utc>) -> RunSummary {
        RunSummary {
            scope: self.scope.clone(),
            started_at: self.started_at,
            finished_at,
            dry_run: self.dry_run,
            companies: self.companies,
            changes: self.plan.changes.len(),
            applied: self.applied,
            failed: self.failures.len(),
            blocked: self.blocked.clone(),
            psa_requests: self.psa_requests,
            platform_requests: self.platform_requests,
        }
    }
}

/// A run that could not happen at all.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("partner {partner}: {source}")]
    Port {
        partner: String,
        #[source]
        source: PortError,
    },
}

impl SyncError {
    pub fn port(&self) -> &PortError {
        match self {
            SyncError::Port { source, .. } => source,
        }
    }
}

/// "Today" in the partner's time zone.
pub fn partner_today(partner: &Partner, now: DateTime<Utc>) -> NaiveDate {
    match partner.time_zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => now.with_timezone(&tz).date_naive(),
        Err(_) => now.date_naive(),
    }
}

fn max_time(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    a.max(b)
}

/// Everything read for a run, before planning.
struct Snapshot {
    companies: HashMap<String, PsaCompany>,
    /// Agreements with lines, by company.
    agreements: HashMap<String, Vec<AgreementWithLines>>,
    tenants: HashMap<String, TenantWithItems>,
    /// Tenants by the PSA company id they carry.
    by_customer_id: HashMap<String, String>,
    /// Companies to plan.
    considered: BTreeSet<String>,
    /// The stored records of the considered companies (every record in a full pass).
    records: HashMap<String, CompanyRecord>,
    psa_since: Option<DateTime<Utc>>,
    platform_cursor: Option<String>,
    /// Public cloud storages by infra id (R-TWO-2; read only when two-way sync needs them).
    infra_vendors: BTreeMap<String, CloudVendor>,
}

/// Runs a sync for one partner. Records, cursor and status are written unless it is a dry run.
pub async fn run(
    partner: &Partner,
    clients: &PartnerClients,
    store: &dyn Store,
    scope: Scope,
    opts: SyncOptions,
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError> {
    let err = |source: PortError| SyncError::Port {
        partner: partner.id.clone(),
        source,
    };
    let today = partner_today(partner, now);
    let cursor = store.cursor(&partner.id).await.map_err(err)?;
    let full_due = cursor.last_full.is_none_or(|t| {
        now.signed_duration_since(t).num_minutes() >= i64::from(partner.full_sync_hours) * 60
    });
    let scope = match scope {
        Scope::Incremental if full_due => Scope::Full,
        s => s,
    };
    let mut report = SyncReport {
        partner: partner.id.clone(),
        scope: scope.name(),
        dry_run: opts.dry_run,
        started_at: now,
        companies: 0,
        plan: Plan {
            partner: partner.id.clone(),
            ..Plan::default()
        },
        applied: 0,
        failures: Vec::new(),
        blocked: None,
        psa_requests: 0,
        platform_requests: 0,
    };
    if !partner.switches.provisioning {
        report.blocked = Some("provisioning is switched off for this partner".into());
        return Ok(report);
    }
    // R-MAP-6: an unusable mapping never runs (it would zero everything).
    if let Err(why) = mapping::usable(&partner.mapping) {
        report.blocked = Some(why);
        if !opts.dry_run {
            write_status(store, partner, &report, now, None)
                .await
                .map_err(err)?;
        }
        return Ok(report);
    }

    let snap = read_snapshot(partner, clients, store, &scope, &cursor, today, opts)
        .await
        .map_err(err)?;
    let records = &snap.records;

    // Plan every considered company (pure rules). Only plans with something to do are kept.
    let mut plans: Vec<CompanyPlan> = Vec::new();
    let mut planned_total: usize = 0;
    for cid in &snap.considered {
        let record = records.get(cid);
        let tenant = record
            .and_then(|r| r.tenant_id())
            .or_else(|| snap.by_customer_id.get(cid).map(String::as_str))
            .and_then(|t| snap.tenants.get(t));
        let no_items: [CurrentItem; 0] = [];
        let company_snap = provisioning::CompanySnapshot {
            company_id: cid,
            company: snap.companies.get(cid),
            record,
            agreements: snap.agreements.get(cid).map_or(&[][..], Vec::as_slice),
            tenant: tenant.map(|t| &t.tenant),
            tenant_items: tenant.map_or(&no_items[..], |t| t.items.as_slice()),
        };
        let p = twoway::plan_company(partner, &company_snap, &snap.infra_vendors, today);
        if let Some(problem) = &p.problem {
            report.plan.problems.push(CompanyProblem {
                company_id: cid.clone(),
                reason: problem.clone(),
            });
        }
        report.plan.changes.extend(p.changes.iter().cloned());
        planned_total += p
            .record
            .as_ref()
            .or(record)
            .map_or(0, |r| r.nonzero_items as usize);
        let idle = p.changes.is_empty()
            && p.problem.is_none()
            && p.record.as_ref() == record
            && record.is_none_or(|r| r.last_error.is_none());
        if !idle {
            plans.push(p);
        }
    }
    report.companies = snap.considered.len();

    // R-PROV-10: the blast-radius guard, over the partner's non-zero quotas: all records in a
    // full pass; otherwise the count the last full pass left.
    let partner_nonzero: usize = if scope == Scope::Full {
        records.values().map(|r| r.nonzero_items as usize).sum()
    } else {
        store.status(&partner.id).await.map_err(err)?.nonzero_quotas
    };
    let planned_nonzero: Option<usize> = (scope == Scope::Full).then_some(planned_total);
    let live_nonzero: usize = snap
        .tenants
        .values()
        .map(|t| {
            t.items
                .iter()
                .filter(|i| i.enabled && !i.quota.is_zero())
                .filter(|i| partner.mapping.items.iter().any(|m| m.item == i.key))
                .count()
        })
        .sum();
    if let Err(why) = provisioning::guard(
        &report.plan,
        partner_nonzero.max(live_nonzero),
        &partner.guard,
        opts.force,
    ) {
        report.blocked = Some(why);
    }

    let counters = clients.counters.clone();
    if opts.dry_run || report.blocked.is_some() {
        (report.psa_requests, report.platform_requests) = counters();
        if !opts.dry_run {
            write_status(store, partner, &report, now, None)
                .await
                .map_err(err)?;
        }
        return Ok(report);
    }

    // What was read is no longer needed: keep the records and the cursors only.
    let Snapshot {
        records,
        psa_since,
        platform_cursor,
        ..
    } = snap;
    let records = &records;

    // Apply, company by company; one company's failure never stops the others (R-CO-4). The
    // records are written in a second stage, while the next companies' platform calls run.
    let outcomes: Vec<(usize, Option<CompanyProblem>)> = stream::iter(plans)
        .map(|p| {
            let original = records.get(&p.company_id).cloned();
            async move { apply_company(partner, clients, store, p, original, now).await }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .map(|a| record_company(partner, store, a))
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    for (applied, failure) in outcomes {
        report.applied += applied;
        report.failures.extend(failure);
    }

    // Cursors move only after the pass has been applied.
    let mut next = cursor.clone();
    next.psa_since = max_time(cursor.psa_since, psa_since);
    if platform_cursor.is_some() {
        next.platform_since = platform_cursor;
    }
    if scope == Scope::Full {
        next.last_full = Some(now);
    }
    if next != cursor {
        store.put_cursor(&partner.id, &next).await.map_err(err)?;
    }
    (report.psa_requests, report.platform_requests) = counters();
    write_status(store, partner, &report, now, planned_nonzero)
        .await
        .map_err(err)?;
    Ok(report)
}

async fn write_status(
    store: &dyn Store,
    partner: &Partner,
    report: &SyncReport,
    now: DateTime<Utc>,
    nonzero_quotas: Option<usize>,
) -> Result<(), PortError> {
    let mut status: PartnerStatus = store.status(&partner.id).await?;
    status.last_sync = Some(report.summary(now));
    if let Some(n) = nonzero_quotas {
        status.nonzero_quotas = n;
    }
    status.credentials = Some(crate::ports::CredentialState {
        ok: true,
        checked_at: now,
        problem: None,
    });
    store.put_status(&partner.id, &status).await
}

#[allow(clippy::too_many_arguments)]
async fn read_snapshot(
    partner: &Partner,
    clients: &PartnerClients,
    store: &dyn Store,
    scope: &Scope,
    cursor: &crate::ports::SyncCursor,
    today: NaiveDate,
    opts: SyncOptions,
) -> Result<Snapshot, PortError> {
    let psa = clients.psa.as_ref();
    let platform = clients.platform.as_ref();
    // Only the offering items the mapping manages are kept (the others are never touched),
    // and, for two-way sync of public cloud storages (R-TWO-2), the other storages.
    let clouds = twoway::enabled(partner) && !partner.mapping.public_cloud.is_empty();
    let managed = |k: &ItemKey| {
        partner.mapping.items.iter().any(|m| m.item == *k) || (clouds && k.is_storage())
    };
    let mut snap = Snapshot {
        companies: HashMap::new(),
        agreements: HashMap::new(),
        tenants: HashMap::new(),
        by_customer_id: HashMap::new(),
        considered: BTreeSet::new(),
        records: HashMap::new(),
        psa_since: None,
        platform_cursor: None,
        infra_vendors: BTreeMap::new(),
    };
    let agreements = match scope {
        Scope::Full => {
            // The three listings are independent: read them at the same time.
            let (all_companies, all_agreements) =
                (CompanyQuery::default(), AgreementQuery::default());
            let (companies, agreements, tenants) = futures::try_join!(
                psa.companies(&all_companies),
                psa.agreements(&all_agreements),
                platform.customers_keeping(&[], &managed),
            )?;
            // The listing's own timestamp: the next incremental pass looks at platform changes
            // from here on.
            let (tenants, stamp) = tenants;
            snap.platform_cursor = Some(stamp).filter(|s| !s.is_empty());
            snap.psa_since = companies
                .iter()
                .filter_map(|c| c.updated_at)
                .chain(agreements.iter().filter_map(|a| a.updated_at))
                .max();
            for t in tenants {
                if let Some(c) = &t.tenant.customer_id {
                    snap.by_customer_id.insert(c.clone(), t.tenant.id.clone());
                }
                snap.tenants.insert(t.tenant.id.clone(), t);
            }
            snap.considered
                .extend(companies.iter().map(|c| c.id.clone()));
            // Every stored record is read below, while the lines are being read.
            snap.companies = companies.into_iter().map(|c| (c.id.clone(), c)).collect();
            agreements
        }
        Scope::Incremental | Scope::Company(_) => {
            let mut wanted: BTreeSet<String> = BTreeSet::new();
            if let Scope::Company(c) = scope {
                wanted.insert(c.clone());
            } else {
                let since = cursor.psa_since;
                let changed = psa
                    .companies(&CompanyQuery {
                        changed_since: since,
                        ids: vec![],
                    })
                    .await?;
                let changed_agreements = psa
                    .agreements(&AgreementQuery {
                        changed_since: since,
                        company_ids: vec![],
                    })
                    .await?;
                let (tenant_ids, platform_cursor) = platform
                    .items_changed(cursor.platform_since.as_deref())
                    .await?;
                snap.platform_cursor = Some(platform_cursor);
                snap.psa_since = changed
                    .iter()
                    .filter_map(|c| c.updated_at)
                    .chain(changed_agreements.iter().filter_map(|a| a.updated_at))
                    .max();
                wanted.extend(changed.iter().map(|c| c.id.clone()));
                wanted.extend(changed_agreements.iter().map(|a| a.company_id.clone()));
                // Records that need a look: due ones (sparse index) and those of tenants changed
                // on the platform after our own last write (a hand edit, R-PROV-6).
                let changed_tenants: HashMap<String, DateTime<Utc>> =
                    tenant_ids.into_iter().collect();
                let mut candidates = store.companies_due(&partner.id, today).await?;
                if !changed_tenants.is_empty() {
                    let ids: Vec<String> = changed_tenants.keys().cloned().collect();
                    candidates.extend(store.companies_by_tenant(&partner.id, &ids).await?);
                }
                for r in candidates {
                    let due = r.next_review.is_some_and(|d| d <= today)
                        || r.last_error.is_some()
                        || r.mapping == Mapping::NewTenant;
                    let tenant_changed = r
                        .tenant_id()
                        .and_then(|t| changed_tenants.get(t))
                        .is_some_and(|at| r.platform_written.is_none_or(|ours| *at > ours));
                    if due || tenant_changed {
                        wanted.insert(r.company_id.clone());
                        snap.records.insert(r.company_id.clone(), r);
                    }
                }
                for c in changed {
                    snap.companies.insert(c.id.clone(), c);
                }
            }
            if wanted.is_empty() {
                return Ok(snap);
            }
            let unread: Vec<String> = wanted
                .iter()
                .filter(|c| !snap.records.contains_key(*c))
                .cloned()
                .collect();
            if !unread.is_empty() {
                for r in store.companies_by_id(&partner.id, &unread).await? {
                    snap.records.insert(r.company_id.clone(), r);
                }
            }
            let missing: Vec<String> = wanted
                .iter()
                .filter(|c| !snap.companies.contains_key(*c))
                .cloned()
                .collect();
            if !missing.is_empty() {
                for c in psa
                    .companies(&CompanyQuery {
                        changed_since: None,
                        ids: missing,
                    })
                    .await?
                {
                    snap.companies.insert(c.id.clone(), c);
                }
            }
            let agreements = psa
                .agreements(&AgreementQuery {
                    changed_since: None,
                    company_ids: wanted.iter().cloned().collect(),
                })
                .await?;
            let tenant_ids: Vec<String> = wanted
                .iter()
                .filter_map(|c| {
                    snap.records
                        .get(c)
                        .and_then(|r| r.tenant_id())
                        .map(str::to_owned)
                })
                .collect();
            if !tenant_ids.is_empty() {
                let (tenants, _) = platform.customers_keeping(&tenant_ids, &managed).await?;
                for t in tenants {
                    snap.tenants.insert(t.tenant.id.clone(), t);
                }
            }
            snap.considered = wanted;
            agreements
        }
    };

    // Lines: one read per agreement that counts today (and is of a considered company).
    let valid: Vec<_> = agreements
        .into_iter()
        .filter(|a| snap.considered.contains(&a.company_id))
        .filter(|a| match partner.psa {
            PsaKind::Connectwise => provisioning::cw_agreement_valid(a, today).is_ok(),
            PsaKind::Autotask => !a.cancelled,
        })
        .collect();
    let lines = stream::iter(valid)
        .map(|a| async move {
            let lines = psa.lines(&a.id).await?;
            Ok::<_, PortError>(AgreementWithLines {
                agreement: a,
                lines,
            })
        })
        .buffer_unordered(opts.concurrency.max(1))
        // Grouped by company as they come, in lists of their own size (most hold one).
        .try_fold(
            HashMap::new(),
            |mut by_company: HashMap<String, Vec<AgreementWithLines>>, a| async move {
                by_company
                    .entry(a.agreement.company_id.clone())
                    .or_insert_with(|| Vec::with_capacity(1))
                    .push(a);
                Ok(by_company)
            },
        );
    let with_lines = if *scope == Scope::Full {
        // A full pass needs every record: read them while the lines are read.
        let (with_lines, records) = futures::try_join!(lines, store.companies(&partner.id))?;
        snap.considered
            .extend(records.iter().map(|r| r.company_id.clone()));
        snap.records = records
            .into_iter()
            .map(|r| (r.company_id.clone(), r))
            .collect();
        with_lines
    } else {
        lines.await?
    };
    snap.agreements = with_lines;
    for list in snap.agreements.values_mut() {
        list.sort_by(|a, b| a.agreement.id.cmp(&b.agreement.id));
    }
    if clouds && !snap.considered.is_empty() {
        snap.infra_vendors = platform
            .storage_locations()
            .await?
            .into_iter()
            .filter_map(|l| Some((l.infra_id.clone(), l.vendor()?)))
            .collect();
    }
    Ok(snap)
}

/// What applying one company's plan left: the changes applied, its failure, and the record to
/// write with the stored one it replaces.
struct Applied {
    company_id: String,
    applied: usize,
    error: Option<String>,
    write: Option<(CompanyRecord, Option<CompanyRecord>)>,
}

/// Applies one company's plan (the PSA's contract first, then the platform); its record is
/// written by [`record_company`].
async fn apply_company(
    partner: &Partner,
    clients: &PartnerClients,
    store: &dyn Store,
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
            write: None,
        };
    };
    if let Some(o) = &original {
        record.version = o.version;
    }
    let result = apply_changes(partner, clients, store, &plan.changes, &mut record).await;
    let (applied, error) = match result {
        Ok(n) => {
            // Platform changes carried to the PSA are settled: later ones are a person's again.
            record.platform_written = record.platform_written.max(plan.platform_seen);
            (n, plan.problem.clone())
        }
        Err((n, e)) => (n, Some(e)),
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
        write,
    }
}

/// Writes a company's record after its plan was applied; returns the number of changes applied
/// and its failure, if any.
async fn record_company(
    partner: &Partner,
    store: &dyn Store,
    a: Applied,
) -> (usize, Option<CompanyProblem>) {
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
            );
        }
    }
    (
        a.applied,
        a.error.map(|reason| CompanyProblem {
            company_id: cid,
            reason,
        }),
    )
}

async fn apply_changes(
    partner: &Partner,
    clients: &PartnerClients,
    store: &dyn Store,
    changes: &[Change],
    record: &mut CompanyRecord,
) -> Result<usize, (usize, String)> {
    let platform = clients.platform.as_ref();
    let cid = record.company_id.clone();
    let fail = |n: usize, what: &str, e: PortError| (n, format!("company {cid}: {what}: {e}"));
    let mut applied = 0;
    // Two-way sync's PSA writes come first (the quota changes below assume them), by one run
    // at a time per company (a lease), each after a fresh read of the contract.
    let psa_writes: Vec<&Change> = changes.iter().filter(|c| c.writes_psa()).collect();
    if !psa_writes.is_empty() {
        let key = format!("psa-lines#{cid}");
        let owner = uuid::Uuid::new_v4().to_string();
        match store.lease(&partner.id, &key, &owner, LEASE_SECS).await {
            Ok(true) => {}
            Ok(false) => {
                return Err((
                    0,
                    format!(
                        "company {cid}: another run is updating its contract; it is synced \
                         again at the next pass"
                    ),
                ))
            }
            Err(e) => return Err(fail(0, "taking the lease on its contract failed", e)),
        }
        let written = write_lines(clients, &psa_writes).await;
        if let Err(e) = store.release(&partner.id, &key, &owner).await {
            tracing::warn!(company_id = %cid, error = %e, "lease not released; it expires");
        }
        applied += written.map_err(|(n, e)| fail(n, "updating its contract failed", e))?;
    }
    let mut tenant_id = record.tenant_id().map(str::to_owned);
    let mut quotas: BTreeMap<String, Vec<QuotaSet>> = BTreeMap::new();
    for c in changes {
        match c {
            Change::CreateTenant {
                tenant_name,
                trial,
                two_factor,
                admin,
                ..
            } => {
                let t = platform
                    .create_customer(&NewTenant {
                        name: tenant_name.clone(),
                        customer_id: cid.clone(),
                        trial: *trial,
                        two_factor: *two_factor,
                        admin: admin_with_email(clients, &cid, admin).await,
                    })
                    .await
                    .map_err(|e| fail(applied, "creating its tenant failed", e))?;
                applied += 1;
                // Recorded once, with the quotas' outcome (a failure too); a run that dies
                // before leaves a tenant stamped with the company id, adopted next time.
                record.map_to(Mapping::Tenant(t.id.clone()));
                tenant_id = Some(t.id);
            }
            Change::AdoptTenant { tenant_id: t, .. } => {
                record.mapping = Mapping::Tenant(t.clone());
                tenant_id = Some(t.clone());
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
        let written = platform
            .set_quotas(t, items)
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
                .switch_to_production(tenant_id)
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

/// How long a company's contract lease lasts (the store's own clock; renewed by nothing: a
/// run that dies holding it delays that company's contract writes by this much).
const LEASE_SECS: u32 = 300;

/// Two-way sync's PSA writes (R-TWO-1, R-TWO-2). Each reads the contract first: a product the
/// contract already holds is not added again (a retried or concurrent run, a lost answer), and
/// quantities are absolute.
async fn write_lines(
    clients: &PartnerClients,
    writes: &[&Change],
) -> Result<usize, (usize, PortError)> {
    let psa = clients.psa.as_ref();
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
                    Ok(None) => match psa.add_line(agreement_id, &product.id).await {
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
                        psa.set_line_quantity(agreement_id, &id, None, *quantity)
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
                psa.set_line_quantity(agreement_id, line_id, Some(*old), *new)
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

/// Plans and applies nothing: a mapping request for one company (R-CO-1, R-CO-3, R-CO-5),
/// checked against the platform and the store before anything is written.
pub async fn map_company(
    partner: &Partner,
    clients: &PartnerClients,
    store: &dyn Store,
    company: &PsaCompany,
    request: &companies::MappingRequest,
) -> Result<CompanyRecord, String> {
    let current = store
        .company(&partner.id, &company.id)
        .await
        .map_err(|e| e.to_string())?;
    let (tenant, holder): (Option<Tenant>, Option<String>) = match request {
        companies::MappingRequest::Existing(t) => {
            let (found, _) = clients
                .platform
                .customers(std::slice::from_ref(t))
                .await
                .map_err(|e| e.to_string())?;
            let holder = store
                .tenant_holder(&partner.id, t)
                .await
                .map_err(|e| e.to_string())?;
            (found.into_iter().next().map(|t| t.tenant), holder)
        }
        _ => (None, None),
    };
    let rec = companies::apply_request(
        current.as_ref(),
        &company.id,
        &company.name,
        request,
        tenant.as_ref(),
        holder.as_deref(),
    )
    .map_err(|e| format!("company {} ({}): {e}", company.identifier, company.id))?;
    if current.as_ref() == Some(&rec) {
        return Ok(rec);
    }
    store
        .put_company(&partner.id, &rec)
        .await
        .map_err(|e| format!("company {}: {e}", company.identifier))
}
