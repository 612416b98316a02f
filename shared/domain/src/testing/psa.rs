//! [`MemoryPsa`]: a PSA in memory — companies, agreements and their lines, the product
//! catalogue, allocation codes and contacts — implementing [`PsaDirectory`] and, for an
//! Autotask-like partner, [`ContractWriter`] (add a line at 0, absolute quantities with the
//! `from` conflict check, services created with the two-way defaults).
//!
//! Every edit stamps `updated_at` with the clock; a line edit stamps its agreement (what the
//! agreement listing's `changed_since` sees).

use super::fake::Fake;
use super::faults::{conflict, not_found};
use crate::error::{PortResult, System};
use crate::model::{Agreement, Contact, Line, PaygField, ProductRef, PsaCompany, TwoWaySettings};
use crate::ports::{AgreementQuery, Clock, CompanyQuery, ContractWriter, PsaDirectory};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Everything the PSA holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PsaState {
    pub companies: BTreeMap<String, PsaCompany>,
    pub agreements: BTreeMap<String, Agreement>,
    /// Lines by agreement id, in the order they were added.
    pub lines: BTreeMap<String, Vec<Line>>,
    pub products: Vec<ProductRef>,
    pub allocation_codes: Vec<ProductRef>,
    /// Products made by [`ContractWriter::create_product`], with the defaults they were given.
    pub created: Vec<(ProductRef, TwoWaySettings)>,
    seq: u64,
}

impl PsaState {
    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}-{}", self.seq)
    }

    /// The line `line_id` of `agreement_id`, or `NotFound`.
    fn line_mut(&mut self, agreement_id: &str, line_id: &str) -> PortResult<&mut Line> {
        self.lines
            .get_mut(agreement_id)
            .and_then(|ls| ls.iter_mut().find(|l| l.id == line_id))
            .ok_or_else(|| {
                not_found(
                    System::Psa,
                    format!("agreement {agreement_id} has no line {line_id}"),
                )
            })
    }
}

/// What the PSA's listings filter by: an id and a change time.
trait Stamped {
    fn id(&self) -> &str;
    fn stamp(&mut self, at: DateTime<Utc>);
    fn changed_since(&self, since: Option<DateTime<Utc>>) -> bool;
}

macro_rules! stamped {
    ($t:ty) => {
        impl Stamped for $t {
            fn id(&self) -> &str {
                &self.id
            }
            fn stamp(&mut self, at: DateTime<Utc>) {
                self.updated_at = Some(at);
            }
            fn changed_since(&self, since: Option<DateTime<Utc>>) -> bool {
                since.is_none_or(|s| self.updated_at.is_some_and(|u| u > s))
            }
        }
    };
}
stamped!(PsaCompany);
stamped!(Agreement);

/// Edits the entity `id` of `table` and stamps it; false when there is none.
fn edit<T: Stamped>(
    table: &mut BTreeMap<String, T>,
    id: &str,
    at: DateTime<Utc>,
    f: impl FnOnce(&mut T),
) -> bool {
    match table.get_mut(id) {
        Some(x) => {
            f(x);
            x.stamp(at);
            true
        }
        None => false,
    }
}

/// The entities of `table` a listing returns: changed since `since`, and `keep`.
fn listing<T: Stamped + Clone>(
    table: &BTreeMap<String, T>,
    since: Option<DateTime<Utc>>,
    keep: impl Fn(&T) -> bool,
) -> Vec<T> {
    table
        .values()
        .filter(|x| x.changed_since(since) && keep(x))
        .cloned()
        .collect()
}

/// The first day agreements made by [`MemoryPsa::add_agreement`] count from.
pub fn agreement_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date")
}

/// A PSA in memory.
pub type MemoryPsa = Fake<PsaState>;

impl MemoryPsa {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Fake::from_state(clock, PsaState::default())
    }

    pub fn add_product(&self, id: &str, identifier: &str) -> ProductRef {
        let p = ProductRef {
            id: id.into(),
            identifier: identifier.into(),
        };
        self.with(|st, _| st.products.push(p.clone()));
        p
    }

    pub fn add_allocation_code(&self, id: &str, name: &str) -> ProductRef {
        let p = ProductRef {
            id: id.into(),
            identifier: name.into(),
        };
        self.with(|st, _| st.allocation_codes.push(p.clone()));
        p
    }

    /// A customer company; its identifier is its name without spaces. Returns its id.
    pub fn add_company(&self, name: &str) -> String {
        self.with(|st, now| {
            let id = st.next_id("c");
            let c = PsaCompany {
                id: id.clone(),
                identifier: name.split_whitespace().collect(),
                name: name.into(),
                types: vec!["Customer".into()],
                status: Some("Active".into()),
                active: true,
                primary_contact: None,
                updated_at: Some(now),
            };
            st.companies.insert(id.clone(), c);
            id
        })
    }

    /// An agreement of `company_id` valid from [`agreement_start`] without end; `payg_flag` is
    /// the Autotask contract's PAYG field (None for ConnectWise). Returns its id.
    pub fn add_agreement(&self, company_id: &str, payg_flag: Option<bool>) -> String {
        self.with(|st, now| {
            let id = st.next_id("a");
            let a = Agreement {
                id: id.clone(),
                company_id: company_id.into(),
                name: format!("{company_id} services"),
                start_date: Some(agreement_start()),
                end_date: None,
                no_end_date: true,
                cancelled: false,
                cancelled_date: None,
                payg_field: payg_flag.map(|payg| PaygField::Value {
                    name: "PAYG".into(),
                    value: Some(if payg { "Yes" } else { "No" }.into()),
                }),
                updated_at: Some(now),
            };
            st.agreements.insert(id.clone(), a);
            st.lines.insert(id.clone(), Vec::new());
            id
        })
    }

    /// A line of `product_id` in `agreement_id`, effective from the agreement's start;
    /// `cancelled_date` None is ConnectWise's PAYG, a future date prepaid. Returns its id.
    pub fn put_line(
        &self,
        agreement_id: &str,
        product_id: &str,
        quantity: f64,
        cancelled_date: Option<NaiveDate>,
    ) -> String {
        self.with(|st, now| {
            let id = st.next_id("l");
            let line = Line {
                id: id.clone(),
                agreement_id: agreement_id.into(),
                product_id: product_id.into(),
                quantity,
                less_included: 0.0,
                effective_date: Some(agreement_start()),
                cancelled_date,
            };
            st.lines.entry(agreement_id.into()).or_default().push(line);
            edit(&mut st.agreements, agreement_id, now, |_| {});
            id
        })
    }

    /// Edits a company (stamped now). Panics when there is none: a test's own mistake.
    pub fn edit_company(&self, id: &str, f: impl FnOnce(&mut PsaCompany)) {
        assert!(
            self.with(|st, now| edit(&mut st.companies, id, now, f)),
            "no company {id}"
        );
    }

    /// Edits an agreement (stamped now). Panics when there is none.
    pub fn edit_agreement(&self, id: &str, f: impl FnOnce(&mut Agreement)) {
        assert!(
            self.with(|st, now| edit(&mut st.agreements, id, now, f)),
            "no agreement {id}"
        );
    }

    /// Edits a line; its agreement is stamped now. Panics when there is none.
    pub fn edit_line(&self, agreement_id: &str, line_id: &str, f: impl FnOnce(&mut Line)) {
        self.with(|st, now| {
            f(st.line_mut(agreement_id, line_id).expect("the line exists"));
            edit(&mut st.agreements, agreement_id, now, |_| {});
        });
    }

    /// Edits a line and leaves its agreement's change time alone, as a ConnectWise addition
    /// edit or an Autotask unit adjustment does (R-PROV-8). Panics when there is none.
    pub fn edit_line_quietly(&self, agreement_id: &str, line_id: &str, f: impl FnOnce(&mut Line)) {
        self.with(|st, _| f(st.line_mut(agreement_id, line_id).expect("the line exists")));
    }

    /// The company's primary contact (the activation e-mail's addressee).
    pub fn set_primary_contact(&self, company_id: &str, first: &str, last: &str, email: &str) {
        self.edit_company(company_id, |c| {
            c.primary_contact = Some(Contact {
                first_name: first.into(),
                last_name: last.into(),
                email: Some(email.into()),
            })
        });
    }

    /// The lines of an agreement as they are now: (product id, quantity), in order.
    pub fn quantities(&self, agreement_id: &str) -> Vec<(String, f64)> {
        self.with(|st, _| {
            st.lines
                .get(agreement_id)
                .map(|ls| {
                    ls.iter()
                        .map(|l| (l.product_id.clone(), l.quantity))
                        .collect()
                })
                .unwrap_or_default()
        })
    }
}

#[async_trait]
impl PsaDirectory for MemoryPsa {
    async fn check_login(&self) -> PortResult<()> {
        self.call("check_login", "", |_, _| Ok(()))
    }

    async fn companies(&self, q: &CompanyQuery) -> PortResult<Vec<PsaCompany>> {
        self.call("companies", "", |st, _| {
            Ok(listing(&st.companies, q.changed_since, |c| {
                q.ids.is_empty() || q.ids.iter().any(|i| i == c.id())
            }))
        })
    }

    async fn agreements(&self, q: &AgreementQuery) -> PortResult<Vec<Agreement>> {
        self.call("agreements", "", |st, _| {
            Ok(listing(&st.agreements, q.changed_since, |a| {
                q.company_ids.is_empty() || q.company_ids.contains(&a.company_id)
            }))
        })
    }

    async fn lines(&self, agreement_id: &str) -> PortResult<Vec<Line>> {
        self.call("lines", agreement_id, |st, _| {
            Ok(st.lines.get(agreement_id).cloned().unwrap_or_default())
        })
    }

    async fn products(&self) -> PortResult<Vec<ProductRef>> {
        self.call("products", "", |st, _| Ok(st.products.clone()))
    }

    async fn primary_contact(&self, company_id: &str) -> PortResult<Option<Contact>> {
        self.call("primary_contact", company_id, |st, _| {
            Ok(st
                .companies
                .get(company_id)
                .and_then(|c| c.primary_contact.clone()))
        })
    }
}

#[async_trait]
impl crate::ports::LineQuantities for MemoryPsa {
    async fn set_quantity(
        &self,
        agreement_id: &str,
        line_id: &str,
        from: f64,
        quantity: f64,
    ) -> PortResult<()> {
        ContractWriter::set_line_quantity(self, agreement_id, line_id, Some(from), quantity).await
    }
}

#[async_trait]
impl ContractWriter for MemoryPsa {
    async fn allocation_codes(&self) -> PortResult<Vec<ProductRef>> {
        self.call("allocation_codes", "", |st, _| {
            Ok(st.allocation_codes.clone())
        })
    }

    async fn create_product(
        &self,
        name: &str,
        defaults: &TwoWaySettings,
    ) -> PortResult<ProductRef> {
        self.call("create_product", name, |st, _| {
            let p = ProductRef {
                id: st.next_id("p"),
                identifier: name.trim().to_owned(),
            };
            st.products.push(p.clone());
            st.created.push((p.clone(), defaults.clone()));
            Ok(p)
        })
    }

    async fn add_line(&self, agreement_id: &str, product_id: &str) -> PortResult<String> {
        self.call("add_line", agreement_id, |st, now| {
            if !st.products.iter().any(|p| p.id == product_id) {
                return Err(not_found(
                    System::Psa,
                    format!("product {product_id} does not exist"),
                ));
            }
            let id = st.next_id("l");
            let line = Line {
                id: id.clone(),
                agreement_id: agreement_id.into(),
                product_id: product_id.into(),
                quantity: 0.0,
                less_included: 0.0,
                effective_date: None,
                cancelled_date: None,
            };
            if !edit(&mut st.agreements, agreement_id, now, |_| {}) {
                return Err(not_found(
                    System::Psa,
                    format!("agreement {agreement_id} does not exist"),
                ));
            }
            st.lines.entry(agreement_id.into()).or_default().push(line);
            Ok(id)
        })
    }

    async fn set_line_quantity(
        &self,
        agreement_id: &str,
        line_id: &str,
        from: Option<f64>,
        quantity: f64,
    ) -> PortResult<()> {
        self.call("set_line_quantity", agreement_id, |st, now| {
            let line = st.line_mut(agreement_id, line_id)?;
            let held = line.quantity;
            if (quantity - held).abs() < 1e-9 {
                return Ok(());
            }
            if from.is_some_and(|f| (held - f).abs() > 1e-9) {
                return Err(conflict(
                    System::Psa,
                    format!(
                        "line {line_id} of agreement {agreement_id} holds {held}, not the {} \
                         this run read: changed in the PSA meanwhile",
                        from.unwrap_or_default()
                    ),
                ));
            }
            line.quantity = quantity;
            edit(&mut st.agreements, agreement_id, now, |_| {});
            Ok(())
        })
    }
}
