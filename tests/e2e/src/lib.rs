//! The end-to-end world: moto (real AWS SDK clients), the sandbox PSA and platform, and the
//! functions' real handlers wired with the real adapters. Only the clock is the test's.

use adapters::aws::{local_sdk_config, AwsAdapters, Resources};
use adapters::connector::VendorConnector;
use adapters::http::{Deadline, HttpSettings, RetryPolicy};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use domain::ports::{Clock, Secrets};
use domain::rules::settings::{ConnectWiseCredentials, PlatformCredentials, PsaCredentials};
use domain::services::partners;
use psa_bridge_cli::localstack::{create_resources, Moto};
use psa_bridge_cli::wiring::Ctx;
use sandbox::{NewAddition, NewAgreement, NewCompany, PartnerAccount, Sandbox};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// A clock the test moves.
pub struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap() = t;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

pub const CW_COMPANY: &str = "acmemsp";
pub const CW_PUBLIC: &str = "pubKEY123";
pub const CW_PRIVATE: &str = "privKEY456";
pub const CW_CLIENT_ID: &str = "0b4d6a6e-3c55-4a4e-9d53-3d1d0f6b1c11";

/// PSA catalogue ids of the demo products.
#[derive(Debug, Clone, Copy)]
pub struct Products {
    pub ws: i64,
    pub srv: i64,
    pub o365: i64,
    pub stor: i64,
}

pub struct World {
    pub moto: Moto,
    pub sandbox: Sandbox,
    pub aws: AwsAdapters,
    pub resources: Resources,
    pub clock: Arc<TestClock>,
    pub deps: sync_tenant::Deps,
    pub ctx: Ctx,
    pub account: PartnerAccount,
    pub products: Products,
    /// The invocation deadline the world's clients retry within (unset unless a test sets it).
    pub deadline: Deadline,
}

/// The first day of the tests' world.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
}

pub fn day(s: &str) -> DateTime<Utc> {
    let d: NaiveDate = s.parse().unwrap();
    d.and_hms_opt(0, 0, 0).unwrap().and_utc()
}

pub fn test_http() -> HttpSettings {
    HttpSettings {
        retry: RetryPolicy::quick(),
        timeout: std::time::Duration::from_secs(5),
        concurrency: 8,
        deadline: Default::default(),
    }
}

pub const PARTNER: &str = "acme";

impl World {
    /// Everything started, credentials stored, no partner applied yet.
    pub async fn bare() -> World {
        let moto = Moto::start().await.expect("moto starts");
        let sdk = local_sdk_config(&moto.endpoint).await;
        let resources = Resources {
            table: "psa-bridge-test".into(),
            bus: "psa-bridge-test".into(),
            secret_prefix: "psa-bridge/".into(),
        };
        create_resources(&sdk, &resources).await.expect("resources");
        let aws = AwsAdapters::new(&sdk, &resources);
        let sandbox = Sandbox::start().await.expect("sandbox starts");
        let clock = Arc::new(TestClock(Mutex::new(start_time())));
        sandbox.connectwise.set_now(start_time());
        sandbox.platform.set_now(start_time());
        sandbox.autotask.set_now(start_time());
        sandbox
            .connectwise
            .add_instance(CW_COMPANY, CW_PUBLIC, CW_PRIVATE);
        let cw = &sandbox.connectwise;
        let products = Products {
            ws: cw.add_product(CW_COMPANY, "ACR-WS", "Cyber Protect workstation"),
            srv: cw.add_product(CW_COMPANY, "ACR-SRV", "Cyber Protect server"),
            o365: cw.add_product(CW_COMPANY, "ACR-O365", "Microsoft 365 seat"),
            stor: cw.add_product(CW_COMPANY, "ACR-STOR", "Cloud storage (GB)"),
        };
        let account = sandbox.platform.add_partner("Acme MSP");
        let secrets: Arc<dyn Secrets> = Arc::new(aws.secrets.clone());
        let http = test_http();
        let autotask = adapters::autotask::AutotaskConfig {
            clock: clock.clone(),
            ..autotask_config(&sandbox)
        };
        let connector = Arc::new(
            VendorConnector::new(secrets.clone(), http.clone()).with_autotask(autotask.clone()),
        );
        let deps = sync_tenant::Deps {
            store: Arc::new(aws.store.clone()),
            events: Arc::new(aws.events.clone()),
            connector: connector.clone(),
            clock: clock.clone(),
            concurrency: 8,
            full_sync_hours: None,
        };
        let ctx = Ctx {
            store: Arc::new(aws.store.clone()),
            hooks: Arc::new(aws.secrets.clone()),
            secrets,
            connector,
            events: Arc::new(aws.events.clone()),
        };
        World {
            moto,
            sandbox,
            aws,
            resources,
            clock,
            deps,
            ctx,
            account,
            products,
            deadline: http.deadline.clone(),
        }
    }

    /// Started, credentials set, the default partner file applied.
    pub async fn new() -> World {
        let w = World::bare().await;
        w.set_credentials().await.expect("credentials");
        w.apply(&w.partner_yaml("")).await.expect("partner applies");
        w
    }

    pub fn psa_credentials(&self, private_key: &str) -> PsaCredentials {
        PsaCredentials::ConnectWise(ConnectWiseCredentials {
            site: self.sandbox.connectwise.url(),
            company_id: CW_COMPANY.into(),
            public_key: CW_PUBLIC.to_owned().into(),
            private_key: private_key.to_owned().into(),
            client_id: CW_CLIENT_ID.into(),
        })
    }

    pub fn platform_credentials(&self) -> PlatformCredentials {
        PlatformCredentials {
            client_id: self.account.client_id.clone(),
            client_secret: self.account.client_secret.clone().into(),
        }
    }

    pub async fn set_credentials(&self) -> anyhow::Result<String> {
        partners::set_credentials(
            self.ctx.connector.as_ref(),
            self.ctx.secrets.as_ref(),
            PARTNER,
            &self.sandbox.platform.url(),
            self.psa_credentials(CW_PRIVATE),
            self.platform_credentials(),
        )
        .await
        .map_err(Into::into)
    }

    /// The demo partner file; `extra` is appended (more YAML keys).
    pub fn partner_yaml(&self, extra: &str) -> String {
        format!(
            r#"id: {PARTNER}
name: Acme MSP
psa: connectwise
platform: {{ url: "{}" }}
time_zone: UTC
provisioning: {{ auto_create: true }}
products:
  - {{ item: workstations, product: ACR-WS }}
  - {{ item: servers, product: ACR-SRV }}
  - {{ item: mailboxes, product: ACR-O365, free: true }}
  - {{ item: storage, location: Cloud storage, product: ACR-STOR, default: true }}
{extra}"#,
            self.sandbox.platform.url()
        )
    }

    pub async fn apply(&self, yaml: &str) -> anyhow::Result<partners::Applied> {
        Ok(partners::apply(self.ctx.store.as_ref(), self.ctx.connector.as_ref(), yaml).await?)
    }

    /// Moves the test clock and both sandboxes' clocks.
    pub fn advance(&self, d: Duration) {
        let t = self.clock.now() + d;
        self.set_time(t);
    }

    pub fn set_time(&self, t: DateTime<Utc>) {
        self.clock.set(t);
        self.sandbox.connectwise.set_now(t);
        self.sandbox.platform.set_now(t);
        self.sandbox.autotask.set_now(t);
    }

    /// A PSA company with an open-ended agreement started on 2026-01-01; returns (company, agreement).
    pub fn customer(&self, name: &str) -> (i64, i64) {
        self.customer_with(name, None)
    }

    /// The same, with a primary contact (first, last, e-mail).
    pub fn customer_with(&self, name: &str, contact: Option<(&str, &str, &str)>) -> (i64, i64) {
        let cw = &self.sandbox.connectwise;
        let c = cw.add_company(
            CW_COMPANY,
            NewCompany {
                identifier: name.replace(' ', ""),
                name: name.into(),
                type_name: Some("Customer".into()),
                primary_contact: contact.map(|(f, l, e)| (f.into(), l.into(), e.into())),
                ..Default::default()
            },
        );
        let a = cw.add_agreement(
            CW_COMPANY,
            NewAgreement {
                company_id: c,
                name: format!("{name} backup"),
                start_date: Some(day("2026-01-01")),
                no_ending_date_flag: true,
                ..Default::default()
            },
        );
        (c, a)
    }

    /// Adds an addition: `cancelled` None = PAYG; a future date = prepaid.
    pub fn addition(&self, agreement: i64, product: i64, qty: f64, cancelled: Option<&str>) -> i64 {
        self.sandbox.connectwise.add_addition(
            CW_COMPANY,
            agreement,
            NewAddition {
                product_id: product,
                quantity: qty,
                less_included: 0.0,
                effective_date: Some(day("2026-01-01")),
                cancelled_date: cancelled.map(day),
            },
        )
    }

    /// Handler dependencies as a new Lambda process would build them (empty secret cache).
    pub fn fresh_deps(&self) -> sync_tenant::Deps {
        let secrets: Arc<dyn Secrets> = Arc::new(adapters::secrets::SecretsManager::new(
            self.aws.secretsmanager.clone(),
            &self.resources.secret_prefix,
        ));
        sync_tenant::Deps {
            connector: Arc::new(
                VendorConnector::new(secrets, test_http())
                    .with_autotask(autotask_config(&self.sandbox))
                    .with_clock(self.clock.clone()),
            ),
            ..self.deps.clone()
        }
    }

    /// Invokes sync-tenant's real handler with an EventBridge event as the bus delivers it.
    pub async fn invoke(
        &self,
        source: &str,
        detail_type: &str,
        detail: Value,
    ) -> Result<Value, sync_tenant::SyncFailure> {
        self.invoke_with(&self.deps, source, detail_type, detail)
            .await
    }

    pub async fn invoke_with(
        &self,
        deps: &sync_tenant::Deps,
        source: &str,
        detail_type: &str,
        detail: Value,
    ) -> Result<Value, sync_tenant::SyncFailure> {
        let event: EventBridgeEvent<Value> = serde_json::from_value(json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": detail_type,
            "source": source,
            "account": "123456789012",
            "time": self.clock.now(),
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }))
        .expect("event shape");
        sync_tenant::handle(deps, event).await
    }

    /// A work event for the partner (`pass`: incremental / full).
    pub async fn sync(&self, pass: &str) -> Value {
        self.invoke(
            "psa-bridge",
            "SyncPartner",
            json!({"partner": PARTNER, "pass": pass}),
        )
        .await
        .expect("sync runs")
    }

    /// A PSA change for one company, as the webhook receiver emits it.
    pub async fn psa_changed(&self, company: i64) -> Value {
        self.invoke(
            "psa-bridge",
            "PsaChanged",
            json!({"partner": PARTNER, "company_id": company.to_string(), "entity": "agreement"}),
        )
        .await
        .expect("company sync runs")
    }

    pub fn tenants(&self) -> Vec<Value> {
        self.sandbox.platform.customers(&self.account.tenant_id)
    }

    /// The id of the tenant a PSA company was provisioned to (panics when it has none).
    pub fn tenant_id_of(&self, company: i64) -> String {
        self.tenant_of(company).expect("the company has a tenant")["id"]
            .as_str()
            .expect("a tenant id")
            .to_owned()
    }

    /// publish-usage's dependencies: this world's store, clock and connector, and `events`.
    pub fn publish_deps(&self, events: Arc<dyn domain::ports::Events>) -> publish_usage::Deps {
        publish_usage::Deps {
            store: self.deps.store.clone(),
            events,
            connector: self.deps.connector.clone(),
            clock: self.deps.clock.clone(),
            concurrency: 4,
        }
    }

    /// Invokes publish-usage's real handler with an EventBridge event of `detail_type`.
    pub async fn invoke_publish(
        &self,
        deps: &publish_usage::Deps,
        detail_type: &str,
        source: &str,
        detail: Value,
        run: &str,
    ) -> Result<Value, publish_usage::PublishFailure> {
        let event: EventBridgeEvent<Value> = serde_json::from_value(json!({
            "version": "0", "id": "1", "detail-type": detail_type, "source": source,
            "account": "123456789012", "time": self.clock.now(), "region": "us-east-1",
            "resources": [], "detail": detail,
        }))
        .expect("an EventBridge event");
        publish_usage::handle(deps, event, run).await
    }

    pub fn tenant_of(&self, company: i64) -> Option<Value> {
        let cid = company.to_string();
        let mut found: Vec<Value> = self
            .tenants()
            .into_iter()
            .filter(|t| t["customer_id"].as_str() == Some(cid.as_str()))
            .collect();
        assert!(
            found.len() <= 1,
            "company {company} has {} tenants",
            found.len()
        );
        found.pop()
    }

    /// (status, value, overage) of a tenant's item.
    pub fn item(&self, tenant: &str, name: &str, infra: Option<&str>) -> (i64, Value, Value) {
        let items = self.sandbox.platform.offering_items(tenant);
        let i = items
            .iter()
            .find(|i| i["name"] == name && i["infra_id"].as_str() == infra)
            .unwrap_or_else(|| panic!("tenant {tenant} has no item {name}"));
        (
            i["status"].as_i64().unwrap_or(0),
            i["quota"]["value"].clone(),
            i["quota"]["overage"].clone(),
        )
    }

    pub fn storage(&self) -> String {
        self.account.default_infra_id.clone()
    }
}

/// Events sent through a [`Recording`] bus, in order.
#[derive(Default)]
pub struct Sent(Mutex<Vec<domain::ports::BusEvent>>);

impl Sent {
    /// The details of the events of `detail_type`.
    pub fn of_type(&self, detail_type: &str) -> Vec<Value> {
        let sent = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sent.iter()
            .filter(|e| e.detail_type == detail_type)
            .map(|e| e.detail.clone())
            .collect()
    }

    pub fn all(&self) -> Vec<domain::ports::BusEvent> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The real bus, and a record of what was put on it (only what the bus accepted).
pub struct Recording {
    pub to: Arc<dyn domain::ports::Events>,
    pub sent: Arc<Sent>,
}

#[async_trait::async_trait]
impl domain::ports::Events for Recording {
    async fn publish(&self, events: &[domain::ports::BusEvent]) -> domain::PortResult<()> {
        self.to.publish(events).await?;
        self.sent
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(events);
        Ok(())
    }
}

impl World {
    /// Runs `psa-bridge ARGS` (the CLI's own entry point, in process) against this world's
    /// moto and sandbox; returns (status, stdout, stderr).
    pub async fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec![
            "psa-bridge".to_owned(),
            "--endpoint-url".to_owned(),
            self.moto.endpoint.clone(),
            "--table".to_owned(),
            self.resources.table.clone(),
            "--bus".to_owned(),
            self.resources.bus.clone(),
            "--autotask-url".to_owned(),
            format!("{}/atservicesrest/", self.sandbox.autotask.url()),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = psa_bridge_cli::app::run(all, &mut out, &mut err).await;
        (
            code,
            String::from_utf8(out).expect("utf-8 output"),
            String::from_utf8(err).expect("utf-8 errors"),
        )
    }

    /// The world's real bus (moto), recorded.
    pub fn recording(&self) -> (Arc<dyn domain::ports::Events>, Arc<Sent>) {
        let sent = Arc::new(Sent::default());
        let bus = Arc::new(Recording {
            to: self.deps.events.clone(),
            sent: sent.clone(),
        });
        (bus, sent)
    }

    /// webhook-receiver's dependencies as its `main` builds them (moto's table and secrets, a
    /// real HTTP client for ConnectWise keys), with `events` as the bus.
    pub fn hook_deps(&self, events: Arc<dyn domain::ports::Events>) -> webhook_receiver::Deps {
        webhook_receiver::Deps {
            partners: Arc::new(self.aws.store.clone()),
            secrets: Arc::new(self.aws.secrets.clone()),
            deliveries: Arc::new(self.aws.store.clone()),
            keys: Arc::new(adapters::signing_keys::HttpSigningKeys::new(
                adapters::http::client(std::time::Duration::from_secs(5)),
            )),
            events,
            clock: self.clock.clone(),
        }
    }
}

/// Posts a delivery to webhook-receiver's real handler as API Gateway (HTTP API, payload 2.0)
/// hands it over: route parameters, headers, the body base64-encoded. Returns the status, the
/// JSON answer and the `retry-after` header.
pub async fn post_hook(
    deps: &webhook_receiver::Deps,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Value, Option<String>) {
    use base64::Engine;
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let params = match segs.as_slice() {
        ["hooks", p, t, s] => json!({"partner": p, "token": t, "source": s}),
        _ => json!({}),
    };
    let mut h = serde_json::Map::new();
    h.insert("content-type".into(), json!("application/json"));
    for (k, v) in headers {
        h.insert(k.to_ascii_lowercase(), json!(v));
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "POST /hooks/{partner}/{token}/{source}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": h,
        "pathParameters": params,
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example",
            "domainPrefix": "api", "requestId": format!("req-{}", uuid_like()),
            "routeKey": "POST /hooks/{partner}/{token}/{source}", "stage": "$default",
            "time": "03/Dec/2026:10:00:00 +0000", "timeEpoch": 1_796_292_000_000i64,
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "test"}
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    });
    let req = lambda_http::request::from_str(&event.to_string()).expect("an API Gateway event");
    let resp = webhook_receiver::handle(deps, req).await;
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap_or(Value::Null);
    (status, body, retry)
}

fn uuid_like() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Autotask settings pointing at the sandbox's zone discovery, without throttling delays.
pub fn autotask_config(sandbox: &Sandbox) -> adapters::autotask::AutotaskConfig {
    adapters::autotask::AutotaskConfig {
        zone_url: format!("{}/atservicesrest/", sandbox.autotask.url()),
        payg_field: "PAYG".into(),
        limits: adapters::autotask::AutotaskLimits::quick(),
        ..Default::default()
    }
}

/// Bytes in one PSA storage unit (GiB).
pub const GIB: f64 = 1_073_741_824.0;
