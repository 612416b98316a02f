use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine;
use reqwest::{Client, StatusCode};
use sandbox::{NewCompany, Sandbox};
use serde_json::{json, Value};

#[tokio::test]
async fn control_api() {
    let sb = Sandbox::start().await.unwrap();
    let http = Client::new();
    let url = sb.platform.url();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with('/'));

    // a 503 fault via the control API
    let r = http
        .post(format!("{url}/_sandbox/faults"))
        .json(
            &json!({"method": "POST", "path_contains": "/idp/token", "times": 1,
            "kind": {"type": "status", "code": 503, "retry_after_secs": 1}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let p = sb.platform.add_partner("P");
    let tok = || {
        http.post(format!("{url}/api/2/idp/token"))
            .basic_auth(&p.client_id, Some(&p.client_secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(
        tok().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(tok().await.unwrap().status(), StatusCode::OK);

    // stats via HTTP (control calls are not counted)
    let stats: Value = http
        .get(format!("{url}/_sandbox/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests"], 2);
    assert_eq!(stats["writes"], 0);
    assert_eq!(stats["by_route"]["POST /api/2/idp/token"], 2);

    // latency + clear
    http.post(format!("{url}/_sandbox/latency"))
        .json(&json!({"ms": 25}))
        .send()
        .await
        .unwrap();
    let start = Instant::now();
    tok().await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(25));
    http.delete(format!("{url}/_sandbox/faults"))
        .send()
        .await
        .unwrap();
    http.post(format!("{url}/_sandbox/reset-stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(sb.platform.stats().requests, 0);
    // the faulted request never reached the handler
    assert_eq!(sb.platform.token_requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_is_tracked_with_added_latency() {
    let sb = Sandbox::start().await.unwrap();
    let cw = &sb.connectwise;
    cw.add_instance("acme", "pub", "priv");
    cw.faults().set_latency(Duration::from_millis(250));
    let http = Client::new();
    let auth = base64::engine::general_purpose::STANDARD.encode("acme+pub:priv");
    let url = format!("{}/v2025_1/apis/3.0/system/info", cw.url());
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, url, auth) = (http.clone(), url.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            http.get(url)
                .header("Authorization", format!("Basic {auth}"))
                .header("clientId", "x")
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    let s = cw.stats();
    assert_eq!(s.requests, 8);
    assert_eq!(s.max_in_flight, 8);
}

/// 10,000 companies and 10,000 tenants: full forward-only and cursor paging stay fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_10k() {
    let sb = Sandbox::start().await.unwrap();
    let cw = &sb.connectwise;
    cw.add_instance("acme", "pub", "priv");
    let t = Instant::now();
    for i in 0..10_000 {
        cw.add_company(
            "acme",
            NewCompany {
                identifier: format!("C{i:05}"),
                name: format!("Company {i}"),
                type_name: Some("Client".into()),
                primary_contact: Some(("A".into(), "B".into(), format!("a{i}@x.test"))),
                ..Default::default()
            },
        );
    }
    let p = sb.platform.add_partner("Big MSP");
    for i in 0..10_000 {
        sb.platform
            .add_customer(&p.tenant_id, &format!("Customer {i:05}"), None);
    }
    let seeded = t.elapsed();

    let http = Client::new();
    let auth = base64::engine::general_purpose::STANDARD.encode("acme+pub:priv");
    let t = Instant::now();
    let mut url = format!(
        "{}/v2025_1/apis/3.0/company/companies?pageSize=1000&conditions={}",
        cw.url(),
        "deletedFlag%3Dfalse"
    );
    let mut n = 0;
    loop {
        let r = http
            .get(&url)
            .header("Authorization", format!("Basic {auth}"))
            .header("clientId", "x")
            .header("pagination-type", "forward-only")
            .send()
            .await
            .unwrap();
        let next = r
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_string());
        n += r.json::<Vec<Value>>().await.unwrap().len();
        match next {
            Some(l) => url = l[1..l.find('>').unwrap()].to_string(),
            None => break,
        }
    }
    assert_eq!(n, 10_000);
    let cw_paging = t.elapsed();

    let token: Value = http
        .post(format!("{}/api/2/idp/token", sb.platform.url()))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().unwrap().to_string();
    let t = Instant::now();
    let mut after: Option<String> = None;
    let mut n = 0;
    loop {
        let mut rb = http
            .get(format!("{}/api/2/tenants", sb.platform.url()))
            .bearer_auth(&bearer)
            .query(&[("limit", "500")]);
        rb = match &after {
            Some(a) => rb.query(&[("after", a)]),
            None => rb.query(&[
                ("subtree_root_id", p.tenant_id.as_str()),
                ("expand_offering_items", "true"),
            ]),
        };
        let page: Value = rb.send().await.unwrap().json().await.unwrap();
        n += page["items"].as_array().unwrap().len();
        match page["paging"]["cursors"]["after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => break,
        }
    }
    assert_eq!(n, 10_001);
    let pf_paging = t.elapsed();

    let t = Instant::now();
    let page: Value = http
        .get(format!(
            "{}/api/2/tenants/offering_items",
            sb.platform.url()
        ))
        .bearer_auth(&bearer)
        .query(&[
            ("subtree_root_tenant_id", p.tenant_id.as_str()),
            ("updated_since", "2000-01-01T00:00:00Z"),
            ("limit", "1000"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1000);
    let items_page = t.elapsed();
    eprintln!(
        "seed {seeded:?}, cw 10k forward-only {cw_paging:?}, platform 10k tenants {pf_paging:?}, items page {items_page:?}"
    );
    // Generous bounds (debug build, shared 2-core machine).
    assert!(cw_paging < Duration::from_secs(20));
    assert!(pf_paging < Duration::from_secs(20));
}

#[test]
fn binary_prints_urls_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_psa-sandbox"))
        .arg("--seed-demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    let platform = v["platform"].as_str().unwrap().to_string();
    assert!(v["connectwise"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert!(v["demo"]["platform"]["client_id"].is_string());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        Client::new()
            .get(format!("{platform}/_sandbox/stats"))
            .send()
            .await
            .unwrap()
            .status()
    });
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(status, StatusCode::OK);
}
