use std::{
    collections::{BTreeSet, HashSet},
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use chrono::{DateTime, Datelike, TimeZone, Utc};
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use sandbox::{AtNewCompany, AtNewContract, AutotaskFake, Fault, FaultKind, Sandbox};
use serde_json::{json, Value};

const USER: &str = "api-user@msp.example";
const SECRET: &str = "s3cr3t~X";
const CODE: &str = "ACRONISINTEGRATIONCODE";

struct At {
    fake: AutotaskFake,
    http: Client,
    base: String,
}

impl At {
    async fn new() -> At {
        let fake = AutotaskFake::start().await.unwrap();
        fake.add_api_user(USER, SECRET, CODE);
        let base = format!("{}/ATServicesRest/V1.0", fake.url());
        At {
            fake,
            http: Client::new(),
            base,
        }
    }
    fn auth(&self, rb: RequestBuilder) -> RequestBuilder {
        rb.header("ApiIntegrationCode", CODE)
            .header("UserName", USER)
            .header("Secret", SECRET)
    }
    fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.auth(self.http.request(method, format!("{}/{path}", self.base)))
    }
    async fn send(&self, rb: RequestBuilder) -> (StatusCode, Value) {
        let r = rb.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.req(Method::GET, path)).await
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.req(Method::POST, path).json(&body)).await
    }
    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(self.req(Method::PATCH, path).json(&body)).await
    }
    async fn query(&self, entity: &str, body: Value) -> (StatusCode, Value) {
        self.post(&format!("{entity}/query"), body).await
    }
    /// Names (by `field`) of the items of a successful query.
    async fn names(&self, entity: &str, field: &str, filter: Value) -> BTreeSet<String> {
        let (s, b) = self.query(entity, json!({ "filter": filter })).await;
        assert_eq!(s, StatusCode::OK, "{filter}: {b}");
        b["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i[field].as_str().unwrap().to_string())
            .collect()
    }
}

fn error_text(body: &Value) -> String {
    let errors = body["errors"].as_array().expect("errors array");
    assert!(!errors.is_empty());
    errors
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

#[tokio::test]
async fn zone_discovery_and_version() {
    let at = At::new().await;
    let url = at.fake.url();
    for path in [
        "/atservicesrest/v1.0/zoneInformation",
        "/ATServicesRest/V1.0/ZoneInformation",
    ] {
        // no credentials at all; the user lookup is case-insensitive
        let r = at
            .http
            .get(format!("{url}{path}"))
            .query(&[("user", "API-USER@msp.example")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let z: Value = r.json().await.unwrap();
        assert_eq!(z["url"], format!("{url}/ATServicesRest/"));
        assert!(z["zoneName"].is_string());
        assert!(z["webUrl"].is_string());
        assert!(z["ci"].is_i64());
    }
    let r = at
        .http
        .get(format!("{url}/atservicesrest/v1.0/zoneInformation"))
        .query(&[("user", "nobody@msp.example")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"errors": ["Zone information could not be determined"]})
    );
    let v: Value = at
        .http
        .get(format!("{url}/atservicesrest/versioninformation"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"apiVersions": ["1.0"]}));
    // zone requests are not counted against the threshold
    assert_eq!(at.fake.threshold_used(), 0);
    // the zone URL is usable as the API base
    let (s, _) = at
        .get("Companies/query?search=%7B%22filter%22%3A%5B%5D%7D")
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn auth_failures() {
    let at = At::new().await;
    at.fake
        .add_user_without_api_access("human@msp.example", "pw");
    at.fake
        .add_api_user("other@msp.example", "pw2", "OTHERCODE");
    let url = format!("{}/Companies/entityInformation", at.base);
    let call = |code: Option<&str>, user: &str, secret: &str| {
        let mut rb = at
            .http
            .get(&url)
            .header("UserName", user)
            .header("Secret", secret);
        if let Some(c) = code {
            rb = rb.header("ApiIntegrationCode", c);
        }
        rb.send()
    };
    // header names in other spellings
    let r = at
        .http
        .get(&url)
        .header("apiintegrationcode", CODE)
        .header("USERNAME", USER)
        .header("secret", SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    for code in [None, Some("WRONGCODE"), Some("OTHERCODE")] {
        let r = call(code, USER, SECRET).await.unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR, "{code:?}");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"errors": ["IntegrationCode is invalid."]})
        );
    }
    for (user, secret) in [(USER, "wrong"), ("nobody@msp.example", SECRET)] {
        let r = call(Some(CODE), user, secret).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let body: Value = r.json().await.unwrap();
        assert!(error_text(&body).contains("UserName or Secret"), "{body}");
    }
    let r = call(Some(CODE), "human@msp.example", "pw").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert!(error_text(&body).contains("not an API user"), "{body}");
    // the non-API user is still found by zone discovery
    let r = at
        .http
        .get(format!(
            "{}/atservicesrest/v1.0/zoneInformation?user=human@msp.example",
            at.fake.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // failed authentications are not counted
    assert_eq!(at.fake.threshold_used(), 1);
}

/// Companies A..F and contracts with a PAYG UDF, used by the filter table.
async fn seed_filter_data(at: &At) {
    let mk = |name: &str, ty: &str| {
        at.fake.add_company(AtNewCompany {
            name: name.into(),
            company_type: Some(ty.into()),
            primary_contact: None,
        })
    };
    let alpha = mk("Alpha Backup", "Customer");
    mk("Beta Cloud", "Customer");
    mk("Gamma Alpha", "Prospect");
    let delta = mk("Delta", "Vendor");
    mk("epsilon cloud", "Customer");
    at.fake.update_company(delta, |c| {
        c.is_active = false;
        c.phone = Some("+1 555 0100".into());
    });
    at.fake
        .update_company(alpha, |c| c.parent_company_id = Some(delta));
    at.fake.define_contract_udf("Region");
    for (name, start, payg) in [
        ("C-2025", day(2025, 3, 1), Some("Yes")),
        ("C-2026a", day(2026, 1, 1), Some("No")),
        ("C-2026b", day(2026, 6, 15), None),
    ] {
        let mut udfs = vec![("Region".to_string(), "EU".to_string())];
        if let Some(p) = payg {
            udfs.push(("PAYG".into(), p.into()));
        }
        at.fake.add_contract(AtNewContract {
            company_id: alpha,
            name: name.into(),
            start_date: Some(start),
            end_date: Some(day(2027, 12, 31)),
            status_active: name != "C-2026b",
            udfs,
        });
    }
}

#[tokio::test]
async fn query_filters_table() {
    let at = At::new().await;
    seed_filter_data(&at).await;
    let all = [
        "Alpha Backup",
        "Beta Cloud",
        "Gamma Alpha",
        "Delta",
        "epsilon cloud",
    ];
    let f = |op: &str, field: &str, value: Value| json!({"op": op, "field": field, "value": value});
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!([f("eq", "companyName", json!("beta cloud"))]),
            vec!["Beta Cloud"],
        ),
        (
            json!([f("noteq", "companyName", json!("Delta"))]),
            vec!["Alpha Backup", "Beta Cloud", "Gamma Alpha", "epsilon cloud"],
        ),
        (json!([f("eq", "isActive", json!(false))]), vec!["Delta"]),
        (
            json!([f("eq", "companyType", json!("3"))]),
            vec!["Gamma Alpha"],
        ),
        (
            json!([f("gt", "companyType", json!(1))]),
            vec!["Gamma Alpha", "Delta"],
        ),
        (
            json!([f("gte", "companyType", json!(3))]),
            vec!["Gamma Alpha", "Delta"],
        ),
        (
            json!([f("lt", "companyType", json!(3))]),
            vec!["Alpha Backup", "Beta Cloud", "epsilon cloud"],
        ),
        (
            json!([f("lte", "companyType", json!(3))]),
            vec!["Alpha Backup", "Beta Cloud", "Gamma Alpha", "epsilon cloud"],
        ),
        (
            json!([f("beginsWith", "companyName", json!("alpha"))]),
            vec!["Alpha Backup"],
        ),
        (
            json!([f("endsWith", "companyName", json!("CLOUD"))]),
            vec!["Beta Cloud", "epsilon cloud"],
        ),
        (
            json!([f("contains", "companyName", json!("alpha"))]),
            vec!["Alpha Backup", "Gamma Alpha"],
        ),
        (json!([{"op": "exist", "field": "phone"}]), vec!["Delta"]),
        (
            json!([{"op": "exist", "field": "parentCompanyID"}]),
            vec!["Alpha Backup"],
        ),
        (
            json!([{"op": "notExist", "field": "phone"}]),
            vec!["Alpha Backup", "Beta Cloud", "Gamma Alpha", "epsilon cloud"],
        ),
        (
            json!([f(
                "in",
                "companyName",
                json!(["Delta", "BETA CLOUD", "nope"])
            )]),
            vec!["Beta Cloud", "Delta"],
        ),
        (
            json!([f("notIn", "companyType", json!([1, 7]))]),
            vec!["Gamma Alpha"],
        ),
        // field names and ops are case-insensitive
        (
            json!([f("EQ", "COMPANYNAME", json!("Delta"))]),
            vec!["Delta"],
        ),
        // top-level filters are ANDed
        (
            json!([
                f("contains", "companyName", json!("a")),
                f("eq", "isActive", json!(true)),
                f("eq", "companyType", json!(1))
            ]),
            vec!["Alpha Backup", "Beta Cloud"],
        ),
        // or, and nested and
        (
            json!([{"op": "or", "items": [
                f("eq", "companyName", json!("Delta")),
                {"op": "and", "items": [
                    f("contains", "companyName", json!("cloud")),
                    f("beginsWith", "companyName", json!("e")),
                ]},
            ]}]),
            vec!["Delta", "epsilon cloud"],
        ),
        (
            json!([{"op": "and", "items": [
                {"op": "or", "items": [f("eq", "companyType", json!(3)), f("eq", "companyType", json!(7))]},
                f("eq", "isActive", json!(true)),
            ]}]),
            vec!["Gamma Alpha"],
        ),
        // no filter: everything
        (json!([]), all.to_vec()),
        (
            json!([{"op": "gte", "field": "id", "value": 0}]),
            all.to_vec(),
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            at.names("Companies", "companyName", filter.clone()).await,
            set(&expected),
            "{filter}"
        );
    }

    // UDF filters, datetime filters (with and without Z), ints as strings
    let contract_cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!([{"op": "eq", "field": "PAYG", "udf": true, "value": "yes"}]),
            vec!["C-2025"],
        ),
        (
            json!([{"op": "notExist", "field": "payg", "udf": true}]),
            vec!["C-2026b"],
        ),
        (
            json!([{"op": "exist", "field": "PAYG", "udf": true}, {"op": "eq", "field": "Region", "udf": true, "value": "EU"}]),
            vec!["C-2025", "C-2026a"],
        ),
        (
            json!([f("gte", "startDate", json!("2026-01-01T00:00:00"))]),
            vec!["C-2026a", "C-2026b"],
        ),
        (
            json!([f("gt", "startDate", json!("2026-01-01T00:00:00Z"))]),
            vec!["C-2026b"],
        ),
        (
            json!([f("lt", "startDate", json!("2026-01-01"))]),
            vec!["C-2025"],
        ),
        (json!([f("eq", "status", json!("0"))]), vec!["C-2026b"]),
        (
            json!([f("eq", "contractType", json!(7))]),
            vec!["C-2025", "C-2026a", "C-2026b"],
        ),
    ];
    for (filter, expected) in contract_cases {
        assert_eq!(
            at.names("Contracts", "contractName", filter.clone()).await,
            set(&expected),
            "{filter}"
        );
    }

    // GET ?search= is equivalent
    let search = json!({"filter": [f("contains", "companyName", json!("cloud"))]}).to_string();
    let (s, b) = at
        .send(
            at.req(Method::GET, "Companies/query")
                .query(&[("search", search.as_str())]),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["items"].as_array().unwrap().len(), 2);

    // errors
    let errors: Vec<(Value, &str)> = vec![
        (
            json!({"filter": [f("eq", "nosuchfield", json!(1))]}),
            "nosuchfield",
        ),
        (
            json!({"filter": [{"op": "or", "items": [f("eq", "bogusField", json!(1))]}]}),
            "bogusField",
        ),
        (
            json!({"filter": [{"op": "eq", "field": "NoSuchUdf", "udf": true, "value": "x"}]}),
            "NoSuchUdf",
        ),
        (
            json!({"filter": [f("like", "companyName", json!("x"))]}),
            "like",
        ),
        (
            json!({"filter": [f("eq", "companyType", json!("abc"))]}),
            "companyType",
        ),
        (
            json!({"filter": [f("in", "id", json!((0..501).collect::<Vec<_>>()))]}),
            "500",
        ),
        (json!({"maxRecords": 0, "filter": []}), "MaxRecords"),
        (json!({"maxRecords": 501, "filter": []}), "MaxRecords"),
        (
            json!({"includeFields": ["id", "nope"], "filter": []}),
            "nope",
        ),
    ];
    for (body, needle) in errors {
        let entity = if body.to_string().contains("NoSuchUdf") {
            "Contracts"
        } else {
            "Companies"
        };
        let (s, b) = at.query(entity, body.clone()).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert!(error_text(&b).contains(needle), "{body}: {b}");
    }
    // exactly 500 values in an `in` are fine
    let (s, _) = at
        .query(
            "Companies",
            json!({"filter": [f("in", "id", json!((0..500).collect::<Vec<_>>()))]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);

    // includeFields
    let (s, b) = at
        .query(
            "Contracts",
            json!({"includeFields": ["ID", "contractName", "PAYG"], "filter": [f("eq", "contractName", json!("C-2025"))]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let item = &b["items"][0];
    assert_eq!(
        item.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<BTreeSet<_>>(),
        set(&["id", "contractName", "userDefinedFields"])
    );
    assert_eq!(
        item["userDefinedFields"],
        json!([{"name": "PAYG", "value": "Yes"}])
    );
}

#[tokio::test]
async fn records_shapes_and_get_by_id() {
    let at = At::new().await;
    at.fake.set_now(
        Utc.with_ymd_and_hms(2026, 11, 22, 8, 30, 15).unwrap()
            + chrono::Duration::microseconds(123_456),
    );
    let company = at.fake.add_company(AtNewCompany {
        name: "Acme".into(),
        company_type: None,
        primary_contact: Some(("Ann".into(), "Lee".into(), "ann@acme.test".into())),
    });
    let service = at.fake.add_service("Acronis workstation", "Monthly");
    let contract = at.fake.add_contract(AtNewContract {
        company_id: company,
        name: "Backup".into(),
        status_active: true,
        udfs: vec![("PAYG".into(), "No".into())],
        ..Default::default()
    });
    let cs = at.fake.add_contract_service(contract, service, 3.0);

    let (s, b) = at.get(&format!("Companies/{company}")).await;
    assert_eq!(s, StatusCode::OK);
    let c = &b["item"];
    for k in [
        "id",
        "companyName",
        "companyNumber",
        "companyType",
        "isActive",
        "parentCompanyID",
        "ownerResourceID",
        "lastTrackedModifiedDateTime",
        "userDefinedFields",
    ] {
        assert!(c.get(k).is_some(), "company lacks {k}: {c}");
    }
    assert_eq!(c["companyType"], 1);
    assert_eq!(
        c["lastTrackedModifiedDateTime"], "2026-11-22T08:30:15.123Z",
        "milliseconds and Z, like real answers"
    );

    let (_, b) = at.get(&format!("contracts/{contract}")).await;
    let k = &b["item"];
    assert_eq!(k["companyID"], company);
    assert_eq!(k["contractType"], 7);
    assert_eq!(k["status"], 1);
    assert_eq!(k["startDate"], "2026-11-01T00:00:00.000Z");
    assert_eq!(k["endDate"], "2027-10-31T00:00:00.000Z");
    assert_eq!(k["isDefaultContract"], false);
    assert_eq!(
        k["userDefinedFields"],
        json!([{"name": "PAYG", "value": "No"}])
    );
    for key in ["contractNumber", "contractCategory", "lastModifiedDateTime"] {
        assert!(k.get(key).is_some(), "{key}");
    }

    let (_, b) = at.get(&format!("ContractServices/{cs}")).await;
    let v = &b["item"];
    assert_eq!(v["contractID"], contract);
    assert_eq!(v["serviceID"], service);
    for key in [
        "unitPrice",
        "unitCost",
        "invoiceDescription",
        "internalDescription",
    ] {
        assert!(v.get(key).is_some(), "{key}");
    }
    assert!(
        v.get("units").is_none(),
        "ContractServices carry no quantity"
    );

    let (_, b) = at
        .query(
            "ContractServiceUnits",
            json!({"filter": [{"op": "eq", "field": "contractServiceID", "value": cs}]}),
        )
        .await;
    let units = b["items"].as_array().unwrap();
    assert_eq!(units.len(), 12, "one record per monthly period");
    assert_eq!(units[0]["units"], 3, "integral units are JSON integers");
    assert_eq!(units[0]["startDate"], "2026-11-01T00:00:00.000Z");
    assert_eq!(units[0]["endDate"], "2026-11-30T00:00:00.000Z");
    assert_eq!(units[0]["approveAndPostDate"], Value::Null);
    for key in ["contractID", "serviceID", "price", "cost"] {
        assert!(units[0].get(key).is_some(), "{key}");
    }

    let (_, b) = at.get(&format!("Services/{service}")).await;
    for key in [
        "name",
        "description",
        "unitPrice",
        "unitCost",
        "periodType",
        "billingCodeID",
        "isActive",
        "sku",
        "externalID",
    ] {
        assert!(b["item"].get(key).is_some(), "{key}");
    }

    // the primary contact, found by company
    let (_, b) = at
        .query(
            "Contacts",
            json!({"filter": [{"op": "eq", "field": "companyID", "value": company},
                              {"op": "eq", "field": "primaryContact", "value": true}]}),
        )
        .await;
    assert_eq!(b["items"][0]["emailAddress"], "ann@acme.test");
    let (_, b) = at.get(&format!("Companies/{company}/Contacts")).await;
    assert_eq!(b["items"].as_array().unwrap().len(), 1);

    // missing ids: 200 with a null item (the spec lists no 404)
    let (s, b) = at.get("Companies/999999999").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, json!({"item": null}));
    let (s, b) = at.get(&format!("Companies/{contract}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["item"], Value::Null, "ids do not overlap across entities");
    let (s, b) = at
        .get(&format!("Companies/{company}/Contacts/999999"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["item"], Value::Null);
    let (s, b) = at.get("Companies/not-a-number").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    error_text(&b);
    // distinct id ranges
    assert_ne!(company, contract);
    assert_ne!(service, cs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_1200_companies() {
    let at = At::new().await;
    for i in 0..1200 {
        at.fake.add_company(AtNewCompany {
            name: format!("Company {i:04}"),
            ..Default::default()
        });
    }
    let body = json!({"maxRecords": 500, "filter": [{"op": "exist", "field": "id"}]});

    // 1) follow nextPageUrl with GET
    let (s, first) = at.query("Companies", body.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(first["pageDetails"]["count"], 500);
    assert_eq!(first["pageDetails"]["requestCount"], 500);
    assert_eq!(first["pageDetails"]["prevPageUrl"], Value::Null);
    let mut ids: Vec<i64> = Vec::new();
    let mut counts = Vec::new();
    let mut page = first.clone();
    loop {
        let items = page["items"].as_array().unwrap();
        counts.push(items.len());
        ids.extend(items.iter().map(|i| i["id"].as_i64().unwrap()));
        let Some(next) = page["pageDetails"]["nextPageUrl"].as_str() else {
            break;
        };
        assert!(
            next.starts_with(&at.fake.url()),
            "absolute, same origin: {next}"
        );
        assert!(next.contains("paging="), "{next}");
        let (s, p) = at.send(at.auth(at.http.get(next))).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert!(p["pageDetails"]["prevPageUrl"].is_string());
        page = p;
    }
    assert_eq!(counts, vec![500, 500, 200]);
    assert_eq!(ids.len(), 1200);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1200);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ordered by id");

    // 2) follow it with POST repeating the body, and with POST without a body
    for with_body in [true, false] {
        let mut n = 0;
        let mut page = first.clone();
        let mut seen = HashSet::new();
        loop {
            for i in page["items"].as_array().unwrap() {
                assert!(seen.insert(i["id"].as_i64().unwrap()));
                n += 1;
            }
            let Some(next) = page["pageDetails"]["nextPageUrl"].as_str() else {
                break;
            };
            let mut rb = at.auth(at.http.post(next));
            if with_body {
                rb = rb.json(&body);
            }
            let (s, p) = at.send(rb).await;
            assert_eq!(s, StatusCode::OK, "{p}");
            page = p;
        }
        assert_eq!(n, 1200, "with_body={with_body}");
    }

    // prevPageUrl leads back
    let next = first["pageDetails"]["nextPageUrl"].as_str().unwrap();
    let (_, second) = at.send(at.auth(at.http.get(next))).await;
    let prev = second["pageDetails"]["prevPageUrl"].as_str().unwrap();
    let (_, back) = at.send(at.auth(at.http.get(prev))).await;
    assert_eq!(back["items"], first["items"]);

    // count, with and without a filter, GET and POST
    let (s, c) = at
        .post(
            "Companies/query/count",
            json!({"filter": [{"op": "exist", "field": "id"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c, json!({"queryCount": 1200}));
    let search = json!({"filter": [{"op": "endsWith", "field": "companyName", "value": "7"}]});
    let (_, c) = at
        .send(
            at.req(Method::GET, "Companies/query/count")
                .query(&[("search", search.to_string())]),
        )
        .await;
    assert_eq!(c["queryCount"], 120);

    // a small maxRecords pages too
    let (_, p) = at
        .query(
            "Companies",
            json!({"maxRecords": 7, "filter": [{"op": "lt", "field": "id", "value": ids[10]}]}),
        )
        .await;
    assert_eq!(p["pageDetails"]["count"], 7);
    assert_eq!(p["pageDetails"]["requestCount"], 7);
    let (_, p2) = at
        .send(
            at.auth(
                at.http
                    .get(p["pageDetails"]["nextPageUrl"].as_str().unwrap()),
            ),
        )
        .await;
    assert_eq!(p2["pageDetails"]["count"], 3);
    assert_eq!(p2["pageDetails"]["nextPageUrl"], Value::Null);

    // includeFields without id: fine up to 500 matches (paging included), refused beyond
    let (s, p) = at
        .query(
            "Companies",
            json!({"maxRecords": 7, "includeFields": ["companyName"],
                   "filter": [{"op": "lt", "field": "id", "value": ids[10]}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["items"][0], json!({"companyName": "Company 0000"}));
    assert!(p["pageDetails"]["nextPageUrl"].is_string());
    let (s, b) = at
        .query(
            "Companies",
            json!({"includeFields": ["companyName"], "filter": []}),
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(error_text(&b).contains("id"));

    // POST queries are not writes; per-route stats
    let st = at.fake.stats();
    assert_eq!(st.writes, 0);
    assert!(st.by_route["POST /ATServicesRest/V1.0/Companies/query"] >= 3);
    assert!(st.by_route["GET /ATServicesRest/V1.0/Companies/query"] >= 2);
}

#[tokio::test]
async fn entity_information_picklists_and_udfs() {
    let at = At::new().await;
    at.fake
        .define_contract_picklist_udf("Billing Model", &["Prepaid", "PAYG"]);
    let (s, b) = at.get("Contracts/entityInformation/fields").await;
    assert_eq!(s, StatusCode::OK);
    let fields = b["fields"].as_array().unwrap();
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no field {name}"))
            .clone()
    };
    let label_of = |f: &Value, value: &str| {
        f["picklistValues"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["value"] == value)
            .map(|p| p["label"].as_str().unwrap().to_string())
    };
    let ct = field("contractType");
    assert_eq!(ct["isPickList"], true);
    assert_eq!(label_of(&ct, "7").as_deref(), Some("Recurring Service"));
    let status = field("status");
    assert_eq!(label_of(&status, "1").as_deref(), Some("Active"));
    assert_eq!(label_of(&status, "0").as_deref(), Some("Inactive"));
    assert!(field("contractCategory")["picklistValues"].is_array());
    assert_eq!(field("contractName")["isPickList"], false);
    assert_eq!(field("contractName")["picklistValues"], Value::Null);
    assert_eq!(field("companyID")["isReference"], true);
    assert_eq!(field("companyID")["referenceEntityType"], "Company");
    assert_eq!(field("startDate")["dataType"], "datetime");

    let (_, b) = at.get("Companies/entityInformation/fields").await;
    let ctype = b["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "companyType")
        .unwrap()
        .clone();
    assert_eq!(label_of(&ctype, "1").as_deref(), Some("Customer"));
    let (_, b) = at.get("services/entityinformation/FIELDS").await;
    let pt = b["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "periodType")
        .unwrap()
        .clone();
    assert!(pt["picklistValues"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["label"] == "Monthly"));

    // UDFs: the default PAYG text UDF plus a picklist UDF
    let (s, b) = at
        .get("Contracts/entityInformation/userDefinedFields")
        .await;
    assert_eq!(s, StatusCode::OK);
    let udfs = b["fields"].as_array().unwrap();
    assert_eq!(udfs.len(), 2);
    assert_eq!(udfs[0]["name"], "PAYG");
    assert_eq!(udfs[0]["isPickList"], false);
    assert_eq!(udfs[1]["name"], "Billing Model");
    assert_eq!(udfs[1]["isPickList"], true);
    assert_eq!(udfs[1]["picklistValues"][1]["label"], "PAYG");
    assert_eq!(udfs[1]["picklistValues"][1]["value"], "2");
    at.fake.remove_contract_udf("PAYG");
    let (_, b) = at
        .get("Contracts/entityInformation/userDefinedFields")
        .await;
    assert_eq!(b["fields"].as_array().unwrap().len(), 1);

    let (_, b) = at.get("ContractServiceAdjustments/entityInformation").await;
    assert_eq!(b["info"]["canQuery"], false);
    assert_eq!(b["info"]["canCreate"], true);
    let (_, b) = at.get("Companies/entityInformation").await;
    assert_eq!(b["info"]["hasUserDefinedFields"], true);
    assert_eq!(b["info"]["canQuery"], true);
}

#[tokio::test]
async fn writes_contract_services_and_adjustments() {
    let at = At::new().await;
    at.fake
        .set_now(Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap());

    // Companies POST/PATCH
    let (s, b) = at
        .post(
            "Companies",
            json!({"companyName": "New Co", "companyType": 1, "phone": "1"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let company = b["itemId"].as_i64().unwrap();
    let (s, b) = at
        .post("Companies", json!({"companyName": "No type"}))
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(error_text(&b).contains("companyType"));
    let (s, b) = at
        .patch(
            "Companies",
            json!({"id": company, "companyNumber": "C-1", "isActive": false}),
        )
        .await;
    assert_eq!((s, b["itemId"].as_i64()), (StatusCode::OK, Some(company)));
    let c = at.fake.company(company).unwrap();
    assert_eq!(c.company_number.as_deref(), Some("C-1"));
    assert!(!c.is_active);
    assert_eq!(c.company_name, "New Co");

    // Services POST
    let (s, b) = at
        .post(
            "Services",
            json!({"name": "Acronis pw base storage XYZ billed", "periodType": 1, "unitPrice": 2.5}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let service = b["itemId"].as_i64().unwrap();
    let (s, _) = at
        .patch("Services", json!({"id": service, "sku": "ACR-STOR"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        at.fake.service(service).unwrap().sku.as_deref(),
        Some("ACR-STOR")
    );
    let other_service = at.fake.add_service("Acronis servers", "Monthly");

    // Contracts POST with a UDF, datetimes with Z accepted
    let (s, b) = at
        .post(
            "Contracts",
            json!({"companyID": company, "contractName": "Backup", "contractType": 7,
                   "startDate": "2026-01-01T00:00:00Z", "endDate": "2026-12-31T00:00:00",
                   "userDefinedFields": [{"name": "PAYG", "value": "Yes"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let contract = b["itemId"].as_i64().unwrap();
    let k = at.fake.contract(contract).unwrap();
    assert_eq!(k.status, 1);
    assert_eq!(k.user_defined_fields[0].value.as_deref(), Some("Yes"));
    let (s, b) = at
        .post(
            "Contracts",
            json!({"companyID": company, "contractName": "X", "contractType": 7,
                   "startDate": "2026-01-01", "endDate": "2026-12-31",
                   "userDefinedFields": [{"name": "Nope", "value": "1"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(error_text(&b).contains("Nope"));
    let (s, _) = at
        .patch(
            "Contracts",
            json!({"id": contract, "userDefinedFields": [{"name": "payg", "value": "No"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        at.fake.contract(contract).unwrap().user_defined_fields[0]
            .value
            .as_deref(),
        Some("No")
    );
    // a non-recurring contract cannot carry services
    let (_, b) = at
        .post(
            "Contracts",
            json!({"companyID": company, "contractName": "T&M", "contractType": 1,
                   "startDate": "2026-01-01", "endDate": "2026-12-31"}),
        )
        .await;
    let tm = b["itemId"].as_i64().unwrap();
    let (s, b) = at
        .post(
            &format!("Contracts/{tm}/Services"),
            json!({"serviceID": service}),
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(error_text(&b).contains("Recurring Service"));

    // ContractServices through the parent; the root is read-only
    let (s, b) = at
        .post(
            &format!("Contracts/{contract}/Services"),
            json!({"serviceID": service}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let cs = b["itemId"].as_i64().unwrap();
    let (s, _) = at
        .post(
            "ContractServices",
            json!({"contractID": contract, "serviceID": service}),
        )
        .await;
    assert!(
        s == StatusCode::NOT_FOUND || s == StatusCode::METHOD_NOT_ALLOWED,
        "{s}"
    );
    let (s, b) = at
        .post(
            &format!("Contracts/{contract}/Services"),
            json!({"serviceID": service}),
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "duplicate: {b}");
    assert_eq!(at.fake.units(cs), 0.0, "a new ContractService has no units");
    let cs_json = at.fake.contract_services(contract);
    assert_eq!(cs_json.len(), 1);
    assert_eq!(cs_json[0]["unitPrice"], 2.5);
    assert_eq!(cs_json[0]["units"], 0);

    // update: unitPrice and invoiceDescription only
    let (s, _) = at
        .patch(
            &format!("Contracts/{contract}/Services"),
            json!({"id": cs, "unitPrice": 3.0, "invoiceDescription": "Storage"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = at
        .patch(
            &format!("Contracts/{contract}/Services"),
            json!({"id": cs, "serviceID": other_service}),
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(error_text(&b).contains("serviceID"));

    // adjustment through the parent, effective at the period start
    let (s, b) = at
        .post(
            &format!("Contracts/{contract}/ServiceAdjustments"),
            json!({"contractServiceID": cs, "unitChange": 5, "effectiveDate": "2026-03-01T00:00:00"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(b["itemId"].as_i64().is_some());
    assert_eq!(at.fake.units(cs), 5.0);
    // and at the root, mid-period: the period is split
    let (s, b) = at
        .post(
            "ContractServiceAdjustments",
            json!({"contractID": contract, "contractServiceID": cs, "unitChange": 3,
                   "effectiveDate": "2026-03-10T00:00:00"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(at.fake.units(cs), 8.0);
    let (_, b) = at
        .query(
            "ContractServiceUnits",
            json!({"filter": [{"op": "eq", "field": "contractServiceID", "value": cs},
                              {"op": "lte", "field": "startDate", "value": "2026-03-10T00:00:00"},
                              {"op": "gte", "field": "endDate", "value": "2026-03-10T00:00:00"}]}),
        )
        .await;
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{b}");
    assert_eq!(items[0]["units"], 8);
    assert_eq!(items[0]["startDate"], "2026-03-10T00:00:00.000Z");
    assert_eq!(items[0]["endDate"], "2026-03-31T00:00:00.000Z");
    let march: Vec<_> = at
        .fake
        .service_units(cs)
        .into_iter()
        .filter(|u| u.start_date.month() == 3)
        .collect();
    assert_eq!(march.len(), 2);
    assert_eq!((march[0].units, march[0].end_date.day()), (5.0, 9));
    // later periods follow, earlier ones do not
    let units = at.fake.service_units(cs);
    assert_eq!(units.last().unwrap().units, 8.0);
    assert_eq!(units.last().unwrap().end_date, day(2026, 12, 31));
    // a different child route lists the units of the contract
    let (_, b) = at.get(&format!("Contracts/{contract}/ServiceUnits")).await;
    assert_eq!(b["items"].as_array().unwrap().len(), units.len());

    // negative results, bad dates, non-integer changes are refused
    for body in [
        json!({"contractID": contract, "contractServiceID": cs, "unitChange": -9, "effectiveDate": "2026-03-20"}),
        json!({"contractID": contract, "contractServiceID": cs, "unitChange": 1, "effectiveDate": "2027-03-20"}),
        json!({"contractID": contract, "contractServiceID": cs, "unitChange": 1.5, "effectiveDate": "2026-03-20"}),
        json!({"contractID": contract, "unitChange": 1, "effectiveDate": "2026-03-20"}),
        json!({"contractID": tm, "serviceID": service, "unitChange": 1, "effectiveDate": "2026-03-20"}),
    ] {
        let (s, b) = at.post("ContractServiceAdjustments", body.clone()).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{body}: {b}");
        error_text(&b);
    }
    assert_eq!(at.fake.units(cs), 8.0);

    // an adjustment naming a service the contract lacks creates the ContractService
    let (s, b) = at
        .post(
            &format!("Contracts/{contract}/ServiceAdjustments"),
            json!({"serviceID": other_service, "unitChange": 2, "effectiveDate": "2026-03-10"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let all = at.fake.contract_services(contract);
    assert_eq!(all.len(), 2);
    let created = all
        .iter()
        .find(|c| c["serviceID"] == other_service)
        .unwrap();
    assert_eq!(created["units"], 2);

    // the handle's adjust_units behaves like an adjustment
    at.fake.adjust_units(cs, -8.0);
    assert_eq!(at.fake.units(cs), 0.0);
    assert_eq!(at.fake.adjustments(contract).len(), 4);

    // ContractServices query by contract
    let (_, b) = at
        .query(
            "ContractServices",
            json!({"filter": [{"op": "eq", "field": "contractID", "value": contract}]}),
        )
        .await;
    assert_eq!(b["items"].as_array().unwrap().len(), 2);
    let (_, b) = at.get(&format!("Contracts/{contract}/Services/{cs}")).await;
    assert_eq!(b["item"]["unitPrice"], 3.0);
    assert_eq!(b["item"]["invoiceDescription"], "Storage");

    let st = at.fake.stats();
    assert!(st.writes >= 10, "{st:?}");
}

#[tokio::test]
async fn threshold_counts_blocks_and_recovers() {
    let at = At::new().await;
    let t0 = Utc.with_ymd_and_hms(2026, 5, 1, 10, 0, 0).unwrap();
    at.fake.set_now(t0);
    let (_, b) = at.get("ThresholdInformation").await;
    assert_eq!(
        b,
        json!({"externalRequestThreshold": 10000, "requestThresholdTimeframe": 60,
               "currentTimeframeRequestCount": 0})
    );
    at.fake.set_threshold(5);
    for _ in 0..5 {
        let (s, _) = at.get("Companies/entityInformation").await;
        assert_eq!(s, StatusCode::OK);
    }
    assert_eq!(at.fake.threshold_used(), 5);
    let r = at
        .req(Method::POST, "Companies/query")
        .json(&json!({"filter": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "3600");
    let body: Value = r.json().await.unwrap();
    assert!(error_text(&body).contains("threshold"), "{body}");
    // the status stays readable while blocked
    let (s, b) = at.get("ThresholdInformation").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["externalRequestThreshold"], 5);
    assert_eq!(b["currentTimeframeRequestCount"], 5);
    // rolling window: 30 minutes later still blocked, an hour later free again
    at.fake.set_now(t0 + chrono::Duration::minutes(30));
    assert_eq!(
        at.get("Companies/entityInformation").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    at.fake.set_now(t0 + chrono::Duration::minutes(60));
    assert_eq!(at.fake.threshold_used(), 0);
    assert_eq!(
        at.get("Companies/entityInformation").await.0,
        StatusCode::OK
    );
    assert_eq!(at.fake.threshold_used(), 1);
    // zone discovery is exempt
    at.fake.set_threshold(1);
    let r = at
        .http
        .get(format!(
            "{}/atservicesrest/v1.0/zoneInformation?user={USER}",
            at.fake.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thread_limit_per_integration_and_entity() {
    let at = At::new().await;
    at.fake.add_company(AtNewCompany {
        name: "A".into(),
        ..Default::default()
    });
    let fire = |n: usize, path: &'static str| {
        let mut tasks = Vec::new();
        for _ in 0..n {
            let rb = at.req(Method::POST, path).json(&json!({"filter": []}));
            tasks.push(tokio::spawn(async move {
                let r = rb.send().await.unwrap();
                let s = r.status();
                (s, r.json::<Value>().await.unwrap())
            }));
        }
        tasks
    };
    let key = format!("{CODE} Companies");

    // 4 concurrent slow requests to one endpoint: one is rejected at once
    at.fake.faults().push(
        Fault::new(FaultKind::Latency(Duration::from_millis(250)))
            .path_contains("/Companies/query")
            .times(4),
    );
    let mut ok = 0;
    let mut rejected = 0;
    for t in fire(4, "Companies/query") {
        let (s, b) = t.await.unwrap();
        match s {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(error_text(&b).contains("Thread limit"), "{b}");
                rejected += 1
            }
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert_eq!((ok, rejected), (3, 1));
    assert_eq!(at.fake.stats().max_in_flight_per_endpoint[&key], 4);
    at.fake.faults().clear();

    // 3 concurrent: all fine; other entities have their own budget
    at.fake.reset_stats();
    at.fake.faults().set_latency(Duration::from_millis(150));
    let mut tasks = fire(3, "Companies/query");
    tasks.extend(fire(3, "Contracts/query"));
    for t in tasks {
        let (s, b) = t.await.unwrap();
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let st = at.fake.stats();
    assert_eq!(st.max_in_flight_per_endpoint[&key], 3);
    assert_eq!(
        st.max_in_flight_per_endpoint[&format!("{CODE} Contracts")],
        3
    );
    assert!(st.max_in_flight >= 4, "{st:?}");

    // zone requests are exempt
    let url = format!(
        "{}/atservicesrest/v1.0/zoneInformation?user={USER}",
        at.fake.url()
    );
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let rb = at.http.get(&url);
        tasks.push(tokio::spawn(
            async move { rb.send().await.unwrap().status() },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    at.fake.faults().clear();
}

#[tokio::test]
async fn faults_like_the_other_fakes() {
    let at = At::new().await;
    at.fake.faults().push(
        Fault::status(429, Some(1))
            .method("POST")
            .path_contains("/Companies/query")
            .times(2),
    );
    for _ in 0..2 {
        let r = at
            .req(Method::POST, "Companies/query")
            .json(&json!({"filter": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "1");
        error_text(&r.json::<Value>().await.unwrap());
    }
    assert_eq!(
        at.query("Companies", json!({"filter": []})).await.0,
        StatusCode::OK
    );
    assert!(at.fake.faults().pending().is_empty());
    at.fake.faults().push(Fault::status(500, None));
    let (s, b) = at.get("Companies/entityInformation").await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    error_text(&b);
    // faulted requests are not counted against the threshold
    assert_eq!(at.fake.threshold_used(), 1);

    // DropResponseAfterWrite: the adjustment is applied, the client sees a connection error
    at.fake
        .set_now(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap());
    let company = at.fake.add_company(AtNewCompany {
        name: "Acme".into(),
        ..Default::default()
    });
    let service = at.fake.add_service("S", "Monthly");
    let contract = at.fake.add_contract(AtNewContract {
        company_id: company,
        name: "K".into(),
        status_active: true,
        ..Default::default()
    });
    let cs = at.fake.add_contract_service(contract, service, 1.0);
    at.fake.faults().push(
        Fault::new(FaultKind::DropResponseAfterWrite)
            .method("POST")
            .path_contains("/ServiceAdjustments"),
    );
    let r = at
        .req(
            Method::POST,
            &format!("Contracts/{contract}/ServiceAdjustments"),
        )
        .json(&json!({"contractServiceID": cs, "unitChange": 4, "effectiveDate": "2026-02-01"}))
        .send()
        .await;
    assert!(r.is_err(), "client must see a connection error: {r:?}");
    assert_eq!(at.fake.units(cs), 5.0);
    assert_eq!(
        at.get(&format!("ContractServices/{cs}")).await.0,
        StatusCode::OK
    );

    // the control API works like on the other fakes
    let url = at.fake.url();
    let stats: Value = at
        .http
        .get(format!("{url}/_sandbox/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["writes"], 1);
    assert!(stats["max_in_flight_per_endpoint"].is_object());
    let r = at
        .http
        .post(format!("{url}/_sandbox/faults"))
        .json(&json!({"path_contains": "/Contracts/", "kind": {"type": "status", "code": 503}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        at.get(&format!("Contracts/{contract}")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let r = at
        .http
        .post(format!("{url}/_sandbox/clock"))
        .json(&json!({"now": "2026-07-01T00:00:00Z"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (_, b) = at
        .post(
            "Companies",
            json!({"companyName": "Later", "companyType": 2}),
        )
        .await;
    let (_, b) = at.get(&format!("Companies/{}", b["itemId"])).await;
    assert_eq!(
        b["item"]["lastTrackedModifiedDateTime"],
        "2026-07-01T00:00:00.000Z"
    );
}

#[tokio::test]
async fn sandbox_includes_autotask() {
    let sb = Sandbox::start().await.unwrap();
    assert!(sb.autotask.url().starts_with("http://127.0.0.1:"));
    assert_ne!(sb.autotask.url(), sb.connectwise.url());
}

#[test]
fn binary_prints_autotask_url_and_demo_credentials() {
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
    let url = v["autotask"].as_str().unwrap().to_string();
    let demo = v["demo"]["autotask"].clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = rt.block_on(async {
        Client::new()
            .post(format!(
                "{url}/ATServicesRest/V1.0/ContractServiceUnits/query"
            ))
            .header(
                "ApiIntegrationCode",
                demo["integration_code"].as_str().unwrap(),
            )
            .header("UserName", demo["username"].as_str().unwrap())
            .header("Secret", demo["secret"].as_str().unwrap())
            .json(&json!({"filter": []}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(body["items"][0]["units"], 5, "{body}");
}
