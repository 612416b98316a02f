//! `psa-bridge local`: moto, the sandbox PSA and platform with demo data, and the handlers in
//! one process — the schedule as a timer and template.yaml's event routing done in-process
//! (events are also put on moto's bus, as in AWS).

use crate::localstack::{create_resources, Moto};
use crate::wiring::Ctx;
use adapters::aws::{local_sdk_config, AwsAdapters, Resources};
use adapters::connector::VendorConnector;
use adapters::eventbus::SOURCE;
use adapters::http::{HttpSettings, RetryPolicy};
use anyhow::Result;
use async_trait::async_trait;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{Datelike, Days, Utc};
use domain::ports::{BusEvent, Events, Secrets, SystemClock};
use domain::rules::settings::{ConnectWiseCredentials, PlatformCredentials, PsaCredentials};
use domain::services::{partners, status};
use domain::PortResult;
use sandbox::{NewAddition, NewAgreement, NewCompany, Sandbox};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Puts events on the (moto) bus, then hands the ones template.yaml routes to sync-tenant to
/// the local router.
struct RoutingBus {
    bus: adapters::eventbus::EventBus,
    tx: mpsc::UnboundedSender<BusEvent>,
}

#[async_trait]
impl Events for RoutingBus {
    async fn publish(&self, events: &[BusEvent]) -> PortResult<()> {
        self.bus.publish(events).await?;
        for e in events {
            if routes_to_sync(&e.detail_type) {
                let _ = self.tx.send(e.clone());
            }
        }
        Ok(())
    }
}

/// template.yaml's rules for sync-tenant.
pub fn routes_to_sync(detail_type: &str) -> bool {
    matches!(
        detail_type,
        sync_tenant::DETAIL_SYNC_PARTNER
            | sync_tenant::DETAIL_SYNC_COMPANY
            | sync_tenant::DETAIL_PSA_CHANGED
    )
}

fn envelope(source: &str, detail_type: &str, detail: Value) -> EventBridgeEvent<Value> {
    serde_json::from_value(json!({
        "version": "0", "id": uuid_like(), "detail-type": detail_type, "source": source,
        "account": "000000000000", "time": Utc::now(), "region": "us-east-1", "resources": [],
        "detail": detail,
    }))
    .expect("event shape")
}

fn uuid_like() -> String {
    format!(
        "{:032x}",
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    )
}

const CW: &str = "demomsp";

/// Options of `local`.
pub struct LocalArgs {
    pub once: bool,
    pub cw_port: u16,
    pub platform_port: u16,
}

fn print_report(v: &Value) {
    println!(
        "   {} pass: {} companies, {} changes applied, {} failed{}  ({} PSA / {} platform requests)",
        v["scope"].as_str().unwrap_or("?"),
        v["companies"],
        v["applied"],
        v["failures"].as_array().map_or(0, Vec::len),
        v["blocked"]
            .as_str()
            .map(|b| format!(", BLOCKED: {b}"))
            .unwrap_or_default(),
        v["psa_requests"],
        v["platform_requests"],
    );
    for c in v["changes"].as_array().into_iter().flatten() {
        let change: String = match c["action"].as_str() {
            Some("create_tenant") => format!(
                "company {}: create tenant \"{}\"",
                c["company_id"].as_str().unwrap_or(""),
                c["tenant_name"].as_str().unwrap_or("")
            ),
            Some("set_quota") => format!(
                "company {}: {}{} quota {} -> {}",
                c["company_id"].as_str().unwrap_or(""),
                c["item"]["name"].as_str().unwrap_or(""),
                c["item"]["infra_id"]
                    .as_str()
                    .map(|i| format!("@{}", &i[..8.min(i.len())]))
                    .unwrap_or_default(),
                quota_text(&c["old"]),
                quota_text(&c["new"])
            ),
            Some("add_line") => format!(
                "company {}: add {} to contract {} with {} units (PSA)",
                c["company_id"].as_str().unwrap_or(""),
                c["product"]["identifier"].as_str().unwrap_or(""),
                c["agreement_id"].as_str().unwrap_or(""),
                c["quantity"]
            ),
            Some("set_line_quantity") => format!(
                "company {}: {} units {} -> {} (PSA)",
                c["company_id"].as_str().unwrap_or(""),
                c["product"]["identifier"].as_str().unwrap_or(""),
                c["old"],
                c["new"]
            ),
            Some(other) => format!(
                "company {}: {other}",
                c["company_id"].as_str().unwrap_or("")
            ),
            None => c.to_string(),
        };
        println!("     - {change}  [{}]", c["rule"].as_str().unwrap_or(""));
    }
    for f in v["failures"].as_array().into_iter().flatten() {
        println!("     ! {}", f["reason"].as_str().unwrap_or(""));
    }
}

fn quota_text(q: &Value) -> String {
    if q.is_null() {
        return "(none)".into();
    }
    match (q["value"].as_f64(), q["overage"].as_f64()) {
        (None, None) => "unlimited".into(),
        (Some(v), None) => format!("{} soft", human(v)),
        (Some(v), Some(_)) => human(v),
        (None, Some(o)) => format!("unlimited/{}", human(o)),
    }
}

fn human(v: f64) -> String {
    if v >= 1_073_741_824.0 {
        format!("{} GiB", v / 1_073_741_824.0)
    } else {
        format!("{v}")
    }
}

/// The Autotask demo partner: what `run` needs of it later.
struct AutotaskDemo {
    partner_tenant: String,
    tailspin: i64,
    tailspin_contract: i64,
}

/// A second partner on Autotask with storage usage products, a public cloud vendor and
/// two-way sync: Tailspin (prepaid 5 workstations, 100 GB class 2 storage), Wingtip (PAYG).
async fn autotask_partner(sb: &Sandbox, ctx: &Ctx) -> Result<AutotaskDemo> {
    let at = &sb.autotask;
    let (user, secret, code) = ("api@demo-msp.example", "demo-at-secret", "DEMO-INTEGRATION");
    at.add_api_user(user, secret, code);
    at.add_billing_code("Cloud services");
    let ws = at.add_service("ACR-WS", "Monthly");
    at.add_service("ACR-SRV", "Monthly");
    at.add_service("ACR-STOR", "Monthly");
    at.add_service("ACR-STOR free", "Monthly");
    let billed = at.add_service("ACR-STOR billed", "Monthly");
    at.add_service("ACR-AZURE", "Monthly");
    let contract = |name: &str, payg: &str| {
        let c = at.add_company(sandbox::AtNewCompany {
            name: name.into(),
            company_type: Some("Customer".into()),
            ..Default::default()
        });
        let k = at.add_contract(sandbox::AtNewContract {
            company_id: c,
            name: format!("{name} backup"),
            status_active: true,
            udfs: vec![("PAYG".into(), payg.into())],
            ..Default::default()
        });
        (c, k)
    };
    let (tailspin, tk) = contract("Tailspin", "No");
    at.add_contract_service(tk, ws, 5.0);
    at.add_contract_service(tk, billed, 100.0);
    let (_, wk) = contract("Wingtip", "Yes");
    at.add_contract_service(wk, ws, 0.0);
    let account = sb.platform.add_partner("Demo Autotask MSP");
    sb.platform
        .add_storage(&account.tenant_id, "Azure West", "azure");
    partners::set_credentials(
        ctx.connector.as_ref(),
        ctx.secrets.as_ref(),
        "demo-at",
        &sb.platform.url(),
        PsaCredentials::Autotask(domain::rules::settings::AutotaskCredentials {
            username: user.into(),
            secret: secret.to_owned().into(),
            integration_code: code.to_owned().into(),
        }),
        PlatformCredentials {
            client_id: account.client_id.clone(),
            client_secret: account.client_secret.clone().into(),
        },
    )
    .await?;
    let yaml = format!(
        r#"id: demo-at
name: Demo Autotask MSP
psa: autotask
platform: {{ url: "{}" }}
provisioning: {{ auto_create: true }}
switches: {{ two_way_sync: true }}
two_way: {{ allocation_code: Cloud services, period_type: monthly }}
products:
  - {{ item: workstations, product: ACR-WS }}
  - {{ item: servers, product: ACR-SRV }}
  - {{ item: storage, location: Cloud storage, product: ACR-STOR, class1: ACR-STOR free, class2: ACR-STOR billed, free: true, default: true }}
public_cloud:
  - {{ vendor: azure, product: ACR-AZURE }}
"#,
        sb.platform.url()
    );
    partners::apply(ctx.store.as_ref(), ctx.connector.as_ref(), &yaml).await?;
    println!("4b. second partner \"demo-at\" on the sandbox Autotask at {}: Tailspin (prepaid: 5 workstations, 100 GB class 2 storage), Wingtip (PAYG workstations); storage products per class (R-MAP-3), Azure mapped per vendor (R-MAP-4), two-way sync on", sb.autotask.url());
    Ok(AutotaskDemo {
        partner_tenant: account.tenant_id,
        tailspin,
        tailspin_contract: tk,
    })
}

/// Runs the local system and prints what it did.
pub async fn run(args: LocalArgs) -> Result<()> {
    println!("psa-bridge local — everything on 127.0.0.1\n");
    let moto = Moto::start().await?;
    println!("1. moto (AWS stand-in) at {}", moto.endpoint);
    let sdk = local_sdk_config(&moto.endpoint).await;
    let resources = Resources {
        table: "psa-bridge-local".into(),
        bus: "psa-bridge-local".into(),
        secret_prefix: "psa-bridge/".into(),
    };
    create_resources(&sdk, &resources).await?;
    println!(
        "   created DynamoDB table {} (gsi1, TTL) and EventBridge bus {}",
        resources.table, resources.bus
    );
    let aws = AwsAdapters::new(&sdk, &resources);

    let sb = Sandbox::start_on(args.cw_port, args.platform_port, 0).await?;
    println!(
        "2. sandbox ConnectWise at {}, Autotask at {} and platform at {}",
        sb.connectwise.url(),
        sb.autotask.url(),
        sb.platform.url()
    );
    let cw = &sb.connectwise;
    cw.add_instance(CW, "demo-public", "demo-private");
    let ws = cw.add_product(CW, "ACR-WS", "Cyber Protect workstation");
    let srv = cw.add_product(CW, "ACR-SRV", "Cyber Protect server");
    cw.add_product(CW, "ACR-O365", "Microsoft 365 seat");
    let stor = cw.add_product(CW, "ACR-STOR", "Cloud storage (GB)");
    let today = Utc::now().date_naive();
    let start = today.with_day0(0).unwrap_or(today);
    let at = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).unwrap().and_utc();
    let next_year = at(today.checked_add_days(Days::new(365)).unwrap());
    let company = |name: &str| {
        cw.add_company(
            CW,
            NewCompany {
                identifier: name.to_owned(),
                name: name.to_owned(),
                type_name: Some("Customer".into()),
                ..Default::default()
            },
        )
    };
    let agreement = |c: i64, name: &str| {
        cw.add_agreement(
            CW,
            NewAgreement {
                company_id: c,
                name: name.into(),
                start_date: Some(at(start)),
                no_ending_date_flag: true,
                ..Default::default()
            },
        )
    };
    let addition = |a: i64, product: i64, qty: f64, cancelled: Option<chrono::DateTime<Utc>>| {
        cw.add_addition(
            CW,
            a,
            NewAddition {
                product_id: product,
                quantity: qty,
                less_included: 0.0,
                effective_date: Some(at(start)),
                cancelled_date: cancelled,
            },
        )
    };
    let contoso = company("Contoso");
    let a1 = agreement(contoso, "Contoso backup");
    addition(a1, ws, 0.0, None);
    addition(a1, stor, 500.0, Some(next_year));
    let fabrikam = company("Fabrikam");
    let a2 = agreement(fabrikam, "Fabrikam backup");
    addition(a2, srv, 10.0, Some(next_year));
    addition(a2, srv, 0.0, None);
    let _northwind = company("Northwind");
    println!("   ConnectWise: products ACR-WS, ACR-SRV, ACR-O365, ACR-STOR; companies Contoso (PAYG workstations, 500 GB prepaid storage), Fabrikam (10 prepaid + PAYG servers), Northwind (no agreement)");
    let account = sb.platform.add_partner("Demo MSP");
    println!(
        "   platform: partner tenant {} with storage \"Cloud storage\"",
        account.tenant_id
    );

    let http = HttpSettings {
        retry: RetryPolicy::quick(),
        ..HttpSettings::default()
    };
    let secrets: Arc<dyn Secrets> = Arc::new(aws.secrets.clone());
    // Autotask zone discovery goes to the sandbox.
    let autotask = adapters::autotask::AutotaskConfig {
        zone_url: format!("{}/atservicesrest/", sb.autotask.url()),
        ..adapters::autotask::AutotaskConfig::from_env()
    };
    let connector = Arc::new(
        VendorConnector::new(secrets.clone(), http.clone()).with_autotask(autotask.clone()),
    );
    let ctx = Ctx {
        store: Arc::new(aws.store.clone()),
        hooks: Arc::new(aws.secrets.clone()),
        secrets,
        connector: connector.clone(),
        events: Arc::new(aws.events.clone()),
    };
    let tenant = partners::set_credentials(
        ctx.connector.as_ref(),
        ctx.secrets.as_ref(),
        "demo",
        &sb.platform.url(),
        PsaCredentials::ConnectWise(ConnectWiseCredentials {
            site: sb.connectwise.url(),
            company_id: CW.into(),
            public_key: "demo-public".to_owned().into(),
            private_key: "demo-private".to_owned().into(),
            client_id: "0b4d6a6e-3c55-4a4e-9d53-3d1d0f6b1c11".into(),
        }),
        PlatformCredentials {
            client_id: account.client_id.clone(),
            client_secret: account.client_secret.clone().into(),
        },
    )
    .await?;
    println!("3. credentials set for partner \"demo\": ConnectWise and platform log-ins verified (API client acts for {tenant}); stored in Secrets Manager");
    let yaml = format!(
        r#"id: demo
name: Demo MSP
psa: connectwise
platform: {{ url: "{}" }}
provisioning: {{ auto_create: true }}
products:
  - {{ item: workstations, product: ACR-WS }}
  - {{ item: servers, product: ACR-SRV }}
  - {{ item: mailboxes, product: ACR-O365, free: true }}
  - {{ item: storage, location: Cloud storage, product: ACR-STOR, default: true }}
"#,
        sb.platform.url()
    );
    let applied = partners::apply(ctx.store.as_ref(), ctx.connector.as_ref(), &yaml).await?;
    println!(
        "4. partner file applied (settings changed: {}); product mapping: workstations=ACR-WS, servers=ACR-SRV, mailboxes=ACR-O365 (free), storage@Cloud storage=ACR-STOR (default)",
        applied.settings_changed
    );
    let at_demo = autotask_partner(&sb, &ctx).await?;

    let (tx, mut rx) = mpsc::unbounded_channel();
    let deps = sync_tenant::Deps {
        store: Arc::new(aws.store.clone()),
        events: Arc::new(RoutingBus {
            bus: aws.events.clone(),
            tx,
        }),
        connector,
        clock: Arc::new(SystemClock),
        concurrency: 8,
        full_sync_hours: None,
    };
    let invoke = |ev: EventBridgeEvent<Value>| {
        let deps = deps.clone();
        async move { sync_tenant::handle(&deps, ev).await }
    };
    let drain = |rx: &mut mpsc::UnboundedReceiver<BusEvent>| {
        let mut out = vec![];
        while let Ok(e) = rx.try_recv() {
            out.push(e);
        }
        out
    };

    println!("5. schedule tick: sync-tenant in dispatch mode");
    let d = invoke(envelope("psa-bridge.schedule", "SyncDispatch", json!({}))).await?;
    println!(
        "   dispatched {} partner event(s) on the bus",
        d["dispatched"]
    );
    for e in drain(&mut rx) {
        println!("   -> {} {}", e.detail_type, e.detail);
        let out = invoke(envelope(SOURCE, &e.detail_type, e.detail)).await?;
        print_report(&out);
    }

    println!("6. on the platform now:");
    for t in sb.platform.customers(&account.tenant_id) {
        let id = t["id"].as_str().unwrap_or_default();
        let items: Vec<String> = sb
            .platform
            .offering_items(id)
            .iter()
            .filter(|i| i["status"] == 1)
            .map(|i| {
                format!(
                    "{}={}",
                    i["name"].as_str().unwrap_or(""),
                    quota_text(&i["quota"])
                )
            })
            .collect();
        println!(
            "   tenant \"{}\" (customer_id {}): {}",
            t["name"].as_str().unwrap_or(""),
            t["customer_id"].as_str().unwrap_or("-"),
            items.join(", ")
        );
    }

    println!("7. a PSA change: Contoso gets 5 prepaid servers; the webhook's PsaChanged event syncs that one company");
    cw.set_now(Utc::now() + chrono::Duration::seconds(1));
    addition(a1, srv, 5.0, Some(next_year));
    deps.events
        .publish(&[BusEvent {
            detail_type: sync_tenant::DETAIL_PSA_CHANGED.into(),
            detail: json!({"partner": "demo", "company_id": contoso.to_string(), "entity": "agreement"}),
        }])
        .await?;
    for e in drain(&mut rx) {
        let out = invoke(envelope(SOURCE, &e.detail_type, e.detail)).await?;
        print_report(&out);
    }
    cw.clear_now();

    println!("7b. two-way sync (Autotask): someone turns on servers (quota 3) for Tailspin on the platform; the next pass adds the service to its contract");
    let tailspin_tenant = sb
        .platform
        .customers(&at_demo.partner_tenant)
        .into_iter()
        .find(|t| t["customer_id"].as_str() == Some(at_demo.tailspin.to_string().as_str()))
        .and_then(|t| t["id"].as_str().map(str::to_owned));
    if let Some(t) = tailspin_tenant {
        let later = Utc::now() + chrono::Duration::seconds(2);
        sb.platform.set_now(later);
        sb.platform
            .set_quota_by_hand(&t, "servers", None, Some(3.0), Some(3.0));
        sb.platform.clear_now();
        let out = invoke(envelope(
            SOURCE,
            sync_tenant::DETAIL_SYNC_PARTNER,
            json!({"partner": "demo-at", "pass": "incremental"}),
        ))
        .await?;
        print_report(&out);
        for cs in sb.autotask.contract_services(at_demo.tailspin_contract) {
            let id = cs["id"].as_i64().unwrap_or_default();
            let name = sb
                .autotask
                .service(cs["serviceID"].as_i64().unwrap_or_default())
                .map(|s| s.name)
                .unwrap_or_default();
            println!(
                "   Autotask contract now: {name} x {}",
                sb.autotask.units(id)
            );
        }
    }

    println!("7c. usage publish (publish-usage's manual publish, month to date): Contoso used 7 workstations; its PAYG workstation addition gets 7, prepaid lines stay");
    let contoso_tenant = sb
        .platform
        .customers(&account.tenant_id)
        .into_iter()
        .find(|t| t["customer_id"].as_str() == Some(contoso.to_string().as_str()))
        .and_then(|t| t["id"].as_str().map(str::to_owned));
    if let Some(t) = contoso_tenant {
        sb.platform.set_usage(&t, "workstations", None, 7.0);
        let req = domain::services::publish::PublishRequest {
            partner: "demo".into(),
            trigger: domain::ports::PublishTrigger::Manual {
                initiator: "psa-bridge local".into(),
            },
            period: None,
            options: domain::services::publish::PublishOptions {
                companies: vec![],
                dry_run: false,
                concurrency: 8,
            },
        };
        let rec = domain::services::publish::publish_now(
            ctx.store.as_ref(),
            ctx.events.as_ref(),
            ctx.connector.as_ref(),
            &req,
            Utc::now(),
            &format!("local-{}", uuid_like()),
        )
        .await?;
        let mut text = Vec::new();
        crate::present::publish(&mut text, &rec)?;
        print!(
            "   {}",
            String::from_utf8_lossy(&text).replace('\n', "\n   ")
        );
        let history = domain::services::publish::history(ctx.store.as_ref(), "demo").await?;
        println!(
            "\n   history of partner demo: {} publish(es) (`psa-bridge history --partner demo`)",
            history.len()
        );
    }

    let st = status::status(ctx.store.as_ref(), "demo").await?;
    println!(
        "8. status: {} companies mapped, credentials ok: {}, last sync: {}",
        st.companies_mapped,
        st.status.credentials.as_ref().is_some_and(|c| c.ok),
        st.status
            .last_sync
            .as_ref()
            .map(|s| format!("{} ({} changes)", s.scope, s.applied))
            .unwrap_or_default()
    );

    println!(
        "\n{}",
        cli_exports(&moto.endpoint, &resources, &sb.autotask.url())
    );
    if args.once {
        println!("\ndone (--once).");
        return Ok(());
    }
    println!(
        "\nRunning. Sandbox ConnectWise {} / platform {} / moto {}. The sync schedule ticks every 15 minutes; Ctrl-C stops.",
        sb.connectwise.url(),
        sb.platform.url(),
        moto.endpoint
    );
    let mut tick = tokio::time::interval(Duration::from_secs(15 * 60));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                invoke(envelope("psa-bridge.schedule", "SyncDispatch", json!({}))).await?;
                for e in drain(&mut rx) {
                    match invoke(envelope(SOURCE, &e.detail_type, e.detail)).await {
                        Ok(out) => print_report(&out),
                        Err(err) => println!("   ! {err}"),
                    }
                }
            }
        }
    }
    println!("stopped.");
    Ok(())
}

/// What points the CLI at this local stack, to paste into another shell.
pub fn cli_exports(moto: &str, r: &Resources, autotask: &str) -> String {
    format!(
        "Point the CLI at this stack from another shell (while it runs):\n  \
         export PSA_BRIDGE_ENDPOINT_URL={moto} PSA_BRIDGE_TABLE={} PSA_BRIDGE_BUS={} \\\n    \
         PSA_BRIDGE_AUTOTASK_ZONE_URL={autotask}/atservicesrest/ \\\n    \
         AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true\n  \
         psa-bridge status --partner demo; psa-bridge status --partner demo-at; psa-bridge sync --partner demo-at --dry-run",
        r.table, r.bus
    )
}
