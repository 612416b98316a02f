//! Unit tests of the fake platform's wire formats.

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::wire::{am_time, parse_ts, rfc3339};
use crate::common::num_json;

#[test]
fn formats() {
    let d = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    assert_eq!(am_time(&d), "2026-11-22T00:00:00.000000");
    assert_eq!(rfc3339(&d), "2026-11-22T00:00:00.000000Z");
    assert_eq!(parse_ts("2026-11-22T00:00:00.000000"), Some(d));
    assert_eq!(parse_ts("2026-11-22T00:00:00Z"), Some(d));
    assert_eq!(parse_ts("2026-11-22T01:00:00+01:00"), Some(d));
    assert_eq!(num_json(5.0), json!(5));
    assert_eq!(num_json(2.5), json!(2.5));
}
