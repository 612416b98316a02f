use std::collections::HashSet;

use base64::Engine;
use chrono::{TimeZone, Utc};
use reqwest::{Client, RequestBuilder, StatusCode};
use sandbox::{ConnectWiseFake, Fault, FaultKind, NewAddition, NewAgreement, NewCompany};
use serde_json::{json, Value};

const INST: &str = "acme";

struct Cw {
    fake: ConnectWiseFake,
    http: Client,
    base: String,
}

impl Cw {
    async fn new() -> Cw {
        let fake = ConnectWiseFake::start().await.unwrap();
        fake.add_instance(INST, "pubkey", "privkey");
        let base = format!("{}/v2025_1/apis/3.0", fake.url());
        Cw {
            fake,
            http: Client::new(),
            base,
        }
    }
    fn auth(&self, rb: RequestBuilder) -> RequestBuilder {
        let token = base64::engine::general_purpose::STANDARD.encode("acme+pubkey:privkey");
        rb.header("Authorization", format!("Basic {token}"))
            .header("clientId", "test-client-id")
    }
    fn get(&self, path: &str) -> RequestBuilder {
        self.auth(self.http.get(format!("{}/{path}", self.base)))
    }
    fn req(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.auth(self.http.request(method, format!("{}/{path}", self.base)))
    }
    fn company(&self, ident: &str) -> i64 {
        self.fake.add_company(
            INST,
            NewCompany {
                identifier: ident.into(),
                name: format!("{ident} Inc"),
                type_name: Some("Client".into()),
                ..Default::default()
            },
        )
    }
}

fn links(resp: &reqwest::Response) -> Vec<(String, String)> {
    let Some(h) = resp.headers().get("link") else {
        return vec![];
    };
    h.to_str()
        .unwrap()
        .split(", <")
        .map(|part| {
            let part = part.trim_start_matches('<');
            let (url, rel) = part.split_once(">; rel=\"").unwrap();
            (rel.trim_end_matches('"').to_string(), url.to_string())
        })
        .collect()
}

#[tokio::test]
async fn company_info_and_auth() {
    let cw = Cw::new().await;
    let info: Value = cw
        .http
        .get(format!("{}/login/companyinfo/ACME", cw.fake.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["Codebase"], "v2025_1/");
    assert_eq!(info["IsCloud"], true);
    let unknown = cw
        .http
        .get(format!("{}/login/companyinfo/nobody", cw.fake.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::OK);
    assert_eq!(unknown.text().await.unwrap(), "null");

    // accepted
    let ok = cw.get("system/info").send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.json::<Value>().await.unwrap()["isCloud"], true);

    // no auth at all
    let r = cw
        .http
        .get(format!("{}/system/info", cw.base))
        .header("clientId", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "Unauthorized");
    assert!(body["errors"].is_null());

    // wrong private key
    let bad = base64::engine::general_purpose::STANDARD.encode("acme+pubkey:nope");
    let r = cw
        .http
        .get(format!("{}/system/info", cw.base))
        .header("Authorization", format!("Basic {bad}"))
        .header("clientId", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // missing clientId
    let good = base64::engine::general_purpose::STANDARD.encode("acme+pubkey:privkey");
    let r = cw
        .http
        .get(format!("{}/system/info", cw.base))
        .header("Authorization", format!("Basic {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("clientId"));

    // wrong codebase
    let r = cw
        .auth(cw.http.get(format!(
            "{}/v4_6_release/apis/3.0/system/info",
            cw.fake.url()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn forward_only_paging_returns_every_record_once() {
    let cw = Cw::new().await;
    for i in 0..2500 {
        cw.company(&format!("C{i:05}"));
    }
    let mut seen = HashSet::new();
    let mut url = format!("{}/company/companies?pageSize=1000", cw.base);
    let mut pages = 0;
    loop {
        let r = cw
            .auth(cw.http.get(&url))
            .header("pagination-type", "forward-only")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let next = links(&r)
            .into_iter()
            .find(|(rel, _)| rel == "next")
            .map(|(_, u)| u);
        let page: Vec<Value> = r.json().await.unwrap();
        pages += 1;
        let mut last = 0;
        for c in &page {
            let id = c["id"].as_i64().unwrap();
            assert!(id > last, "ordered by id");
            last = id;
            assert!(seen.insert(id), "duplicate {id}");
        }
        match next {
            Some(n) => {
                assert!(n.contains(&format!("pageId={last}")), "{n}");
                url = n;
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 2500);
    assert_eq!(pages, 3);

    // orderBy is refused in forward-only mode
    let r = cw
        .get("company/companies?orderBy=name")
        .header("pagination-type", "forward-only")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn navigable_paging_link_header_and_count() {
    let cw = Cw::new().await;
    for i in 0..60 {
        cw.company(&format!("N{i:03}"));
    }
    let r = cw.get("company/companies").send().await.unwrap();
    let l = links(&r);
    let rels: Vec<&str> = l.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(rels, vec!["next", "last"]);
    assert!(l[1].1.contains("page=3"));
    let page: Vec<Value> = r.json().await.unwrap();
    assert_eq!(page.len(), 25);

    let r = cw.get("company/companies?page=3").send().await.unwrap();
    let rels: Vec<String> = links(&r).into_iter().map(|(r, _)| r).collect();
    assert_eq!(rels, vec!["first", "prev"]);
    let page: Vec<Value> = r.json().await.unwrap();
    assert_eq!(page.len(), 10);

    // pageSize is capped at 1000; a single page has no Link header
    let r = cw
        .get("company/companies?pageSize=5000")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("link").is_none());
    assert_eq!(r.json::<Vec<Value>>().await.unwrap().len(), 60);

    // orderBy desc
    let page: Vec<Value> = cw
        .get("company/companies?orderBy=identifier desc&pageSize=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page[0]["identifier"], "N059");

    let count: Value = cw
        .get("company/companies/count")
        .query(&[("conditions", "identifier like \"N00*\"")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count, json!({"count": 10}));
}

#[tokio::test]
async fn conditions_over_http() {
    let cw = Cw::new().await;
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    cw.fake.set_now(t0);
    let a = cw.company("Alpha");
    cw.fake.set_now(t0 + chrono::Duration::days(10));
    let b = cw.company("Beta");
    cw.fake.update_company(INST, a, |c| c.deleted_flag = true);
    cw.fake.set_now(t0 + chrono::Duration::days(20));
    let c = cw.fake.add_company(
        INST,
        NewCompany {
            identifier: "Gamma".into(),
            name: "Gamma Inc".into(),
            status_name: Some("Inactive".into()),
            primary_contact: Some(("Gina".into(), "Gamma".into(), "gina@gamma.test".into())),
            ..Default::default()
        },
    );
    let ids = |v: Vec<Value>| -> Vec<i64> { v.iter().map(|c| c["id"].as_i64().unwrap()).collect() };
    let q = |cond: &str| {
        cw.get("company/companies")
            .query(&[("conditions", cond.to_string())])
            .send()
    };
    let r: Vec<Value> = q("lastUpdated > [2026-01-05T00:00:00Z]")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids(r), vec![a, b, c]); // a was updated on day 10
    let r: Vec<Value> = q("_info/lastUpdated >= [2026-01-21T00:00:00Z] or identifier = \"beta\"")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids(r), vec![b, c]);
    let r: Vec<Value> = q("status/name = \"Active\" and deletedFlag = false")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids(r), vec![b]);
    let r: Vec<Value> = q(&format!("id in ({a}, {c})"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids(r), vec![a, c]);

    let r = q("identifier = unquoted").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "InvalidObject");
    assert!(body["errors"].is_array());
    let r = q("noSuchField = 1").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // primary contact: defaultContact + company/contacts with an Email communication item
    let company: Value = cw
        .get(&format!("company/companies/{c}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let contact_id = company["defaultContact"]["id"].as_i64().unwrap();
    assert_eq!(company["defaultContact"]["name"], "Gina Gamma");
    assert_eq!(company["_info"]["lastUpdated"], "2026-01-21T00:00:00Z");
    let contacts: Vec<Value> = cw
        .get("company/contacts")
        .query(&[("conditions", format!("company/id={c}"))])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["id"], contact_id);
    assert_eq!(
        contacts[0]["communicationItems"][0]["value"],
        "gina@gamma.test"
    );

    let r = cw.get("company/companies/999999").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn agreements_and_additions_crud() {
    let cw = Cw::new().await;
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    cw.fake.set_now(t0);
    let company = cw.company("Acme");
    let product = cw.fake.add_product(INST, "ACR-WS", "Acronis workstation");
    let agreement = cw.fake.add_agreement(
        INST,
        NewAgreement {
            company_id: company,
            name: "Backup".into(),
            start_date: Some(t0),
            no_ending_date_flag: true,
            ..Default::default()
        },
    );
    let existing = cw.fake.add_addition(
        INST,
        agreement,
        NewAddition {
            product_id: product,
            quantity: 3.0,
            ..Default::default()
        },
    );

    let ag: Value = cw
        .get(&format!("finance/agreements/{agreement}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ag["company"]["identifier"], "Acme");
    assert_eq!(ag["startDate"], "2026-03-01T12:00:00Z");
    assert!(ag["endDate"].is_null());
    assert_eq!(ag["agreementStatus"], "Active");

    let list: Vec<Value> = cw
        .get(&format!("finance/agreements/{agreement}/additions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["quantity"], 3.0);
    assert_eq!(list[0]["product"]["identifier"], "ACR-WS");

    // POST
    cw.fake.set_now(t0 + chrono::Duration::hours(1));
    let r = cw
        .req(
            reqwest::Method::POST,
            &format!("finance/agreements/{agreement}/additions"),
        )
        .json(&json!({"product": {"identifier": "ACR-WS"}, "quantity": 7, "billCustomer": "Billable"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let new_id = created["id"].as_i64().unwrap();
    assert_eq!(created["agreementId"], agreement);
    assert_eq!(created["_info"]["lastUpdated"], "2026-03-01T13:00:00Z");

    // POST without billCustomer → 400
    let r = cw
        .req(
            reqwest::Method::POST,
            &format!("finance/agreements/{agreement}/additions"),
        )
        .json(&json!({"product": {"id": product}, "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // PATCH quantity
    let r = cw
        .req(
            reqwest::Method::PATCH,
            &format!("finance/agreements/{agreement}/additions/{existing}"),
        )
        .json(&json!([{"op": "replace", "path": "quantity", "value": 12}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        cw.fake
            .addition(INST, agreement, existing)
            .unwrap()
            .quantity,
        12.0
    );
    // wrong case path → 400
    let r = cw
        .req(
            reqwest::Method::PATCH,
            &format!("finance/agreements/{agreement}/additions/{existing}"),
        )
        .json(&json!([{"op": "replace", "path": "Quantity", "value": 1}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // conditions + count on additions
    let count: Value = cw
        .get(&format!("finance/agreements/{agreement}/additions/count"))
        .query(&[("conditions", "quantity > 10")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["count"], 1);

    // PUT resets omitted fields
    let r = cw
        .req(
            reqwest::Method::PUT,
            &format!("finance/agreements/{agreement}/additions/{new_id}"),
        )
        .json(
            &json!({"product": {"id": product}, "billCustomer": "DoNotBill", "quantity": 2,
            "cancelledDate": "2026-04-01T00:00:00Z"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let a = cw.fake.addition(INST, agreement, new_id).unwrap();
    assert_eq!(a.bill_customer, "DoNotBill");
    assert!(a.effective_date.is_none());
    assert_eq!(
        a.cancelled_date,
        Some(Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap())
    );

    // DELETE
    let r = cw
        .req(
            reqwest::Method::DELETE,
            &format!("finance/agreements/{agreement}/additions/{new_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(cw.fake.addition(INST, agreement, new_id).is_none());
    let r = cw
        .get(&format!(
            "finance/agreements/{agreement}/additions/{new_id}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = cw
        .get("finance/agreements/424242/additions")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // catalog
    let cat: Vec<Value> = cw
        .get("procurement/catalog")
        .query(&[("conditions", "identifier = \"ACR-WS\"")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cat[0]["id"], product);
    assert_eq!(cat[0]["inactiveFlag"], false);

    // handle-side update bumps lastUpdated
    cw.fake.set_now(t0 + chrono::Duration::days(2));
    cw.fake
        .update_addition(INST, agreement, existing, |a| a.quantity = 4.0);
    let a: Value = cw
        .get(&format!(
            "finance/agreements/{agreement}/additions/{existing}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a["_info"]["lastUpdated"], "2026-03-03T12:00:00Z");
    assert_eq!(a["quantity"], 4.0);
}

#[tokio::test]
async fn callbacks() {
    let cw = Cw::new().await;
    let r = cw
        .req(reqwest::Method::POST, "system/callbacks")
        .json(&json!({"url": "https://hook.test/cw?recordId=", "objectId": 1, "type": "agreement", "level": "owner", "description": "psa-bridge"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let cb: Value = r.json().await.unwrap();
    let id = cb["id"].as_i64().unwrap();
    assert_eq!(cw.fake.callbacks(INST).len(), 1);
    let r = cw
        .req(reqwest::Method::POST, "system/callbacks")
        .json(&json!({"url": "https://x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = cw
        .req(reqwest::Method::DELETE, &format!("system/callbacks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(cw.fake.callbacks(INST).is_empty());
}

#[tokio::test]
async fn fault_429_fires_times_then_stops() {
    let cw = Cw::new().await;
    cw.company("A");
    cw.fake.faults().push(Fault {
        method: Some("GET".into()),
        path_contains: Some("company/companies".into()),
        kind: FaultKind::Status {
            code: 429,
            retry_after_secs: Some(1),
        },
        times: 2,
    });
    for _ in 0..2 {
        let r = cw.get("company/companies").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "1");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "ConnectWiseAPI");
        assert!(body["message"].as_str().unwrap().contains("1 seconds"));
    }
    // other paths are unaffected, and the fault is now spent
    assert_eq!(
        cw.get("system/info").send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        cw.get("company/companies").send().await.unwrap().status(),
        StatusCode::OK
    );
    assert!(cw.fake.faults().pending().is_empty());

    cw.fake.faults().push(Fault::status(500, None));
    let r = cw.get("company/companies").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "UnexpectedServerError"
    );

    let s = cw.fake.stats();
    assert_eq!(s.requests, 5);
    assert_eq!(s.by_route["GET /{codebase}/apis/3.0/company/companies"], 4);
    assert_eq!(s.writes, 0);
}

#[tokio::test]
async fn drop_response_after_write_applies_the_write() {
    let cw = Cw::new().await;
    let company = cw.company("Acme");
    let product = cw.fake.add_product(INST, "P", "Product");
    let agreement = cw.fake.add_agreement(
        INST,
        NewAgreement {
            company_id: company,
            name: "A".into(),
            ..Default::default()
        },
    );
    let add = cw.fake.add_addition(
        INST,
        agreement,
        NewAddition {
            product_id: product,
            quantity: 1.0,
            ..Default::default()
        },
    );
    cw.fake.faults().push(
        Fault::new(FaultKind::DropResponseAfterWrite)
            .method("PATCH")
            .path_contains("/additions/"),
    );
    let r = cw
        .req(
            reqwest::Method::PATCH,
            &format!("finance/agreements/{agreement}/additions/{add}"),
        )
        .json(&json!([{"op": "replace", "path": "quantity", "value": 9}]))
        .send()
        .await;
    assert!(r.is_err(), "client must see a connection error: {r:?}");
    assert_eq!(
        cw.fake.addition(INST, agreement, add).unwrap().quantity,
        9.0
    );
    // the server keeps working (new connection)
    let r = cw
        .get(&format!("finance/agreements/{agreement}/additions/{add}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(cw.fake.stats().writes, 1);
}

// An addition edit leaves its agreement's `_info.lastUpdated` alone unless the switch says
// otherwise (set through the control API or the handle).
#[tokio::test]
async fn an_addition_edit_touches_its_agreement_only_when_switched_on() {
    let cw = Cw::new().await;
    let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    cw.fake.set_now(t0);
    let company = cw.company("SWITCH");
    let product = cw.fake.add_product(INST, "ACR-WS", "Acronis workstation");
    let agreement = cw.fake.add_agreement(
        INST,
        NewAgreement {
            company_id: company,
            name: "Backup".into(),
            start_date: Some(t0),
            no_ending_date_flag: true,
            ..Default::default()
        },
    );
    let addition = cw.fake.add_addition(
        INST,
        agreement,
        NewAddition {
            product_id: product,
            quantity: 3.0,
            less_included: 0.0,
            effective_date: Some(t0),
            cancelled_date: None,
        },
    );
    let stamp = |cw: &Cw| {
        cw.fake
            .agreement(INST, agreement)
            .unwrap()
            .info
            .last_updated
    };
    let patch = |qty: i64| {
        cw.req(
            reqwest::Method::PATCH,
            &format!("finance/agreements/{agreement}/additions/{addition}"),
        )
        .json(&json!([{"op": "replace", "path": "quantity", "value": qty}]))
        .send()
    };
    assert!(!cw.fake.addition_touches_agreement(), "off by default");
    cw.fake.set_now(t0 + chrono::Duration::minutes(5));
    assert_eq!(patch(4).await.unwrap().status(), StatusCode::OK);
    assert_eq!(stamp(&cw), t0, "the agreement is left alone");
    let a = cw.fake.addition(INST, agreement, addition).unwrap();
    assert_eq!(a.info.last_updated, t0 + chrono::Duration::minutes(5));

    let switch = format!("{}/_sandbox/connectwise/addition-edits", cw.fake.url());
    let r = cw
        .http
        .post(&switch)
        .json(&json!({"touch_agreement": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let got: Value = cw
        .http
        .get(&switch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["touch_agreement"], true);
    cw.fake.set_now(t0 + chrono::Duration::minutes(10));
    assert_eq!(patch(5).await.unwrap().status(), StatusCode::OK);
    assert_eq!(stamp(&cw), t0 + chrono::Duration::minutes(10));
    assert_eq!(
        cw.fake.stats().requests,
        2,
        "the control API is not counted"
    );

    cw.fake.set_addition_touches_agreement(false);
    cw.fake.set_now(t0 + chrono::Duration::minutes(15));
    cw.fake
        .update_addition(INST, agreement, addition, |a| a.quantity = 6.0);
    assert_eq!(stamp(&cw), t0 + chrono::Duration::minutes(10));
}
