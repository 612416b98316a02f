//! ConnectWise fake: `childConditions`, `fields` and the catalog item's required references.

use base64::Engine;
use reqwest::{Client, StatusCode};
use sandbox::{ConnectWiseFake, NewCompany};
use serde_json::{json, Value};

const INST: &str = "acme";

async fn fake() -> (ConnectWiseFake, String) {
    let fake = ConnectWiseFake::start().await.unwrap();
    fake.add_instance(INST, "pubkey", "privkey");
    let base = format!("{}/v2025_1/apis/3.0", fake.url());
    (fake, base)
}

async fn get(base: &str, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
    let token = base64::engine::general_purpose::STANDARD.encode("acme+pubkey:privkey");
    let r = Client::new()
        .get(format!("{base}/{path}"))
        .query(query)
        .header("Authorization", format!("Basic {token}"))
        .header("clientId", "test-client-id")
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

fn company(fake: &ConnectWiseFake, ident: &str, type_name: Option<&str>) -> i64 {
    fake.add_company(
        INST,
        NewCompany {
            identifier: ident.into(),
            name: format!("{ident} Inc"),
            type_name: type_name.map(str::to_string),
            primary_contact: Some(("Ann".into(), "Lee".into(), format!("ann@{ident}.test"))),
            ..Default::default()
        },
    )
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn child_conditions_filter_on_child_collections() {
    let (fake, base) = fake().await;
    let client = company(&fake, "client", Some("Client"));
    let partner = company(&fake, "partner", Some("Partner"));
    let none = company(&fake, "none", None);
    let _ = none;

    let (s, b) = get(
        &base,
        "company/companies",
        &[("childConditions", "types/id = 1")],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids(&b), vec![client]);
    let (_, b) = get(
        &base,
        "company/companies",
        &[("childConditions", "types/name = \"Partner\"")],
    )
    .await;
    assert_eq!(ids(&b), vec![partner]);
    // a filter that matches nothing returns nothing
    let (s, b) = get(
        &base,
        "company/companies",
        &[("childConditions", "types/id = 999")],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, json!([]));
    // ANDed with conditions, honoured by count
    let (_, b) = get(
        &base,
        "company/companies",
        &[
            ("childConditions", "types/id in (1, 3)"),
            ("conditions", "identifier = \"partner\""),
        ],
    )
    .await;
    assert_eq!(ids(&b), vec![partner]);
    let (_, b) = get(
        &base,
        "company/companies/count",
        &[("childConditions", "types/id in (1, 3)")],
    )
    .await;
    assert_eq!(b, json!({"count": 2}));
    // contacts by e-mail
    let (_, b) = get(
        &base,
        "company/contacts",
        &[(
            "childConditions",
            "communicationItems/value like \"*@partner.test\"",
        )],
    )
    .await;
    assert_eq!(b.as_array().unwrap().len(), 1);
    assert_eq!(b[0]["company"]["id"], partner);

    // the stricter reading: collections only in childConditions, and only collections there
    for (param, cond) in [
        ("conditions", "types/id = 1"),
        ("childConditions", "identifier = \"client\""),
        ("childConditions", "types = 1"),
        ("childConditions", "nope/id = 1"),
        ("childConditions", "types/id = "),
    ] {
        let (s, b) = get(&base, "company/companies", &[(param, cond)]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{param}={cond}");
        assert_eq!(b["code"], "InvalidObject", "{b}");
    }
    let (s, _) = get(
        &base,
        "finance/agreements",
        &[("childConditions", "company/id = 1")],
    )
    .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "agreements have no child collections"
    );
}

#[tokio::test]
async fn fields_return_partial_records() {
    let (fake, base) = fake().await;
    let id = company(&fake, "client", Some("Client"));
    let (s, b) = get(
        &base,
        "company/companies",
        &[("fields", "id,name,status/id,types/name")],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b,
        json!([{"id": id, "name": "client Inc", "status": {"id": 1},
                "types": [{"name": "Client"}]}])
    );
    let (_, b) = get(
        &base,
        &format!("company/companies/{id}"),
        &[("fields", "identifier,_info/lastUpdated")],
    )
    .await;
    assert_eq!(b["identifier"], "client");
    assert!(b["_info"]["lastUpdated"].is_string());
    assert_eq!(b.as_object().unwrap().len(), 2, "{b}");
    let (s, b) = get(&base, "company/companies", &[("fields", "id,nope")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
}

#[tokio::test]
async fn catalog_items_carry_subcategory_and_type() {
    let (fake, base) = fake().await;
    let id = fake.add_product(INST, "ACR-BACKUP", "Backup");
    let (_, b) = get(&base, &format!("procurement/catalog/{id}"), &[]).await;
    for k in [
        "identifier",
        "description",
        "subcategory",
        "type",
        "customerDescription",
    ] {
        assert!(!b[k].is_null(), "catalog item lacks {k}: {b}");
    }
    assert!(b["subcategory"]["id"].is_i64() && b["type"]["name"].is_string());
}
