//! The publish service (SPEC §6): the platform's usage figures onto the PSA's PAYG lines, for
//! one period — the same for the publish-usage Lambda and the CLI.
//!
//! A publish reads the mapped companies' records, the platform's figures for the period
//! (current usage, or the usage report of a closed period), the companies' agreements with
//! their lines, and writes one absolute quantity per changed PAYG line (`rules::usage`). One
//! company's failure is its own (R-USE-7); a failure of the whole read (credentials, a system
//! down) fails the publish, which the schedule retries (R-USE-10). Every publish that is not a
//! dry run is kept in the history (R-USE-8) and ends with an event (R-USE-9).

use crate::error::{PortError, System};
use crate::model::{AgreementWithLines, CompanyRecord, Mapping, Partner, TenantKind};
use crate::ports::{
    AgreementQuery, BusEvent, CompanyPublish, CompanyStore, Connector, Events, Leases,
    PartnerClients, PartnerStore, PeriodUsage, PublishLedger, PublishRecord, PublishResult,
    PublishTrigger, PublishedLine, TenantUsage,
};
use crate::rules::companies::{same_tenant, MappingRefused};
use crate::rules::provisioning::active_lines;
use crate::rules::usage::{billed_customers, figures, line_usage, LineAction, LineUsage};
use crate::services::sync::{agreements_with_lines, partner_today};
use crate::services::OpError;
use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use futures::stream::{self, StreamExt};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const DETAIL_PUBLISHED: &str = "UsagePublished";
pub const DETAIL_PARTLY_FAILED: &str = "UsagePublishPartlyFailed";
pub const DETAIL_FAILED: &str = "UsagePublishFailed";

/// At most this many companies (failed ones first) and lines are named in an event; the
/// history holds them all.
const EVENT_DETAIL_CAP: usize = 100;

/// The days a publish covers, `[start, end)`, and where its figures come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishPeriod {
    /// How the history and the event name it (`2026-11`, `2026-11-06..2026-12-05`).
    pub label: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// From the platform's usage report for the period (R-USE-5); else current usage.
    pub closed: bool,
}

impl PublishPeriod {
    /// The month so far, from current usage (a manual "publish now" without a period).
    pub fn month_to_date(today: NaiveDate) -> PublishPeriod {
        let start = today.with_day(1).unwrap_or(today);
        PublishPeriod {
            label: format!("{} (month to date)", start.format("%Y-%m")),
            start,
            end: today + Days::new(1),
            closed: false,
        }
    }
}

impl From<crate::rules::schedule::Period> for PublishPeriod {
    fn from(p: crate::rules::schedule::Period) -> Self {
        PublishPeriod {
            label: p.label(),
            start: p.start,
            end: p.end,
            closed: p.closed,
        }
    }
}

/// What one publish covers besides its period.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// Only these companies (empty: every mapped company).
    pub companies: Vec<String>,
    /// Show every line old → new with its rule; write nothing, record nothing.
    pub dry_run: bool,
    /// Requests in flight at once to each system.
    pub concurrency: usize,
}

/// R-USE-1, R-USE-2, R-USE-5, R-USE-7: one publish of `period` for a connected partner.
/// Bad input (a selected company that does not exist or is not mapped) is an error before
/// anything is read or written; a failure of the whole read is a `Failed` record.
///
/// One publish of a partner writes at a time (a partner lease, [`PUBLISH_LEASE`]): an Autotask
/// line is adjusted by the difference to what was read, so two publishes reading the same
/// units would both add the usage. A publish that finds the lease held is a retryable error
/// and writes nothing (the schedule gives its claim back; the next tick retries). A dry run
/// writes nothing and takes no lease.
#[allow(clippy::too_many_arguments)]
pub async fn publish_period<S>(
    partner: &Partner,
    clients: &PartnerClients,
    store: &S,
    period: &PublishPeriod,
    trigger: PublishTrigger,
    slot: Option<NaiveDate>,
    opts: &PublishOptions,
    now: DateTime<Utc>,
    run_id: &str,
) -> Result<PublishRecord, OpError>
where
    S: CompanyStore + Leases + ?Sized,
{
    let records = store
        .companies(&partner.id)
        .await
        .map_err(OpError::port(&partner.id, "reading the company records"))?;
    // Every mapped tenant, selected or not: a sub-partner is not billed for a customer billed
    // to its own company (R-USE-3).
    let mapped: BTreeSet<String> = records
        .iter()
        .filter_map(|r| r.tenant_id().map(str::to_owned))
        .collect();
    let selected = select(partner, records, &opts.companies)?;
    let publish = |selected, mapped| {
        publish_leased(
            partner, clients, period, trigger, slot, opts, now, run_id, selected, mapped,
        )
    };
    if opts.dry_run {
        return Ok(publish(selected, mapped).await);
    }
    let held = store
        .lease(&partner.id, PUBLISH_LEASE, run_id, CLAIM_SECS)
        .await
        .map_err(OpError::port(
            &partner.id,
            "taking the partner's publish lease",
        ))?;
    if held.is_none() {
        return Err(OpError::Port {
            partner: partner.id.clone(),
            what: "starting the publish".into(),
            source: PortError::Transient {
                system: System::Store,
                message: format!(
                    "another publish of partner {} is in progress: their writes would race; \
                     this one waits for the next try",
                    partner.id
                ),
            },
        });
    }
    let out = publish(selected, mapped).await;
    if let Err(e) = store.release(&partner.id, PUBLISH_LEASE, run_id).await {
        tracing::warn!(partner = %partner.id, error = %e, "publish lease not released; it expires");
    }
    Ok(out)
}

/// The partner lease one publish holds while it writes.
pub const PUBLISH_LEASE: &str = "publish";

/// [`publish_period`] once the companies are chosen and the lease is held.
#[allow(clippy::too_many_arguments)]
async fn publish_leased(
    partner: &Partner,
    clients: &PartnerClients,
    period: &PublishPeriod,
    trigger: PublishTrigger,
    slot: Option<NaiveDate>,
    opts: &PublishOptions,
    now: DateTime<Utc>,
    run_id: &str,
    selected: Vec<CompanyRecord>,
    mapped: BTreeSet<String>,
) -> PublishRecord {
    let mut rec = PublishRecord {
        run_id: run_id.to_owned(),
        started_at: now,
        finished_at: now,
        trigger,
        period: period.label.clone(),
        slot,
        dry_run: opts.dry_run,
        result: PublishResult::Published,
        error: None,
        companies: Vec::new(),
        omitted: 0,
    };
    match read_and_write(partner, clients, period, &selected, &mapped, opts, now).await {
        Ok(Read::Done(companies)) => {
            let failed = companies.iter().filter(|c| c.error.is_some()).count();
            rec.result = match failed {
                0 => PublishResult::Published,
                f if f == companies.len() => PublishResult::Failed,
                _ => PublishResult::PartlyFailed,
            };
            if rec.result == PublishResult::Failed {
                rec.error = Some(format!("every one of the {failed} companies failed"));
            }
            rec.companies = companies;
        }
        Ok(Read::NotReady(why)) => {
            rec.result = PublishResult::NotReady;
            rec.error = Some(why);
        }
        Err(e) => {
            rec.result = PublishResult::Failed;
            rec.error = Some(e.to_string());
        }
    }
    rec
}

/// The mapped companies to publish: the selection, each of which must exist and be mapped.
fn select(
    partner: &Partner,
    records: Vec<CompanyRecord>,
    wanted: &[String],
) -> Result<Vec<CompanyRecord>, OpError> {
    let mapped = |r: &CompanyRecord| matches!(r.mapping, Mapping::Tenant(_));
    if wanted.is_empty() {
        let mut all: Vec<_> = records.into_iter().filter(mapped).collect();
        all.sort_by(|a, b| a.company_id.cmp(&b.company_id));
        return Ok(all);
    }
    let mut by_id: HashMap<String, CompanyRecord> = records
        .into_iter()
        .map(|r| (r.company_id.clone(), r))
        .collect();
    let mut problems = Vec::new();
    let mut out = Vec::new();
    for id in wanted.iter().collect::<BTreeSet<_>>() {
        match by_id.remove(id) {
            None => problems.push(format!(
                "company {id:?}: not mapped to a tenant (no mapping is stored for it; \
                 `psa-bridge companies list` shows the ids)"
            )),
            Some(r) if !mapped(&r) => problems.push(format!(
                "company {id:?} ({}): not mapped to a tenant, so it has no usage to publish",
                r.name
            )),
            Some(r) => out.push(r),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(OpError::Invalid {
            partner: partner.id.clone(),
            problems,
        })
    }
}

enum Read {
    Done(Vec<CompanyPublish>),
    NotReady(String),
}

async fn read_and_write(
    partner: &Partner,
    clients: &PartnerClients,
    period: &PublishPeriod,
    companies: &[CompanyRecord],
    mapped: &BTreeSet<String>,
    opts: &PublishOptions,
    now: DateTime<Utc>,
) -> Result<Read, PortError> {
    if companies.is_empty() {
        return Ok(Read::Done(Vec::new()));
    }
    let today = partner_today(partner, now);
    let tenant_ids: Vec<String> = companies
        .iter()
        .filter_map(|r| r.tenant_id().map(str::to_owned))
        .collect();
    let company_ids: Vec<String> = companies.iter().map(|r| r.company_id.clone()).collect();
    // The tenants (a mapping to a tenant that is gone fails its company), then — a sub-partner's
    // usage being the sum over its subtree's customers (R-CO-6, R-USE-3) — the figures; the
    // lines are read meanwhile.
    let usage = async {
        let (tenants, _) = clients
            .platform
            .customers_keeping(&tenant_ids, &|_| false)
            .await?;
        let live: Vec<_> = tenants.into_iter().filter(|t| !t.tenant.deleted).collect();
        // A sub-partner whose subtree cannot be listed fails its own company only.
        let mut subtrees: HashMap<String, Result<Vec<String>, String>> = HashMap::new();
        for t in live.iter().filter(|t| t.tenant.kind == TenantKind::Partner) {
            let id = &t.tenant.id;
            let billed = match clients.usage.subtree(id).await {
                Ok(list) => Ok(billed_customers(id, &list, mapped)),
                Err(e) => Err(format!("listing the customers of sub-partner {id}: {e}")),
            };
            subtrees.insert(id.clone(), billed);
        }
        // Only tenants the platform has: one that is gone fails its own company, not the read.
        let mut read: Vec<String> = live
            .iter()
            .map(|t| &t.tenant.id)
            .filter(|id| !subtrees.contains_key(id.as_str()))
            .cloned()
            .collect();
        read.extend(subtrees.values().flatten().flatten().cloned());
        read.sort();
        read.dedup();
        let usage = if period.closed {
            clients
                .usage
                .period_usage(&read, period.start, period.end)
                .await?
        } else {
            PeriodUsage::Ready(clients.usage.current_usage(&read).await?)
        };
        let live: BTreeMap<String, TenantKind> = live
            .into_iter()
            .map(|t| (t.tenant.id, t.tenant.kind))
            .collect();
        Ok::<_, PortError>((usage, live, subtrees))
    };
    let lines = async {
        let agreements = clients
            .psa
            .agreements(&AgreementQuery {
                changed_since: None,
                company_ids: company_ids.clone(),
            })
            .await?;
        agreements_with_lines(
            partner,
            clients.psa.as_ref(),
            agreements,
            today,
            opts.concurrency,
        )
        .await
    };
    let ((usage, live, subtrees), mut lines) = futures::try_join!(usage, lines)?;
    let usage = match usage {
        PeriodUsage::Ready(u) => u,
        PeriodUsage::NotReady(why) => return Ok(Read::NotReady(why)),
    };
    let by_tenant: HashMap<&str, &TenantUsage> =
        usage.iter().map(|u| (u.tenant_id.as_str(), u)).collect();
    let jobs: Vec<_> = companies
        .iter()
        .map(|r| {
            let agreements = lines.remove(&r.company_id).unwrap_or_default();
            (r, agreements)
        })
        .collect();
    // Unordered: the companies whose lines change are few and far apart, and an ordered buffer
    // would hold one of them at its head with finished ones behind it — one write at a time.
    let mut out: Vec<(usize, CompanyPublish)> = stream::iter(jobs.into_iter().enumerate())
        .map(|(i, (r, agreements))| {
            let tenants = Tenants {
                live: &live,
                usage: &by_tenant,
                subtrees: &subtrees,
            };
            async move {
                let c = publish_company(partner, clients, r, agreements, tenants, opts, today);
                (i, c.await)
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    out.sort_by_key(|(i, _)| *i);
    let out = out.into_iter().map(|(_, c)| c).collect();
    Ok(Read::Done(out))
}

/// What a publish read of the platform's tenants: the live ones, the figures per tenant and the
/// customers under each mapped sub-partner.
#[derive(Clone, Copy)]
struct Tenants<'a> {
    live: &'a BTreeMap<String, TenantKind>,
    usage: &'a HashMap<&'a str, &'a TenantUsage>,
    subtrees: &'a HashMap<String, Result<Vec<String>, String>>,
}

impl Tenants<'_> {
    /// The usages that make a mapped tenant's figures: its own, or the customers a
    /// sub-partner is billed for (`billed_customers`).
    fn usages_of(&self, tenant_id: &str) -> Result<Vec<&TenantUsage>, String> {
        match self.subtrees.get(tenant_id) {
            Some(Ok(customers)) => Ok(customers
                .iter()
                .filter_map(|c| self.usage.get(c.as_str()).copied())
                .collect()),
            Some(Err(e)) => Err(e.clone()),
            None => Ok(self.usage.get(tenant_id).copied().into_iter().collect()),
        }
    }

    /// Why a mapped tenant is not billed: gone, the partner's own tenant, a folder or a unit
    /// (a mapping made before R-CO-6 was checked).
    fn refused(&self, partner: &Partner, tenant_id: &str) -> Option<String> {
        let Some(kind) = self.live.get(tenant_id) else {
            return Some(format!(
                "mapped to tenant {tenant_id}, which the platform does not have among the \
                 partner's customers (deleted, or mapped by mistake): map the company again"
            ));
        };
        let why = if same_tenant(tenant_id, &partner.partner_tenant_id) {
            MappingRefused::PartnerItself(tenant_id.to_owned())
        } else if *kind == TenantKind::Other {
            MappingRefused::NotMappable(tenant_id.to_owned())
        } else {
            return None;
        };
        Some(format!("{why}: map the company again"))
    }
}

async fn publish_company(
    partner: &Partner,
    clients: &PartnerClients,
    r: &CompanyRecord,
    agreements: Vec<AgreementWithLines>,
    tenants: Tenants<'_>,
    opts: &PublishOptions,
    today: NaiveDate,
) -> CompanyPublish {
    let tenant_id = r.tenant_id().unwrap_or_default().to_owned();
    let mut out = CompanyPublish {
        company_id: r.company_id.clone(),
        name: r.name.clone(),
        tenant_id: tenant_id.clone(),
        lines: Vec::new(),
        error: None,
    };
    if let Some(why) = tenants.refused(partner, &tenant_id) {
        out.error = Some(why);
        return out;
    }
    let active = active_lines(partner.psa, &agreements, today);
    let figures = match tenants.usages_of(&tenant_id) {
        Ok(usages) => figures(usages),
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    let planned = line_usage(&partner.mapping, &active, &figures, &r.removed_lines);
    for l in &planned {
        if let (Some((old, new)), false) = (l.write(), opts.dry_run) {
            if let Err(e) = clients
                .quantities
                .set_quantity(&l.agreement_id, &l.line_id, old, new)
                .await
            {
                out.error = Some(format!(
                    "line {} of agreement {} ({} → {new}): {e}",
                    l.line_id, l.agreement_id, old
                ));
                break;
            }
        }
        out.lines.push(published_line(l));
    }
    out
}

fn published_line(l: &LineUsage) -> PublishedLine {
    let (old, new, untouched) = match &l.action {
        LineAction::Set { old, new } => (Some(*old), Some(*new), None),
        LineAction::Untouched { reason } => (None, None, Some(reason.clone())),
    };
    PublishedLine {
        agreement_id: l.agreement_id.clone(),
        line_id: l.line_id.clone(),
        product_id: l.product_id.clone(),
        item: l.item.to_string(),
        old,
        new,
        untouched,
        rule: l.rule.to_owned(),
    }
}

/// What to publish for a partner.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    pub partner: String,
    pub trigger: PublishTrigger,
    /// The period; `None`: the month to date from current usage.
    pub period: Option<PublishPeriod>,
    pub options: PublishOptions,
}

/// A manual publish ("publish now", R-USE-4): load the partner, connect, publish, keep it in
/// the history and send its event (not for a dry run). It does not touch the period ledger:
/// the period's automatic publish still runs.
pub async fn publish_now<S>(
    store: &S,
    events: &dyn Events,
    connector: &dyn Connector,
    req: &PublishRequest,
    now: DateTime<Utc>,
    run_id: &str,
) -> Result<PublishRecord, OpError>
where
    S: PartnerStore + CompanyStore + PublishLedger + Leases + ?Sized,
{
    let partner = store
        .partner(&req.partner)
        .await
        .map_err(OpError::port(&req.partner, "reading the partner"))?
        .ok_or_else(|| OpError::UnknownPartner(req.partner.clone()))?;
    let period = req
        .period
        .clone()
        .unwrap_or_else(|| PublishPeriod::month_to_date(partner_today(&partner, now)));
    let rec = match connector.connect(&partner).await {
        Ok(clients) => {
            publish_period(
                &partner,
                &clients,
                store,
                &period,
                req.trigger.clone(),
                None,
                &req.options,
                now,
                run_id,
            )
            .await?
        }
        Err(e) => failed_record(run_id, now, req.trigger.clone(), &period, None, &e),
    };
    finish(store, events, &partner.id, rec).await
}

/// How long a run's claim on a period lasts: a run that died holds the period up this long.
pub const CLAIM_SECS: u32 = 900;
/// Missed periods caught up by one invocation, oldest first; the next tick goes on.
pub const MAX_CATCH_UP: usize = 3;

/// R-USE-6, R-USE-10: the automatic publishes that are due for a partner, oldest first. Each is
/// claimed in the period ledger first (runs racing for a period: one publishes); one that
/// published — or partly, each failed company with its reason — is done for good; one that
/// failed as a whole gives its claim back, so the next tick retries. A period whose usage is
/// not ready yet stays due, without a history entry or an event (it is asked for again every
/// tick until the platform has it). Nothing is due for a partner with usage publishing off.
pub async fn publish_due<S>(
    store: &S,
    events: &dyn Events,
    connector: &dyn Connector,
    partner_id: &str,
    opts: &PublishOptions,
    now: DateTime<Utc>,
    run_id: &str,
) -> Result<Vec<PublishRecord>, OpError>
where
    S: PartnerStore + CompanyStore + PublishLedger + Leases + ?Sized,
{
    let partner = store
        .partner(partner_id)
        .await
        .map_err(OpError::port(partner_id, "reading the partner"))?
        .ok_or_else(|| OpError::UnknownPartner(partner_id.to_owned()))?;
    if !partner.enabled || !partner.switches.usage {
        return Ok(Vec::new());
    }
    let tz: chrono_tz::Tz = partner.time_zone.parse().map_err(|_| {
        OpError::invalid(
            &partner.id,
            format!("time_zone {:?} is not an IANA time zone", partner.time_zone),
        )
    })?;
    let port = |what: &'static str| OpError::port(&partner.id, what);
    let mut out = Vec::new();
    let mut clients: Option<PartnerClients> = None;
    for _ in 0..MAX_CATCH_UP {
        let last = store
            .last_publish(&partner.id)
            .await
            .map_err(port("reading the period ledger"))?;
        let Some(due) = crate::rules::schedule::due_period(&partner.usage_period, last, now, tz)
        else {
            break;
        };
        let claimed = store
            .claim_publish(&partner.id, due.slot, run_id, CLAIM_SECS)
            .await
            .map_err(port("claiming the period"))?;
        if !claimed {
            tracing::info!(partner = %partner.id, slot = %due.slot, "another run publishes this period");
            break;
        }
        let period = PublishPeriod::from(due.period);
        if clients.is_none() {
            match connector.connect(&partner).await {
                Ok(c) => clients = Some(c),
                Err(e) => {
                    let rec = failed_record(
                        run_id,
                        now,
                        PublishTrigger::Schedule,
                        &period,
                        Some(due.slot),
                        &e,
                    );
                    store
                        .finish_publish(&partner.id, due.slot, run_id, false)
                        .await
                        .map_err(port("giving the period back"))?;
                    out.push(finish(store, events, &partner.id, rec).await?);
                    break;
                }
            }
        }
        let c = clients.as_ref().expect("connected above");
        let rec = publish_period(
            &partner,
            c,
            store,
            &period,
            PublishTrigger::Schedule,
            Some(due.slot),
            opts,
            now,
            run_id,
        )
        .await;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                store
                    .finish_publish(&partner.id, due.slot, run_id, false)
                    .await
                    .map_err(port("giving the period back"))?;
                return Err(e);
            }
        };
        let published = matches!(
            rec.result,
            PublishResult::Published | PublishResult::PartlyFailed
        );
        store
            .finish_publish(&partner.id, due.slot, run_id, published)
            .await
            .map_err(port("ending the claim on the period"))?;
        tracing::info!(
            partner = %partner.id,
            slot = %due.slot,
            period = %rec.period,
            result = ?rec.result,
            companies = rec.companies.len(),
            failed = rec.failed(),
            "automatic publish"
        );
        if rec.result == PublishResult::NotReady {
            out.push(rec);
            break;
        }
        out.push(finish(store, events, &partner.id, rec).await?);
        if !published {
            break;
        }
    }
    Ok(out)
}

/// R-USE-8: a partner's last ten publish operations, newest first.
pub async fn history<S>(store: &S, partner: &str) -> Result<Vec<PublishRecord>, OpError>
where
    S: PartnerStore + PublishLedger + ?Sized,
{
    store
        .partner(partner)
        .await
        .map_err(OpError::port(partner, "reading the partner"))?
        .ok_or_else(|| OpError::UnknownPartner(partner.to_owned()))?;
    store
        .publish_history(partner)
        .await
        .map_err(OpError::port(partner, "reading the publish history"))
}

/// A publish that could not start (credentials, connection).
pub(crate) fn failed_record(
    run_id: &str,
    now: DateTime<Utc>,
    trigger: PublishTrigger,
    period: &PublishPeriod,
    slot: Option<NaiveDate>,
    e: &PortError,
) -> PublishRecord {
    PublishRecord {
        run_id: run_id.to_owned(),
        started_at: now,
        finished_at: now,
        trigger,
        period: period.label.clone(),
        slot,
        dry_run: false,
        result: PublishResult::Failed,
        error: Some(e.to_string()),
        companies: Vec::new(),
        omitted: 0,
    }
}

/// Keeps a publish in the history and sends its event (R-USE-8, R-USE-9); a dry run neither.
pub(crate) async fn finish<S>(
    store: &S,
    events: &dyn Events,
    partner: &str,
    rec: PublishRecord,
) -> Result<PublishRecord, OpError>
where
    S: PublishLedger + ?Sized,
{
    if rec.dry_run {
        return Ok(rec);
    }
    store
        .record_publish(partner, &rec)
        .await
        .map_err(OpError::port(
            partner,
            "recording the publish in its history",
        ))?;
    events
        .publish(&[publish_event(partner, &rec)])
        .await
        .map_err(OpError::port(partner, "sending the publish event"))?;
    Ok(rec)
}

/// R-USE-9: the event a publish ends with — `UsagePublished`, `UsagePublishPartlyFailed` or
/// `UsagePublishFailed` (a period not ready yet is a failure to publish it today) — with its
/// summary: who, what period, the result, and per company the values sent or the error
/// (failed companies first, at most [`EVENT_DETAIL_CAP`]; the history has them all).
pub fn publish_event(partner: &str, rec: &PublishRecord) -> BusEvent {
    let detail_type = match rec.result {
        PublishResult::Published => DETAIL_PUBLISHED,
        PublishResult::PartlyFailed => DETAIL_PARTLY_FAILED,
        PublishResult::Failed | PublishResult::NotReady => DETAIL_FAILED,
    };
    let mut companies: Vec<&CompanyPublish> = rec.companies.iter().collect();
    companies.sort_by_key(|c| c.error.is_none());
    let named: Vec<_> = companies
        .iter()
        .take(EVENT_DETAIL_CAP)
        .map(|c| {
            let sent: Vec<_> = c
                .lines
                .iter()
                .filter(|l| l.new.is_some())
                .map(|l| json!({"line": l.line_id, "item": l.item, "old": l.old, "new": l.new}))
                .collect();
            json!({"company_id": c.company_id, "name": c.name, "error": c.error, "lines": sent})
        })
        .collect();
    BusEvent {
        detail_type: detail_type.into(),
        detail: json!({
            "partner": partner,
            "run_id": rec.run_id,
            "period": rec.period,
            "slot": rec.slot,
            "mode": match rec.trigger { PublishTrigger::Schedule => "automatic", PublishTrigger::Manual { .. } => "manual" },
            "initiator": rec.trigger.initiator(),
            "result": rec.result,
            "error": rec.error,
            "companies": rec.companies.len(),
            "failed": rec.failed(),
            "changed_lines": rec.changed_lines(),
            "details": named,
            "details_cut": rec.companies.len().saturating_sub(EVENT_DETAIL_CAP),
        }),
    }
}
