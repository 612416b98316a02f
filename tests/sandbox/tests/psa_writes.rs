//! The writes a person in the PSA makes, through the vendor APIs of the fakes: ConnectWise
//! companies, contacts, agreements, additions and tickets; Autotask companies, contacts,
//! contracts, contract services and tickets.

use base64::Engine;
use reqwest::{Client, Method, StatusCode};
use sandbox::{AutotaskFake, ConnectWiseFake};
use serde_json::{json, Value};

async fn send(rb: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = rb.send().await.unwrap();
    let s = r.status();
    let text = r.text().await.unwrap();
    (s, serde_json::from_str(&text).unwrap_or(Value::Null))
}

struct Cw {
    base: String,
    http: Client,
}

impl Cw {
    fn call(&self, m: Method, path: &str, body: Option<Value>) -> reqwest::RequestBuilder {
        let token = base64::engine::general_purpose::STANDARD.encode("acme+pub:priv");
        let rb = self
            .http
            .request(m, format!("{}/{path}", self.base))
            .header("Authorization", format!("Basic {token}"))
            .header("clientId", "c");
        match body {
            Some(b) => rb.json(&b),
            None => rb,
        }
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(self.call(Method::POST, path, Some(body))).await
    }
    async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(self.call(Method::PATCH, path, Some(body))).await
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        send(self.call(Method::GET, path, None)).await
    }
}

#[tokio::test]
async fn connectwise_company_contact_agreement_addition_ticket() {
    let fake = ConnectWiseFake::start().await.unwrap();
    fake.add_instance("acme", "pub", "priv");
    let product = fake.add_product("acme", "ACR-BACKUP", "Backup");
    let cw = Cw {
        base: format!("{}/v2025_1/apis/3.0", fake.url()),
        http: Client::new(),
    };

    let (s, co) = cw
        .post(
            "company/companies",
            json!({"identifier": "Globex", "name": "Globex Corp", "types": [{"name": "Client"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{co}");
    assert_eq!(co["status"]["name"], "Active");
    assert_eq!(co["types"][0]["id"], 1);
    let company = co["id"].as_i64().unwrap();
    // required fields, unique identifier, unknown references
    for body in [
        json!({"name": "No identifier"}),
        json!({"identifier": "globex", "name": "Dup"}),
        json!({"identifier": "x", "name": "x", "status": {"name": "Nope"}}),
    ] {
        let (s, b) = cw.post("company/companies", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body} {b}");
        assert_eq!(b["code"], "InvalidObject");
    }

    let (s, ct) = cw
        .post(
            "company/contacts",
            json!({"firstName": "Gil", "lastName": "Bates", "company": {"id": company},
                   "defaultFlag": true,
                   "communicationItems": [{"type": {"name": "Email"}, "value": "gil@globex.test",
                                           "defaultFlag": true}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ct}");
    assert_eq!(ct["communicationItems"][0]["communicationType"], "Email");
    let contact = ct["id"].as_i64().unwrap();
    let (_, co) = cw.get(&format!("company/companies/{company}")).await;
    assert_eq!(
        co["defaultContact"]["id"], contact,
        "a default contact is the company's"
    );

    let (s, ag) = cw
        .post(
            "finance/agreements",
            json!({"name": "Backup", "type": {"name": "Managed Services"},
                   "company": {"identifier": "Globex"}, "contact": {"id": contact},
                   "startDate": "2026-11-01T00:00:00Z", "noEndingDateFlag": true}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{ag}");
    assert_eq!(ag["agreementStatus"], "Active");
    assert_eq!(ag["company"]["id"], company);
    let agreement = ag["id"].as_i64().unwrap();
    let (s, b) = cw
        .post(
            "finance/agreements",
            json!({"name": "x", "type": {"id": 1}, "company": {"id": company}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "contact is required: {b}");

    let (s, add) = cw
        .post(
            &format!("finance/agreements/{agreement}/additions"),
            json!({"product": {"id": product}, "quantity": 5, "billCustomer": "Billable"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{add}");

    // PATCH: rename the company (references follow), cancel the agreement
    let (s, co) = cw
        .patch(
            &format!("company/companies/{company}"),
            json!([{"op": "replace", "path": "name", "value": "Globex Inc"}]),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{co}");
    assert_eq!(co["name"], "Globex Inc");
    let (s, ag) = cw
        .patch(
            &format!("finance/agreements/{agreement}"),
            json!([{"op": "replace", "path": "cancelledFlag", "value": true}]),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{ag}");
    assert_eq!(ag["agreementStatus"], "Cancelled");
    assert_eq!(ag["company"]["name"], "Globex Inc");
    let (s, _) = cw
        .patch(
            &format!("company/companies/{company}"),
            json!([{"op": "replace", "path": "Name", "value": "x"}]),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "paths are case-sensitive");

    let (s, t) = cw
        .post(
            "service/tickets",
            json!({"summary": "Backup failed", "company": {"id": company},
                   "contact": {"id": contact}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    assert_eq!(t["board"]["name"], "Help Desk");
    let ticket = t["id"].as_i64().unwrap();
    let (s, t) = cw
        .patch(
            &format!("service/tickets/{ticket}"),
            json!([{"op": "replace", "path": "status", "value": {"name": ">Closed"}}]),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["closedFlag"], true);
    let (_, list) = cw.get("service/tickets?conditions=closedFlag=True").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (s, _) = cw
        .post("service/tickets", json!({"summary": "no company"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn autotask_company_contact_contract_service_ticket() {
    let fake = AutotaskFake::start().await.unwrap();
    fake.add_api_user("api@msp.test", "secret", "CODE");
    let service = fake.add_service("Cyber Protect", "Monthly");
    let base = format!("{}/ATServicesRest/V1.0", fake.url());
    let http = Client::new();
    let call = |m: Method, path: &str, body: Value| {
        http.request(m, format!("{base}/{path}"))
            .header("ApiIntegrationCode", "CODE")
            .header("UserName", "api@msp.test")
            .header("Secret", "secret")
            .json(&body)
    };
    let post = |path: &str, body: Value| send(call(Method::POST, path, body));

    let (s, b) = post(
        "Companies",
        json!({"companyName": "Initech", "companyType": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let company = b["itemId"].as_i64().unwrap();

    let (s, b) = post(
        &format!("Companies/{company}/Contacts"),
        json!({"firstName": "Peter", "lastName": "Gibbons", "isActive": 1,
               "emailAddress": "peter@initech.test", "primaryContact": true}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let contact = b["itemId"].as_i64().unwrap();
    let (_, b) = send(call(
        Method::GET,
        &format!("Contacts/{contact}"),
        json!(null),
    ))
    .await;
    assert_eq!(b["item"]["companyID"], company);
    let (s, b) = send(call(
        Method::PATCH,
        &format!("Companies/{company}/Contacts"),
        json!({"id": contact, "lastName": "Gibbons-Smith"}),
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, _) = post(
        &format!("Companies/{company}/Contacts"),
        json!({"firstName": "No", "isActive": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "lastName is required");

    let (s, b) = post(
        "Contracts",
        json!({"companyID": company, "contractName": "Backup", "contractType": 7, "status": 1,
               "startDate": "2026-11-01T00:00:00", "endDate": "2027-10-31T00:00:00"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let contract = b["itemId"].as_i64().unwrap();
    let (s, b) = post(
        &format!("Contracts/{contract}/Services"),
        json!({"serviceID": service, "unitPrice": 10.0}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let (s, b) = post(
        "Tickets",
        json!({"title": "Backup failed", "companyID": company, "contactID": contact,
               "status": 1, "priority": 2, "queueID": 8}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let ticket = b["itemId"].as_i64().unwrap();
    let (s, b) = send(call(
        Method::PATCH,
        "Tickets",
        json!({"id": ticket, "status": 5}),
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, b) = send(call(Method::GET, &format!("Tickets/{ticket}"), json!(null))).await;
    assert_eq!(b["item"]["status"], 5);
    assert!(b["item"]["ticketNumber"].as_str().unwrap().starts_with('T'));
    assert!(b["item"]["createDate"].as_str().unwrap().ends_with('Z'));
    let (s, _) = post(
        "Tickets",
        json!({"title": "x", "companyID": company, "status": 99, "priority": 2}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::INTERNAL_SERVER_ERROR,
        "unknown picklist value"
    );
}
