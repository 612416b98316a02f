//! Plans are data: every change a run would make, each with the rule ID that decided it.
//! A dry run prints the plan (R-PROV-9); apply executes it.

use crate::model::{CompanyRecord, Contact, ItemKey, ProductRef, Quota};
use serde::Serialize;

/// One change to the platform (or to our mapping) that a sync wants to make.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// Create a customer tenant for a company (R-PROV-1).
    CreateTenant {
        company_id: String,
        tenant_name: String,
        /// The name used when the platform refuses `tenant_name` because another tenant holds
        /// it (R-CO-7).
        unique_name: String,
        trial: bool,
        two_factor: bool,
        /// Administrator who receives the activation e-mail, if any.
        admin: Option<Contact>,
        rule: &'static str,
    },
    /// Map the company to a tenant that already carries its id in `customer_id`.
    AdoptTenant {
        company_id: String,
        tenant_id: String,
        rule: &'static str,
    },
    /// Set an offering item's quota (and status). `tenant_id` is None for a tenant this plan creates.
    SetQuota {
        company_id: String,
        tenant_id: Option<String>,
        item: ItemKey,
        old: Option<Quota>,
        new: Quota,
        enabled: bool,
        rule: &'static str,
    },
    EnableTenant {
        company_id: String,
        tenant_id: String,
        rule: &'static str,
    },
    DisableTenant {
        company_id: String,
        tenant_id: String,
        rule: &'static str,
    },
    DeleteTenant {
        company_id: String,
        tenant_id: String,
        rule: &'static str,
    },
    SwitchToProduction {
        company_id: String,
        tenant_id: String,
        rule: &'static str,
    },
    /// Complete the set-up steps a tenant is still owed (R-PROV-11).
    FinishSetup {
        company_id: String,
        tenant_id: String,
        steps: Vec<crate::model::SetupStep>,
        rule: &'static str,
    },
    /// Add a product to an agreement with a quantity (two-way sync, R-TWO-1, R-TWO-2).
    AddLine {
        company_id: String,
        agreement_id: String,
        product: ProductRef,
        quantity: f64,
        rule: &'static str,
    },
    /// Set a line's quantity (two-way sync: 0 removes a service, R-TWO-1, R-TWO-2).
    SetLineQuantity {
        company_id: String,
        agreement_id: String,
        line_id: String,
        product: ProductRef,
        old: f64,
        new: f64,
        rule: &'static str,
    },
}

impl Change {
    pub fn rule(&self) -> &'static str {
        match self {
            Change::CreateTenant { rule, .. }
            | Change::AdoptTenant { rule, .. }
            | Change::SetQuota { rule, .. }
            | Change::EnableTenant { rule, .. }
            | Change::DisableTenant { rule, .. }
            | Change::DeleteTenant { rule, .. }
            | Change::SwitchToProduction { rule, .. }
            | Change::FinishSetup { rule, .. }
            | Change::AddLine { rule, .. }
            | Change::SetLineQuantity { rule, .. } => rule,
        }
    }

    pub fn company_id(&self) -> &str {
        match self {
            Change::CreateTenant { company_id, .. }
            | Change::AdoptTenant { company_id, .. }
            | Change::SetQuota { company_id, .. }
            | Change::EnableTenant { company_id, .. }
            | Change::DisableTenant { company_id, .. }
            | Change::DeleteTenant { company_id, .. }
            | Change::SwitchToProduction { company_id, .. }
            | Change::FinishSetup { company_id, .. }
            | Change::AddLine { company_id, .. }
            | Change::SetLineQuantity { company_id, .. } => company_id,
        }
    }

    /// A change written to the PSA (two-way sync) rather than the platform.
    pub fn writes_psa(&self) -> bool {
        matches!(
            self,
            Change::AddLine { .. } | Change::SetLineQuantity { .. }
        )
    }

    /// A quota that goes from non-zero (or unknown) to zero: what R-PROV-10 counts.
    pub fn zeroes_a_quota(&self) -> bool {
        matches!(self, Change::SetQuota { old, new, .. }
            if new.is_zero() && old.is_some_and(|o| !o.is_zero()))
    }

    /// One line for people: what changes and why.
    pub fn describe(&self) -> String {
        match self {
            Change::CreateTenant {
                company_id,
                tenant_name,
                unique_name,
                trial,
                rule,
                ..
            } => format!(
                "company {company_id}: create tenant \"{tenant_name}\"{} [{rule}; \"{unique_name}\" if another tenant holds the name, R-CO-7]",
                if *trial { " (trial)" } else { "" }
            ),
            Change::AdoptTenant {
                company_id,
                tenant_id,
                rule,
            } => format!("company {company_id}: map to existing tenant {tenant_id} [{rule}]"),
            Change::SetQuota {
                company_id,
                item,
                old,
                new,
                rule,
                ..
            } => format!(
                "company {company_id}: {item} quota {} -> {new} [{rule}]",
                old.map_or("(none)".to_owned(), |o| o.to_string())
            ),
            Change::EnableTenant {
                company_id,
                tenant_id,
                rule,
            } => format!("company {company_id}: enable tenant {tenant_id} [{rule}]"),
            Change::DisableTenant {
                company_id,
                tenant_id,
                rule,
            } => format!("company {company_id}: disable tenant {tenant_id} [{rule}]"),
            Change::DeleteTenant {
                company_id,
                tenant_id,
                rule,
            } => format!("company {company_id}: delete tenant {tenant_id} [{rule}]"),
            Change::FinishSetup {
                company_id,
                tenant_id,
                steps,
                rule,
            } => format!(
                "company {company_id}: complete the set-up of tenant {tenant_id} ({}) [{rule}]",
                steps
                    .iter()
                    .map(|s| match s {
                        crate::model::SetupStep::TwoFactor => "two-factor on".to_owned(),
                        crate::model::SetupStep::Pricing(m) => format!("{m:?} mode").to_lowercase(),
                        crate::model::SetupStep::InviteAdmin(_) => "administrator invited".to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Change::SwitchToProduction {
                company_id,
                tenant_id,
                rule,
            } => format!(
                "company {company_id}: switch tenant {tenant_id} from trial to production [{rule}]"
            ),
            Change::AddLine {
                company_id,
                agreement_id,
                product,
                quantity,
                rule,
            } => format!(
                "company {company_id}: add {} to agreement {agreement_id}, quantity {quantity} [{rule}]",
                product.identifier
            ),
            Change::SetLineQuantity {
                company_id,
                agreement_id,
                product,
                old,
                new,
                rule,
                ..
            } => format!(
                "company {company_id}: {} in agreement {agreement_id} quantity {old} -> {new}{} [{rule}]",
                product.identifier,
                if *new == 0.0 { " (removed)" } else { "" }
            ),
        }
    }
}

/// The plan for one company: the changes, and the record to store once they are applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompanyPlan {
    pub company_id: String,
    pub changes: Vec<Change>,
    /// The company's record after this plan is applied (None: nothing to keep for it).
    #[serde(skip)]
    pub record: Option<CompanyRecord>,
    /// Why nothing can be done for this company (R-CO-3, missing tenant, …); recorded as its error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Two-way sync: the platform changes up to this time are carried to the PSA by this plan;
    /// once it is applied they count as ours (R-TWO-1).
    #[serde(skip)]
    pub platform_seen: Option<chrono::DateTime<chrono::Utc>>,
    /// Two-way sync: a held platform change from this time on must stay a person's (R-TWO-1).
    #[serde(skip)]
    pub hold_from: Option<chrono::DateTime<chrono::Utc>>,
    /// What the run read of the tenant's managed items, kept when the plan sets quotas: the
    /// write is refused if the tenant no longer holds them (R-REL-4).
    #[serde(skip)]
    pub basis: Vec<crate::ports::QuotaSet>,
}

impl CompanyPlan {
    /// Whether the plan creates a tenant (R-PROV-1).
    pub fn creates_tenant(&self) -> bool {
        self.changes
            .iter()
            .any(|c| matches!(c, Change::CreateTenant { .. }))
    }
}

/// The plan for a partner run.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Plan {
    pub partner: String,
    pub changes: Vec<Change>,
    /// Companies that cannot be synced, with the reason.
    pub problems: Vec<CompanyProblem>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompanyProblem {
    pub company_id: String,
    pub reason: String,
}

impl Plan {
    pub fn zeroed_quotas(&self) -> usize {
        self.changes.iter().filter(|c| c.zeroes_a_quota()).count()
    }
}
