//! Conformance: every route the fakes serve — each request the product makes (the routes,
//! methods and queries of `shared/adapters/src/*`) and the writes a PSA user makes — is sent
//! to the fakes, and every response body is validated against the vendor's schema from the
//! repository's `../shared/specs` with the `jsonschema` crate (Draft 4 semantics, formats
//! asserted). A fake route no case covers fails the test, and so does a method a listed path
//! serves without being listed (probed: it must answer 405).
//!
//! Tolerated spec quirks (the short list; code in `conformance/schema.rs`):
//! * Q1 Autotask: every field may be `null` (answers carry unset fields as null; the Swagger
//!   2.0 document has no nullability).
//! * Q2 ConnectWise: a few fields the API sends as `null` that the partial document types
//!   without it (`Company.defaultContact`, unset dates, `invoiceDescription`, …: `NULL_QUIRKS`).
//! * Q3 Platform: `format: date-time` is not asserted (record timestamps are zone-less, as in
//!   the vendor's own examples).
//! * Q4 Autotask: `OperationResultModel.itemId` is typed `Object`; it is the new id.
//! * Q5 Statuses the spec omits (`STATUS_QUIRKS`): Autotask's error answers are HTTP 500
//!   `{"errors":[…]}` (the notes), which no operation lists.
//! * Q6 Routes the partial ConnectWise document lacks (`NOT_IN_SPEC`): `login/companyinfo`
//!   and `company/contacts`, checked against schemas written from the vendor docs in the notes.

#[path = "conformance/schema.rs"]
mod schema;

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Client, Method, StatusCode};
use sandbox::{AtNewCompany, AtNewContract, NewAddition, NewAgreement, NewCompany, Sandbox};
use schema::{shape, Spec, Vendor};
use serde_json::{json, Value};

/// Q5: `(vendor, method, spec path, status)` answered although the spec does not list it.
const STATUS_QUIRKS: &[(Vendor, &str, &str, u16)] = &[
    (Vendor::Autotask, "POST", "/V1.0/Companies", 500),
    (Vendor::Autotask, "POST", "/V1.0/Tickets", 500),
];

/// Q6: fake routes without a path in the document, with the schema their answer must meet.
fn not_in_spec(method: &str, route: &str) -> Option<Value> {
    let contact = json!({
        "type": "object",
        "required": ["id", "firstName", "company", "communicationItems", "_info"],
        "properties": {
            "id": {"type": "integer"},
            "firstName": {"type": "string", "maxLength": 30},
            "lastName": {"type": "string", "maxLength": 30},
            "company": {"$ref": "#/components/schemas/CompanyReference"},
            "inactiveFlag": {"type": "boolean"},
            "defaultFlag": {"type": "boolean"},
            "communicationItems": {"type": "array", "items": {
                "type": "object",
                "required": ["type", "value", "communicationType"],
                "properties": {
                    "id": {"type": "integer"},
                    "type": {"type": "object", "required": ["id", "name"]},
                    "value": {"type": "string"},
                    "defaultFlag": {"type": "boolean"},
                    "communicationType": {"enum": ["Email", "Phone", "Fax"]}
                }
            }},
            "_info": {"type": "object", "additionalProperties": {"type": "string"}}
        }
    });
    match route {
        "/login/companyinfo/{company}" => Some(json!({
            "type": ["object", "null"],
            "required": ["CompanyName", "Codebase", "VersionCode", "VersionNumber", "CompanyID",
                         "IsCloud"],
            "properties": {"Codebase": {"type": "string", "pattern": "/$"},
                           "IsCloud": {"type": "boolean"}}
        })),
        "/{codebase}/apis/3.0/company/contacts" if method == "POST" => Some(contact),
        "/{codebase}/apis/3.0/company/contacts" => Some(json!({"type": "array", "items": contact})),
        "/{codebase}/apis/3.0/company/contacts/{id}" => Some(contact),
        "/{codebase}/apis/3.0/company/contacts/count" => {
            Some(json!({"$ref": "#/components/schemas/Count"}))
        }
        _ => None,
    }
}

struct Harness {
    sb: Sandbox,
    http: Client,
    specs: BTreeMap<Vendor, Spec>,
    covered: BTreeSet<(Vendor, String, String)>,
    failures: Vec<String>,
    pf_token: String,
}

/// One request: the fake route it targets (template as the fake registers it) and the URL.
struct Req<'a> {
    vendor: Vendor,
    method: &'a str,
    route: &'a str,
    url: String,
    body: Option<Value>,
    headers: Vec<(&'static str, String)>,
}

impl Harness {
    fn cw_url(&self, rest: &str) -> String {
        format!("{}/v2025_1/apis/3.0/{rest}", self.sb.connectwise.url())
    }
    fn at_url(&self, rest: &str) -> String {
        format!("{}/ATServicesRest/{rest}", self.sb.autotask.url())
    }
    fn pf_url(&self, rest: &str) -> String {
        format!("{}/api/2/{rest}", self.sb.platform.url())
    }

    /// Sends the request, validates the answer, returns its body.
    async fn check(&mut self, r: Req<'_>) -> Value {
        let method = Method::from_bytes(r.method.as_bytes()).expect("method");
        let mut rb = self.http.request(method, &r.url);
        rb = match r.vendor {
            Vendor::ConnectWise => rb
                .basic_auth("acme+pub", Some("priv"))
                .header("clientId", "conformance"),
            Vendor::Autotask => rb
                .header("ApiIntegrationCode", "CODE")
                .header("UserName", "api@msp.test")
                .header("Secret", "secret"),
            Vendor::Platform if r.route == "/api/2/idp/token" => rb,
            Vendor::Platform => rb.bearer_auth(&self.pf_token),
        };
        for (k, v) in &r.headers {
            rb = rb.header(*k, v);
        }
        if let Some(b) = &r.body {
            rb = if r.route == "/api/2/idp/token" {
                rb.form(
                    &b.as_object()
                        .expect("form")
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect::<Vec<_>>(),
                )
            } else {
                rb.json(b)
            };
        }
        let resp = rb.send().await.expect("the fake answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
        };
        self.covered
            .insert((r.vendor, r.method.to_string(), r.route.to_string()));
        let what = format!("{:?} {} {} → {status}", r.vendor, r.method, r.url);
        let spec = &self.specs[&r.vendor];
        let schema = match spec.path_of(r.route) {
            Some(path) => match spec.response(r.method, &path, status) {
                Ok(s) => s,
                Err(_)
                    if STATUS_QUIRKS.iter().any(|(v, m, p, s)| {
                        *v == r.vendor && *m == r.method && *p == path && *s == status
                    }) =>
                {
                    Some(json!({"type": "object", "required": ["errors"],
                                "properties": {"errors": {"type": "array", "minItems": 1}}}))
                }
                Err(e) => {
                    self.failures.push(format!("{what}: {e}; body {body}"));
                    return body;
                }
            },
            None => match not_in_spec(r.method, r.route) {
                Some(s) => Some(s),
                None => {
                    self.failures
                        .push(format!("{what}: route {} is not in the spec", r.route));
                    return body;
                }
            },
        };
        match schema {
            None if body.is_null() => {}
            None => self.failures.push(format!(
                "{what}: the spec defines no body, the fake sent {body}"
            )),
            Some(s) => {
                let errors = spec.validate(&s, &body);
                if !errors.is_empty() {
                    let shown: String = body.to_string().chars().take(600).collect();
                    self.failures
                        .push(format!("{what}: {}\n    body: {shown}", errors.join("; ")));
                }
            }
        }
        body
    }

    async fn cw(&mut self, method: &str, route: &str, rest: &str, body: Option<Value>) -> Value {
        let url = self.cw_url(rest);
        let route = format!("/{{codebase}}/apis/3.0/{route}");
        self.check(Req {
            vendor: Vendor::ConnectWise,
            method,
            route: &route,
            url,
            body,
            headers: vec![],
        })
        .await
    }

    async fn at(&mut self, method: &str, route: &str, rest: &str, body: Option<Value>) -> Value {
        let url = self.at_url(rest);
        let route = format!("/ATServicesRest/{route}");
        self.check(Req {
            vendor: Vendor::Autotask,
            method,
            route: &route,
            url,
            body,
            headers: vec![],
        })
        .await
    }

    async fn pf(&mut self, method: &str, route: &str, rest: &str, body: Option<Value>) -> Value {
        let url = self.pf_url(rest);
        let route = format!("/api/2/{route}");
        self.check(Req {
            vendor: Vendor::Platform,
            method,
            route: &route,
            url,
            body,
            headers: vec![],
        })
        .await
    }

    /// Every route of every fake covered; no unlisted method served on a listed path.
    async fn assert_coverage(&mut self) {
        let fakes = [
            (
                Vendor::ConnectWise,
                self.sb.connectwise.routes(),
                self.sb.connectwise.url(),
            ),
            (
                Vendor::Autotask,
                self.sb.autotask.routes(),
                self.sb.autotask.url(),
            ),
            (
                Vendor::Platform,
                self.sb.platform.routes(),
                self.sb.platform.url(),
            ),
        ];
        let mut total = 0;
        for (vendor, routes, base) in fakes {
            assert!(!routes.is_empty(), "{vendor:?} lists its routes");
            total += routes.len();
            let mut by_path: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
            for (m, p) in &routes {
                by_path.entry(p).or_default().insert(m);
                if !self.covered.contains(&(vendor, m.clone(), p.clone())) {
                    self.failures.push(format!(
                        "{vendor:?} {m} {p}: a fake route without a conformance case"
                    ));
                }
            }
            for (path, methods) in by_path {
                let concrete = path
                    .split('/')
                    .map(|s| if s.starts_with('{') { "1" } else { s })
                    .collect::<Vec<_>>()
                    .join("/")
                    .replace("/1/apis", "/v2025_1/apis");
                for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                    if methods.contains(m) {
                        continue;
                    }
                    let method = Method::from_bytes(m.as_bytes()).unwrap();
                    let s = self
                        .http
                        .request(method, format!("{base}{concrete}"))
                        .send()
                        .await
                        .unwrap()
                        .status();
                    if s != StatusCode::METHOD_NOT_ALLOWED {
                        self.failures.push(format!(
                            "{vendor:?} {m} {path}: served ({s}) but not listed by routes()"
                        ));
                    }
                }
            }
        }
        let covered: BTreeSet<_> = self
            .covered
            .iter()
            .map(|(v, m, p)| (*v, m, shape(p)))
            .collect();
        eprintln!(
            "conformance: {} fake routes, {} covered by cases",
            total,
            covered.len()
        );
    }
}

#[path = "conformance/cases.rs"]
mod cases;

#[tokio::test]
async fn every_fake_route_answers_what_the_vendor_spec_says() {
    let sb = Sandbox::start().await.unwrap();
    let specs: BTreeMap<Vendor, Spec> = [Vendor::ConnectWise, Vendor::Autotask, Vendor::Platform]
        .into_iter()
        .map(|v| (v, Spec::load(v)))
        .collect();
    let mut h = Harness {
        sb,
        http: Client::new(),
        specs,
        covered: BTreeSet::new(),
        failures: Vec::new(),
        pf_token: String::new(),
    };
    cases::connectwise(&mut h).await;
    cases::autotask(&mut h).await;
    cases::platform(&mut h).await;
    h.assert_coverage().await;
    assert!(
        h.failures.is_empty(),
        "{} conformance failures:\n{}",
        h.failures.len(),
        h.failures.join("\n")
    );
}

// Seed helpers used by the cases.
fn cw_seed(sb: &Sandbox) -> (i64, i64, i64, i64) {
    let cw = &sb.connectwise;
    cw.add_instance("acme", "pub", "priv");
    let product = cw.add_product("acme", "ACR-WS", "Cyber Protect workstation");
    let company = cw.add_company(
        "acme",
        NewCompany {
            identifier: "Contoso".into(),
            name: "Contoso".into(),
            type_name: Some("Client".into()),
            primary_contact: Some(("Ada".into(), "L".into(), "ada@contoso.test".into())),
            ..Default::default()
        },
    );
    let agreement = cw.add_agreement(
        "acme",
        NewAgreement {
            company_id: company,
            name: "Backup".into(),
            no_ending_date_flag: true,
            ..Default::default()
        },
    );
    let addition = cw.add_addition(
        "acme",
        agreement,
        NewAddition {
            product_id: product,
            quantity: 3.0,
            ..Default::default()
        },
    );
    (product, company, agreement, addition)
}

fn at_seed(sb: &Sandbox) -> (i64, i64, i64, i64) {
    let at = &sb.autotask;
    at.add_api_user("api@msp.test", "secret", "CODE");
    // contracts start on the first of the fake clock's month: 2026-11-01
    at.set_now(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 22, 10, 0, 0).unwrap());
    let service = at.add_service("Cyber Protect workstation", "Monthly");
    let company = at.add_company(AtNewCompany {
        name: "Contoso".into(),
        company_type: Some("Customer".into()),
        primary_contact: Some(("Ada".into(), "L".into(), "ada@contoso.test".into())),
    });
    let contract = at.add_contract(AtNewContract {
        company_id: company,
        name: "Backup".into(),
        status_active: true,
        udfs: vec![("PAYG".into(), "No".into())],
        ..Default::default()
    });
    let cs = at.add_contract_service(contract, service, 5.0);
    (service, company, contract, cs)
}
