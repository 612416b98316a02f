//! Vendor timestamps, read one way for every vendor: RFC 3339, or zone-less UTC
//! (`2026-11-22T00:00:00`, optionally with fractions), as ConnectWise, Autotask and the
//! platform write them.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// A vendor timestamp: RFC 3339, or zone-less (then UTC), with or without fractions.
pub fn parse_time(t: &str) -> Option<DateTime<Utc>> {
    let t = t.trim();
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

/// The day of a vendor timestamp (its UTC date), or of a bare `YYYY-MM-DD…` prefix.
pub fn parse_day(t: &str) -> Option<NaiveDate> {
    parse_time(t)
        .map(|d| d.date_naive())
        .or_else(|| t.trim().get(..10).and_then(|d| d.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_times_parse_with_and_without_zone_and_fractions() {
        let t = parse_time("2026-11-22T10:20:30").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-22T10:20:30+00:00");
        assert_eq!(parse_time("2026-11-22T10:20:30Z"), Some(t));
        assert_eq!(parse_time(" 2026-11-22T11:20:30+01:00 "), Some(t));
        assert_eq!(
            parse_time("2026-11-22T10:20:30.123").unwrap().timestamp(),
            t.timestamp()
        );
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn days_come_from_timestamps_or_dates() {
        let day: NaiveDate = "2026-11-22".parse().unwrap();
        assert_eq!(parse_day("2026-11-22T23:59:59Z"), Some(day));
        assert_eq!(parse_day("2026-11-22T00:00:00"), Some(day));
        assert_eq!(parse_day("2026-11-22"), Some(day));
        assert_eq!(parse_day("22/11/2026"), None);
    }
}
