//! SPEC §5 — Two-way sync (R-TWO, Autotask).
//!
//! With the switch on, what the MSP turns on or off on the platform is carried to the PSA
//! contract instead of being set back: a service enabled there is added to the company's
//! contract, a service disabled there is removed (its units go to 0: Autotask's API cannot
//! delete a contract service). Public cloud storages enable their vendor's single product.
//!
//! Which side changed is decided by time: an offering item the platform changed after our own
//! last write to the tenant was changed by a person; everything else follows the PSA (R-PROV-6).
//! The first sync of a company always follows the PSA.
//!
//! Pure functions; the plan is applied by the sync service, which serialises the PSA writes of
//! a company and re-reads the contract before each one (no service is added twice).

use crate::model::{
    Agreement, AgreementWithLines, CloudVendor, CurrentItem, ItemKey, Line, Mapping, Partner,
    ProductRef, PsaKind, Quota,
};

use crate::plan::{Change, CompanyPlan};
use crate::rules::provisioning::{
    self, active_lines, desired_items, CompanySnapshot, LineKind, LineState, PsaRules,
};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// The id a line added by this run carries in the plan until the PSA gives it one.
pub const NEW_LINE: &str = "new";

/// What two-way sync decides for one company before provisioning plans it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TwoWayPlan {
    /// PSA writes, in order.
    pub changes: Vec<Change>,
    /// The agreements as they will be once the changes are applied; provisioning plans on these.
    pub agreements: Vec<AgreementWithLines>,
    /// Items provisioning leaves as they are in this run (a platform change that could not be
    /// carried to the PSA is not set back either).
    pub hold: Vec<ItemKey>,
    /// The record's removed lines after this plan.
    pub removed_lines: Vec<String>,
    /// The latest platform change carried to the PSA by these changes.
    pub platform_seen: Option<DateTime<Utc>>,
    /// First look at this tenant with two-way sync: its latest change, the baseline from now on
    /// (what the platform holds now follows the PSA).
    pub first_seen: Option<DateTime<Utc>>,
    /// The earliest change of a held item: our record of the platform must stay before it, or
    /// the next pass would take the person's change for ours and set it back.
    pub hold_from: Option<DateTime<Utc>>,
    pub problems: Vec<String>,
}

/// Whether two-way sync runs for this partner.
pub fn enabled(partner: &Partner) -> bool {
    partner.switches.two_way_sync && partner.psa == PsaKind::Autotask
}

/// Whether an Autotask contract counts today (active, started, not ended, classified).
fn contract_counts(a: &Agreement, today: NaiveDate) -> bool {
    PsaRules::Autotask.agreement_usable(a, today)
}

/// The contract a service is added to: the company's active contract that already holds mapped
/// services (the one with most of them), or its only active contract. Never guessed otherwise.
fn target_contract<'a>(
    partner: &Partner,
    agreements: &'a [AgreementWithLines],
    today: NaiveDate,
) -> Result<&'a Agreement, String> {
    let usable: Vec<&AgreementWithLines> = agreements
        .iter()
        .filter(|a| contract_counts(&a.agreement, today))
        .collect();
    let mapped = |a: &AgreementWithLines| {
        a.lines
            .iter()
            .filter(|l| partner.mapping.maps_product(&l.product_id))
            .count()
    };
    let best = usable.iter().filter(|a| mapped(a) > 0).max_by(|x, y| {
        mapped(x)
            .cmp(&mapped(y))
            .then_with(|| y.agreement.id.cmp(&x.agreement.id))
    });
    match (best, usable.as_slice()) {
        (Some(a), _) => Ok(&a.agreement),
        (None, [only]) => Ok(&only.agreement),
        (None, []) => Err("it has no active contract to add the service to".to_owned()),
        (None, many) => Err(format!(
            "it has {} active contracts and none holds a mapped service; add the service to \
             one of them in the PSA",
            many.len()
        )),
    }
}

fn is_payg(a: &Agreement) -> bool {
    PsaRules::Autotask.payg_agreement(a)
}

/// PSA units for a platform quota: the one unit rule (`rules::units`).
fn units_of(item: &ItemKey, quota: &Quota) -> Option<f64> {
    Some(crate::rules::units::psa_quantity(item, quota.value?))
}

struct Builder<'a> {
    partner: &'a Partner,
    company_id: &'a str,
    today: NaiveDate,
    /// The agreements as the PSA holds them (removed lines included).
    original: &'a [AgreementWithLines],
    plan: TwoWayPlan,
    removed: BTreeSet<String>,
}

impl Builder<'_> {
    /// The line of `product` in an active contract, whether or not it counts today (a removed
    /// line, a prepaid line at 0 units).
    fn existing_line(&self, product: &str) -> Option<(Agreement, Line)> {
        self.original
            .iter()
            .filter(|a| contract_counts(&a.agreement, self.today))
            .find_map(|a| {
                a.lines
                    .iter()
                    .find(|l| l.product_id == product)
                    .map(|l| (a.agreement.clone(), l.clone()))
            })
    }

    fn set_effective(&mut self, agreement_id: &str, line: Line) {
        if let Some(a) = self
            .plan
            .agreements
            .iter_mut()
            .find(|a| a.agreement.id == agreement_id)
        {
            a.lines.retain(|l| l.id != line.id || line.id == NEW_LINE);
            a.lines.push(line);
        }
    }

    fn drop_effective(&mut self, line_id: &str) {
        for a in self.plan.agreements.iter_mut() {
            a.lines.retain(|l| l.id != line_id);
        }
    }

    /// Makes `product` count on the company's contract: a line that exists gets `units(contract)`,
    /// otherwise the product is added with them. Returns false (with a problem) when impossible.
    fn ensure(
        &mut self,
        product: &ProductRef,
        units: impl Fn(&Agreement) -> Result<f64, String>,
        what: &str,
        rule: &'static str,
    ) -> bool {
        let cid = self.company_id.to_owned();
        let existing = self.existing_line(&product.id);
        let a = match &existing {
            Some((a, _)) => a.clone(),
            None => match target_contract(self.partner, self.original, self.today) {
                Ok(a) => a.clone(),
                Err(why) => {
                    self.plan.problems.push(format!(
                        "company {cid}: {what} was turned on on the platform but {} cannot be \
                         added to a contract: {why} ({rule})",
                        product.identifier
                    ));
                    return false;
                }
            },
        };
        let new = match &existing {
            // A PAYG line's units are its published usage: it only has to count again.
            Some((_, l)) if is_payg(&a) => l.quantity,
            _ => match units(&a) {
                Ok(n) => n,
                Err(why) => {
                    self.plan
                        .problems
                        .push(format!("company {cid}: {what} cannot be billed: {why}"));
                    return false;
                }
            },
        };
        let line = match existing {
            Some((_, l)) => {
                self.removed.remove(&l.id);
                if (l.quantity - new).abs() > f64::EPSILON {
                    self.plan.changes.push(Change::SetLineQuantity {
                        company_id: cid,
                        agreement_id: a.id.clone(),
                        line_id: l.id.clone(),
                        product: product.clone(),
                        old: l.quantity,
                        new,
                        rule,
                    });
                }
                Line { quantity: new, ..l }
            }
            None => {
                self.plan.changes.push(Change::AddLine {
                    company_id: cid,
                    agreement_id: a.id.clone(),
                    product: product.clone(),
                    quantity: new,
                    rule,
                });
                Line {
                    id: NEW_LINE.to_owned(),
                    agreement_id: a.id.clone(),
                    product_id: product.id.clone(),
                    quantity: new,
                    less_included: 0.0,
                    effective_date: None,
                    cancelled_date: None,
                }
            }
        };
        self.set_effective(&a.id, line);
        true
    }

    /// Takes every counting line of `products` to 0 and keeps it as removed.
    fn remove(&mut self, products: &[&ProductRef], rule: &'static str) {
        let lines: Vec<(String, Line, ProductRef)> = self
            .plan
            .agreements
            .iter()
            .flat_map(|a| {
                a.lines.iter().filter_map(|l| {
                    let p = products.iter().find(|p| p.id == l.product_id)?;
                    let counts = matches!(
                        self.partner
                            .psa
                            .rules()
                            .line_state(&a.agreement, l, self.today),
                        LineState::Active(_)
                    );
                    counts.then(|| (a.agreement.id.clone(), l.clone(), (*p).clone()))
                })
            })
            .collect();
        for (agreement_id, l, product) in lines {
            if l.quantity != 0.0 {
                self.plan.changes.push(Change::SetLineQuantity {
                    company_id: self.company_id.to_owned(),
                    agreement_id,
                    line_id: l.id.clone(),
                    product,
                    old: l.quantity,
                    new: 0.0,
                    rule,
                });
            }
            self.removed.insert(l.id.clone());
            self.drop_effective(&l.id);
        }
    }
}

/// R-TWO-1 and R-TWO-2 for one company: with two-way sync on, a company mapped to a tenant
/// that exists, and no agreement held for R-PROV-3, what was turned on or off on the platform
/// since our last write to the tenant is carried to the company's contract. The first sync of a
/// tenant follows the PSA: a vendor's product is added, never removed. `infra_vendors` names the
/// public cloud storages (infra id → vendor). Lines removed earlier count for nothing while
/// they stay at 0, whether or not the switch is still on; raised again in the PSA, they count.
pub fn plan(
    partner: &Partner,
    snap: &CompanySnapshot,
    infra_vendors: &BTreeMap<String, CloudVendor>,
    today: NaiveDate,
) -> TwoWayPlan {
    let record_removed: BTreeSet<String> = snap
        .record
        .map(|r| r.removed_lines.iter().cloned().collect())
        .unwrap_or_default();
    // A removed line raised again in the PSA counts again.
    let removed: BTreeSet<String> = record_removed
        .iter()
        .filter(|id| {
            snap.agreements
                .iter()
                .flat_map(|a| &a.lines)
                .any(|l| &l.id == *id && l.quantity == 0.0)
        })
        .cloned()
        .collect();
    let agreements: Vec<AgreementWithLines> = snap
        .agreements
        .iter()
        .map(|a| AgreementWithLines {
            agreement: a.agreement.clone(),
            lines: a
                .lines
                .iter()
                .filter(|l| !removed.contains(&l.id))
                .cloned()
                .collect(),
        })
        .collect();
    let mut b = Builder {
        partner,
        company_id: snap.company_id,
        today,
        original: snap.agreements,
        plan: TwoWayPlan {
            agreements,
            ..TwoWayPlan::default()
        },
        removed,
    };
    let mapped_tenant = matches!(snap.record.map(|r| &r.mapping), Some(Mapping::Tenant(t))
        if snap.tenant.is_some_and(|x| &x.id == t && !x.deleted));
    let held_by_problem = snap.agreements.iter().any(|a| {
        partner
            .psa
            .rules()
            .agreement_problem(&a.agreement, today)
            .is_some()
    });
    if enabled(partner) && mapped_tenant && !held_by_problem {
        match snap.record.and_then(|r| r.platform_written) {
            Some(baseline) => {
                offering_items(&mut b, snap, baseline);
                public_clouds(&mut b, snap.tenant_items, infra_vendors, true);
            }
            None => {
                // The first sync of a tenant follows the PSA: nothing it holds now is a
                // person's change, and a vendor product is added but never removed.
                b.plan.first_seen = snap.tenant_items.iter().filter_map(|i| i.updated_at).max();
                public_clouds(&mut b, snap.tenant_items, infra_vendors, false);
            }
        }
    }
    let mut plan = b.plan;
    // R-PROV-5 assigns the default storage when no storage line is left; a default storage
    // whose lines were removed on purpose stays as the person left it.
    let removed_products: Vec<&str> = snap
        .agreements
        .iter()
        .flat_map(|a| &a.lines)
        .filter(|l| b.removed.contains(&l.id))
        .map(|l| l.product_id.as_str())
        .collect();
    let mapping = &partner.mapping;
    if let Some(ds) = mapping.items.iter().find(|m| {
        m.item.infra_id.is_some()
            && m.item.infra_id == mapping.default_storage
            && removed_products.iter().any(|p| m.has_product(p))
    }) {
        plan.hold.push(ds.item.clone());
    }
    plan.removed_lines = b.removed.into_iter().collect();
    plan
}

/// R-TWO-1: offering items turned on or off on the platform since our last write. One turned on
/// adds its product to the contract (PAYG: 0 units, the usage follows; prepaid: its quota in
/// units, and an item without a limit on a prepaid contract is held and reported); one turned
/// off while it has a line has its products removed (units to 0).
fn offering_items(b: &mut Builder, snap: &CompanySnapshot, baseline: DateTime<Utc>) {
    let changed_by_person =
        |c: &CurrentItem| c.updated_at.is_some_and(|t: DateTime<Utc>| t > baseline);
    let current: BTreeMap<&ItemKey, &CurrentItem> =
        snap.tenant_items.iter().map(|c| (&c.key, c)).collect();
    let lines = active_lines(b.partner.psa, &b.plan.agreements, b.today);
    let desired = desired_items(&b.partner.mapping, &lines);
    for m in &b.partner.mapping.items {
        let Some(cur) = current.get(&m.item).filter(|c| changed_by_person(c)) else {
            continue;
        };
        let Some(d) = desired.iter().find(|d| d.item == m.item) else {
            continue;
        };
        let has_line = lines.iter().any(|l| m.has_product(&l.product_id));
        let what = format!("{}", m.item);
        let before = b.plan.changes.len();
        if cur.enabled && !d.enabled {
            let Some(product) = m.product.clone() else {
                continue;
            };
            let quota = cur.quota;
            let item = m.item.clone();
            let ok = b.ensure(
                &product,
                |a| {
                    if is_payg(a) {
                        Ok(0.0)
                    } else {
                        units_of(&item, &quota).ok_or_else(|| {
                            format!(
                                "it is enabled without a limit but contract {} is prepaid; set a \
                                 quota on the platform or use a PAYG contract",
                                a.id
                            )
                        })
                    }
                },
                &what,
                "R-TWO-1",
            );
            if !ok {
                b.plan.hold.push(m.item.clone());
                b.plan.hold_from = match (b.plan.hold_from, cur.updated_at) {
                    (Some(h), Some(t)) => Some(h.min(t)),
                    (h, t) => h.or(t),
                };
            }
        } else if !cur.enabled && d.enabled && has_line {
            let products: Vec<&ProductRef> = m.products().map(|(_, p)| p).collect();
            b.remove(&products, "R-TWO-1");
        }
        // Carried to the PSA (or already there): once applied, this change is settled.
        if b.plan.changes.len() > before || !b.plan.hold.contains(&m.item) {
            b.plan.platform_seen = b.plan.platform_seen.max(cur.updated_at);
        }
    }
}

/// R-TWO-2: any enabled storage of a vendor enables its single product; none removes it. The
/// platform's own cloud storage is not a vendor's and is synced by R-TWO-1 like any item.
fn public_clouds(
    b: &mut Builder,
    items: &[CurrentItem],
    infra_vendors: &BTreeMap<String, CloudVendor>,
    may_remove: bool,
) {
    for cp in b.partner.mapping.public_cloud.clone() {
        let on = items.iter().any(|i| {
            i.enabled
                && i.key.infra_id.as_ref().and_then(|id| infra_vendors.get(id)) == Some(&cp.vendor)
        });
        let lines = active_lines(b.partner.psa, &b.plan.agreements, b.today);
        let present = lines.iter().any(|l| {
            l.product_id == cp.product.id && (l.kind == LineKind::Payg || l.quantity > 0.0)
        });
        let what = format!("public cloud storage {}", cp.vendor);
        if on && !present {
            b.ensure(
                &cp.product,
                |a| Ok(if is_payg(a) { 0.0 } else { 1.0 }),
                &what,
                "R-TWO-2",
            );
        } else if !on && present && may_remove {
            b.remove(&[&cp.product], "R-TWO-2");
        }
    }
}

/// Our record of the platform, kept before the earliest held change (see
/// [`TwoWayPlan::hold_from`]).
pub fn settled_before(
    written: Option<DateTime<Utc>>,
    hold_from: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (written, hold_from) {
        (Some(w), Some(h)) if w >= h => Some(h - chrono::Duration::milliseconds(1)),
        (w, _) => w,
    }
}

/// Plans one company with two-way sync first (R-TWO) and provisioning on the result (R-PROV).
pub fn plan_company(
    partner: &Partner,
    snap: &CompanySnapshot,
    infra_vendors: &BTreeMap<String, CloudVendor>,
    today: NaiveDate,
) -> CompanyPlan {
    let tw = plan(partner, snap, infra_vendors, today);
    let adjusted = CompanySnapshot {
        agreements: &tw.agreements,
        ..*snap
    };
    let mut p = provisioning::plan_company(partner, &adjusted, today);
    p.changes.retain(|c| match c {
        Change::SetQuota { item, .. } => !tw.hold.contains(item),
        _ => true,
    });
    let changes_to_psa = !tw.changes.is_empty();
    let mut changes = tw.changes;
    changes.append(&mut p.changes);
    p.changes = changes;
    p.hold_from = tw.hold_from;
    if let Some(r) = p.record.as_mut() {
        r.removed_lines = tw.removed_lines;
        if r.platform_written.is_none() {
            r.platform_written = tw.first_seen;
        }
        if changes_to_psa {
            p.platform_seen = tw.platform_seen;
        } else {
            // Already as the PSA holds it: settled now, nothing to apply first.
            r.platform_written = r.platform_written.max(tw.platform_seen);
        }
        r.platform_written = settled_before(r.platform_written, tw.hold_from);
    }
    if !tw.problems.is_empty() {
        let mut all = tw.problems;
        all.extend(p.problem.take());
        p.problem = Some(all.join("; "));
    }
    p
}

#[cfg(test)]
mod tests;
