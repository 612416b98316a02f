//! [`MemoryStore`]: the store ports in memory, with the DynamoDB adapter's semantics —
//! versioned conditional writes (a stale `version` is a `Conflict`), a tenant held by one
//! company at most (R-CO-5), `put_company_replacing` refusing a `previous` that is no longer
//! stored, the sparse "due" index, and leases that expire on the injected clock.

use super::fake::Fake;
use super::faults::conflict;
use crate::error::{PortResult, System};
use crate::model::{CompanyRecord, Mapping, Partner};
use crate::ports::{
    Clock, CompanyStore, Leases, PartnerStatus, PartnerStore, PublishLedger, PublishRecord,
    SyncCursor, SyncState, HISTORY_LEN,
};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Everything the store holds; compare two of them to prove that nothing was written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreState {
    pub partners: BTreeMap<String, Partner>,
    /// Company records by partner, then company id.
    pub companies: BTreeMap<String, BTreeMap<String, CompanyRecord>>,
    pub cursors: BTreeMap<String, SyncCursor>,
    pub statuses: BTreeMap<String, PartnerStatus>,
    /// Leases by (partner, key): owner, expiry and fencing token (kept after a release, so
    /// that tokens only grow).
    pub leases: BTreeMap<(String, String), (String, DateTime<Utc>, u64)>,
    /// Companies waiting for a partner's run (R-REL-4), by partner: company → note identity.
    pub waiting: BTreeMap<String, BTreeMap<String, String>>,
    /// Notes written so far (their identities).
    pub notes: u64,
    /// Automatic publishes by (partner, slot): the claim's owner and expiry, or `None` once
    /// published (R-USE-6).
    pub publishes: BTreeMap<(String, NaiveDate), PublishClaim>,
    /// Publish history by partner, newest first (R-USE-8).
    pub history: BTreeMap<String, Vec<PublishRecord>>,
}

/// An automatic publish's claim: its owner and expiry; `None` once published.
pub type PublishClaim = Option<(String, DateTime<Utc>)>;

/// The store in memory.
pub type MemoryStore = Fake<StoreState>;

/// An item written with optimistic concurrency.
trait Versioned: Clone {
    fn version(&self) -> u64;
    fn set_version(&mut self, v: u64);
}

impl Versioned for Partner {
    fn version(&self) -> u64 {
        self.version
    }
    fn set_version(&mut self, v: u64) {
        self.version = v;
    }
}

impl Versioned for CompanyRecord {
    fn version(&self) -> u64 {
        self.version
    }
    fn set_version(&mut self, v: u64) {
        self.version = v;
    }
}

/// Writes `item` under `key` if its version is the stored one (0: absent); returns it with the
/// new version. The one conditional write of the store.
fn put_versioned<T: Versioned>(
    table: &mut BTreeMap<String, T>,
    key: &str,
    item: &T,
    what: &str,
) -> PortResult<T> {
    let stored = table.get(key).map_or(0, T::version);
    if stored != item.version() {
        return Err(conflict(
            System::Store,
            format!(
                "{what} was changed by someone else (expected version {}, stored {stored}); \
                 read it again",
                item.version()
            ),
        ));
    }
    let mut next = item.clone();
    next.set_version(stored + 1);
    table.insert(key.to_owned(), next.clone());
    Ok(next)
}

/// Whether a record is in the sparse "due" index on `today`: a last error, a tenant to create,
/// or a review date on or before today.
fn is_due(r: &CompanyRecord, today: NaiveDate) -> bool {
    r.last_error.is_some()
        || r.mapping == Mapping::NewTenant
        || r.next_review.is_some_and(|d| d <= today)
}

impl MemoryStore {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Fake::from_state(clock, StoreState::default())
    }

    /// The stored record of a company (for assertions; not counted as a call).
    pub fn record(&self, partner: &str, company_id: &str) -> Option<CompanyRecord> {
        self.with(|st, _| {
            st.companies
                .get(partner)
                .and_then(|m| m.get(company_id))
                .cloned()
        })
    }

    /// The stored status of a partner (for assertions; not counted as a call).
    pub fn partner_status(&self, partner: &str) -> PartnerStatus {
        self.with(|st, _| st.statuses.get(partner).cloned().unwrap_or_default())
    }

    fn records(
        &self,
        method: &str,
        partner: &str,
        keep: impl Fn(&CompanyRecord) -> bool,
    ) -> PortResult<Vec<CompanyRecord>> {
        self.call(method, partner, |st, _| {
            Ok(st
                .companies
                .get(partner)
                .map(|m| m.values().filter(|r| keep(r)).cloned().collect())
                .unwrap_or_default())
        })
    }

    /// Writes a partner's cursor or status: last writer wins, like the adapter.
    fn put_plain<T: Clone>(
        &self,
        method: &str,
        partner: &str,
        value: &T,
        table: impl FnOnce(&mut StoreState) -> &mut BTreeMap<String, T>,
    ) -> PortResult<()> {
        self.call(method, partner, |st, _| {
            table(st).insert(partner.to_owned(), value.clone());
            Ok(())
        })
    }

    /// R-CO-5 and the version check, under one lock: the write of a company record.
    /// `previous`: the record the caller says it replaces (`put_company_replacing`).
    fn write_company(
        &self,
        method: &str,
        partner: &str,
        rec: &CompanyRecord,
        previous: Option<Option<&CompanyRecord>>,
    ) -> PortResult<CompanyRecord> {
        self.call(method, &rec.company_id, |st, _| {
            let table = st.companies.entry(partner.to_owned()).or_default();
            let cid = &rec.company_id;
            // A `previous` at another version than `rec`'s is not proved by the version check:
            // the adapter reads the stored record instead, which the version check covers.
            if let Some(previous) = previous.filter(|p| p.map_or(0, |p| p.version) == rec.version) {
                if table.get(cid) != previous {
                    return Err(conflict(
                        System::Store,
                        format!(
                            "company {cid}: the record this write replaces is no longer the \
                             stored one; nothing was written"
                        ),
                    ));
                }
            }
            if let Some(t) = rec.tenant_id() {
                if let Some(other) = table
                    .values()
                    .find(|r| r.company_id != *cid && r.tenant_id() == Some(t))
                {
                    return Err(conflict(
                        System::Store,
                        format!(
                            "company {cid}: tenant {t} is already mapped to company {} \
                             (R-CO-5); nothing was written",
                            other.company_id
                        ),
                    ));
                }
            }
            put_versioned(table, cid, rec, &format!("company {cid}"))
        })
    }
}

#[async_trait]
impl PartnerStore for MemoryStore {
    async fn partner(&self, id: &str) -> PortResult<Option<Partner>> {
        self.call("partner", id, |st, _| Ok(st.partners.get(id).cloned()))
    }

    async fn partners(&self) -> PortResult<Vec<Partner>> {
        self.call("partners", "", |st, _| {
            Ok(st.partners.values().cloned().collect())
        })
    }

    async fn put_partner(&self, p: &Partner) -> PortResult<Partner> {
        self.call("put_partner", &p.id, |st, _| {
            put_versioned(&mut st.partners, &p.id, p, &format!("partner {}", p.id))
        })
    }
}

#[async_trait]
impl CompanyStore for MemoryStore {
    async fn companies(&self, partner: &str) -> PortResult<Vec<CompanyRecord>> {
        self.records("companies", partner, |_| true)
    }

    async fn companies_due(
        &self,
        partner: &str,
        today: NaiveDate,
    ) -> PortResult<Vec<CompanyRecord>> {
        self.records("companies_due", partner, |r| is_due(r, today))
    }

    async fn companies_by_id(
        &self,
        partner: &str,
        ids: &[String],
    ) -> PortResult<Vec<CompanyRecord>> {
        self.records("companies_by_id", partner, |r| ids.contains(&r.company_id))
    }

    async fn companies_by_tenant(
        &self,
        partner: &str,
        tenants: &[String],
    ) -> PortResult<Vec<CompanyRecord>> {
        self.records("companies_by_tenant", partner, |r| {
            r.tenant_id()
                .is_some_and(|t| tenants.iter().any(|x| x == t))
        })
    }

    async fn company(&self, partner: &str, company_id: &str) -> PortResult<Option<CompanyRecord>> {
        self.call("company", company_id, |st, _| {
            Ok(st
                .companies
                .get(partner)
                .and_then(|m| m.get(company_id))
                .cloned())
        })
    }

    async fn put_company(&self, partner: &str, rec: &CompanyRecord) -> PortResult<CompanyRecord> {
        self.write_company("put_company", partner, rec, None)
    }

    async fn put_company_replacing(
        &self,
        partner: &str,
        rec: &CompanyRecord,
        previous: Option<&CompanyRecord>,
    ) -> PortResult<CompanyRecord> {
        self.write_company("put_company_replacing", partner, rec, Some(previous))
    }

    async fn tenant_holder(&self, partner: &str, tenant_id: &str) -> PortResult<Option<String>> {
        self.call("tenant_holder", tenant_id, |st, _| {
            Ok(st.companies.get(partner).and_then(|m| {
                m.values()
                    .find(|r| r.tenant_id() == Some(tenant_id))
                    .map(|r| r.company_id.clone())
            }))
        })
    }
}

#[async_trait]
impl SyncState for MemoryStore {
    async fn cursor(&self, partner: &str) -> PortResult<SyncCursor> {
        self.call("cursor", partner, |st, _| {
            Ok(st.cursors.get(partner).cloned().unwrap_or_default())
        })
    }

    async fn put_cursor(&self, partner: &str, c: &SyncCursor) -> PortResult<()> {
        self.call("put_cursor", partner, |st, _| {
            let stored = st.cursors.get(partner).map_or(0, |s| s.fence);
            if stored > c.fence {
                return Err(conflict(
                    System::Store,
                    format!(
                        "the cursor was written by a later run (fence {stored} > {}); not moved",
                        c.fence
                    ),
                ));
            }
            st.cursors.insert(partner.to_owned(), c.clone());
            Ok(())
        })
    }

    async fn status(&self, partner: &str) -> PortResult<PartnerStatus> {
        self.call("status", partner, |st, _| {
            Ok(st.statuses.get(partner).cloned().unwrap_or_default())
        })
    }

    async fn put_status(&self, partner: &str, s: &PartnerStatus) -> PortResult<()> {
        self.put_plain("put_status", partner, s, |st| &mut st.statuses)
    }
}

#[async_trait]
impl Leases for MemoryStore {
    async fn lease(
        &self,
        partner: &str,
        key: &str,
        owner: &str,
        secs: u32,
    ) -> PortResult<Option<u64>> {
        self.call("lease", key, |st, now| {
            let k = (partner.to_owned(), key.to_owned());
            let (free, last) = st
                .leases
                .get(&k)
                .map_or((true, 0), |(o, until, t)| (*until < now || o == owner, *t));
            if !free {
                return Ok(None);
            }
            let until = now + chrono::Duration::seconds(i64::from(secs));
            st.leases.insert(k, (owner.to_owned(), until, last + 1));
            Ok(Some(last + 1))
        })
    }

    async fn renew(
        &self,
        partner: &str,
        key: &str,
        owner: &str,
        token: u64,
        secs: u32,
    ) -> PortResult<bool> {
        self.call("renew", key, |st, now| {
            let k = (partner.to_owned(), key.to_owned());
            match st.leases.get_mut(&k) {
                Some((o, until, t)) if o == owner && *t == token => {
                    *until = now + chrono::Duration::seconds(i64::from(secs));
                    Ok(true)
                }
                _ => Ok(false),
            }
        })
    }

    async fn release(&self, partner: &str, key: &str, owner: &str) -> PortResult<()> {
        self.call("release", key, |st, _| {
            let k = (partner.to_owned(), key.to_owned());
            if let Some((o, until, _)) = st.leases.get_mut(&k) {
                if o == owner {
                    *until = DateTime::UNIX_EPOCH;
                    o.clear();
                }
            }
            Ok(())
        })
    }

    async fn wait_for_run(&self, partner: &str, company_id: &str) -> PortResult<()> {
        self.call("wait_for_run", company_id, |st, _| {
            st.notes += 1;
            let note = st.notes.to_string();
            st.waiting
                .entry(partner.to_owned())
                .or_default()
                .insert(company_id.to_owned(), note);
            Ok(())
        })
    }

    async fn waiting(&self, partner: &str) -> PortResult<Vec<(String, String)>> {
        self.call("waiting", partner, |st, _| {
            Ok(st
                .waiting
                .get(partner)
                .map(|w| w.iter().map(|(c, n)| (c.clone(), n.clone())).collect())
                .unwrap_or_default())
        })
    }

    async fn done_waiting(&self, partner: &str, notes: &[(String, String)]) -> PortResult<()> {
        self.call("done_waiting", partner, |st, _| {
            if let Some(w) = st.waiting.get_mut(partner) {
                for (c, n) in notes {
                    if w.get(c) == Some(n) {
                        w.remove(c);
                    }
                }
            }
            Ok(())
        })
    }
}

#[async_trait]
impl PublishLedger for MemoryStore {
    async fn last_publish(&self, partner: &str) -> PortResult<Option<NaiveDate>> {
        self.call("last_publish", partner, |st, _| {
            Ok(st
                .publishes
                .iter()
                .filter(|((p, _), claim)| p == partner && claim.is_none())
                .map(|((_, slot), _)| *slot)
                .max())
        })
    }

    async fn claim_publish(
        &self,
        partner: &str,
        slot: NaiveDate,
        owner: &str,
        secs: u32,
    ) -> PortResult<bool> {
        self.call("claim_publish", partner, |st, now| {
            let k = (partner.to_owned(), slot);
            let free = match st.publishes.get(&k) {
                None => true,
                Some(None) => false,
                Some(Some((o, until))) => *until < now || o == owner,
            };
            if free {
                let until = now + chrono::Duration::seconds(i64::from(secs));
                st.publishes.insert(k, Some((owner.to_owned(), until)));
            }
            Ok(free)
        })
    }

    async fn finish_publish(
        &self,
        partner: &str,
        slot: NaiveDate,
        owner: &str,
        published: bool,
    ) -> PortResult<()> {
        self.call("finish_publish", partner, |st, _| {
            let k = (partner.to_owned(), slot);
            let mine = matches!(st.publishes.get(&k), Some(Some((o, _))) if o == owner);
            if !mine {
                return Err(conflict(
                    System::Store,
                    format!("publish {slot} of partner {partner} is not claimed by {owner}"),
                ));
            }
            if published {
                st.publishes.insert(k, None);
            } else {
                st.publishes.remove(&k);
            }
            Ok(())
        })
    }

    async fn publish_history(&self, partner: &str) -> PortResult<Vec<PublishRecord>> {
        self.call("publish_history", partner, |st, _| {
            Ok(st.history.get(partner).cloned().unwrap_or_default())
        })
    }

    async fn record_publish(&self, partner: &str, rec: &PublishRecord) -> PortResult<()> {
        self.call("record_publish", partner, |st, _| {
            let h = st.history.entry(partner.to_owned()).or_default();
            h.insert(0, rec.clone());
            h.truncate(HISTORY_LEN);
            Ok(())
        })
    }
}
