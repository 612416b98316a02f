//! The Autotask adapter against `sandbox::AutotaskFake` on 127.0.0.1.

mod common;

use adapters::autotask::{Autotask, AutotaskConfig, AutotaskLimits};
use adapters::http::{HttpSettings, RetryPolicy};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use domain::model::{Agreement, PaygField, PsaKind};
use domain::ports::{AgreementQuery, CompanyQuery, ContractWriter, PsaDirectory};
use domain::rules::psa::{LineKind, PsaRules};
use domain::rules::settings::{AutotaskCredentials, PlatformCredentials, PsaCredentials};
use domain::PortError;
use sandbox::{AtNewCompany, AtNewContract, AutotaskFake, Fault};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const USER: &str = "api-user@acme.example";
const SECRET: &str = "Sup3r-Secret-Value";
const CODE: &str = "TRACKING-ID-4242";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

fn today() -> NaiveDate {
    now().date_naive()
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

async fn fake() -> AutotaskFake {
    let f = AutotaskFake::start().await.expect("fake starts");
    f.set_now(now());
    f.add_api_user(USER, SECRET, CODE);
    f
}

fn settings() -> HttpSettings {
    HttpSettings {
        retry: RetryPolicy::quick(),
        timeout: Duration::from_secs(10),
        concurrency: 8,
        deadline: Default::default(),
    }
}

fn zone(f: &AutotaskFake) -> String {
    format!("{}/atservicesrest/", f.url())
}

fn creds(user: &str, secret: &str, code: &str) -> AutotaskCredentials {
    AutotaskCredentials {
        username: user.into(),
        secret: secret.into(),
        integration_code: code.into(),
    }
}

fn client_as(f: &AutotaskFake, user: &str, secret: &str, code: &str) -> Autotask {
    Autotask::new(
        &creds(user, secret, code),
        adapters::http::client(Duration::from_secs(10)),
        &settings(),
        &zone(f),
    )
    .expect("client builds")
    .with_limits(AutotaskLimits::quick())
    .with_today(today)
}

fn client(f: &AutotaskFake) -> Autotask {
    client_as(f, USER, SECRET, CODE)
}

/// R-PROV-3 as the domain decides it from what the adapter read.
fn kind(a: &Agreement) -> Result<Option<LineKind>, String> {
    PsaRules::Autotask.agreement_kind(a)
}

fn route(f: &AutotaskFake, method: &str, path: &str) -> u64 {
    f.stats()
        .by_route
        .get(&format!("{method} /ATServicesRest/V1.0/{path}"))
        .copied()
        .unwrap_or(0)
}

fn company(name: &str) -> AtNewCompany {
    AtNewCompany {
        name: name.into(),
        ..Default::default()
    }
}

fn contract(company_id: i64, name: &str, payg: Option<&str>) -> AtNewContract {
    AtNewContract {
        company_id,
        name: name.into(),
        status_active: true,
        udfs: payg
            .map(|v| vec![("PAYG".to_owned(), v.to_owned())])
            .unwrap_or_default(),
        ..Default::default()
    }
}

fn no_secret_in(e: &PortError) {
    let m = e.to_string();
    assert!(!m.contains(SECRET), "secret leaked: {m}");
    assert!(!m.contains(CODE), "integration code leaked: {m}");
}

// ---------------------------------------------------------------------------------------------
// R-SET-3 / R-SET-4: zone discovery, log-in, bad credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn r_set_3_zone_is_discovered_lazily_and_login_works() {
    let f = fake().await;
    let at = client(&f);
    assert_eq!(at.requests(), 0, "nothing is sent before first use");
    assert!(at.api_base().is_none());
    at.check_login().await.expect("log-in works");
    assert_eq!(
        at.api_base().unwrap().as_str(),
        format!("{}/ATServicesRest/V1.0/", f.url())
    );
    let zone_calls = f
        .stats()
        .by_route
        .iter()
        .filter(|(k, _)| k.contains("ZoneInformation"))
        .map(|(_, n)| *n)
        .sum::<u64>();
    assert_eq!(zone_calls, 1);
    // cached: a second log-in does not discover again
    at.check_login().await.unwrap();
    let again = f
        .stats()
        .by_route
        .iter()
        .filter(|(k, _)| k.contains("ZoneInformation"))
        .map(|(_, n)| *n)
        .sum::<u64>();
    assert_eq!(again, 1);
}

#[tokio::test]
async fn r_set_4_each_bad_credential_is_named_clearly_and_never_echoed() {
    let f = fake().await;
    f.add_user_without_api_access("person@acme.example", SECRET);
    let cases: [(&str, Autotask, &str); 4] = [
        (
            "unknown user",
            client_as(&f, "nobody@acme.example", SECRET, CODE),
            "zone information could not be determined — check the API user name",
        ),
        (
            "bad integration code",
            client_as(&f, USER, SECRET, "NOT-THE-CODE"),
            "integration code",
        ),
        (
            "wrong secret",
            client_as(&f, USER, "wrong-secret-123", CODE),
            "check the API user's secret",
        ),
        (
            "user without API access",
            client_as(&f, "person@acme.example", SECRET, CODE),
            "no API access",
        ),
    ];
    for (case, at, needle) in cases {
        f.reset_stats();
        let e = at.check_login().await.expect_err(case);
        assert!(
            matches!(e, PortError::Credentials { .. }),
            "{case}: not a credentials error: {e}"
        );
        assert!(e.to_string().contains(needle), "{case}: {e}");
        no_secret_in(&e);
        assert!(!e.to_string().contains("NOT-THE-CODE"), "{case}: {e}");
        assert!(!e.to_string().contains("wrong-secret-123"), "{case}: {e}");
        // permanent: answered at once, not retried
        assert!(
            f.stats().requests <= 2,
            "{case}: retried a permanent error: {:?}",
            f.stats().by_route
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Companies: full (3 pages), changed since, by ids (batched), primary contacts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn companies_full_changed_since_and_by_ids_in_batches() {
    let f = fake().await;
    let mut ids = Vec::new();
    for i in 0..1200 {
        let mut c = company(&format!("Customer {i:04}"));
        if i == 7 {
            c.company_type = Some("Prospect".into());
            c.primary_contact = Some(("Ada".into(), "Lovelace".into(), "ada@c7.example".into()));
        }
        ids.push(f.add_company(c));
    }
    let at = client(&f);

    // full listing: 1,200 companies over 3 pages of 500 (one POST, then nextPageUrl twice)
    f.reset_stats();
    let all = at.companies(&CompanyQuery::default()).await.unwrap();
    assert_eq!(all.len(), 1200);
    assert_eq!(
        route(&f, "POST", "Companies/query") + route(&f, "GET", "Companies/query"),
        3
    );
    let seven = all.iter().find(|c| c.id == ids[7].to_string()).unwrap();
    assert_eq!(seven.name, "Customer 0007");
    assert_eq!(
        seven.identifier,
        ids[7].to_string(),
        "no companyNumber: the id"
    );
    assert_eq!(seven.types, vec!["Prospect".to_owned()], "label, not value");
    assert!(seven.active);
    assert_eq!(seven.updated_at, Some(now()));
    let contact = seven.primary_contact.as_ref().unwrap();
    assert_eq!(contact.full_name(), "Ada Lovelace");
    assert_eq!(contact.email.as_deref(), Some("ada@c7.example"));
    assert!(all
        .iter()
        .filter(|c| c.id != seven.id)
        .all(|c| c.types == ["Customer"] && c.primary_contact.is_none()));

    // changed since: only the companies modified after the instant
    f.set_now(now() + chrono::Duration::minutes(5));
    f.update_company(ids[3], |c| c.company_name = "Renamed".into());
    f.update_company(ids[1100], |c| c.is_active = false);
    let changed = at
        .companies(&CompanyQuery {
            changed_since: Some(now()),
            ids: vec![],
        })
        .await
        .unwrap();
    let mut names: Vec<(String, bool)> =
        changed.iter().map(|c| (c.name.clone(), c.active)).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            ("Customer 1100".to_owned(), false),
            ("Renamed".to_owned(), true)
        ]
    );

    // by ids: 1,200 ids -> 3 batched `id in (…)` queries, not one call per company
    f.reset_stats();
    let wanted: Vec<String> = ids.iter().map(i64::to_string).collect();
    let by_ids = at
        .companies(&CompanyQuery {
            changed_since: None,
            ids: wanted,
        })
        .await
        .unwrap();
    assert_eq!(by_ids.len(), 1200);
    assert_eq!(route(&f, "POST", "Companies/query"), 3);
    assert_eq!(route(&f, "GET", "Companies/query"), 0);
    assert_eq!(
        route(&f, "POST", "Contacts/query"),
        3,
        "contacts batched too"
    );

    // the trait's primary contact
    let c = at
        .primary_contact(&ids[7].to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.email.as_deref(), Some("ada@c7.example"));
    assert!(at
        .primary_contact(&ids[8].to_string())
        .await
        .unwrap()
        .is_none());
}

// ---------------------------------------------------------------------------------------------
// R-PROV-3: contracts and the PAYG field
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn r_prov_3_contracts_carry_the_payg_flag_and_unknown_values_are_reported() {
    let f = fake().await;
    let acme = f.add_company(company("Acme"));
    let other = f.add_company(company("Other"));
    let yes = f.add_contract(contract(acme, "PAYG yes", Some("Yes")));
    let no = f.add_contract(contract(acme, "PAYG no", Some("No")));
    let unset = f.add_contract(contract(acme, "PAYG unset", None));
    let odd = f.add_contract(contract(other, "PAYG odd", Some("PAYG and prepaid")));
    let inactive = f.add_contract(AtNewContract {
        status_active: false,
        ..contract(other, "Inactive", Some("Yes"))
    });
    let hours = f.add_contract(contract(other, "Block hours", None));
    f.update_contract(hours, |c| c.contract_type = 4);
    let at = client(&f);

    let all = at.agreements(&AgreementQuery::default()).await.unwrap();
    let by_id: BTreeMap<String, _> = all.iter().map(|a| (a.id.clone(), a)).collect();
    assert_eq!(by_id.len(), 5, "only Recurring Service contracts");
    assert!(!by_id.contains_key(&hours.to_string()));
    let get = |id: i64| *by_id.get(&id.to_string()).unwrap();
    // The adapter hands over the field as Autotask holds it; the domain decides (R-PROV-3).
    assert_eq!(
        get(yes).payg_field,
        Some(PaygField::Value {
            name: "PAYG".into(),
            value: Some("Yes".into())
        })
    );
    assert_eq!(kind(get(yes)), Ok(Some(LineKind::Payg)));
    assert_eq!(kind(get(no)), Ok(Some(LineKind::Prepaid)));
    assert_eq!(kind(get(unset)), Ok(Some(LineKind::Prepaid)));
    let a = get(yes);
    assert_eq!(a.company_id, acme.to_string());
    assert_eq!(a.name, "PAYG yes");
    assert_eq!(a.start_date, Some(d("2026-11-01")));
    assert_eq!(a.end_date, Some(d("2027-10-31")));
    assert!(!a.no_end_date && !a.cancelled);
    assert!(get(inactive).cancelled, "status not Active");
    let odd_a = get(odd);
    let why = kind(odd_a).expect_err("reported, not guessed");
    assert!(
        why.contains("PAYG and prepaid") && why.contains("R-PROV-3"),
        "{why}"
    );

    // by company ids (batched `companyID in (…)`), and changed since
    let acme_only = at
        .agreements(&AgreementQuery {
            changed_since: None,
            company_ids: vec![acme.to_string()],
        })
        .await
        .unwrap();
    assert_eq!(acme_only.len(), 3);
    f.set_now(now() + chrono::Duration::minutes(1));
    f.update_contract(no, |c| c.contract_name = "PAYG no (renamed)".into());
    let changed = at
        .agreements(&AgreementQuery {
            changed_since: Some(now()),
            company_ids: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        changed.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        vec![no.to_string()]
    );
}

#[tokio::test]
async fn r_prov_3_payg_picklist_udf_with_a_configured_name() {
    let f = fake().await;
    f.define_contract_picklist_udf("Acronis PAYG", &["Yes", "No"]);
    let c = f.add_company(company("Acme"));
    let yes = f.add_contract(AtNewContract {
        udfs: vec![("Acronis PAYG".into(), "1".into())],
        ..contract(c, "picklist yes", None)
    });
    let no = f.add_contract(AtNewContract {
        udfs: vec![("Acronis PAYG".into(), "2".into())],
        ..contract(c, "picklist no", None)
    });
    let at = client(&f).with_payg_field("Acronis PAYG");
    let all = at.agreements(&AgreementQuery::default()).await.unwrap();
    let flag = |id: i64| {
        all.iter()
            .find(|a| a.id == id.to_string())
            .map(kind)
            .unwrap()
    };
    assert_eq!(
        flag(yes),
        Ok(Some(LineKind::Payg)),
        "picklist value 1 is labelled Yes"
    );
    assert_eq!(flag(no), Ok(Some(LineKind::Prepaid)));

    // a PAYG field name the tenant does not have: every contract is reported, none guessed
    let wrong = client(&f).with_payg_field("PAYG (typo)");
    let all = wrong.agreements(&AgreementQuery::default()).await.unwrap();
    assert!(all
        .iter()
        .all(|a| kind(a).is_err_and(|p| p.contains("does not exist"))));
}

// ---------------------------------------------------------------------------------------------
// Lines and products
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn lines_carry_the_current_units_after_an_adjustment() {
    let f = fake().await;
    let c = f.add_company(company("Acme"));
    let k = f.add_contract(contract(c, "Backup", Some("No")));
    let ws = f.add_service("Cyber Protect workstation", "Monthly");
    let srv = f.add_service("Cyber Protect server", "Monthly");
    let ws_line = f.add_contract_service(k, ws, 5.0);
    let srv_line = f.add_contract_service(k, srv, 2.0);
    let at = client(&f);

    let mut lines = at.lines(&k.to_string()).await.unwrap();
    lines.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].id, ws_line.to_string());
    assert_eq!(lines[0].agreement_id, k.to_string());
    assert_eq!(lines[0].product_id, ws.to_string());
    assert_eq!(lines[0].quantity, 5.0);
    assert_eq!(lines[0].effective_date, Some(d("2026-11-01")));
    assert_eq!(lines[0].cancelled_date, None);
    assert_eq!(lines[0].less_included, 0.0);
    assert_eq!(lines[1].quantity, 2.0);

    // +3 effective today: the period is split, today's units are 8
    f.adjust_units(ws_line, 3.0);
    let lines = at.lines(&k.to_string()).await.unwrap();
    let l = lines.iter().find(|l| l.id == ws_line.to_string()).unwrap();
    assert_eq!(l.quantity, 8.0);
    assert_eq!(l.effective_date, Some(today()));
    assert_eq!(
        lines
            .iter()
            .find(|l| l.id == srv_line.to_string())
            .unwrap()
            .quantity,
        2.0
    );

    // a contract without services has no lines
    let empty = f.add_contract(contract(c, "Empty", None));
    assert!(at.lines(&empty.to_string()).await.unwrap().is_empty());
}

// R-TWO-1
#[tokio::test]
async fn r_two_1_lines_are_added_once_and_quantities_are_absolute() {
    let f = fake().await;
    let c = f.add_company(company("Acme"));
    let k = f.add_contract(contract(c, "Backup", Some("No")));
    let ws = f.add_service("Cyber Protect workstation", "Monthly");
    let at = client(&f);
    let kid = k.to_string();

    let line = at.add_line(&kid, &ws.to_string()).await.unwrap();
    assert_eq!(
        f.units(line.parse().unwrap()),
        0.0,
        "a new service starts at 0"
    );
    at.set_line_quantity(&kid, &line, None, 5.0).await.unwrap();
    // The same call again (a retry) changes nothing: no second adjustment.
    at.set_line_quantity(&kid, &line, None, 5.0).await.unwrap();
    assert_eq!(f.units(line.parse().unwrap()), 5.0);
    assert_eq!(f.adjustments(k).len(), 1);
    // A second add of the same service is refused by Autotask, not duplicated.
    assert!(at.add_line(&kid, &ws.to_string()).await.is_err());
    assert_eq!(f.contract_services(k).len(), 1);

    // Planned from 3 units, but the line holds 5 now: left alone.
    let e = at
        .set_line_quantity(&kid, &line, Some(3.0), 0.0)
        .await
        .unwrap_err();
    assert!(matches!(e, PortError::Conflict { .. }), "{e}");
    assert_eq!(f.units(line.parse().unwrap()), 5.0);
    at.set_line_quantity(&kid, &line, Some(5.0), 0.0)
        .await
        .unwrap();
    assert_eq!(f.units(line.parse().unwrap()), 0.0);

    // A service that does not exist is named: Autotask answers 200 `{"item": null}` for a
    // missing id (its spec has no 404), which is "not found", not an empty service.
    let e = at.add_line(&kid, "999999").await.unwrap_err();
    assert!(matches!(e, PortError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("999999"), "{e}");
    assert_eq!(f.contract_services(k).len(), 1, "nothing was added");
}

#[tokio::test]
async fn a_configured_day_picks_the_units_of_its_period() {
    // `psa-bridge sync --now` pins the day whose ContractServiceUnits count (AutotaskConfig
    // `clock`); without it the client would use the real date.
    let f = fake().await;
    let c = f.add_company(company("Acme"));
    let k = f.add_contract(AtNewContract {
        start_date: Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()),
        end_date: Some(Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).unwrap()),
        ..contract(c, "Backup", Some("No"))
    });
    let ws = f.add_service("Cyber Protect workstation", "Monthly");
    let line = f.add_contract_service(k, ws, 5.0);
    // +3 from the December period on.
    f.set_now(Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap());
    f.adjust_units(line, 3.0);
    f.set_now(now());
    let units_on = |day: &str| {
        let config = AutotaskConfig {
            zone_url: zone(&f),
            limits: AutotaskLimits::quick(),
            clock: Arc::new(domain::ports::FixedClock(
                d(day).and_hms_opt(12, 0, 0).unwrap().and_utc(),
            )),
            ..Default::default()
        };
        let at = Autotask::from_config(
            &creds(USER, SECRET, CODE),
            adapters::http::client(Duration::from_secs(10)),
            &settings(),
            &config,
        )
        .unwrap();
        let k = k.to_string();
        async move { at.lines(&k).await.unwrap()[0].quantity }
    };
    assert_eq!(units_on("2026-11-22").await, 5.0);
    assert_eq!(units_on("2026-12-05").await, 8.0);
}

#[tokio::test]
async fn products_are_the_active_services() {
    let f = fake().await;
    let ws = f.add_service("Cyber Protect workstation", "Monthly");
    let stor = f.add_service("Cloud storage (GB)", "Yearly");
    let at = client(&f);
    let mut products = at.products().await.unwrap();
    products.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        products
            .iter()
            .map(|p| (p.id.clone(), p.identifier.clone()))
            .collect::<Vec<_>>(),
        vec![
            (ws.to_string(), "Cyber Protect workstation".to_owned()),
            (stor.to_string(), "Cloud storage (GB)".to_owned())
        ]
    );
    // picklists come from entityInformation, not from constants
    let periods: Vec<String> = at
        .period_types()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.label)
        .collect();
    assert_eq!(periods, ["Monthly", "Quarterly", "Semi-Annual", "Yearly"]);
}

#[tokio::test]
async fn a_full_listing_reads_the_lines_in_batches() {
    let f = fake().await;
    let ws = f.add_service("Cyber Protect workstation", "Monthly");
    let mut contracts = Vec::new();
    for i in 0..30 {
        let c = f.add_company(company(&format!("C{i}")));
        let k = f.add_contract(contract(c, "Backup", Some("Yes")));
        f.add_contract_service(k, ws, i as f64);
        contracts.push(k);
    }
    let at = client(&f);
    let all = at.agreements(&AgreementQuery::default()).await.unwrap();
    assert_eq!(all.len(), 30);
    f.reset_stats();
    for (i, k) in contracts.iter().enumerate() {
        let lines = at.lines(&k.to_string()).await.unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].quantity, i as f64);
    }
    assert_eq!(
        f.stats().requests,
        0,
        "the lines were read with the agreements"
    );
    // handed out once: asking again reads afresh
    at.lines(&contracts[0].to_string()).await.unwrap();
    assert_eq!(route(&f, "POST", "ContractServices/query"), 1);
}

// ---------------------------------------------------------------------------------------------
// Request economy (DESIGN "Outbound HTTP", R-REL-1)
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn r_rel_1_at_most_three_requests_per_endpoint_under_ten_concurrent_line_reads() {
    let f = fake().await;
    let ws = f.add_service("Cyber Protect workstation", "Monthly");
    let mut contracts = Vec::new();
    for i in 0..10 {
        let c = f.add_company(company(&format!("C{i}")));
        let k = f.add_contract(contract(c, "Backup", None));
        f.add_contract_service(k, ws, 1.0);
        contracts.push(k);
    }
    let at = client(&f);
    at.check_login().await.unwrap();
    f.reset_stats();
    f.faults().set_latency(Duration::from_millis(40));
    let reads = contracts.iter().map(|k| {
        let at = at.clone();
        let k = k.to_string();
        async move { at.lines(&k).await }
    });
    let results = futures::future::join_all(reads).await;
    assert!(results
        .iter()
        .all(|r| r.as_ref().is_ok_and(|l| l.len() == 1)));
    let stats = f.stats();
    assert!(!stats.max_in_flight_per_endpoint.is_empty());
    for (endpoint, n) in &stats.max_in_flight_per_endpoint {
        assert!(*n <= 3, "{endpoint}: {n} in flight");
    }
    let cs = stats
        .max_in_flight_per_endpoint
        .get(&format!("{CODE} ContractServices"))
        .copied()
        .unwrap_or(0);
    assert!(cs >= 2, "the limit is used, not serialised: {cs}");
    // no request was turned away by the thread limit (it would show as a retry)
    assert_eq!(route(&f, "POST", "ContractServices/query"), 10);
    assert_eq!(route(&f, "POST", "ContractServiceUnits/query"), 10);
}

#[tokio::test]
async fn r_rel_1_threshold_slows_down_above_half_and_refuses_near_the_limit() {
    let f = fake().await;
    f.add_service("Cyber Protect workstation", "Monthly");
    f.set_threshold(20);
    let at = client(&f).with_limits(AutotaskLimits {
        check_every: 0,
        ..AutotaskLimits::quick()
    });
    at.check_budget(1).await.unwrap();
    assert!(!at.slowed_down());
    for _ in 0..11 {
        at.products().await.unwrap();
    }
    assert_eq!(at.threshold().await.unwrap(), (11, 20));
    at.check_budget(1)
        .await
        .expect("12 of 20 is below the stop line");
    assert!(at.slowed_down(), "above 50%: slowed down");
    let e = at.check_budget(10).await.expect_err("21 > 95% of 20");
    assert!(e.is_retryable(), "{e}");
    let m = e.to_string();
    assert!(m.contains("11 of 20") && m.contains("95%"), "{m}");

    // with automatic checks (every 100 requests), a run on a nearly spent hour stops before
    // its first query
    let auto = client(&f);
    f.reset_stats();
    let e = auto.companies(&CompanyQuery::default()).await.unwrap_err();
    assert!(e.to_string().contains("of 20 requests"), "{e}");
    assert_eq!(route(&f, "POST", "Companies/query"), 0);
}

#[tokio::test]
async fn r_rel_1_the_vendor_block_at_100_percent_stops_the_run_quickly() {
    let f = fake().await;
    f.add_service("Cyber Protect workstation", "Monthly");
    f.set_threshold(2);
    let at = client(&f).with_limits(AutotaskLimits {
        check_every: 0,
        ..AutotaskLimits::quick()
    });
    at.products().await.unwrap();
    at.products().await.unwrap();
    let started = std::time::Instant::now();
    let e = at.products().await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("Retry-After"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn the_request_budget_of_a_client_is_a_hard_stop() {
    let f = fake().await;
    f.add_service("Cyber Protect workstation", "Monthly");
    let at = client(&f).with_limits(AutotaskLimits {
        request_budget: 4,
        check_every: 0,
        ..AutotaskLimits::quick()
    });
    // zone discovery + 3 queries
    for _ in 0..3 {
        at.products().await.unwrap();
    }
    let e = at.products().await.unwrap_err();
    assert!(e.is_retryable());
    assert!(e.to_string().contains("request budget of 4"), "{e}");
    assert_eq!(at.requests(), 4);
}

#[tokio::test]
async fn r_rel_1_retries_on_429_and_500_then_succeeds() {
    let f = fake().await;
    f.add_service("Cyber Protect workstation", "Monthly");
    let at = client(&f);
    at.check_login().await.unwrap();
    f.reset_stats();
    f.faults().push(
        Fault::status(429, Some(0))
            .path_contains("Services/query")
            .times(2),
    );
    f.faults().push(
        Fault::status(500, None)
            .path_contains("Services/query")
            .times(2),
    );
    let products = at.products().await.unwrap();
    assert_eq!(products.len(), 1);
    assert_eq!(route(&f, "POST", "Services/query"), 5);

    // a server that keeps failing: transient, after the policy's attempts
    f.faults().push(
        Fault::status(503, None)
            .path_contains("Services/query")
            .times(50),
    );
    let e = at.products().await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("gave up"), "{e}");
    f.faults().clear();
}

#[tokio::test]
async fn r_rel_1_an_unreachable_zone_is_retried_then_transient_not_a_credentials_error() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/atservicesrest/", closed.local_addr().unwrap());
    drop(closed);
    let at = Autotask::new(
        &creds(USER, SECRET, CODE),
        adapters::http::client(Duration::from_secs(2)),
        &settings(),
        &url,
    )
    .unwrap();
    let e = at.check_login().await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(e.to_string().contains("gave up after"), "{e}");
    no_secret_in(&e);
    assert_eq!(at.requests(), u64::from(RetryPolicy::quick().max_attempts));
}

// ---------------------------------------------------------------------------------------------
// Credentials never leave the API origin: a spoofed nextPageUrl
// ---------------------------------------------------------------------------------------------

/// A minimal HTTP/1.1 server: answers each request with `answer(method, path, body)`.
async fn tiny_server(
    answer: impl Fn(&str, &str, &str) -> String + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let answer = Arc::new(answer);
    let seen = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            seen.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if rest.len() >= len {
                            break (head.to_owned(), rest[..len].to_owned());
                        }
                    }
                };
                let mut first = head.lines().next().unwrap_or("").split(' ');
                let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
                let reply = answer(method, path, &body);
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (url, hits)
}

#[tokio::test]
async fn a_spoofed_next_page_url_on_another_origin_is_not_followed() {
    let (elsewhere, stolen) = tiny_server(|_, _, _| "{}".to_owned()).await;
    let origin = Arc::new(std::sync::Mutex::new(String::new()));
    let me = origin.clone();
    let (url, _) = tiny_server(move |method, path, body| {
        let me = me.lock().unwrap().clone();
        let page = |items: &str, next: &str| {
            format!(r#"{{"items":[{items}],"pageDetails":{{"count":1,"requestCount":500,"prevPageUrl":null,"nextPageUrl":{next}}}}}"#)
        };
        let company = |id: u32| {
            format!(r#"{{"id":{id},"companyName":"C{id}","companyType":1,"isActive":true,"lastTrackedModifiedDateTime":"2026-11-22T00:00:00"}}"#)
        };
        let p = path.to_ascii_lowercase();
        if p.contains("zoneinformation") {
            format!(r#"{{"zoneName":"tiny","url":"{me}/ATServicesRest/","webUrl":"{me}/","ci":1}}"#)
        } else if p.contains("thresholdinformation") {
            r#"{"externalRequestThreshold":10000,"requestThresholdTimeframe":60,"currentTimeframeRequestCount":1}"#.to_owned()
        } else if p.contains("entityinformation") {
            r#"{"fields":[{"name":"companyType","isPickList":true,"picklistValues":[{"value":"1","label":"Customer","isActive":true}]}]}"#.to_owned()
        } else if p.contains("contacts/query") {
            page("", "null")
        } else if method == "POST" && p.contains("companies/query") {
            if body.contains(r#""op":"gt""#) {
                // the id-cursor continuation: the last page
                page(&company(3), "null")
            } else {
                page(
                    &format!("{},{}", company(1), company(2)),
                    &format!(r#""{elsewhere}/ATServicesRest/V1.0/Companies/query?paging=%7B%7D""#),
                )
            }
        } else {
            r#"{"errors":["unexpected"]}"#.to_owned()
        }
    })
    .await;
    *origin.lock().unwrap() = url.clone();
    let at = Autotask::new(
        &creds(USER, SECRET, CODE),
        adapters::http::client(Duration::from_secs(10)),
        &settings(),
        &format!("{url}/atservicesrest/"),
    )
    .unwrap()
    .with_limits(AutotaskLimits::quick());
    let companies = at.companies(&CompanyQuery::default()).await.unwrap();
    let ids: Vec<&str> = companies.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"], "continued by id on the API origin");
    assert_eq!(
        stolen.load(Ordering::SeqCst),
        0,
        "nothing was sent to the other origin"
    );
}

// ---------------------------------------------------------------------------------------------
// The connector builds Autotask clients (R-SET-3)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn r_set_3_the_connector_builds_an_autotask_client_for_the_configured_zone() {
    let f = fake().await;
    let partner = common::partner(PsaKind::Autotask);
    let clients = adapters::connector::clients_from_with(
        &partner,
        &PsaCredentials::Autotask(creds(USER, SECRET, CODE)),
        &PlatformCredentials {
            client_id: "id".into(),
            client_secret: "secret".into(),
        },
        adapters::http::client(Duration::from_secs(10)),
        &settings(),
        &AutotaskConfig {
            zone_url: zone(&f),
            limits: AutotaskLimits::quick(),
            ..Default::default()
        },
    )
    .unwrap();
    clients.psa.check_login().await.unwrap();
    let (psa_requests, platform_requests) = (clients.counters)();
    assert_eq!((psa_requests, platform_requests), (2, 0));
}
