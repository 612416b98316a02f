//! The platform fake's usage reporting (`PUT /tenants/usages`), usage names and per-day
//! history, and usage reports (`/reports…`), with the fake clock pinned.

use std::io::Read;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use sandbox::{platform::APPLICATION_ID, PartnerAccount, PlatformFake};
use serde_json::{json, Value};

const GIB: f64 = 1_073_741_824.0;

struct Pf {
    fake: PlatformFake,
    http: Client,
    partner: PartnerAccount,
    token: String,
}

async fn token_for(http: &Client, fake: &PlatformFake, p: &PartnerAccount) -> String {
    let r: Value = http
        .post(format!("{}/api/2/idp/token", fake.url()))
        .basic_auth(&p.client_id, Some(&p.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().expect("token").to_string()
}

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

impl Pf {
    async fn new(now: DateTime<Utc>) -> Pf {
        let fake = PlatformFake::start().await.unwrap();
        fake.set_now(now);
        let partner = fake.add_partner("Acme MSP");
        let http = Client::new();
        let token = token_for(&http, &fake, &partner).await;
        Pf {
            fake,
            http,
            partner,
            token,
        }
    }
    /// Moves the fake clock and takes a fresh token (tokens live 2 h of the fake clock).
    async fn set_now(&mut self, now: DateTime<Utc>) {
        self.fake.set_now(now);
        self.token = token_for(&self.http, &self.fake, &self.partner).await;
    }
    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}/api/2/{path}", self.fake.url()))
            .bearer_auth(&self.token)
    }
    async fn send(&self, rb: RequestBuilder) -> (StatusCode, Value) {
        let r = rb.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    async fn post_report(&self, body: &Value) -> (StatusCode, Value) {
        self.send(self.req(Method::POST, "reports").json(body))
            .await
    }
    async fn ok(&self, rb: RequestBuilder) -> Value {
        let (s, b) = self.send(rb).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        b
    }
    /// A customer with `storage` (default infra) and `workstations` switched on.
    fn customer(&self, name: &str) -> String {
        let c = self.fake.add_customer(&self.partner.tenant_id, name, None);
        let infra = self.partner.default_infra_id.as_str();
        self.fake
            .set_status_by_hand(&c, "storage", Some(infra), true);
        self.fake.set_status_by_hand(&c, "workstations", None, true);
        c
    }
}

fn report_body(tenant: &str, start: &str, end: &str) -> Value {
    json!({
        "recipients": ["ca451758-b48a-45d9-9ae6-8f1059f67619"],
        "result_action": "save",
        "parameters": {"tenant_id": tenant, "level": "all_customers", "kind": "usage_summary",
                       "period": {"start": start, "end": end}, "formats": ["csv_v2_0"]},
        "schedule": {"type": "once"},
    })
}

fn message(b: &Value) -> String {
    assert_eq!(b["error"]["domain"], "AccountServer", "{b}");
    b["error"]["message"].as_str().expect("message").to_string()
}

/// Polls the stored list (made with 2 polls in progress) until saved; returns the CSV of the
/// one csv_v2_0 stored report.
async fn csv_of(pf: &Pf, rid: &str) -> String {
    let list = pf
        .ok(pf.req(Method::GET, &format!("reports/{rid}/stored")))
        .await;
    let s = &list["items"][0];
    assert_eq!(s["status"], "in_progress", "{list}");
    assert!(s.get("size").is_none());
    let sid = s["id"].as_str().unwrap().to_string();
    let path = format!("reports/{rid}/stored/{sid}");
    let (st, _) = pf.send(pf.req(Method::GET, &path)).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "in progress: no download");
    let list = pf
        .ok(pf.req(Method::GET, &format!("reports/{rid}/stored")))
        .await;
    assert_eq!(list["items"][0]["status"], "in_progress", "2 polls: {list}");
    let list = pf
        .ok(pf.req(Method::GET, &format!("reports/{rid}/stored")))
        .await;
    let s = &list["items"][0];
    assert_eq!(s["status"], "saved", "{list}");
    assert_eq!(s["report_format"], "csv_v2_0");
    let r = pf.req(Method::GET, &path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/octet-stream"
    );
    let gz = r.bytes().await.unwrap();
    assert_eq!(s["size"].as_u64(), Some(gz.len() as u64));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .expect("gzip");
    text
}

/// Rows of a CSV (no quoted fields expected) as maps header → value.
fn rows(text: &str) -> Vec<std::collections::HashMap<String, String>> {
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn post_validation_names_the_field() {
    let pf = Pf::new(at(2026, 11, 20, 10)).await;
    let root = pf.partner.tenant_id.clone();
    let good = report_body(&root, "2026-10-01", "2026-10-31");
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let mut b = good.clone();
    b["extra"] = json!(1);
    cases.push((b, "'extra'"));
    let mut b = good.clone();
    b["parameters"]["kind"] = json!("usage_weekly");
    cases.push((b, "'parameters.kind'"));
    let mut b = good.clone();
    b.as_object_mut().unwrap().remove("recipients");
    cases.push((b, "'recipients'"));
    let mut b = good.clone();
    b["recipients"] = json!(["not-a-uuid"]);
    cases.push((b, "'recipients[0]'"));
    let mut b = good.clone();
    b["parameters"]["period"]["start"] = json!("2026-02-30");
    cases.push((b, "'parameters.period.start'"));
    let mut b = good.clone();
    b["parameters"]["period"]["end"] = json!("2026-10-1");
    cases.push((b, "'parameters.period.end'"));
    let mut b = good.clone();
    b["parameters"]["period"]["start"] = json!("2026-10-31");
    b["parameters"]["period"]["end"] = json!("2026-10-01");
    cases.push((b, "'parameters.period.start'"));
    let mut b = good.clone();
    b["parameters"]["bogus"] = json!(true);
    cases.push((b, "'parameters.bogus'"));
    let mut b = good.clone();
    b["parameters"].as_object_mut().unwrap().remove("period");
    cases.push((b, "'parameters.period'"));
    let mut b = good.clone();
    b["schedule"] = json!({"type": "weekly"});
    cases.push((b, "'schedule.type'"));
    let mut b = good.clone();
    b["result_action"] = json!("mail");
    cases.push((b, "'result_action'"));
    let mut b = good.clone();
    b["parameters"]["formats"] = json!(["pdf"]);
    cases.push((b, "'parameters.formats[0]'"));
    let mut b = good.clone();
    b["parameters"]["level"] = json!("everyone");
    cases.push((b, "'parameters.level'"));
    for (body, field) in cases {
        let (s, b) = pf.post_report(&body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {b}");
        assert!(message(&b).contains(field), "{field} in {b}");
    }
    // another partner's tenant, and an unknown one → 403
    let other = pf.fake.add_partner("Other MSP");
    let foreign = pf.fake.add_customer(&other.tenant_id, "Foreign", None);
    for t in [foreign.as_str(), "00000000-0000-4000-8000-000000000000"] {
        let (s, b) = pf
            .post_report(&report_body(t, "2026-10-01", "2026-10-31"))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    }
    assert!(pf.fake.reports().is_empty());
    let (s, r) = pf.post_report(&good).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["parameters"]["formats"], json!(["csv_v2_0"]));
    assert_eq!(r["schedule"], json!({"type": "once", "enabled": true}));
    assert_eq!(r["generation_date"], "2026-11-20");
    assert!(r["version"].is_i64());
    let mut b = good.clone();
    b["parameters"].as_object_mut().unwrap().remove("formats");
    let (_, r2) = pf.post_report(&b).await;
    assert_eq!(
        r2["parameters"]["formats"],
        json!(["csv"]),
        "default format"
    );
    assert_eq!(pf.fake.reports().len(), 2);
    let got = pf
        .ok(pf.req(
            Method::GET,
            &format!("reports/{}", r["id"].as_str().unwrap()),
        ))
        .await;
    assert_eq!(got, r);
}

#[tokio::test]
async fn readiness_follows_the_fake_clock() {
    let mut pf = Pf::new(at(2026, 11, 20, 3)).await;
    let root = pf.partner.tenant_id.clone();
    let (s, b) = pf
        .post_report(&report_body(&root, "2026-11-01", "2026-11-19"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        message(&b),
        "Usage history is not ready and shouldn't be ready yet (from 1 to 6 am)."
    );
    let (s, b) = pf
        .post_report(&report_body(&root, "2026-11-01", "2026-11-20"))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "today is not a past day: {b}");
    assert!(message(&b).contains("parameters.period.end"));
    let (s, _) = pf
        .post_report(&report_body(&root, "2026-11-01", "2026-11-18"))
        .await;
    assert_eq!(s, StatusCode::OK, "the day before yesterday is complete");
    pf.set_now(at(2026, 11, 20, 7)).await;
    let (s, b) = pf
        .post_report(&report_body(&root, "2026-11-01", "2026-11-19"))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    pf.fake.set_usage_history_late(true);
    let (s, b) = pf
        .post_report(&report_body(&root, "2026-11-01", "2026-11-19"))
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        message(&b),
        "Usage history is not ready but should be available already (after 6 am)."
    );
    pf.fake.set_usage_history_late(false);
    // usage_current needs no period and no history
    let mut b = report_body(&root, "x", "y");
    b["parameters"] = json!({"tenant_id": root, "level": "itself", "kind": "usage_current",
                             "formats": ["csv_v2_0"]});
    let (s, r) = pf.post_report(&b).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        r["parameters"]["period"],
        json!({"start": "2026-11-20", "end": "2026-11-20"})
    );
}

#[tokio::test]
async fn stored_csv_holds_the_period_values() {
    let mut pf = Pf::new(at(2026, 9, 1, 12)).await;
    let root = pf.partner.tenant_id.clone();
    let infra = pf.partner.default_infra_id.clone();
    let a = pf.customer("Contoso, Ltd");
    let b = pf.customer("Trial Co");
    let pricing = pf
        .ok(pf.req(Method::GET, &format!("tenants/{b}/pricing")))
        .await;
    let v = pricing["version"].clone();
    let (s, body) = pf
        .send(
            pf.req(Method::PUT, &format!("tenants/{b}/pricing"))
                .json(&json!({"mode": "trial", "version": v})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    pf.fake.set_status_by_hand(&a, "servers", None, true);
    pf.set_now(at(2026, 11, 20, 10)).await;
    let f = &pf.fake;
    let i = Some(infra.as_str());
    f.set_usage_on(day(2026, 9, 20), &a, "storage", i, None, 30.0 * GIB);
    f.set_usage_on(day(2026, 10, 5), &a, "storage", i, None, 60.0 * GIB);
    f.set_usage_on(
        day(2026, 10, 5),
        &a,
        "storage",
        i,
        Some("storage_class1"),
        10.0 * GIB,
    );
    f.set_usage_on(
        day(2026, 10, 6),
        &a,
        "storage",
        i,
        Some("storage_class2"),
        50.0 * GIB,
    );
    f.set_usage_on(day(2026, 11, 3), &a, "storage", i, None, 100.0 * GIB);
    f.set_usage_on(day(2026, 10, 10), &a, "workstations", None, None, 2.5);
    f.set_usage_on(day(2026, 10, 10), &b, "workstations", None, None, 3.0);
    f.set_report_polls_in_progress(2);
    let (s, r) = pf
        .post_report(&report_body(&root, "2026-10-01", "2026-10-31"))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    // a change after the report was made is not in it (snapshot at POST)
    f.set_usage_on(day(2026, 10, 20), &a, "storage", i, None, 70.0 * GIB);
    let text = csv_of(&pf, r["id"].as_str().unwrap()).await;
    let header = text.split("\r\n").next().unwrap();
    assert_eq!(
        header,
        "tenant.id,tenant.kind,tenant.name,application.id,name,edition,usage_name,infra.id,\
infra.owner_id,infra.backend_type,usage.absolute.total,usage.absolute.production,\
usage.absolute.trial,usage.delta.total,usage.delta.production,usage.delta.trial,\
usage.effective.total,usage.effective.production,usage.effective.trial"
    );
    assert!(
        text.contains("\"Contoso, Ltd\""),
        "RFC 4180 quoting: {text}"
    );
    // the quoted name holds a comma: drop it before the naive split
    let all = rows(&text.replace("\"Contoso, Ltd\"", "Contoso Ltd"));
    let find = |t: &str, n: &str, un: &str| {
        all.iter()
            .find(|r| r["tenant.id"] == t && r["name"] == n && r["usage_name"] == un)
            .unwrap_or_else(|| panic!("row {t} {n} {un} in {text}"))
            .clone()
    };
    let st = find(&a, "storage", "storage");
    assert_eq!(st["usage.absolute.total"], "64424509440");
    assert_eq!(st["usage.absolute.production"], "64424509440");
    assert_eq!(st["usage.absolute.trial"], "0");
    assert_eq!(st["usage.delta.total"], "32212254720", "60 − 30 GiB");
    assert_eq!(st["usage.effective.total"], "64424509440");
    assert_eq!(st["infra.id"], infra);
    assert_eq!(st["infra.owner_id"], pf.fake.root_tenant_id());
    assert_eq!(st["infra.backend_type"], "acronis");
    assert_eq!(st["tenant.kind"], "customer");
    assert_eq!(st["application.id"], APPLICATION_ID);
    assert_eq!(st["edition"], "standard");
    let c1 = find(&a, "storage", "storage_class1");
    assert_eq!(c1["usage.absolute.total"], "10737418240");
    let c2 = find(&a, "storage", "storage_class2");
    assert_eq!(c2["usage.absolute.total"], "53687091200");
    let ws = find(&a, "workstations", "workstations");
    assert_eq!(ws["usage.absolute.total"], "2.5");
    assert_eq!(ws["infra.id"], "");
    let sv = find(&a, "servers", "servers");
    assert_eq!(sv["usage.absolute.total"], "0");
    let tw = find(&b, "workstations", "workstations");
    assert_eq!(tw["usage.absolute.production"], "0");
    assert_eq!(tw["usage.absolute.trial"], "3");
    assert_eq!(tw["usage.delta.trial"], "3");
    assert!(
        all.iter().all(|r| r["tenant.kind"] == "customer"),
        "all_customers"
    );
    assert!(
        !all.iter().any(|r| r["name"] == "vms"),
        "disabled items left out"
    );

    // hide_zero_usage; another format than csv_v2_0 fails
    pf.fake.set_report_polls_in_progress(0);
    let mut body = report_body(&a, "2026-10-01", "2026-10-31");
    body["parameters"]["level"] = json!("itself");
    body["parameters"]["hide_zero_usage"] = json!(true);
    body["parameters"]["formats"] = json!(["json_v1", "csv_v2_0"]);
    let (_, r) = pf.post_report(&body).await;
    let rid = r["id"].as_str().unwrap();
    let list = pf
        .ok(pf.req(Method::GET, &format!("reports/{rid}/stored")))
        .await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items[0]["status"], "failed");
    assert!(items[0].get("size").is_none());
    let (s, _) = pf
        .send(pf.req(
            Method::GET,
            &format!("reports/{rid}/stored/{}", items[0]["id"].as_str().unwrap()),
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(items[1]["status"], "saved");
    let sid = items[1]["id"].as_str().unwrap();
    let gz = pf
        .req(Method::GET, &format!("reports/{rid}/stored/{sid}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    let hidden = rows(&text.replace("\"Contoso, Ltd\"", "Contoso Ltd"));
    assert_eq!(hidden.len(), 4, "storage ×3 + workstations: {text}");
    assert!(hidden.iter().all(|r| r["tenant.id"] == a));
    assert!(!hidden.iter().any(|r| r["name"] == "servers"));
    let st = hidden
        .iter()
        .find(|r| r["usage_name"] == "storage")
        .unwrap();
    assert_eq!(
        st["usage.absolute.total"], "75161927680",
        "70 GiB written later"
    );

    // usage_current: the current values (set_usage_on of past days does not change them)
    f.set_usage_as(&a, "storage", i, "storage_geo", 7.0);
    let mut body = report_body(&a, "x", "y");
    body["parameters"] = json!({"tenant_id": a, "level": "itself", "kind": "usage_current",
                                "formats": ["csv_v2_0"], "hide_zero_usage": true});
    let (_, r) = pf.post_report(&body).await;
    let rid = r["id"].as_str().unwrap();
    let list = pf
        .ok(pf.req(Method::GET, &format!("reports/{rid}/stored")))
        .await;
    let sid = list["items"][0]["id"].as_str().unwrap();
    let gz = pf
        .req(Method::GET, &format!("reports/{rid}/stored/{sid}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    let cur = rows(&text.replace("\"Contoso, Ltd\"", "Contoso Ltd"));
    assert_eq!(cur.len(), 1, "{text}");
    assert_eq!(cur[0]["usage_name"], "storage_geo");
    assert_eq!(cur[0]["usage.absolute.total"], "7");
}

#[tokio::test]
async fn send_monthly_delete_and_visibility() {
    let pf = Pf::new(at(2026, 11, 20, 10)).await;
    let root = pf.partner.tenant_id.clone();
    let mut send = report_body(&root, "2026-10-01", "2026-10-31");
    send["result_action"] = json!("send");
    let (s, sent) = pf.post_report(&send).await;
    assert_eq!(s, StatusCode::OK);
    let mut monthly = report_body(&root, "2026-10-01", "2026-10-31");
    monthly["schedule"] = json!({"type": "monthly"});
    let (_, monthly) = pf.post_report(&monthly).await;
    for r in [&sent, &monthly] {
        let id = r["id"].as_str().unwrap();
        let list = pf
            .ok(pf.req(Method::GET, &format!("reports/{id}/stored")))
            .await;
        assert_eq!(list["items"], json!([]), "nothing stored");
    }
    let ids = pf
        .ok(pf.req(Method::GET, &format!("tenants/{root}/reports")))
        .await;
    assert_eq!(ids["items"], json!([sent["id"], monthly["id"]]));
    assert_eq!(pf.fake.reports().len(), 2);

    // another partner's client sees none of them
    let other = pf.fake.add_partner("Other MSP");
    let other_token = token_for(&pf.http, &pf.fake, &other).await;
    let id = sent["id"].as_str().unwrap();
    let r = pf
        .http
        .get(format!("{}/api/2/reports/{id}", pf.fake.url()))
        .bearer_auth(&other_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // DELETE needs the current version
    let path = format!("reports/{id}");
    let v = sent["version"].as_i64().unwrap();
    let (s, b) = pf.send(pf.req(Method::DELETE, &path)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&b).contains("version"));
    let (s, _) = pf
        .send(pf.req(Method::DELETE, &format!("{path}?version=abc")))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, b) = pf
        .send(pf.req(Method::DELETE, &format!("{path}?version={}", v + 1)))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let r = pf
        .req(Method::DELETE, &format!("{path}?version={v}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (s, _) = pf.send(pf.req(Method::GET, &path)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = pf
        .send(pf.req(Method::GET, &format!("{path}/stored")))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(pf.fake.reports().len(), 1);
}

#[tokio::test]
async fn deleted_report_takes_its_stored_reports() {
    let pf = Pf::new(at(2026, 11, 20, 10)).await;
    pf.fake.set_report_polls_in_progress(0);
    let root = pf.partner.tenant_id.clone();
    let (_, r) = pf
        .post_report(&report_body(&root, "2026-10-01", "2026-10-31"))
        .await;
    let id = r["id"].as_str().unwrap();
    let list = pf
        .ok(pf.req(Method::GET, &format!("reports/{id}/stored")))
        .await;
    let sid = list["items"][0]["id"].as_str().unwrap().to_string();
    let dl = format!("reports/{id}/stored/{sid}");
    assert_eq!(
        pf.req(Method::GET, &dl).send().await.unwrap().status(),
        StatusCode::OK
    );
    let v = r["version"].as_i64().unwrap();
    pf.req(Method::DELETE, &format!("reports/{id}?version={v}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        pf.req(Method::GET, &dl).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn put_usages_sets_current_usage_with_per_item_errors() {
    let pf = Pf::new(at(2026, 11, 20, 10)).await;
    let c = pf.customer("Contoso");
    let infra = pf.partner.default_infra_id.clone();
    let other = pf.fake.add_partner("Other MSP");
    let foreign = pf.fake.add_customer(&other.tenant_id, "Foreign", None);
    let unknown = "00000000-0000-4000-8000-000000000000";
    let body = json!({"items": [
        {"tenant_id": c, "offering_item": "workstations", "usage_value": 4},
        {"tenant_id": c, "offering_item": "storage", "infra_id": infra, "usage_value": 1024},
        {"tenant_id": c, "offering_item": "no_such_item", "usage_value": 1},
        {"tenant_id": c, "offering_item": "storage", "usage_value": 1},
        {"tenant_id": unknown, "offering_item": "workstations", "usage_value": 1},
        {"tenant_id": foreign, "offering_item": "workstations", "usage_value": 1},
        {"resource_id": "res-1", "usage_type": "storage", "usage_value": 1},
    ]});
    let r = pf
        .ok(pf.req(Method::PUT, "tenants/usages").json(&body))
        .await;
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 7);
    assert!(items[0].get("error").is_none(), "{r}");
    assert!(items[1].get("error").is_none(), "{r}");
    assert_eq!(items[1]["infra_id"], json!(infra));
    for (n, e) in items.iter().enumerate().skip(2) {
        assert!(
            e["error"]["error"]["message"].is_string(),
            "item {n} has an errorScheme error: {e}"
        );
    }
    assert_eq!(items[2]["offering_item"], "no_such_item");
    assert_eq!(items[6]["resource_id"], "res-1");
    assert_eq!(items[6]["tenant_id"], "");
    let u = pf
        .ok(pf.req(Method::GET, &format!("tenants/{c}/usages")))
        .await;
    let find = |un: &str| {
        u["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["usage_name"] == un)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("workstations")["absolute_value"], 4);
    assert_eq!(find("storage")["value"], 1024);

    // strict body: unknown keys and non-integer values → 400 naming the field
    for (body, field) in [
        (json!({"items": [], "extra": 1}), "extra"),
        (
            json!({"items": [{"tenant_id": c, "offering_item": "workstations",
                              "usage_value": 1, "unit": "x"}]}),
            "items[0].unit",
        ),
        (
            json!({"items": [{"tenant_id": c, "offering_item": "workstations",
                              "usage_value": 1.5}]}),
            "items[0].usage_value",
        ),
        (
            json!({"items": [{"tenant_id": c, "offering_item": "workstations"}]}),
            "items[0].usage_value",
        ),
    ] {
        let (s, b) = pf
            .send(pf.req(Method::PUT, "tenants/usages").json(&body))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(message(&b).contains(field), "{field}: {b}");
    }
}

#[tokio::test]
async fn usages_list_the_extra_usage_names() {
    let pf = Pf::new(at(2026, 11, 20, 10)).await;
    let c = pf.customer("Contoso");
    let infra = pf.partner.default_infra_id.clone();
    let i = Some(infra.as_str());
    pf.fake.set_usage(&c, "storage", i, 60.0 * GIB);
    pf.fake
        .set_usage_as(&c, "storage", i, "storage_class1", 10.0 * GIB);
    // a past day only: no current value, not listed
    pf.fake.set_usage_on(
        day(2026, 11, 1),
        &c,
        "storage",
        i,
        Some("storage_class2"),
        5.0,
    );
    let u = pf
        .ok(pf.req(Method::GET, &format!("tenants/{c}/usages")))
        .await;
    let storage: Vec<&Value> = u["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["name"] == "storage")
        .collect();
    let names: Vec<&str> = storage
        .iter()
        .map(|i| i["usage_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["storage", "storage_class1"]);
    assert_eq!(storage[1]["absolute_value"], 10_737_418_240i64);
    assert_eq!(storage[1]["infra_id"], json!(infra));
    let b = pf
        .ok(pf
            .req(Method::GET, "tenants/usages")
            .query(&[("tenants", c.as_str()), ("usage_names", "storage_class1")]))
        .await;
    let us = b["items"][0]["usages"].as_array().unwrap();
    assert_eq!(us.len(), 1);
    assert_eq!(us[0]["usage_name"], "storage_class1");
    // set_usage_on today changes the current value too
    pf.fake
        .set_usage_on(day(2026, 11, 20), &c, "workstations", None, None, 9.0);
    let u = pf
        .ok(pf
            .req(Method::GET, &format!("tenants/{c}/usages"))
            .query(&[("usage_names", "workstations")]))
        .await;
    assert_eq!(u["items"][0]["value"], 9);
}
