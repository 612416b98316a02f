//! Reads: queries page by page into the wire shapes of [`super::wire`], the lines of contracts
//! with their current units, primary contacts, and the [`PsaDirectory`] port.

use super::wire::{
    agreement_from, raw_company, HasId, WireCompany, WireContact, WireContract,
    WireContractService, WireNamed, WirePage, WireServiceUnits,
};
use super::zone::follow_next_page;
use super::{
    at_date, at_format, rejected, Autotask, IDS_PER_QUERY, LOG_SYSTEM, MAX_PAGES, PAGE_SIZE,
    RECURRING_SERVICE, VENDOR,
};
use crate::http::Pages;
use async_trait::async_trait;
use chrono::NaiveDate;
use domain::model::{Agreement, Contact, Line, ProductRef, PsaCompany};
use domain::ports::{AgreementQuery, CompanyQuery, PsaDirectory};
use domain::rules::psa::PsaRules;
use domain::{PortError, PortResult, System};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use url::Url;

impl Autotask {
    /// Every record matching `filters` (ANDed), page by page; each page is mapped at once.
    pub(super) async fn query<W: DeserializeOwned + HasId, T>(
        &self,
        entity: &str,
        filters: &[Value],
        map: impl Fn(W) -> Option<T>,
    ) -> PortResult<Vec<T>> {
        let api = self.api().await?;
        let query_url = api.ep.url(&format!("{entity}/query"))?;
        let base_filters: Vec<Value> = if filters.is_empty() {
            vec![json!({"op": "gte", "field": "id", "value": 0})]
        } else {
            filters.to_vec()
        };
        let mut out = Vec::new();
        let mut next: Option<Url> = None;
        let mut after: Option<i64> = None;
        let mut max_seen: Option<i64> = None;
        let mut pages = Pages::with_cap(System::Psa, format!("{VENDOR} {entity}/query"), MAX_PAGES);
        for _ in 0..MAX_PAGES {
            let page: WirePage<W> = match next.take() {
                Some(u) => self.call(Method::GET, u, None).await?,
                None => {
                    let mut f = base_filters.clone();
                    if let Some(a) = after {
                        f.push(json!({"op": "gt", "field": "id", "value": a}));
                    }
                    let body = json!({"maxRecords": PAGE_SIZE, "filter": f});
                    self.call(Method::POST, query_url.clone(), Some(&body))
                        .await?
                }
            };
            let Some(items) = page.items else {
                return Err(rejected(format!(
                    "{VENDOR} {entity}/query: the answer has no items"
                )));
            };
            if items.is_empty() {
                return Ok(out);
            }
            max_seen = items.iter().filter_map(HasId::id).chain(max_seen).max();
            out.extend(items.into_iter().filter_map(&map));
            let Some(next_url) = page
                .page_details
                .and_then(|d| d.next_page_url)
                .filter(|u| !u.trim().is_empty())
            else {
                return Ok(out);
            };
            pages.next(next_url.trim())?;
            match follow_next_page(api.ep.origin(), next_url.trim()) {
                Some(u) => next = Some(u),
                None => {
                    // Never send credentials elsewhere: continue by id (results are ordered
                    // by id; UNCONFIRMED for the real API, see PSA-API-NOTES §2.2).
                    tracing::warn!(
                        entity,
                        "Autotask nextPageUrl is not on the API origin; paging by id instead"
                    );
                    match max_seen {
                        Some(m) if after.is_none_or(|a| m > a) => after = Some(m),
                        _ => {
                            return Err(rejected(format!(
                                "{VENDOR} {entity}/query: cannot page further (no id progress)"
                            )))
                        }
                    }
                }
            }
        }
        Err(rejected(format!(
            "{VENDOR} {entity}/query: more than {MAX_PAGES} pages"
        )))
    }

    /// `field in (ids)` in batches of 500, each with `extra` filters.
    pub(super) async fn query_in<W: DeserializeOwned + HasId, T>(
        &self,
        entity: &str,
        field: &str,
        ids: &[String],
        extra: &[Value],
        map: impl Fn(W) -> Option<T>,
    ) -> PortResult<Vec<T>> {
        let numeric: Vec<i64> = ids
            .iter()
            .filter_map(|s| s.trim().parse::<i64>().ok())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut out = Vec::new();
        for chunk in numeric.chunks(IDS_PER_QUERY) {
            let mut f = extra.to_vec();
            f.push(if chunk.len() == 1 {
                json!({"op": "eq", "field": field, "value": chunk[0]})
            } else {
                json!({"op": "in", "field": field, "value": chunk})
            });
            out.extend(self.query(entity, &f, &map).await?);
        }
        Ok(out)
    }

    /// [`Self::query_in`], or every record matching `extra` when `ids` is empty.
    pub(super) async fn query_for<W: DeserializeOwned + HasId, T>(
        &self,
        entity: &str,
        field: &str,
        ids: &[String],
        extra: &[Value],
        map: impl Fn(W) -> Option<T>,
    ) -> PortResult<Vec<T>> {
        if ids.is_empty() {
            self.query(entity, extra, map).await
        } else {
            self.query_in(entity, field, ids, extra, map).await
        }
    }

    /// The active records of `entity` by id and name (Services, BillingCodes).
    pub(super) async fn active_names(&self, entity: &str) -> PortResult<Vec<ProductRef>> {
        self.query(
            entity,
            &[json!({"op": "eq", "field": "isActive", "value": true})],
            |r: WireNamed| {
                Some(ProductRef {
                    id: r.id?,
                    identifier: r.name.unwrap_or_default(),
                })
            },
        )
        .await
    }

    /// The lines of these contracts: their ContractServices with the units of the period
    /// containing today (ContractServiceUnits), both read in batches.
    pub(super) async fn lines_of(
        &self,
        contract_ids: &[String],
    ) -> PortResult<HashMap<String, Vec<Line>>> {
        let services = self
            .query_in(
                "ContractServices",
                "contractID",
                contract_ids,
                &[],
                |c: WireContractService| Some((c.id?, c.contract_id?, c.service_id?)),
            )
            .await?;
        let mut out: HashMap<String, Vec<Line>> = contract_ids
            .iter()
            .map(|id| (id.trim().to_owned(), Vec::new()))
            .collect();
        if services.is_empty() {
            return Ok(out);
        }
        let today = at_date((self.cfg.today)());
        let current = [
            json!({"op": "lte", "field": "startDate", "value": today}),
            json!({"op": "gte", "field": "endDate", "value": today}),
        ];
        let cs_ids: Vec<String> = services.iter().map(|(id, _, _)| id.clone()).collect();
        let units = self
            .query_in(
                "ContractServiceUnits",
                "contractServiceID",
                &cs_ids,
                &current,
                |u: WireServiceUnits| {
                    let start = u.start();
                    Some((u.contract_service_id?, u.units.unwrap_or(0.0), start))
                },
            )
            .await?;
        // One unit record per period; should two cover today, the later start wins.
        let mut by_service: HashMap<String, (f64, Option<NaiveDate>)> = HashMap::new();
        for (cs, n, start) in units {
            match by_service.get(&cs) {
                Some((_, s0)) if *s0 >= start => {}
                _ => {
                    by_service.insert(cs, (n, start));
                }
            }
        }
        for (id, contract, service) in services {
            let (quantity, effective_date) = by_service.get(&id).cloned().unwrap_or((0.0, None));
            out.entry(contract.clone()).or_default().push(Line {
                id,
                agreement_id: contract,
                product_id: service,
                quantity,
                less_included: 0.0,
                effective_date,
                cancelled_date: None,
            });
        }
        Ok(out)
    }

    pub(super) async fn contact_of(
        &self,
        company_ids: &[String],
    ) -> PortResult<HashMap<String, Contact>> {
        let contacts = self
            .query_in(
                "Contacts",
                "companyID",
                company_ids,
                &[json!({"op": "eq", "field": "primaryContact", "value": true})],
                |c: WireContact| {
                    let active = c.is_active.unwrap_or(false);
                    Some((c.company_id.clone()?, active, c.contact()))
                },
            )
            .await?;
        let mut out: HashMap<String, (bool, Contact)> = HashMap::new();
        for (company, active, contact) in contacts {
            // An active primary contact wins over an inactive one.
            if out.get(&company).is_none_or(|(a, _)| !a && active) {
                out.insert(company, (active, contact));
            }
        }
        Ok(out.into_iter().map(|(k, (_, c))| (k, c)).collect())
    }
}

#[async_trait]
impl PsaDirectory for Autotask {
    /// R-SET-3/R-SET-4: zone discovery, then an authenticated call (`ThresholdInformation`,
    /// which Autotask does not count against the threshold).
    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM)
    )]
    async fn check_login(&self) -> PortResult<()> {
        self.api().await?;
        self.threshold().await.map(|_| ())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            partner = %self.partner,
            system = LOG_SYSTEM,
            ids = q.ids.len(),
            since = ?q.changed_since,
        )
    )]
    async fn companies(&self, q: &CompanyQuery) -> PortResult<Vec<PsaCompany>> {
        let mut filters = Vec::new();
        if let Some(t) = q.changed_since {
            filters.push(json!({
                "op": "gt", "field": "lastTrackedModifiedDateTime", "value": at_format(t)
            }));
        }
        let raw = self
            .query_for("Companies", "id", &q.ids, &filters, |c: WireCompany| {
                raw_company(c)
            })
            .await?;
        if raw.is_empty() {
            return Ok(Vec::new());
        }
        let types: BTreeSet<String> = raw.iter().filter_map(|c| c.company_type.clone()).collect();
        let labels = self.labels("Companies", "companyType", &types).await?;
        let ids: Vec<String> = raw.iter().map(|c| c.id.clone()).collect();
        let mut contacts = self.contact_of(&ids).await?;
        Ok(raw
            .into_iter()
            .map(|c| PsaCompany {
                identifier: c.number.unwrap_or_else(|| c.id.clone()),
                name: c.name,
                types: c
                    .company_type
                    .map(|t| labels.get(&t).cloned().unwrap_or(t))
                    .into_iter()
                    .collect(),
                status: Some(if c.active { "Active" } else { "Inactive" }.to_owned()),
                active: c.active,
                primary_contact: contacts.remove(&c.id),
                updated_at: c.updated_at,
                id: c.id,
            })
            .collect())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(
            partner = %self.partner,
            system = LOG_SYSTEM,
            companies = q.company_ids.len(),
            since = ?q.changed_since,
        )
    )]
    async fn agreements(&self, q: &AgreementQuery) -> PortResult<Vec<Agreement>> {
        let recurring = self
            .picklist_value("Contracts", "contractType", RECURRING_SERVICE)
            .await?;
        let ctx = self.contract_ctx().await?;
        let recurring = recurring
            .parse::<i64>()
            .map_or_else(|_| Value::from(recurring.clone()), Value::from);
        let mut filters = vec![json!({"op": "eq", "field": "contractType", "value": recurring})];
        if let Some(t) = q.changed_since {
            filters.push(json!({
                "op": "gt", "field": "lastModifiedDateTime", "value": at_format(t)
            }));
        }
        let map = |c: WireContract| agreement_from(c, &ctx);
        let out = self
            .query_for("Contracts", "companyID", &q.company_ids, &filters, map)
            .await?;
        if self.cfg.limits.prefetch_lines && q.changed_since.is_none() {
            // The contracts whose lines the sync reads: those that count today (R-PROV-3).
            let today = (self.cfg.today)();
            let active: Vec<String> = out
                .iter()
                .filter(|a| PsaRules::Autotask.agreement_counts(a, today).is_ok())
                .map(|a| a.id.clone())
                .collect();
            let lines = if active.is_empty() {
                HashMap::new()
            } else {
                self.lines_of(&active).await?
            };
            *self.st.prefetched.lock().unwrap_or_else(|e| e.into_inner()) = lines;
        }
        Ok(out)
    }

    /// The contract's services with their current units. Lines read in advance by
    /// `agreements` are handed out once; a second call reads them again.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, agreement = %agreement_id)
    )]
    async fn lines(&self, agreement_id: &str) -> PortResult<Vec<Line>> {
        let id = agreement_id.trim();
        if let Some(lines) = self
            .st
            .prefetched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
        {
            return Ok(lines);
        }
        if id.parse::<i64>().is_err() {
            return Err(PortError::NotFound {
                system: System::Psa,
                message: format!("{VENDOR} contract {id:?} is not a contract id"),
            });
        }
        Ok(self
            .lines_of(&[id.to_owned()])
            .await?
            .remove(id)
            .unwrap_or_default())
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM)
    )]
    async fn products(&self) -> PortResult<Vec<ProductRef>> {
        self.active_names("Services").await
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %self.partner, system = LOG_SYSTEM, company = %company_id)
    )]
    async fn primary_contact(&self, company_id: &str) -> PortResult<Option<Contact>> {
        Ok(self
            .contact_of(&[company_id.to_owned()])
            .await?
            .remove(company_id.trim()))
    }
}
