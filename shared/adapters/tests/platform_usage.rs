//! The platform adapter's usage port (R-USE) against the fake platform on 127.0.0.1.

use adapters::http::{HttpSettings, RetryPolicy};
use adapters::platform::PlatformApi;
use domain::model::TenantKind;
use domain::ports::{Measure, TenantDirectory, UsageSource};
use domain::rules::settings::PlatformCredentials;
use sandbox::{PartnerAccount, PlatformFake};
use std::net::SocketAddr;
use std::time::Duration;

fn settings() -> HttpSettings {
    HttpSettings {
        retry: RetryPolicy::quick(),
        timeout: Duration::from_secs(10),
        concurrency: 8,
        deadline: Default::default(),
    }
}

async fn fake() -> (PlatformFake, PartnerAccount, PlatformApi) {
    let f = PlatformFake::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("fake starts");
    let p = f.add_partner("Partner");
    let api = PlatformApi::new(
        &f.url(),
        &p.tenant_id,
        &PlatformCredentials {
            client_id: p.client_id.clone(),
            client_secret: p.client_secret.clone().into(),
        },
        adapters::http::client(Duration::from_secs(10)),
        &settings(),
    )
    .expect("client builds");
    (f, p, api)
}

/// The (id, parent, kind) of the tenants under `root`, sorted, `root` itself left out.
async fn subtree_of(api: &PlatformApi, root: &str) -> Vec<(String, String, TenantKind)> {
    let mut got: Vec<_> = api
        .subtree(root)
        .await
        .expect("subtree")
        .into_iter()
        .filter(|t| t.id != root)
        .map(|t| (t.id, t.parent_id.unwrap_or_default(), t.kind))
        .collect();
    got.sort();
    got
}

#[tokio::test]
async fn r_use_3_the_subtree_lists_every_tenant_under_one_with_parent_and_kind() {
    let (f, p, api) = fake().await;
    let direct = f.add_customer(&p.tenant_id, "Direct", None);
    let sub = f.add_sub_partner(&p.tenant_id, "Sub");
    let deep = f.add_customer(&sub, "Deep", None);
    let pt = p.tenant_id.clone();
    let mut want = vec![
        (direct, pt.clone(), TenantKind::Customer),
        (sub.clone(), pt, TenantKind::Partner),
        (deep.clone(), sub.clone(), TenantKind::Customer),
    ];
    want.sort();
    assert_eq!(subtree_of(&api, &p.tenant_id).await, want);
    assert_eq!(
        subtree_of(&api, &sub).await,
        vec![(deep, sub.clone(), TenantKind::Customer)]
    );
}

#[tokio::test]
async fn r_use_2_current_usage_of_150_tenants_reads_absolute_values() {
    let (f, p, api) = fake().await;
    let ids: Vec<String> = (0..150)
        .map(|i| f.add_customer(&p.tenant_id, &format!("C{i}"), None))
        .collect();
    f.set_usage(&ids[149], "storage", Some(&p.default_infra_id), 42.0);
    let got = api.current_usage(&ids).await.expect("usage");
    assert_eq!(got.len(), 150);
    let last = got
        .iter()
        .find(|t| t.tenant_id == ids[149])
        .expect("tenant");
    let fig = last
        .figures
        .iter()
        .find(|u| u.item.name == "storage")
        .expect("storage figure");
    assert_eq!((fig.value, fig.measure), (42.0, Measure::Standard));
}

fn requests(api: &PlatformApi) -> u64 {
    api.counter().load(std::sync::atomic::Ordering::Relaxed)
}

/// publish-usage checks its tenants with `customers_keeping(ids, keep nothing)`: one listing
/// per 100 ids, never one item read per tenant because nothing was kept.
#[tokio::test]
async fn r_use_7_checking_tenants_without_their_items_reads_no_items() {
    let (f, p, api) = fake().await;
    let ids: Vec<String> = (0..5)
        .map(|i| f.add_customer(&p.tenant_id, &format!("C{i}"), None))
        .collect();
    api.check_login().await.expect("token");
    let before = requests(&api);
    let (tenants, _) = api
        .customers_keeping(&ids, &|_| false)
        .await
        .expect("listing");
    assert_eq!(tenants.len(), 5);
    assert_eq!(
        requests(&api) - before,
        1,
        "one uuids listing, no item reads"
    );
}

#[tokio::test]
async fn r_use_5_current_usage_reads_100_tenants_a_request() {
    let (f, p, api) = fake().await;
    let ids: Vec<String> = (0..150)
        .map(|i| f.add_customer(&p.tenant_id, &format!("C{i}"), None))
        .collect();
    api.check_login().await.expect("token");
    let before = requests(&api);
    api.current_usage(&ids).await.expect("usage");
    assert_eq!(requests(&api) - before, 2);
}

fn nov(d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn at(day: &str, hour: u32) -> chrono::DateTime<chrono::Utc> {
    let d: chrono::NaiveDate = day.parse().unwrap();
    d.and_hms_opt(hour, 0, 0).unwrap().and_utc()
}

fn figure(u: &[domain::ports::TenantUsage], tenant: &str, item: &str, m: Measure) -> Option<f64> {
    u.iter()
        .find(|t| t.tenant_id == tenant)?
        .figures
        .iter()
        .find(|f| f.item.name == item && f.measure == m)
        .map(|f| f.value)
}

#[tokio::test]
async fn r_use_5_a_closed_period_reads_the_usage_report_and_removes_it() {
    let (f, p, api) = fake().await;
    f.set_now(at("2026-12-01", 7));
    f.set_report_polls_in_progress(2);
    let a = f.add_customer(&p.tenant_id, "A", None);
    let b = f.add_customer(&p.tenant_id, "B", None);
    let other = f.add_customer(&p.tenant_id, "Not asked", None);
    let infra = Some(p.default_infra_id.as_str());
    // A report has rows for items that are on.
    for (t, item, i) in [
        (&a, "workstations", None),
        (&a, "storage", infra),
        (&b, "servers", None),
        (&other, "servers", None),
    ] {
        f.set_quota_by_hand(t, item, i, None, None);
    }
    f.set_usage_on(nov(3), &a, "workstations", None, None, 4.0);
    f.set_usage_on(nov(20), &a, "workstations", None, None, 6.0);
    f.set_usage_on(nov(20), &a, "storage", infra, Some("storage_class2"), 50.0);
    f.set_usage_on(nov(28), &b, "servers", None, None, 2.0);
    f.set_usage_on(nov(28), &other, "servers", None, None, 9.0);
    // After the period: not in it.
    f.set_usage(&a, "workstations", None, 11.0);
    let got = api
        .period_usage(
            &[a.clone(), b.clone()],
            nov(1),
            at("2026-12-01", 0).date_naive(),
        )
        .await
        .expect("the report is read");
    let domain::ports::PeriodUsage::Ready(got) = got else {
        panic!("ready at 7 am: {got:?}")
    };
    assert_eq!(
        figure(&got, &a, "workstations", Measure::Standard),
        Some(6.0)
    );
    assert_eq!(figure(&got, &a, "storage", Measure::Class2), Some(50.0));
    assert_eq!(figure(&got, &b, "servers", Measure::Standard), Some(2.0));
    assert!(
        got.iter().all(|t| t.tenant_id != other),
        "only the asked tenants"
    );
    assert_eq!(
        f.reports(),
        Vec::<serde_json::Value>::new(),
        "the report is deleted"
    );
}

#[tokio::test]
async fn r_use_5_before_6_am_the_period_is_not_ready_and_late_history_is_transient() {
    let (f, p, api) = fake().await;
    let a = f.add_customer(&p.tenant_id, "A", None);
    f.set_now(at("2026-12-01", 3));
    let got = api
        .period_usage(
            std::slice::from_ref(&a),
            nov(1),
            at("2026-12-01", 0).date_naive(),
        )
        .await
        .expect("not ready is an answer, not an error");
    assert!(
        matches!(&got, domain::ports::PeriodUsage::NotReady(why) if why.contains("not ready")),
        "{got:?}"
    );
    f.set_now(at("2026-12-01", 8));
    f.set_usage_history_late(true);
    let e = api
        .period_usage(&[a], nov(1), at("2026-12-01", 0).date_naive())
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert_eq!(f.reports(), Vec::<serde_json::Value>::new());
}
