//! SPEC §6 — which usage figure goes to which PSA line (R-USE-1, R-USE-2, R-USE-3).
//!
//! Pure: the company's active lines (R-PROV-2 / R-PROV-3, as provisioning reads them), the
//! partner's product mapping and the tenant's usage figures in; one target quantity per PAYG
//! line out, and for every other line of a mapped product the reason it is left alone.

use crate::model::{ItemKey, ProductMapping, StorageRole, TenantKind};
use crate::ports::{Measure, SubtreeTenant, TenantUsage};
use crate::rules::provisioning::{ActiveLine, LineKind};
use crate::rules::units::psa_quantity;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// A tenant's (or a subtree's) usage: the absolute value per offering item and measure.
pub type Figures = BTreeMap<(ItemKey, Measure), f64>;

/// R-USE-3: the figures of several tenants summed — a sub-partner's usage is that of the
/// customer tenants in its subtree; one tenant's figures pass through unchanged.
pub fn figures<'a>(usages: impl IntoIterator<Item = &'a TenantUsage>) -> Figures {
    let mut out = Figures::new();
    for u in usages {
        for f in &u.figures {
            *out.entry((f.item.clone(), f.measure)).or_default() += f.value;
        }
    }
    out
}

/// R-USE-3, R-CO-6: the customers a mapped sub-partner `root` is billed for — those of its
/// subtree whose nearest mapped tenant, themselves included, is `root`. A customer mapped to
/// its own company, or under another mapped sub-partner, is billed there, never twice. A
/// customer whose parents do not lead to `root` in the listing is left out.
pub fn billed_customers(
    root: &str,
    subtree: &[SubtreeTenant],
    mapped: &BTreeSet<String>,
) -> Vec<String> {
    let parent: BTreeMap<&str, Option<&str>> = subtree
        .iter()
        .map(|t| (t.id.as_str(), t.parent_id.as_deref()))
        .collect();
    let billed_here = |customer: &str| {
        let mut cur = customer;
        // At most one step per listed tenant: a cycle in a bad listing ends too.
        for _ in 0..=subtree.len() {
            if cur == root {
                return true;
            }
            if mapped.contains(cur) {
                return false;
            }
            match parent.get(cur).copied().flatten() {
                Some(p) => cur = p,
                None => return false,
            }
        }
        false
    };
    subtree
        .iter()
        .filter(|t| t.kind == TenantKind::Customer && t.id != root && billed_here(&t.id))
        .map(|t| t.id.clone())
        .collect()
}

/// R-MAP-3 / R-USE-2: the measures a product of `role` is billed for. The quota-and-total
/// product gets the total (standard + geo-redundant); each usage product its own figure.
pub fn measures(role: StorageRole) -> &'static [Measure] {
    match role {
        StorageRole::Total => &[Measure::Standard, Measure::Geo],
        StorageRole::Class1 => &[Measure::Class1],
        StorageRole::Class2 => &[Measure::Class2],
        StorageRole::Geo => &[Measure::Geo],
    }
}

/// R-USE-2: the figure for one product of an item, in the item's platform unit.
pub fn figure(figures: &Figures, item: &ItemKey, role: StorageRole) -> f64 {
    measures(role)
        .iter()
        .map(|m| {
            figures
                .get(&(item.clone(), *m))
                .copied()
                .unwrap_or_default()
        })
        .sum()
}

/// What publishing does to one line of a mapped product.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum LineAction {
    /// The line's quantity becomes `new` (absolute: publishing twice writes the same number).
    Set { old: f64, new: f64 },
    /// The line is left as it is, for `reason`.
    Untouched { reason: String },
}

/// One line of a mapped product with what publishing does to it and the rule that decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineUsage {
    pub agreement_id: String,
    pub line_id: String,
    pub product_id: String,
    pub item: ItemKey,
    pub role: StorageRole,
    #[serde(flatten)]
    pub action: LineAction,
    pub rule: &'static str,
}

impl LineUsage {
    /// The quantity to write, when the line changes.
    pub fn write(&self) -> Option<(f64, f64)> {
        match self.action {
            LineAction::Set { old, new } if (old - new).abs() > 1e-9 => Some((old, new)),
            _ => None,
        }
    }
}

/// R-USE-1 / R-USE-2 / R-PROV-4: what publishing does to each active line of a mapped product.
///
/// - Only PAYG lines get usage (R-USE-1); a prepaid line is untouched (R-PROV-4: its quantity
///   is the quota), also beside a PAYG line of the same product — then the PAYG line gets the
///   whole usage and the PSA's "less included" bills the excess.
/// - Storage (R-USE-2, R-MAP-3): each mapped product of a location gets its own figure —
///   quota-and-total: standard + geo-redundant; class 1; class 2; geo-redundant.
/// - Quantities follow the one unit rule (`rules::units::psa_quantity`: bytes → GiB, rounded
///   up to a whole unit).
/// - One product's usage goes to one line: when a company has several PAYG lines of the same
///   product, the first (by agreement, then line id) carries it and the others are left
///   untouched with that reason — never billed twice.
///
/// Lines that two-way sync removed (`removed`: taken to 0 because their service was disabled on
/// the platform, R-TWO-1) are left at 0.
pub fn line_usage(
    mapping: &ProductMapping,
    lines: &[ActiveLine],
    figures: &Figures,
    removed: &[String],
) -> Vec<LineUsage> {
    let mut sorted: Vec<&ActiveLine> = lines.iter().collect();
    sorted.sort_by(|a, b| (&a.agreement_id, &a.line_id).cmp(&(&b.agreement_id, &b.line_id)));
    let mut carried: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    for l in sorted {
        let Some((m, role)) = mapping.items.iter().find_map(|m| {
            m.products()
                .find(|(_, p)| p.id == l.product_id)
                .map(|(r, _)| (m, r))
        }) else {
            continue;
        };
        let (action, rule) = match l.kind {
            _ if removed.contains(&l.line_id) => (
                LineAction::Untouched {
                    reason: "removed by two-way sync: its service is off on the platform".into(),
                },
                "R-TWO-1",
            ),
            LineKind::Prepaid => (
                LineAction::Untouched {
                    reason: "prepaid: its quantity is the quota, usage is not published".into(),
                },
                "R-PROV-4",
            ),
            LineKind::Payg if !carried.insert(l.product_id.as_str()) => (
                LineAction::Untouched {
                    reason: format!(
                        "another PAYG line of product {} carries its usage",
                        l.product_id
                    ),
                },
                "R-USE-1",
            ),
            LineKind::Payg => (
                LineAction::Set {
                    old: l.quantity,
                    new: psa_quantity(&m.item, figure(figures, &m.item, role)),
                },
                if m.item.is_storage() {
                    "R-USE-2"
                } else {
                    "R-USE-1"
                },
            ),
        };
        out.push(LineUsage {
            agreement_id: l.agreement_id.clone(),
            line_id: l.line_id.clone(),
            product_id: l.product_id.clone(),
            item: m.item.clone(),
            role,
            action,
            rule,
        });
    }
    out
}

#[cfg(test)]
mod tests;
