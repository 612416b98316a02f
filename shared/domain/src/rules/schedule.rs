//! SPEC §6 — when usage is published (R-USE-5, R-USE-6, R-USE-10). Pure: the partner's
//! reporting period, the slot of its last automatic publish (the ledger) and the time in; the
//! publish that is due out. Dates are the partner's, in its time zone.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The partner's reporting period (R-USE-5), partner file `usage: {period, day}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "period", rename_all = "snake_case")]
pub enum ReportingPeriod {
    /// The current calendar month, published daily from current usage.
    CurrentMonth,
    /// The previous calendar month, published daily from its usage report.
    PreviousMonth,
    /// A billing month: published once a month on day `day` (1–31; a shorter month publishes
    /// on its last day), covering the month before that day, from its usage report.
    BillingMonth { day: u32 },
}

impl Default for ReportingPeriod {
    fn default() -> Self {
        ReportingPeriod::BillingMonth { day: 1 }
    }
}

/// The days `[start, end)` a publish covers. `closed`: its figures come from the platform's
/// usage report for it; otherwise from current usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub closed: bool,
}

impl Period {
    /// A closed calendar month.
    pub fn month(year: i32, month: u32) -> Option<Period> {
        let start = NaiveDate::from_ymd_opt(year, month, 1)?;
        Some(Period {
            start,
            end: start.checked_add_months(Months::new(1))?,
            closed: true,
        })
    }

    /// `2026-11` when the period is one calendar month, else `2026-11-06..2026-12-05` (the
    /// last day shown).
    pub fn label(&self) -> String {
        let whole_month = self.start.day() == 1
            && self.start.checked_add_months(Months::new(1)) == Some(self.end);
        if whole_month {
            self.start.format("%Y-%m").to_string()
        } else {
            let last = self.end.pred_opt().unwrap_or(self.end);
            format!("{}..{}", self.start, last)
        }
    }
}

/// A manual publish's `--period YYYY-MM`: that closed calendar month.
pub fn parse_month(s: &str) -> Result<Period, String> {
    let bad = || format!("period {s:?} is not a month: write it as YYYY-MM, e.g. 2026-11");
    let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
    if y.len() != 4 || m.len() != 2 {
        return Err(bad());
    }
    let (y, m) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    Period::month(y, m).ok_or_else(bad)
}

/// An automatic publish that is due: `slot` is its nominal day (the ledger's key — one
/// automatic publish per partner and slot), `period` what it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Due {
    pub slot: NaiveDate,
    pub period: Period,
}

fn last_day(y: i32, m: u32) -> u32 {
    let first = NaiveDate::from_ymd_opt(y, m, 1).expect("a month");
    let next = first + Months::new(1);
    (next - Days::new(1)).day()
}

/// R-USE-6: the publish day of month `m` of `y` for day `n`: day n, or the month's last day
/// when the month is shorter.
pub fn publish_day(y: i32, m: u32, n: u32) -> NaiveDate {
    let d = n.clamp(1, last_day(y, m));
    NaiveDate::from_ymd_opt(y, m, d).expect("a day of the month")
}

fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1")
}

fn next_month(d: NaiveDate) -> NaiveDate {
    month_start(d) + Months::new(1)
}

fn prev_month(d: NaiveDate) -> NaiveDate {
    month_start(d) - Months::new(1)
}

/// The partner's date now.
pub fn local_today(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// R-USE-5, R-USE-6, R-USE-10: the oldest automatic publish that is due, given the slot of
/// the last one (`last`, from the ledger). The caller publishes it, records its slot and asks
/// again, so that missed periods are caught up one after another.
///
/// - Billing month on day N: exactly one automatic publish per calendar month, on day N or the
///   last day of a shorter month (**beyond**: the seeds skip such months). It covers the days
///   since the last one's slot — no gap and no overlap when N changes — or, for a partner's
///   first, the month before. A month's publish day that has passed unpublished (an outage, or
///   N changed to today or earlier) is due at once (**beyond**: the seeds skip that month); N
///   changed to a later day publishes on that day; N changed after this month's publish takes
///   effect next month.
/// - Current month: one publish a day of the month so far, from current usage. A missed day is
///   not replayed: a past day's current usage cannot be read again, and today's supersedes it.
/// - Previous month: one publish a day of the previous month from its report (the same numbers
///   every day of the month).
pub fn due_period(
    schedule: &ReportingPeriod,
    last: Option<NaiveDate>,
    now: DateTime<Utc>,
    tz: Tz,
) -> Option<Due> {
    let today = local_today(now, tz);
    match *schedule {
        ReportingPeriod::CurrentMonth => (last < Some(today)).then(|| Due {
            slot: today,
            period: Period {
                start: month_start(today),
                end: today + Days::new(1),
                closed: false,
            },
        }),
        ReportingPeriod::PreviousMonth => (last < Some(today)).then(|| Due {
            slot: today,
            period: Period {
                start: prev_month(today),
                end: month_start(today),
                closed: true,
            },
        }),
        ReportingPeriod::BillingMonth { day } => {
            let month = match last {
                Some(l) if month_start(l) >= month_start(today) => return None,
                Some(l) => next_month(l),
                None => month_start(today),
            };
            let slot = publish_day(month.year(), month.month(), day);
            if slot > today {
                return None;
            }
            let start = match last {
                Some(l) => l,
                None => {
                    let p = prev_month(month);
                    publish_day(p.year(), p.month(), day)
                }
            };
            Some(Due {
                slot,
                period: Period {
                    start,
                    end: slot,
                    closed: true,
                },
            })
        }
    }
}

/// When the next automatic publish is due (today when one is due now): for the status.
pub fn next_slot(
    schedule: &ReportingPeriod,
    last: Option<NaiveDate>,
    now: DateTime<Utc>,
    tz: Tz,
) -> NaiveDate {
    let today = local_today(now, tz);
    if due_period(schedule, last, now, tz).is_some() {
        return today;
    }
    match *schedule {
        ReportingPeriod::CurrentMonth | ReportingPeriod::PreviousMonth => today + Days::new(1),
        ReportingPeriod::BillingMonth { day } => {
            let this = publish_day(today.year(), today.month(), day);
            let done_this_month = last.is_some_and(|l| month_start(l) >= month_start(today));
            if this > today && !done_this_month {
                this
            } else {
                let n = next_month(today);
                publish_day(n.year(), n.month(), day)
            }
        }
    }
}

#[cfg(test)]
mod tests;
