//! Unit tests of the Autotask adapter's pure parts (the adapter against the fake is in
//! `tests/autotask.rs`).

use super::errors::{replace_ci, retryable};
use super::transport::entity_of;
use super::*;
use crate::http::parse_time;
use reqwest::StatusCode;

#[test]
fn next_page_urls_elsewhere_are_not_followed() {
    let api = Url::parse("https://webservices5.autotask.net/ATServicesRest/V1.0/").unwrap();
    let same =
        "https://webservices5.autotask.net/ATServicesRest/V1.0/Companies/query?paging=%7B%7D";
    assert_eq!(
        follow_next_page(&api, same).map(|u| u.to_string()),
        Some(same.to_owned())
    );
    for other in [
        "https://evil.example/ATServicesRest/V1.0/Companies/query?paging=%7B%7D",
        "http://webservices5.autotask.net/ATServicesRest/V1.0/Companies/query",
        "https://webservices5.autotask.net:8443/ATServicesRest/V1.0/Companies/query",
        "https://webservices5.autotask.net.evil.example/ATServicesRest/V1.0/x",
        "/ATServicesRest/V1.0/Companies/query",
        "not a url",
    ] {
        assert!(follow_next_page(&api, other).is_none(), "{other}");
    }
}

#[test]
fn r_set_3_discovered_zones_must_be_autotask_hosts() {
    let prod = zone_base_url(PRODUCTION_ZONE_URL).unwrap();
    let ok = |u: &str| zone_url_allowed(&prod, &Url::parse(u).unwrap());
    assert!(ok("https://webservices5.autotask.net/ATServicesRest/"));
    assert!(ok("https://webservices.autotask.net/ATServicesRest/"));
    assert!(!ok("http://webservices5.autotask.net/ATServicesRest/"));
    assert!(!ok(
        "https://webservices5.autotask.net.evil.example/ATServicesRest/"
    ));
    assert!(!ok("https://evil.example/ATServicesRest/"));
    assert!(!ok("https://127.0.0.1/ATServicesRest/"));
    let local = zone_base_url("http://127.0.0.1:4000").unwrap();
    assert!(zone_url_allowed(
        &local,
        &Url::parse("http://127.0.0.1:4000/ATServicesRest/").unwrap()
    ));
    assert!(!zone_url_allowed(
        &local,
        &Url::parse("http://127.0.0.1:4001/ATServicesRest/").unwrap()
    ));
    assert!(zone_base_url("http://zones.example.com/").is_err());
}

#[test]
fn r_rel_1_only_server_failures_are_retried() {
    let s500 = StatusCode::INTERNAL_SERVER_ERROR;
    assert!(retryable(
        s500,
        r#"{"errors":["An unexpected error has occurred. Please try again."]}"#
    ));
    assert!(retryable(s500, "<html>oops</html>"));
    assert!(retryable(StatusCode::SERVICE_UNAVAILABLE, "{}"));
    assert!(!retryable(
        s500,
        r#"{"errors":["IntegrationCode is invalid."]}"#
    ));
    assert!(!retryable(
        s500,
        r#"{"errors":["Unable to find field 'nope' in the Company entity."]}"#
    ));
    assert!(!retryable(StatusCode::UNAUTHORIZED, "{}"));
}

#[test]
fn entity_of_names_the_endpoint() {
    let u = |s: &str| Url::parse(s).unwrap();
    assert_eq!(
        entity_of(&u("http://h/ATServicesRest/V1.0/Companies/query?x=1")),
        "Companies"
    );
    assert_eq!(
        entity_of(&u(
            "http://h/atservicesrest/v1.0/contractServiceUnits/query"
        )),
        "contractServiceUnits"
    );
    assert_eq!(
        entity_of(&u("http://h/ATServicesRest/V1.0/ThresholdInformation")),
        "ThresholdInformation"
    );
}

#[test]
fn r_set_2_credentials_are_scrubbed_case_insensitively() {
    assert_eq!(
        replace_ci("User 'API@Acme.example' is not", "api@acme.example", "[x]"),
        "User '[x]' is not"
    );
    assert_eq!(replace_ci("aXa", "x", "-"), "a-a");
}

#[test]
fn autotask_times_parse_with_and_without_zone() {
    let t = parse_time("2026-11-22T10:20:30").unwrap();
    assert_eq!(at_format(t), "2026-11-22T10:20:30");
    assert_eq!(
        parse_time("2026-11-22T10:20:30.123").unwrap().timestamp(),
        t.timestamp()
    );
    assert_eq!(parse_time("2026-11-22T10:20:30Z"), Some(t));
}
