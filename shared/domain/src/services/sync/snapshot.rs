//! What a run reads before it plans: the PSA's companies and agreements with their lines, the
//! platform's tenants, and the stored records, for the run's scope.

use super::Scope;
use super::SyncOptions;
use crate::error::PortError;
use crate::model::{
    AgreementWithLines, CloudVendor, CompanyRecord, ItemKey, Mapping, Partner, PsaCompany,
};
use crate::ports::SyncCursor;
use crate::ports::{AgreementQuery, CompanyQuery, CompanyStore, PartnerClients, TenantWithItems};
use crate::rules::cursor::EntityCursor;
use crate::rules::lines::{self, LineSlice};
use crate::rules::twoway;
use chrono::{DateTime, NaiveDate, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Everything read for a run, before planning.
pub(super) struct Snapshot {
    pub(super) companies: HashMap<String, PsaCompany>,
    /// Agreements with lines, by company.
    pub(super) agreements: HashMap<String, Vec<AgreementWithLines>>,
    pub(super) tenants: HashMap<String, TenantWithItems>,
    /// Tenants by the PSA company id they carry.
    pub(super) by_customer_id: HashMap<String, String>,
    /// The company each tenant of a read record is mapped to (R-CO-5).
    pub(super) holders: HashMap<String, String>,
    /// Companies to plan.
    pub(super) considered: BTreeSet<String>,
    /// The stored records of the considered companies (every record in a full pass).
    pub(super) records: HashMap<String, CompanyRecord>,
    pub(super) psa_since: Option<DateTime<Utc>>,
    /// The companies and agreements this pass read for its cursors (id, timestamp).
    pub(super) seen_companies: Vec<(String, Option<DateTime<Utc>>)>,
    pub(super) seen_agreements: Vec<(String, Option<DateTime<Utc>>)>,
    pub(super) platform_cursor: Option<String>,
    /// Public cloud storages by infra id (R-TWO-2; read only when two-way sync needs them).
    pub(super) infra_vendors: BTreeMap<String, CloudVendor>,
    /// R-PROV-8: the mapped companies an incremental pass re-reads for line edits no change
    /// time shows (of how many mapped), and where the next pass continues.
    pub(super) line_refresh: Vec<String>,
    pub(super) mapped_companies: usize,
    pub(super) lines_next: Option<LineSlice>,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn read_snapshot(
    partner: &Partner,
    clients: &PartnerClients,
    store: &(impl CompanyStore + ?Sized),
    scope: &Scope,
    extra: &[String],
    cursor: &crate::ports::SyncCursor,
    today: NaiveDate,
    opts: SyncOptions,
) -> Result<Snapshot, PortError> {
    let psa = clients.psa.as_ref();
    let platform = clients.platform.as_ref();
    // Only the offering items the mapping manages are kept (the others are never touched),
    // and, for two-way sync of public cloud storages (R-TWO-2), the other storages.
    let clouds = uses_clouds(partner);
    let managed = |k: &ItemKey| managed(partner, k);
    let mut snap = Snapshot {
        companies: HashMap::new(),
        agreements: HashMap::new(),
        tenants: HashMap::new(),
        by_customer_id: HashMap::new(),
        holders: HashMap::new(),
        considered: BTreeSet::new(),
        records: HashMap::new(),
        psa_since: None,
        seen_companies: Vec::new(),
        seen_agreements: Vec::new(),
        platform_cursor: None,
        infra_vendors: BTreeMap::new(),
        line_refresh: Vec::new(),
        mapped_companies: 0,
        lines_next: None,
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
            snap.seen_companies = companies
                .iter()
                .map(|c| (c.id.clone(), c.updated_at))
                .collect();
            snap.seen_agreements = agreements
                .iter()
                .map(|a| (a.id.clone(), a.updated_at))
                .collect();
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
        Scope::Incremental | Scope::Company(_) | Scope::Waiting(_) => {
            // Companies whose events waited for this run (R-REL-4) are read like one company.
            let mut wanted: BTreeSet<String> = extra.iter().cloned().collect();
            if let Scope::Company(c) = scope {
                wanted.insert(c.clone());
            } else if let Scope::Waiting(cs) = scope {
                wanted.extend(cs.iter().cloned());
            } else {
                // R-PROV-8: each entity from its own cursor, the overlap read again and what an
                // earlier pass saw dropped.
                let (companies_cursor, agreements_cursor) = entity_cursors(cursor);
                let mut changed = psa
                    .companies(&CompanyQuery {
                        changed_since: companies_cursor.query_from(),
                        ids: vec![],
                    })
                    .await?;
                let mut changed_agreements = psa
                    .agreements(&AgreementQuery {
                        changed_since: agreements_cursor.query_from(),
                        company_ids: vec![],
                    })
                    .await?;
                changed.retain(|c| companies_cursor.is_new(&c.id, c.updated_at));
                changed_agreements.retain(|a| agreements_cursor.is_new(&a.id, a.updated_at));
                snap.seen_companies = changed
                    .iter()
                    .map(|c| (c.id.clone(), c.updated_at))
                    .collect();
                snap.seen_agreements = changed_agreements
                    .iter()
                    .map(|a| (a.id.clone(), a.updated_at))
                    .collect();
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
                line_slice(partner, store, cursor, &mut snap, &mut wanted).await?;
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
        .collect();
    let lines = agreements_with_lines(partner, psa, valid, today, opts.concurrency);
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
    snap.holders = snap
        .records
        .values()
        .filter_map(|r| Some((r.tenant_id()?.to_owned(), r.company_id.clone())))
        .collect();
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

/// The agreements that count today (R-PROV-2 / R-PROV-3) with their lines — one read per
/// agreement, `concurrency` at a time — grouped by company. Sync and publish read them alike.
pub(crate) async fn agreements_with_lines(
    partner: &Partner,
    psa: &dyn crate::ports::PsaDirectory,
    agreements: Vec<crate::model::Agreement>,
    today: NaiveDate,
    concurrency: usize,
) -> Result<HashMap<String, Vec<AgreementWithLines>>, PortError> {
    let valid: Vec<_> = agreements
        .into_iter()
        .filter(|a| partner.psa.rules().agreement_counts(a, today).is_ok())
        .collect();
    stream::iter(valid)
        .map(|a| async move {
            let lines = psa.lines(&a.id).await?;
            Ok::<_, PortError>(AgreementWithLines {
                agreement: a,
                lines,
            })
        })
        .buffer_unordered(concurrency.max(1))
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
        )
        .await
}

/// R-PROV-8: line edits that no change time shows (a ConnectWise addition edit that leaves its
/// agreement alone, an Autotask unit adjustment) — the next slice of the mapped companies
/// ([`lines::next_slice`]) is re-read like a company whose agreement changed; a company whose
/// lines did not change plans nothing.
async fn line_slice(
    partner: &Partner,
    store: &(impl CompanyStore + ?Sized),
    cursor: &SyncCursor,
    snap: &mut Snapshot,
    wanted: &mut BTreeSet<String>,
) -> Result<(), PortError> {
    let mut mapped: Vec<CompanyRecord> = store
        .companies(&partner.id)
        .await?
        .into_iter()
        .filter(|r| r.tenant_id().is_some())
        .collect();
    mapped.sort_by(|a, b| a.company_id.cmp(&b.company_id));
    mapped.dedup_by(|a, b| a.company_id == b.company_id);
    let ids: Vec<String> = mapped.iter().map(|r| r.company_id.clone()).collect();
    let size = lines::slice_size(
        ids.len(),
        partner.line_refresh_hours,
        lines::PASS_INTERVAL_MINUTES,
    );
    let (slice, next) = lines::next_slice(&ids, &cursor.lines, size);
    let slice: BTreeSet<&str> = slice.into_iter().collect();
    snap.mapped_companies = ids.len();
    snap.line_refresh = slice.iter().map(|c| (*c).to_owned()).collect();
    snap.lines_next = Some(next);
    for r in mapped {
        if slice.contains(r.company_id.as_str()) {
            wanted.insert(r.company_id.clone());
            snap.records.entry(r.company_id.clone()).or_insert(r);
        }
    }
    Ok(())
}

/// Two-way sync of public cloud storages (R-TWO-2) needs every storage of a tenant.
fn uses_clouds(partner: &Partner) -> bool {
    twoway::enabled(partner) && !partner.mapping.public_cloud.is_empty()
}

/// The offering items a run reads: the mapped ones (the others are never touched), and the
/// storages when public cloud storages are synced two ways.
fn managed(partner: &Partner, k: &ItemKey) -> bool {
    partner.mapping.items.iter().any(|m| m.item == *k) || (uses_clouds(partner) && k.is_storage())
}

/// R-PROV-11: looks up a tenant stamped with each of `companies`' ids (one request each) and
/// adds what it finds to the snapshot, with the company that holds it, if any (R-CO-5).
pub(super) async fn find_stamped(
    partner: &Partner,
    clients: &PartnerClients,
    store: &(impl CompanyStore + ?Sized),
    snap: &mut Snapshot,
    companies: &[String],
) -> Result<(), PortError> {
    for cid in companies {
        let Some(mut t) = clients.platform.find_customer(cid).await? else {
            continue;
        };
        t.items.retain(|i| managed(partner, &i.key));
        let tid = t.tenant.id.clone();
        if let Some(h) = store.tenant_holder(&partner.id, &tid).await? {
            snap.holders.insert(tid.clone(), h);
        }
        snap.by_customer_id.insert(cid.clone(), tid.clone());
        snap.tenants.insert(tid, t);
    }
    Ok(())
}

/// The per-entity cursors; a cursor stored before them starts from its `psa_since`.
pub(super) fn entity_cursors(c: &SyncCursor) -> (EntityCursor, EntityCursor) {
    let start = |e: &EntityCursor| {
        let mut e = e.clone();
        if e.since.is_none() {
            e.since = c.psa_since;
        }
        e
    };
    (start(&c.companies), start(&c.agreements))
}
