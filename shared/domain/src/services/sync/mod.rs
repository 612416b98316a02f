//! The sync service: read both sides, plan every company (rules), guard, apply the difference.
//! API calls grow with changes, not with the number of companies.

mod apply;
mod partner;
mod snapshot;

pub use partner::{
    report_view, sync_partner, PartnerSyncError, ReportView, SyncRequest,
    DETAIL_CREDENTIALS_FAILED, DETAIL_SYNC_COMPLETED,
};

use apply::{apply_company, record_company};
pub(crate) use snapshot::agreements_with_lines;
use snapshot::{find_stamped, read_snapshot, Snapshot};

use crate::error::PortError;
use crate::model::{CurrentItem, Partner};
use crate::plan::{CompanyPlan, CompanyProblem, Plan};
use crate::ports::{CompanyStore, Leases, PartnerClients, PartnerStatus, RunSummary, SyncState};
use crate::rules::{mapping, provisioning, twoway};
use chrono::{DateTime, NaiveDate, Utc};
use futures::stream::{self, StreamExt};
use serde::Serialize;
use std::collections::BTreeMap;

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
    /// Companies whose events waited for a run of their partner (R-REL-4).
    Waiting(Vec<String>),
}

impl Scope {
    pub fn name(&self) -> String {
        match self {
            Scope::Incremental => "incremental".into(),
            Scope::Full => "full".into(),
            Scope::Company(c) => format!("company {c}"),
            Scope::Waiting(cs) => format!("{} waiting companies", cs.len()),
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
    /// A company's write that a system refused for psa-bridge's credentials (R-SET-4): the
    /// status shows it and `CredentialsFailed` is raised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_refused: Option<String>,
    pub psa_requests: u64,
    pub platform_requests: u64,
    /// R-REL-4: the run did not start because another run of the partner holds its lease; a
    /// company event was left for that run (folded into it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded: Option<String>,
    /// R-PROV-8: the mapped companies this incremental pass re-read for line edits that no
    /// change time shows (the rolling line refresh slice), and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_refresh: Option<LineRefresh>,
}

/// R-PROV-8: what the rolling line refresh of an incremental pass re-read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineRefresh {
    /// `"line refresh slice (R-PROV-8)"`.
    pub reason: String,
    /// The slice's companies (re-read with their agreements and lines, planned like changed ones).
    pub companies: Vec<String>,
    /// Mapped companies in all; each is re-read at least once per `every_hours`.
    pub mapped: usize,
    pub every_hours: u32,
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

/// How long a partner's run lease lasts on the store's clock; a run renews it as it goes
/// ([`RENEW_EVERY`]), so only a run that died holds it up for this long (R-REL-4).
pub const RUN_LEASE_SECS: u32 = 300;
/// A run renews its lease after reading, before each [`RENEW_EVERY`]th company, and before
/// its cursor is written.
pub const RENEW_EVERY: usize = 25;
/// At most this many extra rounds for companies whose events waited during a run; later ones
/// stay noted for the next run.
const WAITING_ROUNDS: usize = 3;
const RUN_LEASE: &str = "run";

/// A run's hold on its partner's lease (R-REL-4): renewed as the run goes, its token fences
/// the cursor, and once lost the run applies nothing more.
pub(super) struct RunLease<'a, S: Leases + ?Sized> {
    store: &'a S,
    partner: &'a str,
    owner: String,
    pub(super) token: u64,
    started: std::sync::atomic::AtomicUsize,
    lost: std::sync::atomic::AtomicBool,
}

impl<'a, S: Leases + ?Sized> RunLease<'a, S> {
    async fn take(store: &'a S, partner: &'a str) -> Result<Option<Self>, PortError> {
        let owner = uuid::Uuid::new_v4().to_string();
        Ok(store
            .lease(partner, RUN_LEASE, &owner, RUN_LEASE_SECS)
            .await?
            .map(|token| RunLease {
                store,
                partner,
                owner,
                token,
                started: 0.into(),
                lost: false.into(),
            }))
    }

    /// Renews the lease; false once it is lost (a store error counts as lost: the run must
    /// not write on a lease it cannot prove).
    pub(super) async fn renew(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.lost.load(Ordering::SeqCst) {
            return false;
        }
        let kept = self
            .store
            .renew(
                self.partner,
                RUN_LEASE,
                &self.owner,
                self.token,
                RUN_LEASE_SECS,
            )
            .await;
        if !matches!(kept, Ok(true)) {
            tracing::warn!(partner = self.partner, token = self.token, outcome = ?kept, "the run lost its partner lease; it applies nothing more (R-REL-4)");
            self.lost.store(true, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Called before each company's apply: renews every [`RENEW_EVERY`] companies; false once
    /// the lease is lost.
    pub(super) async fn before_company(&self) -> bool {
        use std::sync::atomic::Ordering;
        let n = self.started.fetch_add(1, Ordering::SeqCst);
        if n > 0 && n.is_multiple_of(RENEW_EVERY) {
            return self.renew().await;
        }
        !self.lost.load(Ordering::SeqCst)
    }

    async fn release(self) {
        if let Err(e) = self
            .store
            .release(self.partner, RUN_LEASE, &self.owner)
            .await
        {
            tracing::warn!(partner = self.partner, error = %e, "run lease not released; it expires");
        }
    }
}

/// Runs a sync for one partner. Records, cursor and status are written unless it is a dry run.
///
/// R-REL-4: one run per partner at a time. A run holds the partner's lease (renewed as it
/// goes; its token fences the cursor). A run that finds the lease held does nothing: a
/// company's run notes the company for the holder (which syncs it before it lets go, or the
/// next run does) — the event is folded into that run; a partner run reports it was blocked.
pub async fn run<S>(
    partner: &Partner,
    clients: &PartnerClients,
    store: &S,
    scope: Scope,
    opts: SyncOptions,
    now: DateTime<Utc>,
) -> Result<SyncReport, SyncError>
where
    S: CompanyStore + SyncState + Leases + ?Sized,
{
    let err = |source: PortError| SyncError::Port {
        partner: partner.id.clone(),
        source,
    };
    if opts.dry_run {
        return run_once(partner, clients, store, scope, &[], opts, now, None).await;
    }
    let mut lease = RunLease::take(store, &partner.id).await.map_err(err)?;
    if lease.is_none() {
        let mut report = empty_report(partner, &scope, opts, now);
        if let Scope::Company(c) = &scope {
            store.wait_for_run(&partner.id, c).await.map_err(err)?;
            // The holder may have let go after its last look at the notes: try once more.
            lease = RunLease::take(store, &partner.id).await.map_err(err)?;
            if lease.is_none() {
                report.folded = Some(format!(
                    "another run of partner {} is in progress: company {c} is synced by it \
                     (or by the next run) — folded into that run (R-REL-4)",
                    partner.id
                ));
                return Ok(report);
            }
        } else {
            report.blocked = Some(format!(
                "another run of partner {} is in progress (R-REL-4); this {} pass was not \
                 started — the next one covers it",
                partner.id,
                scope.name()
            ));
            return Ok(report);
        }
    }
    let mut report: Option<SyncReport> = None;
    let mut scope = Some(scope);
    // A note written after this run's last look, by an event that found the lease still
    // held, is seen after the release: the run takes the lease again for it (once).
    for _ in 0..2 {
        let Some(held) = lease.take() else { break };
        let outcome = rounds(partner, clients, store, &mut scope, opts, now, &held).await;
        held.release().await;
        let round = outcome?;
        let stop = round.blocked.is_some();
        report = Some(match report {
            None => round,
            Some(mut r) => {
                r.merge(round);
                r
            }
        });
        if stop || store.waiting(&partner.id).await.map_err(err)?.is_empty() {
            break;
        }
        lease = RunLease::take(store, &partner.id).await.map_err(err)?;
    }
    Ok(report.expect("one round at least"))
}

/// The rounds of a run under its lease: the run's own scope with the companies waiting for it,
/// then the companies that were noted while it ran.
async fn rounds<S>(
    partner: &Partner,
    clients: &PartnerClients,
    store: &S,
    scope: &mut Option<Scope>,
    opts: SyncOptions,
    now: DateTime<Utc>,
    lease: &RunLease<'_, S>,
) -> Result<SyncReport, SyncError>
where
    S: CompanyStore + SyncState + Leases + ?Sized,
{
    let err = |source: PortError| SyncError::Port {
        partner: partner.id.clone(),
        source,
    };
    let mut report: Option<SyncReport> = None;
    for _ in 0..=WAITING_ROUNDS {
        let notes = store.waiting(&partner.id).await.map_err(err)?;
        let this_scope = match scope.take() {
            Some(s) => s,
            None if notes.is_empty() => break,
            None => Scope::Waiting(Vec::new()),
        };
        let extra: Vec<String> = notes.iter().map(|(c, _)| c.clone()).collect();
        let round = run_once(
            partner,
            clients,
            store,
            this_scope,
            &extra,
            opts,
            now,
            Some(lease),
        )
        .await?;
        // The noted companies were read after their notes were written: handled.
        store.done_waiting(&partner.id, &notes).await.map_err(err)?;
        let stop = round.blocked.is_some() || !lease.renew().await;
        report = Some(match report {
            None => round,
            Some(mut r) => {
                r.merge(round);
                r
            }
        });
        if stop {
            break;
        }
    }
    Ok(report.unwrap_or_else(|| empty_report(partner, &Scope::Waiting(Vec::new()), opts, now)))
}

fn empty_report(
    partner: &Partner,
    scope: &Scope,
    opts: SyncOptions,
    now: DateTime<Utc>,
) -> SyncReport {
    SyncReport {
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
        credentials_refused: None,
        psa_requests: 0,
        platform_requests: 0,
        folded: None,
        line_refresh: None,
    }
}

impl SyncReport {
    /// Adds a later round of the same run (companies that waited for it).
    fn merge(&mut self, later: SyncReport) {
        self.companies += later.companies;
        self.plan.changes.extend(later.plan.changes);
        self.plan.problems.extend(later.plan.problems);
        self.applied += later.applied;
        self.failures.extend(later.failures);
        self.blocked = self.blocked.take().or(later.blocked);
        self.line_refresh = self.line_refresh.take().or(later.line_refresh);
        self.credentials_refused = self
            .credentials_refused
            .take()
            .or(later.credentials_refused);
        // Request counters are cumulative per connection: the later round's are the total.
        self.psa_requests = later.psa_requests;
        self.platform_requests = later.platform_requests;
    }
}

/// One round of a run: read, plan, guard, apply; the cursor and status are written (fenced by
/// the lease) unless it is a dry run.
#[allow(clippy::too_many_arguments)]
async fn run_once<S>(
    partner: &Partner,
    clients: &PartnerClients,
    store: &S,
    scope: Scope,
    extra: &[String],
    opts: SyncOptions,
    now: DateTime<Utc>,
    lease: Option<&RunLease<'_, S>>,
) -> Result<SyncReport, SyncError>
where
    S: CompanyStore + SyncState + Leases + ?Sized,
{
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
    let mut report = empty_report(partner, &scope, opts, now);
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

    let mut snap = read_snapshot(partner, clients, store, &scope, extra, &cursor, today, opts)
        .await
        .map_err(err)?;
    if !snap.line_refresh.is_empty() {
        report.line_refresh = Some(LineRefresh {
            reason: "line refresh slice (R-PROV-8)".into(),
            companies: snap.line_refresh.clone(),
            mapped: snap.mapped_companies,
            every_hours: partner.line_refresh_hours,
        });
    }
    if let Some(l) = lease {
        if !l.renew().await {
            report.blocked = Some(lost_lease(partner));
            return Ok(report);
        }
    }

    // Plan every considered company (pure rules).
    let mut by_company: BTreeMap<String, CompanyPlan> = snap
        .considered
        .iter()
        .map(|cid| (cid.clone(), plan_one(partner, &snap, cid, today)))
        .collect();
    // R-PROV-11: before any tenant is created, a tenant stamped with the company's id is looked
    // for and adopted. A full pass listed every tenant; the other passes look up the companies
    // that would get one (a create whose record was lost, or whose answer was).
    if scope != Scope::Full {
        let creating: Vec<String> = by_company
            .iter()
            .filter(|(_, p)| p.creates_tenant())
            .map(|(c, _)| c.clone())
            .collect();
        if !creating.is_empty() {
            find_stamped(partner, clients, store, &mut snap, &creating)
                .await
                .map_err(err)?;
            for cid in creating {
                by_company.insert(cid.clone(), plan_one(partner, &snap, &cid, today));
            }
        }
    }
    let records = &snap.records;

    // Only plans with something to do are kept.
    let mut plans: Vec<CompanyPlan> = Vec::new();
    let mut planned_total: usize = 0;
    for (cid, p) in by_company {
        let record = records.get(&cid);
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
        seen_companies,
        seen_agreements,
        platform_cursor,
        lines_next,
        ..
    } = snap;
    let records = &records;

    // Apply, company by company; one company's failure never stops the others (R-CO-4). The
    // records are written in a second stage, while the next companies' platform calls run.
    let outcomes: Vec<(usize, Option<CompanyProblem>, bool)> = stream::iter(plans)
        .map(|p| {
            let original = records.get(&p.company_id).cloned();
            async move {
                if let Some(l) = lease {
                    if !l.before_company().await {
                        return apply::not_applied(p.company_id, lost_lease(partner));
                    }
                }
                apply_company(partner, clients, store, p, original, now).await
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .map(|a| record_company(partner, store, a))
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    for (applied, failure, credentials) in outcomes {
        report.applied += applied;
        if credentials && report.credentials_refused.is_none() {
            report.credentials_refused = failure.as_ref().map(|f| f.reason.clone());
        }
        report.failures.extend(failure);
    }

    // Cursors move only after the pass has been applied.
    let mut next = cursor.clone();
    next.psa_since = max_time(cursor.psa_since, psa_since);
    let (companies_cursor, agreements_cursor) = snapshot::entity_cursors(&cursor);
    next.companies =
        companies_cursor.advance(seen_companies.iter().map(|(id, at)| (id.as_str(), *at)));
    next.agreements =
        agreements_cursor.advance(seen_agreements.iter().map(|(id, at)| (id.as_str(), *at)));
    if platform_cursor.is_some() {
        next.platform_since = platform_cursor;
    }
    if let Some(lines) = lines_next {
        next.lines = lines;
    }
    if scope == Scope::Full {
        next.last_full = Some(now);
    }
    if let Some(l) = lease {
        // No other run held the lease when this one read the cursor, so a stored fence at or
        // above this run's token means the lease's counter was lost (its item deleted): the
        // fence continues from the cursor's.
        next.fence = if cursor.fence < l.token {
            l.token
        } else {
            tracing::warn!(partner = %partner.id, token = l.token, fence = cursor.fence, "the run lease's token is behind the cursor's fence (lease item lost?); continuing from the fence");
            cursor.fence + 1
        };
        if !l.renew().await {
            // A later run holds the partner now: its cursor is the one that counts.
            report.blocked = Some(lost_lease(partner));
            next = cursor.clone();
        }
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

fn lost_lease(partner: &Partner) -> String {
    format!(
        "partner {}'s run lease was lost to another run (R-REL-4); what this run had not \
         applied is left to that run and the next pass",
        partner.id
    )
}

/// Plans one company from what the run read (R-PROV-*, R-TWO-*). A tenant stamped with the
/// company's id is its tenant unless another company holds it (R-CO-5).
fn plan_one(partner: &Partner, snap: &Snapshot, cid: &str, today: NaiveDate) -> CompanyPlan {
    let record = snap.records.get(cid);
    let stamped = snap
        .by_customer_id
        .get(cid)
        .filter(|t| snap.holders.get(*t).is_none_or(|h| h == cid))
        .map(String::as_str);
    let tenant = record
        .and_then(|r| r.tenant_id())
        .or(stamped)
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
    let mut plan = twoway::plan_company(partner, &company_snap, &snap.infra_vendors, today);
    if plan
        .changes
        .iter()
        .any(|c| matches!(c, crate::plan::Change::SetQuota { .. }))
    {
        plan.basis = company_snap
            .tenant_items
            .iter()
            .map(|i| crate::ports::QuotaSet {
                item: i.key.clone(),
                enabled: i.enabled,
                quota: i.quota,
            })
            .collect();
    }
    plan
}

async fn write_status(
    store: &(impl SyncState + ?Sized),
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
        ok: report.credentials_refused.is_none(),
        checked_at: now,
        problem: report.credentials_refused.clone(),
    });
    store.put_status(&partner.id, &status).await
}
