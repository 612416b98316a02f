//! SPEC §4 — Provisioning and quotas (R-PROV).
//!
//! Pure functions over plain data; "today" is always an argument.

use crate::model::{
    AgreementWithLines, CompanyRecord, Contact, CurrentItem, GuardSettings, ItemKey, ItemMapping,
    Mapping, Partner, PricingMode, ProductMapping, PsaCompany, Quota, SetupStep, StorageRole,
    Tenant, TenantNameFrom,
};
use crate::plan::{Change, CompanyPlan, Plan};
use chrono::{Days, Months, NaiveDate};
use serde::Serialize;
use std::collections::BTreeMap;

use crate::rules::units::platform_value as scale;
pub use crate::rules::units::STORAGE_UNIT_BYTES;

pub use crate::rules::psa::{LineKind, LineState, PsaRules};

/// An active line of a mapped product.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveLine {
    pub line_id: String,
    pub agreement_id: String,
    pub product_id: String,
    pub kind: LineKind,
    pub quantity: f64,
}

/// The lines that count today, with their kind (PAYG or prepaid): R-PROV-2 for ConnectWise,
/// R-PROV-3 for Autotask.
pub fn active_lines(
    psa: crate::model::PsaKind,
    agreements: &[AgreementWithLines],
    today: NaiveDate,
) -> Vec<ActiveLine> {
    let mut out = Vec::new();
    for a in agreements {
        for line in &a.lines {
            if let LineState::Active(kind) = psa.rules().line_state(&a.agreement, line, today) {
                out.push(ActiveLine {
                    line_id: line.id.clone(),
                    agreement_id: a.agreement.id.clone(),
                    product_id: line.product_id.clone(),
                    kind,
                    quantity: line.quantity,
                });
            }
        }
    }
    out
}

/// How an offering item's usage is billed, following its lines.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "billing", rename_all = "snake_case")]
pub enum Billing {
    /// No line: usage not published.
    None,
    /// Prepaid only: usage not published.
    Prepaid,
    /// Usage is published to this PAYG line (alone, or over a prepaid soft quota).
    Payg {
        line_id: String,
        agreement_id: String,
    },
}

/// The quota an offering item should have, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredItem {
    pub item: ItemKey,
    pub quota: Quota,
    /// Status 1 on the platform.
    pub enabled: bool,
    pub billing: Billing,
    pub rule: &'static str,
}

/// R-PROV-4 for one item: only PAYG → unlimited, usage published; only prepaid → hard quota =
/// sum of quantities; both → prepaid quantity as soft quota, unlimited overage, usage to the
/// PAYG line; no line → free ? unlimited : 0. R-PROV-5: a non-default storage without a line is
/// 0 even when free.
///
/// R-MAP-3: a storage location's lines are those of any of its products (quota and total,
/// class 1, class 2, geo-redundant): any of them enables the storage. The prepaid quantity is
/// that of the quota-and-total product when it has prepaid lines (it covers everything);
/// otherwise the sum over the usage products (class 1 + class 2 + geo-redundant make up the
/// total, so together they bound it).
pub fn desired_item(
    m: &ItemMapping,
    lines: &[ActiveLine],
    default_storage: Option<&str>,
) -> DesiredItem {
    let role_of = |l: &ActiveLine| {
        m.products()
            .find(|(_, p)| p.id == l.product_id)
            .map(|(r, _)| r)
    };
    let mine: Vec<(StorageRole, &ActiveLine)> = lines
        .iter()
        .filter_map(|l| role_of(l).map(|r| (r, l)))
        .collect();
    let prepaid_of = |total: bool| -> (bool, f64) {
        let ls: Vec<f64> = mine
            .iter()
            .filter(|(r, l)| l.kind == LineKind::Prepaid && (*r == StorageRole::Total) == total)
            .map(|(_, l)| l.quantity)
            .collect();
        (!ls.is_empty(), ls.iter().sum())
    };
    let (has_total_prepaid, total_prepaid) = prepaid_of(true);
    let (has_usage_prepaid, usage_prepaid) = prepaid_of(false);
    // A quota-and-total line at 0 units (no units record for today reads as 0) bounds nothing.
    let (has_prepaid, prepaid) = if has_total_prepaid && (total_prepaid > 0.0 || !has_usage_prepaid)
    {
        (true, total_prepaid)
    } else {
        (has_usage_prepaid, usage_prepaid)
    };
    // Usage goes to the quota-and-total product's PAYG line when there is one.
    let payg = mine
        .iter()
        .filter(|(_, l)| l.kind == LineKind::Payg)
        .min_by_key(|(r, _)| *r)
        .map(|(_, l)| *l);
    let by_usage_products = mine.iter().any(|(r, _)| *r != StorageRole::Total);
    let line_rule = if by_usage_products {
        "R-MAP-3"
    } else {
        "R-PROV-4"
    };
    let payg_billing = |l: &ActiveLine| Billing::Payg {
        line_id: l.line_id.clone(),
        agreement_id: l.agreement_id.clone(),
    };
    let (quota, billing, rule) = match (has_prepaid, payg) {
        (false, Some(l)) => (Quota::UNLIMITED, payg_billing(l), line_rule),
        (true, None) => (
            Quota::hard(scale(&m.item, prepaid)),
            Billing::Prepaid,
            line_rule,
        ),
        (true, Some(l)) => (
            Quota::soft(scale(&m.item, prepaid)),
            payg_billing(l),
            line_rule,
        ),
        (false, None) => {
            let non_default_storage =
                m.item.infra_id.is_some() && m.item.infra_id.as_deref() != default_storage;
            if non_default_storage {
                (Quota::ZERO, Billing::None, "R-PROV-5")
            } else if m.free {
                (Quota::UNLIMITED, Billing::None, "R-PROV-4")
            } else {
                (Quota::ZERO, Billing::None, "R-PROV-4")
            }
        }
    };
    DesiredItem {
        item: m.item.clone(),
        enabled: !quota.is_zero(),
        quota,
        billing,
        rule,
    }
}

/// R-PROV-4 and R-PROV-5 for every mapped item. When the company has no storage line at all,
/// the default storage is assigned (enabled) with its R-PROV-4 quota.
pub fn desired_items(mapping: &ProductMapping, lines: &[ActiveLine]) -> Vec<DesiredItem> {
    let default_storage = mapping.default_storage.as_deref();
    let mut out: Vec<DesiredItem> = mapping
        .items
        .iter()
        .map(|m| desired_item(m, lines, default_storage))
        .collect();
    let any_storage_line = lines.iter().any(|l| {
        mapping
            .items
            .iter()
            .any(|m| m.item.is_storage() && m.has_product(&l.product_id))
    });
    if !any_storage_line {
        for d in out.iter_mut() {
            if d.item.infra_id.is_some() && d.item.infra_id.as_deref() == default_storage {
                d.enabled = true;
                d.rule = "R-PROV-5";
            }
        }
    }
    out
}

/// Whether the company has at least one active line of a mapped product.
pub fn has_mapped_line(mapping: &ProductMapping, lines: &[ActiveLine]) -> bool {
    lines
        .iter()
        .any(|l| mapping.items.iter().any(|m| m.has_product(&l.product_id)))
}

fn quota_eq(a: &Quota, b: &Quota) -> bool {
    fn eq(x: Option<f64>, y: Option<f64>) -> bool {
        match (x, y) {
            (None, None) => true,
            (Some(x), Some(y)) => (x - y).abs() < 1e-6,
            _ => false,
        }
    }
    eq(a.value, b.value) && eq(a.overage, b.overage)
}

/// R-PROV-6: the quota changes that bring a tenant's items to the desired state. A quota changed
/// by hand differs from the desired one and is therefore set back.
pub fn quota_changes(
    company_id: &str,
    tenant_id: Option<&str>,
    desired: &[DesiredItem],
    current: &[CurrentItem],
) -> Vec<Change> {
    let now: BTreeMap<&ItemKey, &CurrentItem> = current.iter().map(|c| (&c.key, c)).collect();
    let mut out = Vec::new();
    for d in desired {
        let cur = now.get(&d.item);
        // An item that is off (status 0) cannot be used whatever its quota says.
        let same = cur.is_some_and(|c| {
            c.enabled == d.enabled && (!d.enabled || quota_eq(&c.quota, &d.quota))
        });
        // An item the tenant does not have yet, that should be off anyway, needs no change.
        let absent_and_off = cur.is_none() && !d.enabled;
        if same || absent_and_off {
            continue;
        }
        out.push(Change::SetQuota {
            company_id: company_id.to_owned(),
            tenant_id: tenant_id.map(str::to_owned),
            item: d.item.clone(),
            old: cur.map(|c| c.quota),
            new: d.quota,
            enabled: d.enabled,
            rule: d.rule,
        });
    }
    out
}

/// Everything known about one company at planning time.
#[derive(Debug, Clone, Copy)]
pub struct CompanySnapshot<'a> {
    pub company_id: &'a str,
    /// None when the company is gone from the PSA (deleted) or was not read.
    pub company: Option<&'a PsaCompany>,
    pub record: Option<&'a CompanyRecord>,
    pub agreements: &'a [AgreementWithLines],
    /// The mapped tenant, or a tenant that carries this company's id in `customer_id`.
    pub tenant: Option<&'a Tenant>,
    pub tenant_items: &'a [CurrentItem],
}

/// R-PROV-1: the name of a new tenant: the company name, or its primary contact's full name when
/// the setting says so and the company has one.
pub fn tenant_name(company: &PsaCompany, from: TenantNameFrom) -> String {
    match (from, &company.primary_contact) {
        (TenantNameFrom::PrimaryContact, Some(c)) if !c.full_name().is_empty() => c.full_name(),
        _ => company.name.clone(),
    }
}

/// R-PROV-1, R-PROV-11: the set-up steps a new tenant is owed once it exists, in order:
/// two-factor authentication (setting), the partner's pricing mode when the tenant was not
/// created in it (`created_mode`, the platform's answer), and the administrator's invitation
/// (activation e-mail) when there is one to invite. Each can be repeated; a step that fails is
/// kept with the ones after it and completed by the next pass.
pub fn setup_steps(
    trial: bool,
    two_factor: bool,
    created_mode: Option<&str>,
    admin: Option<&Contact>,
) -> Vec<SetupStep> {
    let mut steps = Vec::new();
    if two_factor {
        steps.push(SetupStep::TwoFactor);
    }
    match (trial, created_mode) {
        (true, mode) if mode != Some("trial") => steps.push(SetupStep::Pricing(PricingMode::Trial)),
        (false, Some("trial")) => steps.push(SetupStep::Pricing(PricingMode::Production)),
        _ => {}
    }
    if let Some(a) = admin.filter(|a| a.email.is_some()) {
        steps.push(SetupStep::InviteAdmin(a.clone()));
    }
    steps
}

/// R-CO-7: the name a new tenant gets when the platform refuses its name because another
/// tenant holds it: the name followed by the company's PSA identifier in parentheses (its PSA
/// id when it has no identifier), e.g. `Contoso (CONTOSO2)`. PSA identifiers are unique, so two
/// companies of the same name get two tenants.
pub fn unique_tenant_name(name: &str, company: &PsaCompany) -> String {
    let key = if company.identifier.trim().is_empty() {
        company.id.as_str()
    } else {
        company.identifier.trim()
    };
    format!("{} ({key})", name.trim())
}

/// The next day after `today` on which a line or agreement of this company changes state by
/// itself (an effective date arrives, a cancelled or end date passes): the incremental pass
/// re-plans the company then.
pub fn next_review(agreements: &[AgreementWithLines], today: NaiveDate) -> Option<NaiveDate> {
    let mut dates: Vec<NaiveDate> = Vec::new();
    for a in agreements {
        let ag = &a.agreement;
        dates.extend(ag.start_date);
        dates.extend(ag.cancelled_date);
        dates.extend(ag.end_date.and_then(|d| d.checked_add_days(Days::new(1))));
        for l in &a.lines {
            dates.extend(l.effective_date);
            dates.extend(l.cancelled_date);
        }
    }
    dates.into_iter().filter(|d| *d > today).min()
}

fn days_between(from: NaiveDate, to: NaiveDate) -> i64 {
    (to - from).num_days()
}

/// Plans one company: R-PROV-1 (create / adopt, trial → production), R-PROV-4/5 (quotas),
/// R-PROV-6 (set back), R-PROV-7 (deprovisioning). A company with an agreement that counts
/// today but cannot be classified (R-PROV-3) is reported and left exactly as it is.
///
/// R-PROV-1: a company that is not mapped gets a new tenant only when one was asked for, or
/// with the provisioning switch and `auto_create` on and an active line of a mapped product; a
/// tenant made in trial mode is switched to production one full month after it was made.
///
/// R-PROV-11: a tenant already stamped with the company's PSA id (`customer_id`) is adopted —
/// mapped to the company and given its quotas — instead of a second one being created, when a
/// new tenant was asked for or `auto_create` is on and the company has an active line of a
/// mapped product; a company explicitly unmapped is not adopted.
///
/// R-PROV-7: a mapped company without an active line has, each behind its own switch, its
/// quotas set to 0, its tenant disabled after N days and deleted after N days; with no switch
/// on, the tenant is left as it is. A line that comes back enables a tenant we disabled.
pub fn plan_company(partner: &Partner, snap: &CompanySnapshot, today: NaiveDate) -> CompanyPlan {
    let cid = snap.company_id;
    let lines = active_lines(partner.psa, snap.agreements, today);
    let mapping = &partner.mapping;
    let settings = &partner.provisioning;
    let mut record = snap.record.cloned().unwrap_or_else(|| {
        CompanyRecord::new(
            cid,
            snap.company.map(|c| c.name.clone()).unwrap_or_default(),
            Mapping::Unmapped,
        )
    });
    if let Some(c) = snap.company {
        record.name = c.name.clone();
    }
    record.next_review = next_review(snap.agreements, today);
    let mut plan = CompanyPlan {
        company_id: cid.to_owned(),
        changes: Vec::new(),
        record: None,
        problem: None,
        platform_seen: None,
        hold_from: None,
        basis: Vec::new(),
    };

    // R-PROV-3: never guess PAYG or prepaid; hold the company (no quota, tenant or
    // deprovisioning change) until its contract is fixed. A stored record keeps the error.
    if let Some(why) = snap
        .agreements
        .iter()
        .find_map(|a| partner.psa.rules().agreement_problem(&a.agreement, today))
    {
        plan.problem = Some(format!(
            "company {cid}: {why}; its tenant and quotas are left unchanged"
        ));
        if snap.record.is_some() {
            plan.record = Some(record);
        }
        return plan;
    }

    match record.mapping.clone() {
        Mapping::Unmapped | Mapping::NewTenant => {
            let requested = record.mapping == Mapping::NewTenant;
            let explicitly_unmapped = snap.record.is_some() && !requested;
            // A tenant already stamped with this company's id: a create whose answer was lost,
            // or a mapping lost from the store. Adopt it instead of creating a second one.
            if let Some(t) = snap.tenant.filter(|t| {
                !t.deleted && t.customer_id.as_deref() == Some(cid) && !explicitly_unmapped
            }) {
                if requested || (settings.auto_create && has_mapped_line(mapping, &lines)) {
                    plan.changes.push(Change::AdoptTenant {
                        company_id: cid.to_owned(),
                        tenant_id: t.id.clone(),
                        rule: "R-PROV-1",
                    });
                    record.map_to(Mapping::Tenant(t.id.clone()));
                    // R-PROV-11: what an adopted tenant may still be owed. Never trial mode:
                    // the tenant may be long established (a mapping lost from the store).
                    let admin = snap
                        .company
                        .and_then(|c| c.primary_contact.as_ref())
                        .filter(|_| settings.activation_email);
                    let steps = setup_steps(false, settings.two_factor, None, admin);
                    if !steps.is_empty() {
                        plan.changes.push(Change::FinishSetup {
                            company_id: cid.to_owned(),
                            tenant_id: t.id.clone(),
                            steps: steps.clone(),
                            rule: "R-PROV-11",
                        });
                        record.pending_setup = steps;
                    }
                    let desired = desired_items(mapping, &lines);
                    plan.changes.extend(quota_changes(
                        cid,
                        Some(&t.id),
                        &desired,
                        snap.tenant_items,
                    ));
                    record.nonzero_items =
                        desired.iter().filter(|d| !d.quota.is_zero()).count() as u32;
                    plan.record = Some(record);
                }
                return plan;
            }
            let wanted = requested
                || (partner.switches.provisioning
                    && settings.auto_create
                    && !explicitly_unmapped
                    && has_mapped_line(mapping, &lines));
            let Some(company) = snap.company.filter(|_| wanted) else {
                if requested {
                    plan.problem = Some(format!(
                        "company {cid} is to be mapped to a new tenant but was not found in the PSA"
                    ));
                    plan.record = Some(record);
                }
                return plan;
            };
            let name = tenant_name(company, settings.tenant_name);
            plan.changes.push(Change::CreateTenant {
                company_id: cid.to_owned(),
                unique_name: unique_tenant_name(&name, company),
                tenant_name: name,
                trial: settings.mode == PricingMode::Trial,
                two_factor: settings.two_factor,
                admin: company
                    .primary_contact
                    .clone()
                    .filter(|_| settings.activation_email),
                rule: "R-PROV-1",
            });
            let desired = desired_items(mapping, &lines);
            plan.changes.extend(quota_changes(cid, None, &desired, &[]));
            if settings.mode == PricingMode::Trial {
                record.trial_since = Some(today);
            }
            record.nonzero_items = desired.iter().filter(|d| !d.quota.is_zero()).count() as u32;
            record.map_to(Mapping::NewTenant);
            plan.record = Some(record);
            plan
        }
        Mapping::Tenant(tenant_id) => {
            let Some(tenant) = snap.tenant.filter(|t| t.id == tenant_id && !t.deleted) else {
                plan.problem = Some(format!(
                    "company {cid} is mapped to tenant {tenant_id}, which no longer exists on the platform"
                ));
                plan.record = Some(record);
                return plan;
            };
            let refused =
                if crate::rules::companies::same_tenant(&tenant.id, &partner.partner_tenant_id) {
                    Err(crate::rules::companies::MappingRefused::PartnerItself(
                        tenant.id.clone(),
                    ))
                } else {
                    crate::rules::companies::can_map(tenant)
                };
            if let Err(why) = refused {
                plan.problem = Some(format!("company {cid}: {why}"));
                plan.record = Some(record);
                return plan;
            }
            // R-PROV-11: set-up steps a failed pass left owed are completed first.
            if !record.pending_setup.is_empty() {
                plan.changes.push(Change::FinishSetup {
                    company_id: cid.to_owned(),
                    tenant_id: tenant_id.clone(),
                    steps: record.pending_setup.clone(),
                    rule: "R-PROV-11",
                });
            }
            let dep = &settings.deprovision;
            if has_mapped_line(mapping, &lines) {
                record.inactive_since = None;
                if record.disabled_by_us && !tenant.enabled {
                    plan.changes.push(Change::EnableTenant {
                        company_id: cid.to_owned(),
                        tenant_id: tenant_id.clone(),
                        rule: "R-PROV-7",
                    });
                }
                record.disabled_by_us = false;
                let desired = desired_items(mapping, &lines);
                plan.changes.extend(quota_changes(
                    cid,
                    Some(&tenant_id),
                    &desired,
                    snap.tenant_items,
                ));
                record.nonzero_items = desired.iter().filter(|d| !d.quota.is_zero()).count() as u32;
            } else {
                // R-PROV-7: no active line. Each step is a switch; with none on, the tenant is
                // left as it is (a mapping glitch must never wipe a customer).
                let since = *record.inactive_since.get_or_insert(today);
                let idle = days_between(since, today);
                if dep.zero_quotas {
                    let zeros: Vec<crate::rules::provisioning::DesiredItem> = mapping
                        .items
                        .iter()
                        .map(|m| DesiredItem {
                            item: m.item.clone(),
                            quota: Quota::ZERO,
                            enabled: false,
                            billing: Billing::None,
                            rule: "R-PROV-7",
                        })
                        .collect();
                    let mut changes =
                        quota_changes(cid, Some(&tenant_id), &zeros, snap.tenant_items);
                    for c in changes.iter_mut() {
                        if let Change::SetQuota { rule, .. } = c {
                            *rule = "R-PROV-7";
                        }
                    }
                    plan.changes.extend(changes);
                    record.nonzero_items = 0;
                }
                let delete_due = dep.delete_after_days.is_some_and(|n| idle >= i64::from(n));
                let disable_due = dep.disable_after_days.is_some_and(|n| idle >= i64::from(n));
                if (disable_due || delete_due) && tenant.enabled {
                    plan.changes.push(Change::DisableTenant {
                        company_id: cid.to_owned(),
                        tenant_id: tenant_id.clone(),
                        rule: "R-PROV-7",
                    });
                    record.disabled_by_us = true;
                }
                if delete_due {
                    plan.changes.push(Change::DeleteTenant {
                        company_id: cid.to_owned(),
                        tenant_id: tenant_id.clone(),
                        rule: "R-PROV-7",
                    });
                    record.map_to(Mapping::Unmapped);
                    record.disabled_by_us = false;
                } else {
                    // Come back on the day the next step is due.
                    let next = [dep.disable_after_days, dep.delete_after_days]
                        .into_iter()
                        .flatten()
                        .filter_map(|n| since.checked_add_days(Days::new(u64::from(n))))
                        .filter(|d| *d > today)
                        .min();
                    record.next_review = [record.next_review, next].into_iter().flatten().min();
                }
            }
            // R-PROV-1: a trial tenant goes to production after one full month.
            if let Some(since) = record.trial_since {
                let due = since.checked_add_months(Months::new(1));
                if tenant.pricing_mode.as_deref() == Some("trial")
                    && due.is_some_and(|d| d <= today)
                {
                    plan.changes.push(Change::SwitchToProduction {
                        company_id: cid.to_owned(),
                        tenant_id: tenant_id.clone(),
                        rule: "R-PROV-1",
                    });
                    record.trial_since = None;
                } else if tenant.pricing_mode.as_deref() != Some("trial") {
                    record.trial_since = None;
                } else {
                    record.next_review = [record.next_review, due].into_iter().flatten().min();
                }
            }
            plan.record = Some(record);
            plan
        }
    }
}

/// R-PROV-10: a run that would set more than the configured share of the partner's non-zero
/// quotas to 0 at once stops and reports, unless forced. `partner_nonzero` is the number of
/// non-zero quotas the partner's tenants hold now.
/// R-REL-4: the first offering item of `basis` (what a run read of a tenant's managed items)
/// that `current` (the tenant's items as the platform holds them now) no longer holds as read
/// — a later run or a person moved it — described; `None` when the basis holds and the run may
/// write. An item gone from the tenant moved too.
pub fn basis_moved(basis: &[crate::ports::QuotaSet], current: &[CurrentItem]) -> Option<String> {
    basis.iter().find_map(|b| {
        let now = current.iter().find(|c| c.key == b.item);
        match now {
            Some(c) if c.enabled == b.enabled && c.quota == b.quota => None,
            Some(c) => Some(format!(
                "offering item {} changed since this run read it (read: {}, now: {})",
                b.item,
                describe(b.enabled, &b.quota),
                describe(c.enabled, &c.quota)
            )),
            None => Some(format!(
                "offering item {} is gone from the tenant since this run read it",
                b.item
            )),
        }
    })
}

fn describe(enabled: bool, q: &Quota) -> String {
    let n = |v: Option<f64>| v.map_or("unlimited".to_owned(), |v| v.to_string());
    format!(
        "{} quota {} overage {}",
        if enabled { "on" } else { "off" },
        n(q.value),
        n(q.overage)
    )
}

pub fn guard(
    plan: &Plan,
    partner_nonzero: usize,
    settings: &GuardSettings,
    force: bool,
) -> Result<(), String> {
    let zeroed = plan.zeroed_quotas();
    if force || zeroed < settings.min_zeroed.max(1) {
        return Ok(());
    }
    let base = partner_nonzero.max(zeroed);
    let share = zeroed as f64 / base as f64;
    if share > settings.max_zero_share {
        return Err(format!(
            "blast-radius guard (R-PROV-10): this run would set {zeroed} of {base} non-zero quotas \
             ({:.0}%) to 0, more than the allowed {:.0}%; nothing was changed. Check the PSA \
             agreements and the product mapping, then run again with --force if this is intended",
            share * 100.0,
            settings.max_zero_share * 100.0
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
