//! The SAM template, read as written: each function is granted exactly what its code calls
//! (least privilege, R-SET-2: a function reads only the secrets it needs) and both HTTP APIs write
//! access logs that never carry the webhook URL's token.

use serde_norway::Value;
use std::collections::BTreeSet;
use std::path::Path;

const FUNCTIONS: [&str; 5] = [
    "SyncTenantFunction",
    "PublishUsageFunction",
    "AlertToTicketFunction",
    "WebhookReceiverFunction",
    "AdminApiFunction",
];

/// The functions that work for one partner at a time from the bus and the schedules.
const WORKERS: [&str; 3] = [
    "SyncTenantFunction",
    "PublishUsageFunction",
    "AlertToTicketFunction",
];

/// The DynamoDB calls of `shared/adapters/src/dynamo.rs`.
const STORE_ACTIONS: [&str; 6] = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:BatchGetItem",
    "dynamodb:DeleteItem",
    "dynamodb:UpdateItem",
];

/// What a statement may say: no Deny, NotAction, NotResource or Condition to reason about.
const STATEMENT_KEYS: [&str; 4] = ["Sid", "Effect", "Action", "Resource"];

const TABLE: &str = "${Table.Arn}";
const TABLE_INDEXES: &str = "${Table.Arn}/index/*";
const SECRETS: &str =
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:";

fn secret(kind: &str) -> String {
    // Secrets Manager appends "-" and six random characters to every secret's ARN.
    format!("{SECRETS}psa-bridge/*/{kind}-??????")
}

fn template() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn resource<'a>(t: &'a Value, name: &str) -> &'a Value {
    t.get("Resources")
        .and_then(|r| r.get(name))
        .unwrap_or_else(|| panic!("template.yaml has no resource {name}"))
}

fn properties<'a>(t: &'a Value, name: &str) -> &'a Value {
    resource(t, name)
        .get("Properties")
        .unwrap_or_else(|| panic!("{name} has no Properties"))
}

/// A string or an intrinsic as one string: `!Sub s` is `s`, `!GetAtt A.B` is `${A.B}`, `!Ref X`
/// is `${X}` (short or long form).
fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Tagged(t) if t.tag == "Sub" => render(&t.value),
        Value::Tagged(t) if t.tag == "Ref" => format!("${{{}}}", render(&t.value)),
        Value::Tagged(t) if t.tag == "GetAtt" => format!("${{{}}}", get_att(&t.value)),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next().expect("one entry");
            match k.as_str() {
                Some("Fn::Sub") => render(v),
                Some("Ref") => format!("${{{}}}", render(v)),
                Some("Fn::GetAtt") => format!("${{{}}}", get_att(v)),
                _ => panic!("cannot read {v:?} as a string"),
            }
        }
        other => panic!("cannot read {other:?} as a string"),
    }
}

fn get_att(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Sequence(parts) => parts.iter().map(render).collect::<Vec<_>>().join("."),
        other => panic!("cannot read GetAtt {other:?}"),
    }
}

/// One string or a list of them.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(items) => items.iter().map(render).collect(),
        one => vec![render(one)],
    }
}

/// Every (action, resource) a function's `Policies` allow. Panics on anything that is not an
/// explicit statement list (SAM policy templates such as `DynamoDBCrudPolicy`, managed policy
/// ARNs) and on statements this reading cannot vouch for (Deny, NotAction, NotResource,
/// Condition).
fn grants(t: &Value, function: &str) -> BTreeSet<(String, String)> {
    let policies = properties(t, function)
        .get("Policies")
        .and_then(Value::as_sequence)
        .unwrap_or_else(|| panic!("{function} has no Policies list"));
    let mut out = BTreeSet::new();
    for policy in policies {
        let statements = policy
            .as_mapping()
            .filter(|m| m.len() == 1)
            .and_then(|m| m.get("Statement"))
            .and_then(Value::as_sequence)
            .unwrap_or_else(|| {
                panic!(
                    "{function}: every policy must be an explicit `Statement:` list, not {}",
                    serde_norway::to_string(policy).unwrap_or_default()
                )
            });
        for st in statements {
            let keys: BTreeSet<&str> = st
                .as_mapping()
                .unwrap_or_else(|| panic!("{function}: statement {st:?} is not a mapping"))
                .keys()
                .filter_map(Value::as_str)
                .collect();
            let unexpected: Vec<_> = keys
                .iter()
                .filter(|k| !STATEMENT_KEYS.contains(k))
                .collect();
            assert!(
                unexpected.is_empty(),
                "{function}: statement has {unexpected:?}: {st:?}"
            );
            assert_eq!(
                st.get("Effect").and_then(Value::as_str),
                Some("Allow"),
                "{function}: {st:?}"
            );
            let actions = strings(st.get("Action").expect("Action"));
            let resources = strings(st.get("Resource").expect("Resource"));
            for a in &actions {
                for r in &resources {
                    out.insert((a.clone(), r.clone()));
                }
            }
        }
    }
    out
}

/// The grants of one service (`dynamodb:`, `secretsmanager:`, `events:`).
fn of(grants: &BTreeSet<(String, String)>, service: &str) -> BTreeSet<(String, String)> {
    grants
        .iter()
        .filter(|(a, _)| a.starts_with(service))
        .cloned()
        .collect()
}

fn product(actions: &[&str], resources: &[String]) -> BTreeSet<(String, String)> {
    actions
        .iter()
        .flat_map(|a| resources.iter().map(move |r| (a.to_string(), r.clone())))
        .collect()
}

fn show(set: &BTreeSet<(String, String)>) -> String {
    set.iter()
        .map(|(a, r)| format!("\n  {a} on {r}"))
        .collect::<String>()
}

#[test]
fn no_function_uses_sam_policy_templates_or_global_policies() {
    let t = template();
    let globals = t.get("Globals").and_then(|g| g.get("Function"));
    for key in ["Policies", "Role", "PermissionsBoundary"] {
        assert!(
            globals.and_then(|g| g.get(key)).is_none(),
            "Globals.Function must not set {key}: each function states its own permissions"
        );
    }
    for f in FUNCTIONS {
        let policies =
            serde_norway::to_string(properties(&t, f).get("Policies").expect("Policies"))
                .expect("serializes");
        assert!(
            !policies.contains("DynamoDBCrudPolicy"),
            "{f} still has DynamoDBCrudPolicy (Scan, BatchWriteItem, UpdateItem, …)"
        );
        assert!(
            properties(&t, f).get("Role").is_none(),
            "{f}: no external role"
        );
        // Panics on anything but explicit Allow statements.
        assert!(!grants(&t, f).is_empty(), "{f} is granted nothing");
    }
}

#[test]
fn no_action_has_a_wildcard_or_a_call_the_adapters_do_not_make() {
    let t = template();
    for f in FUNCTIONS {
        for (action, resource) in grants(&t, f) {
            assert!(
                !action.contains('*'),
                "{f}: wildcard action {action} on {resource}"
            );
            for unused in [
                "dynamodb:Scan",
                "dynamodb:BatchWriteItem",
                "dynamodb:TransactWriteItems",
            ] {
                assert_ne!(action, unused, "{f}: {unused} is never called");
            }
        }
    }
}

#[test]
fn workers_and_admin_api_get_exactly_the_store_calls_on_the_table_and_its_indexes() {
    let t = template();
    for f in WORKERS.into_iter().chain(["AdminApiFunction"]) {
        let got = of(&grants(&t, f), "dynamodb:");
        // Of the five, only Query reads an index (gsi1, gsi2).
        let mut want = product(&STORE_ACTIONS, &[TABLE.into()]);
        want.extend(product(&["dynamodb:Query"], &[TABLE_INDEXES.into()]));
        assert_eq!(got, want, "{f}: got{}\nwant{}", show(&got), show(&want));
    }
}

#[test]
fn webhook_receiver_only_gets_and_puts_items() {
    let t = template();
    let got = of(&grants(&t, "WebhookReceiverFunction"), "dynamodb:");
    let want = product(&["dynamodb:GetItem", "dynamodb:PutItem"], &[TABLE.into()]);
    assert_eq!(got, want, "got{}\nwant{}", show(&got), show(&want));
}

#[test]
fn r_set_2_workers_read_only_the_psa_and_platform_secrets() {
    let t = template();
    for f in WORKERS {
        let got = of(&grants(&t, f), "secretsmanager:");
        let want = product(
            &["secretsmanager:GetSecretValue"],
            &[secret("psa"), secret("platform")],
        );
        assert_eq!(got, want, "{f}: got{}\nwant{}", show(&got), show(&want));
    }
}

#[test]
fn r_set_2_webhook_receiver_reads_only_the_webhook_secrets() {
    let t = template();
    let got = of(&grants(&t, "WebhookReceiverFunction"), "secretsmanager:");
    let want = product(&["secretsmanager:GetSecretValue"], &[secret("webhook")]);
    assert_eq!(got, want, "got{}\nwant{}", show(&got), show(&want));
}

#[test]
fn r_set_2_admin_api_manages_only_the_three_secrets_of_a_partner() {
    let t = template();
    let got = of(&grants(&t, "AdminApiFunction"), "secretsmanager:");
    let want = product(
        &[
            "secretsmanager:GetSecretValue",
            "secretsmanager:PutSecretValue",
            "secretsmanager:CreateSecret",
            "secretsmanager:DescribeSecret",
        ],
        &[secret("psa"), secret("platform"), secret("webhook")],
    );
    assert_eq!(got, want, "got{}\nwant{}", show(&got), show(&want));
}

#[test]
fn every_function_puts_events_on_its_bus_and_has_nothing_else() {
    let t = template();
    for f in FUNCTIONS {
        let all = grants(&t, f);
        let events = of(&all, "events:");
        let want = product(&["events:PutEvents"], &["${EventBus.Arn}".into()]);
        assert_eq!(
            events,
            want,
            "{f}: got{}\nwant{}",
            show(&events),
            show(&want)
        );
        let other: BTreeSet<_> = all
            .iter()
            .filter(|(a, _)| {
                !["dynamodb:", "secretsmanager:", "events:"]
                    .iter()
                    .any(|s| a.starts_with(s))
            })
            .cloned()
            .collect();
        assert!(other.is_empty(), "{f}: unexpected grants{}", show(&other));
    }
}

#[test]
fn both_http_apis_write_json_access_logs_to_their_own_log_groups() {
    let t = template();
    let mut groups = BTreeSet::new();
    for api in ["WebhookApi", "AdminApi"] {
        let settings = properties(&t, api)
            .get("AccessLogSettings")
            .unwrap_or_else(|| panic!("{api} has no AccessLogSettings"));
        let destination = render(settings.get("DestinationArn").expect("DestinationArn"));
        let group = destination
            .strip_prefix("${")
            .and_then(|d| d.strip_suffix(".Arn}"))
            .unwrap_or_else(|| {
                panic!("{api}: DestinationArn {destination} is not a log group's Arn")
            });
        assert_eq!(
            resource(&t, group).get("Type").and_then(Value::as_str),
            Some("AWS::Logs::LogGroup"),
            "{api}: {group}"
        );
        assert!(
            properties(&t, group).get("RetentionInDays").is_some(),
            "{group} keeps its logs forever"
        );
        assert!(groups.insert(group.to_owned()), "{group} is shared");
        let format = render(settings.get("Format").expect("Format"));
        let format: serde_json::Value = serde_json::from_str(&format)
            .unwrap_or_else(|e| panic!("{api}: the access log format is not JSON ({e}): {format}"));
        for key in ["requestId", "ip", "routeKey", "status", "latency"] {
            assert!(format.get(key).is_some(), "{api}: no {key} in {format}");
        }
        assert_eq!(format["routeKey"], "$context.routeKey", "{api}");
    }
}

#[test]
fn access_logs_never_carry_the_path_and_its_webhook_token() {
    let t = template();
    let hook = properties(&t, "WebhookReceiverFunction")
        .get("Events")
        .and_then(|e| e.get("Hook"))
        .and_then(|h| h.get("Properties"))
        .and_then(|p| p.get("Path"))
        .and_then(Value::as_str)
        .expect("the webhook route");
    assert_eq!(hook, "/hooks/{partner}/{token}/{source}");
    for api in ["WebhookApi", "AdminApi"] {
        let format = properties(&t, api)
            .get("AccessLogSettings")
            .and_then(|s| s.get("Format"))
            .map(render)
            .unwrap_or_else(|| panic!("{api} has no access log format"));
        for leak in ["$context.path", "$request."] {
            assert!(!format.contains(leak), "{api} logs {leak}: {format}");
        }
    }
}

/// The store calls granted are the ones the DynamoDB adapter (`shared/adapters/src/dynamo/`)
/// makes: a new call there fails here until the template grants it (moto does not check IAM).
#[test]
fn the_store_actions_are_the_calls_the_dynamo_adapter_makes() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/adapters/src/dynamo"
    );
    let mut src = String::new();
    for f in std::fs::read_dir(dir).expect("the dynamo adapter's folder") {
        let path = f.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            src.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    assert!(
        src.contains("impl PublishLedger for DynamoStore"),
        "all of the adapter read"
    );
    let calls = [
        ("get_item()", "dynamodb:GetItem"),
        ("put_item()", "dynamodb:PutItem"),
        ("query()", "dynamodb:Query"),
        ("batch_get_item()", "dynamodb:BatchGetItem"),
        ("delete_item()", "dynamodb:DeleteItem"),
        ("update_item()", "dynamodb:UpdateItem"),
        ("scan()", "dynamodb:Scan"),
        ("batch_write_item()", "dynamodb:BatchWriteItem"),
        ("transact_write_items()", "dynamodb:TransactWriteItems"),
    ];
    let made: BTreeSet<&str> = calls
        .iter()
        .filter(|(call, _)| src.contains(&format!(".{call}")))
        .map(|(_, action)| *action)
        .collect();
    let granted: BTreeSet<&str> = STORE_ACTIONS.into_iter().collect();
    assert_eq!(made, granted);
}
