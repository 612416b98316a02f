//! The fakes driven over HTTP, the way a person in the PSA (or `curl` against
//! `psa-sandbox --seed-demo`) would: records created through the vendor API are provisioned by
//! the next sync; and a platform listing without embedded offering items still yields the
//! right quotas (the adapter reads each tenant's items itself).

use chrono::Duration;
use e2e::*;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

/// ConnectWise over HTTP with the World's API member keys.
struct CwHttp {
    http: Client,
    base: String,
}

impl CwHttp {
    fn new(w: &World) -> CwHttp {
        CwHttp {
            http: Client::new(),
            base: format!("{}/v2025_1/apis/3.0", w.sandbox.connectwise.url()),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Value) -> Value {
        let r = self
            .http
            .request(method.clone(), format!("{}/{path}", self.base))
            .basic_auth(format!("{CW_COMPANY}+{CW_PUBLIC}"), Some(CW_PRIVATE))
            .header("clientId", CW_CLIENT_ID)
            .json(&body)
            .send()
            .await
            .expect("the fake answers");
        let status = r.status();
        let v: Value = r.json().await.expect("a JSON answer");
        let want = if method == Method::POST {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        assert_eq!(status, want, "{method} {path}: {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> i64 {
        self.send(Method::POST, path, body).await["id"]
            .as_i64()
            .expect("an id")
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

#[tokio::test]
async fn a_company_with_agreement_and_additions_made_over_http_is_provisioned_by_the_next_sync() {
    let w = World::new().await;
    // Nothing to do yet: the first pass sets the watermark.
    let first = w.sync("full").await;
    assert_eq!(first["changes"], json!([]), "{first}");
    w.advance(Duration::minutes(5));

    let cw = CwHttp::new(&w);
    let company = cw
        .post(
            "company/companies",
            json!({"identifier": "Globex", "name": "Globex Corp", "types": [{"name": "Client"}]}),
        )
        .await;
    let contact = cw
        .post(
            "company/contacts",
            json!({"firstName": "Gil", "lastName": "Bates", "company": {"id": company},
                   "defaultFlag": true,
                   "communicationItems": [{"type": {"name": "Email"},
                                           "value": "gil@globex.example", "defaultFlag": true}]}),
        )
        .await;
    let agreement = cw
        .post(
            "finance/agreements",
            json!({"name": "Globex backup", "type": {"name": "Managed Services"},
                   "company": {"identifier": "Globex"}, "contact": {"id": contact},
                   "startDate": "2026-01-01T00:00:00Z", "noEndingDateFlag": true}),
        )
        .await;
    let additions = format!("finance/agreements/{agreement}/additions");
    cw.post(
        &additions,
        json!({"product": {"identifier": "ACR-SRV"}, "quantity": 3, "billCustomer": "Billable",
               "effectiveDate": "2026-01-01T00:00:00Z", "cancelledDate": "2027-06-30T00:00:00Z"}),
    )
    .await;
    let ws = cw
        .post(
            &additions,
            json!({"product": {"identifier": "ACR-WS"}, "quantity": 0, "billCustomer": "Billable",
                   "effectiveDate": "2026-01-01T00:00:00Z"}),
        )
        .await;

    let out = w.sync("incremental").await;
    assert_eq!(out["blocked"], Value::Null, "{out}");
    let t = w
        .tenant_of(company)
        .expect("the HTTP-made company got a tenant");
    let tid = t["id"].as_str().unwrap().to_owned();
    assert_eq!(t["name"], "Globex Corp");
    let (st, v, o) = w.item(&tid, "servers", None);
    assert_eq!(
        (st, num(&v), num(&o)),
        (1, 3.0, 3.0),
        "prepaid -> hard quota"
    );
    let (st, v, _) = w.item(&tid, "workstations", None);
    assert_eq!((st, v), (1, Value::Null), "PAYG -> unlimited");
    assert_eq!(
        w.sandbox.platform.activation_emails(),
        vec!["gil@globex.example".to_owned()],
        "the default contact made over HTTP gets the activation e-mail"
    );

    // A quantity edited over HTTP (PATCH) follows on the next pass.
    w.advance(Duration::minutes(5));
    cw.send(
        Method::PATCH,
        &format!("{additions}/{ws}"),
        json!([{"op": "replace", "path": "quantity", "value": 7},
               {"op": "replace", "path": "cancelledDate", "value": "2027-06-30T00:00:00Z"}]),
    )
    .await;
    w.sync("full").await;
    let (st, v, _) = w.item(&tid, "workstations", None);
    assert_eq!((st, num(&v)), (1, 7.0), "now prepaid: 7 workstations");
}

#[tokio::test]
async fn a_tenant_listing_without_embedded_items_still_yields_the_right_quotas() {
    let w = World::new().await;
    let (company, agreement) = w.customer("Contoso");
    w.addition(agreement, w.products.srv, 3.0, Some("2027-06-30"));
    w.addition(agreement, w.products.ws, 0.0, None);
    w.sync("full").await;
    let tid = w.tenant_of(company).expect("tenant")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // From now on the platform's listings carry no offering items at all.
    w.sandbox.platform.set_listings_embed_items(false);
    w.advance(Duration::minutes(5));
    w.addition(agreement, w.products.o365, 4.0, Some("2027-06-30"));
    w.sandbox.platform.reset_stats();
    let out = w.sync("full").await;
    assert_eq!(out["blocked"], Value::Null, "{out}");
    let (st, v, _) = w.item(&tid, "servers", None);
    assert_eq!((st, num(&v)), (1, 3.0));
    let (st, v, _) = w.item(&tid, "mailboxes", None);
    assert_eq!((st, num(&v)), (1, 4.0), "the new line is applied");
    let reads = w
        .sandbox
        .platform
        .stats()
        .by_route
        .get("GET /api/2/tenants/{id}/offering_items")
        .copied()
        .unwrap_or(0);
    assert!(reads >= 1, "the items were read per tenant: {reads}");

    // Read that way, the current items match the plan: a second pass writes nothing.
    let writes = w.sandbox.platform.stats().writes;
    let again = w.sync("full").await;
    assert_eq!(again["changes"], json!([]), "{again}");
    assert_eq!(w.sandbox.platform.stats().writes, writes);
}
