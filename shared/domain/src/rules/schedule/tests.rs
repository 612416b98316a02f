use super::*;
use chrono::{Duration, TimeZone, Timelike};
use std::collections::BTreeMap;

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// Noon of a day in the zone, as UTC.
fn at(day: &str, tz: Tz) -> DateTime<Utc> {
    tz.from_local_datetime(&d(day).and_hms_opt(12, 0, 0).unwrap())
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn billing(day: u32) -> ReportingPeriod {
    ReportingPeriod::BillingMonth { day }
}

const UTC: Tz = chrono_tz::UTC;

#[test]
fn r_use_6_the_seed_003_faq_day_changes() {
    // Configured 6, today the 3rd, changed to 5: published on the 5th.
    let last = Some(d("2026-11-06"));
    assert_eq!(
        due_period(&billing(5), last, at("2026-12-03", UTC), UTC),
        None
    );
    assert_eq!(
        due_period(&billing(5), last, at("2026-12-04", UTC), UTC),
        None
    );
    let due = due_period(&billing(5), last, at("2026-12-05", UTC), UTC).unwrap();
    assert_eq!(due.slot, d("2026-12-05"));
    assert_eq!(
        next_slot(&billing(5), last, at("2026-12-03", UTC), UTC),
        d("2026-12-05")
    );
    // Changed to the 1st instead: the seeds skip this month; here it publishes at once,
    // covering the days since the last publish (no gap).
    let due = due_period(&billing(1), last, at("2026-12-03", UTC), UTC).unwrap();
    assert_eq!(due.slot, d("2026-12-01"));
    assert_eq!(
        due.period,
        Period {
            start: d("2026-11-06"),
            end: d("2026-12-01"),
            closed: true
        }
    );
    // After this month's publish, a change takes effect next month.
    let last = Some(d("2026-12-01"));
    assert_eq!(
        due_period(&billing(2), last, at("2026-12-03", UTC), UTC),
        None
    );
    assert_eq!(
        next_slot(&billing(2), last, at("2026-12-03", UTC), UTC),
        d("2027-01-02")
    );
}

#[test]
fn r_use_6_a_day_beyond_the_months_end_publishes_on_its_last_day() {
    for (day, month_day, want) in [
        (31, "2027-02-27", None),
        (31, "2027-02-28", Some("2027-02-28")),
        (30, "2028-02-29", Some("2028-02-29")),
        (31, "2027-04-30", Some("2027-04-30")),
        (29, "2027-02-28", Some("2027-02-28")),
    ] {
        let before = d(month_day) - Months::new(1);
        let last = Some(publish_day(before.year(), before.month(), day));
        let got = due_period(&billing(day), last, at(month_day, UTC), UTC).map(|x| x.slot);
        assert_eq!(got, want.map(d), "day {day} on {month_day}");
    }
}

#[test]
fn r_use_6_a_first_publish_covers_the_month_before_its_day() {
    let due = due_period(&billing(15), None, at("2026-12-20", UTC), UTC).unwrap();
    assert_eq!(due.slot, d("2026-12-15"));
    assert_eq!(
        (due.period.start, due.period.end),
        (d("2026-11-15"), d("2026-12-15"))
    );
    assert_eq!(due.period.label(), "2026-11-15..2026-12-14");
    assert_eq!(
        due_period(&billing(15), None, at("2026-12-14", UTC), UTC),
        None
    );
}

#[test]
fn r_use_5_daily_periods_current_and_previous_month() {
    let now = at("2026-12-02", UTC);
    let cur = due_period(
        &ReportingPeriod::CurrentMonth,
        Some(d("2026-12-01")),
        now,
        UTC,
    )
    .unwrap();
    assert_eq!(cur.slot, d("2026-12-02"));
    assert_eq!(
        cur.period,
        Period {
            start: d("2026-12-01"),
            end: d("2026-12-03"),
            closed: false
        }
    );
    let prev = due_period(&ReportingPeriod::PreviousMonth, None, now, UTC).unwrap();
    assert_eq!(prev.period, Period::month(2026, 11).unwrap());
    assert_eq!(prev.period.label(), "2026-11");
    for kind in [
        ReportingPeriod::CurrentMonth,
        ReportingPeriod::PreviousMonth,
    ] {
        assert_eq!(
            due_period(&kind, Some(d("2026-12-02")), now, UTC),
            None,
            "{kind:?}"
        );
        assert_eq!(
            next_slot(&kind, Some(d("2026-12-02")), now, UTC),
            d("2026-12-03")
        );
    }
}

#[test]
fn r_use_6_the_partners_time_zone_decides_the_day() {
    // 2026-11-30 11:30 UTC is already 2026-12-01 in Kiritimati (UTC+14), not in New York.
    let now = Utc.with_ymd_and_hms(2026, 11, 30, 11, 30, 0).unwrap();
    let last = Some(d("2026-11-01"));
    let kiri: Tz = "Pacific/Kiritimati".parse().unwrap();
    let ny: Tz = "America/New_York".parse().unwrap();
    assert_eq!(
        due_period(&billing(1), last, now, kiri).map(|x| x.slot),
        Some(d("2026-12-01"))
    );
    assert_eq!(due_period(&billing(1), last, now, ny), None);
}

#[test]
fn r_use_5_a_manual_period_is_a_calendar_month() {
    assert_eq!(
        parse_month("2026-11").unwrap(),
        Period::month(2026, 11).unwrap()
    );
    for bad in ["2026-13", "26-11", "2026/11", "november", "2026-1"] {
        let e = parse_month(bad).unwrap_err();
        assert!(e.contains(bad) && e.contains("YYYY-MM"), "{e}");
    }
}

/// What one simulated partner saw: per calendar month of a slot, (slot, local date published,
/// period).
type Published = BTreeMap<(i32, u32), Vec<(NaiveDate, NaiveDate, Period)>>;

/// Hourly ticks over the 36 months of 2026–2028 in the partner's zone; `skip(local date)` drops the ticks of
/// an outage; `day_at(local date)` is the day N in force. Returns what was published.
fn simulate(
    tz: Tz,
    skip: impl Fn(NaiveDate) -> bool,
    day_at: impl Fn(NaiveDate) -> u32,
) -> (Published, usize) {
    // Local midnight of 2026-01-01 to the end of 2028, in the partner's zone.
    let start = tz
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc);
    let end = d("2029-01-01");
    let mut out = Published::new();
    let mut last = None;
    let mut now = start;
    let mut ticks = 0;
    while local_today(now, tz) < end {
        let today = local_today(now, tz);
        if !skip(today) {
            ticks += 1;
            let sched = billing(day_at(today));
            let mut rounds = 0;
            while let Some(due) = due_period(&sched, last, now, tz) {
                rounds += 1;
                assert!(rounds <= 3, "catching up runs away at {now}");
                out.entry((due.slot.year(), due.slot.month()))
                    .or_default()
                    .push((due.slot, today, due.period));
                last = Some(due.slot);
            }
        }
        now += Duration::hours(1);
    }
    (out, ticks)
}

fn zones() -> [Tz; 3] {
    [
        chrono_tz::UTC,
        "Europe/Berlin".parse().unwrap(),
        "Pacific/Kiritimati".parse().unwrap(),
    ]
}

/// Every month of the three years published exactly once, periods contiguous.
fn once_a_month_contiguous(p: &Published, what: &str) {
    assert_eq!(p.len(), 36, "{what}: months published");
    let mut prev: Option<NaiveDate> = None;
    for ((y, m), v) in p {
        assert_eq!(v.len(), 1, "{what}: {y}-{m} published {} times", v.len());
        let (slot, _, period) = v[0];
        assert_eq!(period.end, slot, "{what}");
        assert!(period.closed);
        if let Some(prev) = prev {
            assert_eq!(
                period.start, prev,
                "{what}: a gap or an overlap before {slot}"
            );
        }
        prev = Some(slot);
    }
}

#[test]
fn r_use_6_r_use_10_every_period_is_published_exactly_once_over_36_months() {
    let mut cases = 0;
    let mut ticks = 0;
    for tz in zones() {
        for n in 1..=31 {
            // (a) No outage: on day N, or the last day of a shorter month.
            let (p, t) = simulate(tz, |_| false, |_| n);
            once_a_month_contiguous(&p, &format!("{tz} N={n}"));
            for ((y, m), v) in &p {
                let (slot, published, _) = v[0];
                assert_eq!(slot, publish_day(*y, *m, n));
                assert_eq!(published, slot, "{tz} N={n}: published on its day");
            }
            ticks += t;
            cases += 1;
            // (b) Outages of 1, 2 and 3 days from a publish day on: caught up at the first tick
            // after, on schedule again the next month.
            for len in 1..=3u64 {
                let outage = |day: NaiveDate| {
                    [(2026, 3), (2027, 2), (2028, 6)].iter().any(|(y, m)| {
                        let from = publish_day(*y, *m, n);
                        day >= from && day < from + Days::new(len)
                    })
                };
                let (p, t) = simulate(tz, outage, |_| n);
                let what = format!("{tz} N={n} outage {len}d");
                once_a_month_contiguous(&p, &what);
                for ((y, m), v) in &p {
                    let (slot, published, _) = v[0];
                    assert_eq!(slot, publish_day(*y, *m, n), "{what}");
                    let hit = [(2026, 3), (2027, 2), (2028, 6)].contains(&(*y, *m));
                    let want = if hit { slot + Days::new(len) } else { slot };
                    assert_eq!(published, want, "{what}: {y}-{m}");
                }
                ticks += t;
                cases += 1;
            }
            // (c) N changed on the 15th both ways and back: N' = 32 - N in 2027-01, N again in
            // 2028-01. A day moved to today or earlier publishes at once when the month is not
            // published yet; otherwise next month on the new day.
            let changed = |day: NaiveDate| {
                let in_change = |y: i32, m: u32| {
                    (day.year(), day.month()) > (y, m)
                        || ((day.year(), day.month()) == (y, m) && day.day() >= 15)
                };
                if in_change(2027, 1) && !in_change(2028, 1) {
                    32 - n
                } else {
                    n
                }
            };
            let (p, t) = simulate(tz, |_| false, changed);
            let what = format!("{tz} N={n} changed");
            once_a_month_contiguous(&p, &what);
            for ((y, m), v) in &p {
                let (slot, published, _) = v[0];
                let in_force = changed(published);
                assert_eq!(slot, publish_day(*y, *m, in_force), "{what}: {y}-{m}");
                let change_day = NaiveDate::from_ymd_opt(*y, *m, 15).unwrap();
                let moved_to_the_past = [(2027, 1), (2028, 1)].contains(&(*y, *m))
                    && slot < change_day
                    && published == change_day;
                assert!(
                    published == slot || moved_to_the_past,
                    "{what}: {y}-{m} slot {slot} published {published}"
                );
            }
            ticks += t;
            cases += 1;
        }
    }
    println!("r_use_6 calendar: {cases} cases, {ticks} hourly ticks checked");
    assert_eq!(cases, 3 * 31 * 5);
}

#[test]
fn r_use_5_daily_kinds_publish_once_a_day_over_a_year() {
    for tz in zones() {
        for kind in [
            ReportingPeriod::CurrentMonth,
            ReportingPeriod::PreviousMonth,
        ] {
            let mut last = None;
            let mut days = BTreeMap::new();
            let mut now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
            while now.year() < 2027 {
                // A day's outage on the 10th of every month: that day is not replayed.
                if local_today(now, tz).day() != 10 {
                    while let Some(due) = due_period(&kind, last, now, tz) {
                        *days.entry(due.slot).or_insert(0) += 1;
                        assert_eq!(due.slot, local_today(now, tz));
                        assert!(due.period.end > due.period.start);
                        last = Some(due.slot);
                    }
                }
                now += Duration::hours(1);
                let _ = now.hour();
            }
            assert!(days.values().all(|n| *n == 1), "{tz} {kind:?}: a day twice");
            assert!(days.len() >= 365 - 12, "{tz} {kind:?}: {} days", days.len());
        }
    }
}
