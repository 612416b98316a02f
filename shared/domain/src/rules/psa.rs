//! SPEC §4 R-PROV-2 / R-PROV-3 — per PSA, in one place: whether an agreement counts today, how
//! its lines bill, and what an agreement that cannot be classified is reported as. Planning
//! (provisioning, two-way sync), the sync's read of lines and the Autotask adapter's prefetch
//! all ask [`PsaRules`]; the adapters only translate the vendors' wire shapes (the Autotask
//! adapter hands over the contract's PAYG field as the PSA holds it, [`PaygField`]).

use crate::model::{Agreement, Line, PaygField, PsaKind};
use chrono::NaiveDate;
use serde::Serialize;

/// How a line bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// Pay as you go: unlimited, usage published.
    Payg,
    /// Prepaid: a quota of the line's quantity.
    Prepaid,
}

/// Whether a line counts today, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum LineState {
    Active(LineKind),
    Inactive(&'static str),
}

/// The line rules of one PSA (R-PROV-2 ConnectWise, R-PROV-3 Autotask).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsaRules {
    ConnectWise,
    Autotask,
}

impl From<PsaKind> for PsaRules {
    fn from(psa: PsaKind) -> Self {
        match psa {
            PsaKind::Connectwise => PsaRules::ConnectWise,
            PsaKind::Autotask => PsaRules::Autotask,
        }
    }
}

impl PsaKind {
    /// The line rules of this PSA.
    pub fn rules(self) -> PsaRules {
        self.into()
    }
}

impl PsaRules {
    /// Whether an agreement counts today, by its status and dates.
    ///
    /// - R-PROV-2 (ConnectWise): not cancelled (nor a cancelled date today or earlier),
    ///   started, and not ended (or without end date).
    /// - R-PROV-3 (Autotask): active, between its start and end dates.
    ///
    /// An agreement that counts may still be unclassified ([`Self::agreement_problem`]).
    pub fn agreement_counts(self, a: &Agreement, today: NaiveDate) -> Result<(), &'static str> {
        let started = a.start_date.is_none_or(|d| d <= today);
        let ended = a.end_date.is_some_and(|d| d < today);
        match self {
            PsaRules::ConnectWise => {
                if a.cancelled || a.cancelled_date.is_some_and(|d| d <= today) {
                    Err("agreement cancelled")
                } else if !started {
                    Err("agreement not started")
                } else if !a.no_end_date && ended {
                    Err("agreement ended")
                } else {
                    Ok(())
                }
            }
            PsaRules::Autotask => {
                if a.cancelled {
                    Err("contract inactive")
                } else if !started {
                    Err("contract not started")
                } else if ended {
                    Err("contract ended")
                } else {
                    Ok(())
                }
            }
        }
    }

    /// How the agreement itself makes its lines bill: R-PROV-3, the Autotask contract's PAYG
    /// field makes every line PAYG, "No" or empty prepaid; a value that is neither, or a field
    /// the PSA does not have, is not guessed (`Err` with the reason to report). ConnectWise:
    /// `Ok(None)`, each line decides (R-PROV-2).
    pub fn agreement_kind(self, a: &Agreement) -> Result<Option<LineKind>, String> {
        if self == PsaRules::ConnectWise {
            return Ok(None);
        }
        let (id, name) = (&a.id, &a.name);
        match &a.payg_field {
            None => Ok(Some(LineKind::Prepaid)),
            Some(PaygField::Undefined { name: field }) => Err(format!(
                "contract {id} ({name}): the contract user-defined field {field:?} that marks \
                 PAYG contracts does not exist in Autotask — create it or configure its name; \
                 the contract is not classified as PAYG or prepaid (R-PROV-3)"
            )),
            Some(PaygField::Value { name: field, value }) => match payg_value(value.as_deref()) {
                Ok(Some(true)) => Ok(Some(LineKind::Payg)),
                Ok(_) => Ok(Some(LineKind::Prepaid)),
                Err(bad) => Err(format!(
                    "contract {id} ({name}): its {field:?} field is {bad:?}, neither yes nor \
                     no — set it to Yes (PAYG) or No (prepaid); the contract is not \
                     classified until then (R-PROV-3)"
                )),
            },
        }
    }

    /// R-PROV-3: why an agreement that counts today cannot be classified; its company is held
    /// (reported, left as it is) until it is fixed. None for one that does not count today.
    pub fn agreement_problem(self, a: &Agreement, today: NaiveDate) -> Option<String> {
        self.agreement_counts(a, today).ok()?;
        self.agreement_kind(a).err()
    }

    /// Whether an agreement's lines may count today: it counts and is classified.
    pub fn agreement_usable(self, a: &Agreement, today: NaiveDate) -> bool {
        self.agreement_counts(a, today).is_ok() && self.agreement_kind(a).is_ok()
    }

    /// Whether the agreement makes every line PAYG (an Autotask PAYG contract).
    pub fn payg_agreement(self, a: &Agreement) -> bool {
        self.agreement_kind(a) == Ok(Some(LineKind::Payg))
    }

    /// The state of a line today.
    ///
    /// - R-PROV-2 (ConnectWise): in an agreement that counts, an addition effective today or
    ///   earlier (without an effective date: from the agreement start) is PAYG with an empty
    ///   cancelled date, prepaid with one in the future, inactive when cancelled today or
    ///   earlier.
    /// - R-PROV-3 (Autotask): every line of a contract that counts bills as the contract's PAYG
    ///   field says; an unclassified contract's lines do not count.
    pub fn line_state(self, a: &Agreement, line: &Line, today: NaiveDate) -> LineState {
        if let Err(why) = self.agreement_counts(a, today) {
            return LineState::Inactive(why);
        }
        match self {
            PsaRules::ConnectWise => {
                if line.effective_date.is_some_and(|d| d > today) {
                    return LineState::Inactive("effective date in the future");
                }
                match line.cancelled_date {
                    None => LineState::Active(LineKind::Payg),
                    Some(d) if d > today => LineState::Active(LineKind::Prepaid),
                    Some(_) => LineState::Inactive("line cancelled"),
                }
            }
            PsaRules::Autotask => match self.agreement_kind(a) {
                Ok(kind) => LineState::Active(kind.unwrap_or(LineKind::Prepaid)),
                Err(_) => LineState::Inactive("contract not classified as PAYG or prepaid"),
            },
        }
    }
}

/// R-PROV-3: a PAYG field value. `Ok(Some(true))` PAYG, `Ok(Some(false))` prepaid, `Ok(None)`
/// unset (prepaid by default), `Err` a value that is neither.
pub fn payg_value(raw: Option<&str>) -> Result<Option<bool>, String> {
    let Some(v) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match v.to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "payg" | "on" => Ok(Some(true)),
        "no" | "n" | "false" | "0" | "off" | "prepaid" | "pre" => Ok(Some(false)),
        _ => Err(v.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_prov_3_payg_values() {
        for yes in ["Yes", "TRUE", "1", "PAYG", " y "] {
            assert_eq!(payg_value(Some(yes)), Ok(Some(true)), "{yes}");
        }
        for no in ["No", "false", "0", "Prepaid"] {
            assert_eq!(payg_value(Some(no)), Ok(Some(false)), "{no}");
        }
        assert_eq!(payg_value(None), Ok(None));
        assert_eq!(payg_value(Some("  ")), Ok(None));
        assert_eq!(payg_value(Some("maybe")), Err("maybe".to_owned()));
        assert_eq!(payg_value(Some("PAYG+PRE")), Err("PAYG+PRE".to_owned()));
    }

    fn contract(payg_field: Option<PaygField>) -> Agreement {
        Agreement {
            id: "7".into(),
            company_id: "c1".into(),
            name: "Backup".into(),
            start_date: Some("2026-01-01".parse().unwrap()),
            end_date: Some("2027-01-01".parse().unwrap()),
            payg_field,
            ..Agreement::default()
        }
    }

    fn field(value: Option<&str>) -> Option<PaygField> {
        Some(PaygField::Value {
            name: "PAYG".into(),
            value: value.map(str::to_owned),
        })
    }

    #[test]
    fn r_prov_3_the_payg_field_as_read_decides_payg_prepaid_or_a_problem() {
        let at = PsaRules::Autotask;
        type Row = (
            &'static str,
            Option<PaygField>,
            Result<Option<LineKind>, &'static str>,
        );
        let rows: [Row; 6] = [
            ("Yes -> PAYG", field(Some("Yes")), Ok(Some(LineKind::Payg))),
            (
                "No -> prepaid",
                field(Some("No")),
                Ok(Some(LineKind::Prepaid)),
            ),
            ("empty -> prepaid", field(None), Ok(Some(LineKind::Prepaid))),
            (
                "no field read -> prepaid",
                None,
                Ok(Some(LineKind::Prepaid)),
            ),
            (
                "neither -> reported",
                field(Some("PAYG and prepaid")),
                Err("its \"PAYG\" field is \"PAYG and prepaid\", neither yes nor no"),
            ),
            (
                "no such field -> reported",
                Some(PaygField::Undefined {
                    name: "Acronis PAYG".into(),
                }),
                Err("field \"Acronis PAYG\" that marks PAYG contracts does not exist"),
            ),
        ];
        for (case, f, want) in rows {
            let got = at.agreement_kind(&contract(f));
            match (got, want) {
                (Ok(k), Ok(w)) => assert_eq!(k, w, "{case}"),
                (Err(why), Err(w)) => assert!(
                    why.contains(w)
                        && why.contains("contract 7 (Backup)")
                        && why.contains("R-PROV-3"),
                    "{case}: {why}"
                ),
                (got, _) => panic!("{case}: {got:?}"),
            }
        }
        // ConnectWise agreements carry no such field: each line decides.
        assert_eq!(
            PsaRules::ConnectWise.agreement_kind(&contract(field(Some("maybe")))),
            Ok(None)
        );
    }
}
