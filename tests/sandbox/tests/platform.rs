use std::collections::HashSet;

use chrono::{TimeZone, Utc};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use sandbox::{Fault, FaultKind, PartnerAccount, PlatformFake};
use serde_json::{json, Value};

struct Pf {
    fake: PlatformFake,
    http: Client,
    partner: PartnerAccount,
    token: String,
}

impl Pf {
    async fn new() -> Pf {
        let fake = PlatformFake::start().await.unwrap();
        let partner = fake.add_partner("Acme MSP");
        let http = Client::new();
        let token = token(&http, &fake, &partner.client_id, &partner.client_secret)
            .await
            .unwrap();
        Pf {
            fake,
            http,
            partner,
            token,
        }
    }
    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}/api/2/{path}", self.fake.url()))
            .bearer_auth(&self.token)
    }
    fn get(&self, path: &str) -> RequestBuilder {
        self.req(Method::GET, path)
    }
    async fn json(&self, rb: RequestBuilder) -> Value {
        let r = rb.send().await.unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{status}: {body}");
        body
    }
}

async fn token(
    http: &Client,
    fake: &PlatformFake,
    id: &str,
    secret: &str,
) -> Result<String, (StatusCode, Value)> {
    let r = http
        .post(format!("{}/api/2/idp/token", fake.url()))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    if status == StatusCode::OK {
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 7200);
        assert!(body["expires_on"].as_i64().unwrap() > 0);
        Ok(body["access_token"].as_str().unwrap().to_string())
    } else {
        Err((status, body))
    }
}

#[tokio::test]
async fn auth_rejected_and_accepted() {
    let pf = Pf::new().await;
    assert_eq!(pf.fake.token_requests(), 1);
    let (status, body) = token(&pf.http, &pf.fake, &pf.partner.client_id, "wrong")
        .await
        .unwrap_err();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "access_denied");

    // accepted
    let me = pf
        .json(pf.get(&format!("clients/{}", pf.partner.client_id)))
        .await;
    assert_eq!(me["tenant_id"], json!(pf.partner.tenant_id));
    assert_eq!(me["type"], "api_client");

    // no / bad bearer
    let r = pf
        .http
        .get(format!(
            "{}/api/2/tenants/{}",
            pf.fake.url(),
            pf.partner.tenant_id
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Unauthorized");
    assert_eq!(body["error"]["domain"], "AccountServer");
    let r = pf
        .http
        .get(format!(
            "{}/api/2/tenants/{}",
            pf.fake.url(),
            pf.partner.tenant_id
        ))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // expiry follows the fake clock
    pf.fake
        .set_now(Utc::now() + chrono::Duration::seconds(7201));
    let r = pf
        .get(&format!("tenants/{}", pf.partner.tenant_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    pf.fake.clear_now();

    // another partner's subtree is off limits
    let other = pf.fake.add_partner("Other MSP");
    let foreign = pf.fake.add_customer(&other.tenant_id, "Foreign", None);
    let r = pf.get(&format!("tenants/{foreign}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = pf
        .get("tenants")
        .query(&[("parent_id", other.tenant_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn tenant_lifecycle_and_version_conflict() {
    let pf = Pf::new().await;
    let r = pf
        .req(Method::POST, "tenants")
        .json(&json!({"name": "Customer A", "parent_id": pf.partner.tenant_id, "kind": "customer",
            "customer_id": "cw:19300", "contact": {"email": "a@a.test", "firstname": "A", "lastname": "B"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let t: Value = r.json().await.unwrap();
    let id = t["id"].as_str().unwrap().to_string();
    assert_eq!(t["version"], 1);
    assert_eq!(t["pricing_mode"], "production");
    assert_eq!(t["ancestral_access"], true);
    assert_eq!(t["update_lock"]["enabled"], false);
    assert_eq!(t["mfa_status"], "disabled");
    assert_eq!(t["customer_id"], "cw:19300");
    assert_eq!(t["contact"]["email"], "a@a.test");

    // same name under the same parent → 409
    let r = pf
        .req(Method::POST, "tenants")
        .json(&json!({"name": "Customer A", "parent_id": pf.partner.tenant_id, "kind": "customer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // offering items created switched off
    let items = pf.fake.offering_items(&id);
    assert_eq!(items.len(), 8);
    assert!(items
        .iter()
        .all(|i| i["status"] == 0
            && i["quota"] == json!({"value": null, "overage": null, "version": 0})));

    // update with the current version
    let t = pf
        .json(
            pf.req(Method::PUT, &format!("tenants/{id}"))
                .json(&json!({"version": 1, "name": "Customer A2", "enabled": false})),
        )
        .await;
    assert_eq!(t["version"], 2);
    assert_eq!(t["name"], "Customer A2");

    // stale version → 409, nothing changed
    let r = pf
        .req(Method::PUT, &format!("tenants/{id}"))
        .json(&json!({"version": 1, "name": "Stale"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["domain"], "AccountServer");
    assert_eq!(pf.fake.tenant(&id).unwrap()["name"], "Customer A2");
    // missing version → 409 as well
    let r = pf
        .req(Method::PUT, &format!("tenants/{id}"))
        .json(&json!({"name": "No version"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // self-service lock: partner can no longer update
    pf.fake.set_tenant_access(&id, true, false);
    let t = pf.fake.tenant(&id).unwrap();
    assert_eq!(t["update_lock"]["enabled"], true);
    assert_eq!(t["ancestral_access"], false);
    assert_eq!(t["version"], 3);
    let r = pf
        .req(Method::PUT, &format!("tenants/{id}"))
        .json(&json!({"version": 3, "name": "Locked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    pf.fake.set_tenant_access(&id, false, true);

    // pricing: a tenant that used nothing yet may still go to trial; with usage it may not
    let pricing = pf.json(pf.get(&format!("tenants/{id}/pricing"))).await;
    assert_eq!(pricing["mode"], "production");
    pf.fake.set_usage(&id, "workstations", None, 1.0);
    let r = pf
        .req(Method::PUT, &format!("tenants/{id}/pricing"))
        .json(&json!({"mode": "trial", "version": pricing["version"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // delete: version required and checked
    let v = pf.fake.tenant(&id).unwrap()["version"].as_i64().unwrap();
    let r = pf
        .req(Method::DELETE, &format!("tenants/{id}"))
        .query(&[("version", v - 1)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = pf
        .req(Method::DELETE, &format!("tenants/{id}"))
        .query(&[("version", v)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(!pf.fake.tenant(&id).unwrap()["deleted_at"].is_null());
    assert!(pf.fake.customers(&pf.partner.tenant_id).is_empty());
    let r = pf.get(&format!("tenants/{id}")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = pf
        .get(&format!("tenants/{id}"))
        .query(&[("allow_deleted", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn tenant_paging_and_updated_since() {
    let pf = Pf::new().await;
    let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).unwrap();
    pf.fake.set_now(t0);
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(
            pf.fake
                .add_customer(&pf.partner.tenant_id, &format!("C{i:02}"), None),
        );
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut first_ts = None;
    loop {
        let mut rb = pf.get("tenants").query(&[("limit", "10")]);
        rb = match &after {
            Some(a) => rb.query(&[("after", a.as_str())]),
            None => rb.query(&[
                ("subtree_root_id", pf.partner.tenant_id.as_str()),
                ("expand_offering_items", "true"),
            ]),
        };
        let page = pf.json(rb).await;
        first_ts.get_or_insert(page["timestamp"].clone());
        for t in page["items"].as_array().unwrap() {
            seen.push(t["id"].as_str().unwrap().to_string());
            assert_eq!(t["offering_items"].as_array().unwrap().len(), 8);
        }
        match page["paging"]["cursors"]["after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => break,
        }
    }
    // partner first (parents before children), then every customer once
    assert_eq!(seen.len(), 26);
    assert_eq!(seen[0], pf.partner.tenant_id);
    assert_eq!(seen[1..].iter().collect::<HashSet<_>>().len(), 25);
    assert_eq!(first_ts.unwrap(), "2026-05-01T00:00:00.000000Z");

    // incremental: only what changed after the timestamp
    pf.fake.set_now(t0 + chrono::Duration::minutes(5));
    pf.fake.set_tenant_access(&ids[3], true, true);
    let page = pf
        .json(pf.get("tenants").query(&[
            ("parent_id", pf.partner.tenant_id.as_str()),
            ("updated_since", "2026-05-01T00:00:00Z"),
        ]))
        .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], json!(ids[3]));
    assert!(page["paging"]["cursors"].get("after").is_none());
    // zone-less form accepted too
    let page = pf
        .json(pf.get("tenants").query(&[
            ("parent_id", pf.partner.tenant_id.as_str()),
            ("updated_since", "2026-05-01T00:00:00.000000"),
        ]))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let r = pf
        .get("tenants")
        .query(&[("parent_id", "x"), ("subtree_root_id", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn with_offering_items_filters_and_expand_offering_items_embeds() {
    let pf = Pf::new().await;
    let partner = pf.partner.tenant_id.clone();
    let on = pf.fake.add_customer(&partner, "On", None);
    let off = pf.fake.add_customer(&partner, "Off", None);
    pf.fake.set_status_by_hand(&on, "workstations", None, true);
    let list = |q: &'static str| {
        let rb = pf
            .get("tenants")
            .query(&[("parent_id", partner.as_str())])
            .query(&[(q, "true")]);
        pf.json(rb)
    };
    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_string())
            .collect()
    };
    // with_offering_items only filters: tenants that have count items, none embedded
    let page = list("with_offering_items").await;
    assert_eq!(ids(&page), vec![on.clone()]);
    assert_eq!(page["items"][0]["offering_items"], json!([]), "{page}");
    // no tenant has an enabled infra item
    let page = list("with_infra_offering_items").await;
    assert_eq!(ids(&page), Vec::<String>::new());
    // expand_offering_items embeds every tenant's items
    let page = list("expand_offering_items").await;
    assert_eq!(ids(&page), vec![on.clone(), off.clone()]);
    for t in page["items"].as_array().unwrap() {
        assert_eq!(t["offering_items"].as_array().unwrap().len(), 8, "{t}");
    }
    // the test switch: listings without items, the per-tenant read still has them
    pf.fake.set_listings_embed_items(false);
    let page = list("expand_offering_items").await;
    assert_eq!(page["items"][0]["offering_items"], json!([]));
    let items = pf
        .json(
            pf.get(&format!("tenants/{on}/offering_items"))
                .query(&[("edition", "*")]),
        )
        .await;
    assert_eq!(items["items"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn offering_items_quota_version_conflict_applies_nothing() {
    let pf = Pf::new().await;
    let cust = pf.fake.add_customer(&pf.partner.tenant_id, "Cust", None);
    let infra = pf.partner.default_infra_id.clone();

    let ok = pf
        .json(
            pf.req(Method::PUT, &format!("tenants/{cust}/offering_items"))
                .json(&json!({"offering_items": [
                    {"application_id": "6e6d758d-8e74-3ae3-ac84-50eb0dff12eb", "name": "workstations", "status": 1,
                     "quota": {"value": 10, "overage": 10, "version": 0}},
                    {"name": "storage", "infra_id": infra, "status": 1,
                     "quota": {"value": null, "overage": null, "version": 0}}
                ]})),
        )
        .await;
    let updated = ok["items"].as_array().unwrap();
    assert_eq!(updated.len(), 2);
    let ws_version = updated[0]["quota"]["version"].as_i64().unwrap();
    assert!(ws_version > 0);
    assert_eq!(updated[0]["quota"]["value"], 10);
    assert_eq!(updated[1]["infra_id"], json!(infra));

    // one stale version → 409, the other (valid) change is not applied either
    let r = pf
        .req(Method::PUT, &format!("tenants/{cust}/offering_items"))
        .json(&json!({"offering_items": [
            {"name": "servers", "status": 1, "quota": {"value": 5, "overage": 5, "version": 0}},
            {"name": "workstations", "status": 1, "quota": {"value": 99, "overage": 99, "version": ws_version - 1}}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["domain"], "AccountServer");
    let items = pf.fake.offering_items(&cust);
    let get = |n: &str| items.iter().find(|i| i["name"] == n).unwrap().clone();
    assert_eq!(get("servers")["status"], 0);
    assert_eq!(get("workstations")["quota"]["value"], 10);
    assert_eq!(get("workstations")["quota"]["version"], ws_version);

    // a manual console change bumps the version → our stale write conflicts
    pf.fake
        .set_quota_by_hand(&cust, "workstations", None, Some(20.0), None);
    let r = pf
        .req(Method::PUT, &format!("tenants/{cust}/offering_items"))
        .json(&json!({"offering_items": [
            {"name": "workstations", "status": 1, "quota": {"value": 11, "overage": 11, "version": ws_version}}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // unknown names / infra → 400 naming the item
    for bad in [
        json!({"name": "teleporters", "status": 1}),
        json!({"name": "storage", "status": 1}),
        json!({"name": "storage", "infra_id": "00000000-0000-0000-0000-000000000000", "status": 1}),
    ] {
        let r = pf
            .req(Method::PUT, &format!("tenants/{cust}/offering_items"))
            .json(&json!({"offering_items": [bad]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body: Value = r.json().await.unwrap();
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("teleporters") || msg.contains("storage"),
            "{msg}"
        );
    }

    // type filter, incremental batch listing
    let infra_items = pf
        .json(
            pf.get(&format!("tenants/{cust}/offering_items"))
                .query(&[("type", "infra")]),
        )
        .await;
    assert_eq!(infra_items["items"].as_array().unwrap().len(), 1);
    let all = pf
        .json(pf.get("tenants/offering_items").query(&[
            ("subtree_root_tenant_id", pf.partner.tenant_id.as_str()),
            ("limit", "3"),
        ]))
        .await;
    assert_eq!(all["items"].as_array().unwrap().len(), 3);
    assert!(all["paging"]["cursors"]["after"].is_string());
}

#[tokio::test]
async fn catalogue_infra_usages_users() {
    let pf = Pf::new().await;
    let second = pf.fake.add_infra(&pf.partner.tenant_id, "Azure West");
    let cust = pf
        .fake
        .add_customer(&pf.partner.tenant_id, "Cust", Some("X-1"));
    let avail = pf
        .json(
            pf.get(&format!(
                "tenants/{}/offering_items/available_for_child",
                pf.partner.tenant_id
            ))
            .query(&[("kind", "customer"), ("edition", "*")]),
        )
        .await;
    let names: Vec<(String, Option<String>)> = avail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_string(),
                i["infra_id"].as_str().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(names.len(), 9);
    assert!(names.contains(&("storage".into(), Some(second.clone()))));

    let locs = pf.json(pf.get(&format!("tenants/{cust}/locations"))).await;
    let locs = locs["locations"].as_array().unwrap().clone();
    assert_eq!(locs.len(), 2);
    let mut infra_ids = Vec::new();
    for l in &locs {
        let inf = pf
            .json(pf.get(&format!("locations/{}/infra", l.as_str().unwrap())))
            .await;
        infra_ids.extend(inf["infras"].as_array().unwrap().iter().cloned());
    }
    let list = pf
        .json(
            pf.get("infra").query(&[(
                "uuids",
                infra_ids
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(","),
            )]),
        )
        .await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i["platform_owned"] == true));
    assert!(items.iter().any(|i| i["name"] == "Azure West"));

    pf.fake
        .set_usage(&cust, "storage", Some(&second), 1_073_741_824.0);
    pf.fake.set_usage(&cust, "workstations", None, 4.0);
    let u = pf.json(pf.get(&format!("tenants/{cust}/usages"))).await;
    let ws = u["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "workstations")
        .unwrap()
        .clone();
    assert_eq!(ws["absolute_value"], 4);
    assert_eq!(ws["tenant_uuid"], json!(cust));
    let batch = pf
        .json(
            pf.get("tenants/usages")
                .query(&[("tenants", cust.as_str())]),
        )
        .await;
    let st = batch["items"][0]["usages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["infra_id"] == json!(second))
        .unwrap()
        .clone();
    assert_eq!(st["value"], 1_073_741_824i64);

    // users + activation mail
    let r = pf
        .get("users/check_login")
        .query(&[("username", "admin@cust")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let user = pf
        .json(pf.req(Method::POST, "users").json(&json!({
            "tenant_id": cust, "login": "admin@cust",
            "contact": {"email": "admin@cust.test", "firstname": "Ad", "lastname": "Min"}
        })))
        .await;
    assert_eq!(user["activated"], false);
    let r = pf
        .get("users/check_login")
        .query(&[("username", "admin@cust")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let activation = format!(
        "users/{}/send-activation-email",
        user["id"].as_str().unwrap()
    );
    // the operation takes no body: `{}` is refused (and sends nothing)
    let r = pf
        .req(Method::POST, &activation)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = pf.req(Method::POST, &activation).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        pf.fake.activation_emails(),
        vec!["admin@cust.test".to_string()]
    );
}

#[tokio::test]
async fn faults_on_platform() {
    let pf = Pf::new().await;
    pf.fake.faults().push(
        Fault::status(429, Some(0))
            .path_contains("/tenants")
            .times(1),
    );
    let r = pf
        .get(&format!("tenants/{}", pf.partner.tenant_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "0");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["domain"], "AccountServer");
    let r = pf
        .get(&format!("tenants/{}", pf.partner.tenant_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // the create happens, the client sees a transport error
    pf.fake.faults().push(Fault {
        method: Some("POST".into()),
        path_contains: Some("/api/2/tenants".into()),
        kind: FaultKind::DropResponseAfterWrite,
        times: 1,
    });
    let r = pf
        .req(Method::POST, "tenants")
        .json(&json!({"name": "Dropped", "parent_id": pf.partner.tenant_id, "kind": "customer"}))
        .send()
        .await;
    assert!(r.is_err());
    let customers = pf.fake.customers(&pf.partner.tenant_id);
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[0]["name"], "Dropped");

    // latency fault
    pf.fake.faults().push(Fault::new(FaultKind::Latency(
        std::time::Duration::from_millis(30),
    )));
    let start = std::time::Instant::now();
    pf.json(pf.get(&format!("tenants/{}", pf.partner.tenant_id)))
        .await;
    assert!(start.elapsed() >= std::time::Duration::from_millis(30));

    let s = pf.fake.stats();
    assert_eq!(s.writes, 1);
    assert_eq!(s.by_route["GET /api/2/tenants/{id}"], 3);
    assert_eq!(s.by_route["POST /api/2/idp/token"], 1);
    pf.fake.reset_stats();
    assert_eq!(pf.fake.stats().requests, 0);
}
