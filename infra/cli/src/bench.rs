//! `psa-bridge bench`: sync-tenant at scale against the sandbox with added latency.
//!
//! The driver (this process) runs moto and the sandbox; every measured pass is a separate
//! child process (`psa-bridge sync …`, the same code Lambda runs), so its wall time and peak
//! RSS are its own. Requests are counted by the sandbox, per system. The PSA is ConnectWise or
//! Autotask; only the seeding, the credentials and the one change differ.

use crate::localstack::{create_resources, Moto};
use crate::wiring::Ctx;
use adapters::autotask::{AutotaskConfig, ZONE_URL_ENV};
use adapters::aws::{local_sdk_config, AwsAdapters, Resources};
use adapters::connector::VendorConnector;
use adapters::http::{HttpSettings, RetryPolicy};
use anyhow::{bail, Context, Result};
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::model::PsaKind;
use domain::ports::Secrets;
use domain::rules::settings::{
    AutotaskCredentials, ConnectWiseCredentials, PlatformCredentials, PsaCredentials,
};
use domain::services::partners;
use sandbox::{AtNewCompany, AtNewContract, NewAddition, NewAgreement, NewCompany, Sandbox};
use serde::Serialize;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

pub struct BenchArgs {
    pub psa: PsaKind,
    pub sizes: Vec<usize>,
    pub latency_ms: u64,
    pub concurrency: usize,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub companies: usize,
    pub pass: &'static str,
    pub psa_requests: u64,
    /// Autotask: the pass's requests the fake counted against the database's hourly threshold
    /// (zone discovery and `ThresholdInformation` are not counted).
    pub psa_threshold_requests: Option<u64>,
    /// Autotask: most requests in flight at once to one entity endpoint (the vendor allows 3).
    pub psa_max_per_endpoint: Option<usize>,
    /// The PSA requests per route.
    pub psa_by_route: std::collections::BTreeMap<String, u64>,
    pub platform_requests: u64,
    pub platform_writes: u64,
    pub wall_s: f64,
    /// requests × latency / concurrency: the floor the wall time is held to (≤ 1.25×).
    pub floor_s: f64,
    pub peak_rss_mb: f64,
    pub max_in_flight: usize,
}

const CW: &str = "benchmsp";
const AT_USER: &str = "api@benchmsp.example";
const AT_SECRET: &str = "bench-Secret-1";
const AT_CODE: &str = "BENCH-INTEGRATION-CODE";

/// The child's peak RSS, printed by `psa-bridge` when `PSA_BRIDGE_REPORT_RSS` is set.
pub fn report_rss() {
    if std::env::var_os("PSA_BRIDGE_REPORT_RSS").is_none() {
        return;
    }
    if let Ok(s) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = s.lines().find(|l| l.starts_with("VmHWM:")) {
            let kb: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            eprintln!("peak_rss_kb={kb}");
        }
    }
}

/// Where the seeded data's one change is made.
enum Changed {
    /// A ConnectWise agreement and its PAYG addition.
    ConnectWise {
        login: String,
        agreement: i64,
        addition: i64,
    },
    /// An Autotask contract and one of its contract services.
    Autotask { contract: i64, service: i64 },
}

/// One PSA's part of the bench: the seeded partner and what is measured on its fake.
struct Psa<'a> {
    kind: PsaKind,
    sb: &'a Sandbox,
    credentials: PsaCredentials,
    changed: Changed,
    /// The companies with a PAYG workstation line (every one in ConnectWise, every other
    /// one in Autotask): the publish passes change the usage of 5% of them.
    payg_companies: Vec<String>,
}

fn day(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

/// Every fake's clock.
fn set_now(sb: &Sandbox, t: DateTime<Utc>) {
    sb.connectwise.set_now(t);
    sb.autotask.set_now(t);
    sb.platform.set_now(t);
}

/// The Autotask settings that send zone discovery to the sandbox.
fn autotask_config(sb: &Sandbox) -> AutotaskConfig {
    AutotaskConfig {
        zone_url: format!("{}/atservicesrest/", sb.autotask.url()),
        ..AutotaskConfig::from_env()
    }
}

/// N ConnectWise companies, each with one open-ended agreement holding a PAYG workstation
/// addition and a prepaid 100 GB storage addition.
fn seed_connectwise<'a>(sb: &'a Sandbox, n: usize) -> Psa<'a> {
    let login = format!("{CW}{n}");
    let cw = &sb.connectwise;
    cw.add_instance(&login, "bench-public", "bench-private");
    let ws = cw.add_product(&login, "ACR-WS", "workstation");
    cw.add_product(&login, "ACR-SRV", "server");
    let stor = cw.add_product(&login, "ACR-STOR", "storage");
    let start = day(2026, 1, 1);
    let mut first = None;
    let mut payg_companies = Vec::with_capacity(n);
    for c in 0..n {
        let company = cw.add_company(
            &login,
            NewCompany {
                identifier: format!("C{c:05}"),
                name: format!("Customer {c:05}"),
                type_name: Some("Customer".into()),
                ..Default::default()
            },
        );
        let a = cw.add_agreement(
            &login,
            NewAgreement {
                company_id: company,
                name: "Backup".into(),
                start_date: Some(start),
                no_ending_date_flag: true,
                ..Default::default()
            },
        );
        let addition = |product_id, quantity, cancelled_date| NewAddition {
            product_id,
            quantity,
            less_included: 0.0,
            effective_date: Some(start),
            cancelled_date,
        };
        let payg = cw.add_addition(&login, a, addition(ws, 0.0, None));
        payg_companies.push(company.to_string());
        cw.add_addition(&login, a, addition(stor, 100.0, Some(day(2027, 12, 31))));
        first.get_or_insert((a, payg));
    }
    let (agreement, addition) = first.expect("at least one company");
    Psa {
        kind: PsaKind::Connectwise,
        sb,
        credentials: PsaCredentials::ConnectWise(ConnectWiseCredentials {
            site: sb.connectwise.url(),
            company_id: login.clone(),
            public_key: "bench-public".to_owned().into(),
            private_key: "bench-private".to_owned().into(),
            client_id: "0b4d6a6e-3c55-4a4e-9d53-3d1d0f6b1c11".into(),
        }),
        changed: Changed::ConnectWise {
            login,
            agreement,
            addition,
        },
        payg_companies,
    }
}

/// N Autotask companies, each with one active Recurring Service contract for 2026 holding a
/// workstation and a 100 GB storage service; every other contract is PAYG (the `PAYG` field
/// `Yes`, workstation units 0), the others prepaid (`No`, 10 workstations).
fn seed_autotask<'a>(sb: &'a Sandbox, n: usize) -> Psa<'a> {
    let at = &sb.autotask;
    at.add_api_user(AT_USER, AT_SECRET, AT_CODE);
    let ws = at.add_service("ACR-WS", "Monthly");
    at.add_service("ACR-SRV", "Monthly");
    let stor = at.add_service("ACR-STOR", "Monthly");
    let mut first = None;
    let mut payg_companies = Vec::with_capacity(n / 2 + 1);
    for c in 0..n {
        let company = at.add_company(AtNewCompany {
            name: format!("Customer {c:05}"),
            company_type: Some("Customer".into()),
            ..Default::default()
        });
        let payg = c % 2 == 1;
        if payg {
            payg_companies.push(company.to_string());
        }
        let contract = at.add_contract(AtNewContract {
            company_id: company,
            name: "Backup".into(),
            start_date: Some(day(2026, 1, 1)),
            end_date: Some(day(2027, 12, 31)),
            status_active: true,
            udfs: vec![("PAYG".into(), if payg { "Yes" } else { "No" }.into())],
        });
        let service = at.add_contract_service(contract, ws, if payg { 0.0 } else { 10.0 });
        // Prepaid storage of 100 GB; on a PAYG contract the storage line holds the usage (none
        // yet), so that publishing changes only the lines whose usage the bench changes.
        at.add_contract_service(contract, stor, if payg { 0.0 } else { 100.0 });
        first.get_or_insert((contract, service));
    }
    let (contract, service) = first.expect("at least one company");
    Psa {
        kind: PsaKind::Autotask,
        sb,
        credentials: PsaCredentials::Autotask(AutotaskCredentials {
            username: AT_USER.into(),
            secret: AT_SECRET.to_owned().into(),
            integration_code: AT_CODE.to_owned().into(),
        }),
        changed: Changed::Autotask { contract, service },
        payg_companies,
    }
}

impl Psa<'_> {
    fn name(&self) -> &'static str {
        match self.kind {
            PsaKind::Connectwise => "connectwise",
            PsaKind::Autotask => "autotask",
        }
    }

    fn change_pass(&self) -> &'static str {
        match self.kind {
            PsaKind::Connectwise => "incremental, one company changed",
            PsaKind::Autotask => "incremental, one contract changed",
        }
    }

    fn set_now(&self, t: DateTime<Utc>) {
        set_now(self.sb, t);
    }

    fn stats(&self) -> sandbox::Stats {
        match self.kind {
            PsaKind::Connectwise => self.sb.connectwise.stats(),
            PsaKind::Autotask => self.sb.autotask.stats(),
        }
    }

    fn reset_stats(&self) {
        self.sb.connectwise.reset_stats();
        self.sb.autotask.reset_stats();
        self.sb.platform.reset_stats();
    }

    fn set_latency(&self, latency: std::time::Duration) {
        for f in [
            self.sb.connectwise.faults(),
            self.sb.autotask.faults(),
            self.sb.platform.faults(),
        ] {
            f.set_latency(latency);
        }
    }

    /// Requests counted against the hourly threshold in the current window (Autotask only).
    fn threshold_used(&self) -> Option<u64> {
        (self.kind == PsaKind::Autotask).then(|| self.sb.autotask.threshold_used())
    }

    /// The one change before the last pass, made a minute before it.
    fn change(&self, at: DateTime<Utc>) {
        self.set_now(at - Duration::minutes(1));
        match &self.changed {
            Changed::ConnectWise {
                login,
                agreement,
                addition,
            } => {
                let cw = &self.sb.connectwise;
                cw.update_addition(login, *agreement, *addition, |a| {
                    a.cancelled_date = Some(day(2027, 6, 30))
                });
                cw.update_agreement(login, *agreement, |a| a.name = "Backup (changed)".into());
            }
            Changed::Autotask { contract, service } => {
                // An adjustment does not touch the contract's lastModifiedDateTime (it is not
                // seen by an incremental pass on its own); the contract is edited too.
                let at = &self.sb.autotask;
                at.adjust_units(*service, 2.0);
                at.update_contract(*contract, |c| c.contract_name = "Backup (changed)".into());
            }
        }
    }
}

/// What a measured pass runs: `psa-bridge sync` with these extra arguments, or a manual
/// `psa-bridge publish` of the month to date.
#[derive(Clone, Copy)]
enum Step {
    Sync(&'static [&'static str]),
    Publish,
}

pub async fn run(args: BenchArgs) -> Result<Vec<Row>> {
    let moto = Moto::start().await?;
    let sdk = local_sdk_config(&moto.endpoint).await;
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    let t0 = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    for (i, &n) in args.sizes.iter().enumerate() {
        // A sandbox per size: an Autotask fake is one database.
        let sb = Sandbox::start().await?;
        let resources = Resources {
            table: format!("psa-bridge-bench-{i}"),
            bus: format!("psa-bridge-bench-{i}"),
            secret_prefix: "psa-bridge/".into(),
        };
        create_resources(&sdk, &resources).await?;
        let aws = AwsAdapters::new(&sdk, &resources);
        let partner = format!("bench{n}");
        set_now(&sb, t0);
        let psa = match args.psa {
            PsaKind::Connectwise => seed_connectwise(&sb, n),
            PsaKind::Autotask => seed_autotask(&sb, n),
        };
        let account = sb.platform.add_partner(&format!("Bench {n}"));
        let http = HttpSettings {
            retry: RetryPolicy::quick(),
            ..HttpSettings::default()
        };
        let secrets: Arc<dyn Secrets> = Arc::new(aws.secrets.clone());
        let autotask = autotask_config(&sb);
        let ctx = Ctx {
            store: Arc::new(aws.store.clone()),
            hooks: Arc::new(aws.secrets.clone()),
            connector: Arc::new(
                VendorConnector::new(secrets.clone(), http.clone()).with_autotask(autotask.clone()),
            ),
            secrets,
            events: Arc::new(aws.events.clone()),
        };
        partners::set_credentials(
            ctx.connector.as_ref(),
            ctx.secrets.as_ref(),
            &partner,
            &sb.platform.url(),
            psa.credentials.clone(),
            PlatformCredentials {
                client_id: account.client_id.clone(),
                client_secret: account.client_secret.clone().into(),
            },
        )
        .await?;
        partners::apply(
            ctx.store.as_ref(),
            ctx.connector.as_ref(),
            &format!(
                "id: {partner}\npsa: {}\nplatform: {{ url: \"{}\" }}\nprovisioning: {{ auto_create: true, activation_email: false }}\nguard: {{ max_zero_share: 1.0 }}\nproducts:\n  - {{ item: workstations, product: ACR-WS }}\n  - {{ item: servers, product: ACR-SRV }}\n  - {{ item: storage, location: Cloud storage, product: ACR-STOR, default: true }}\n",
                psa.name(),
                sb.platform.url()
            ),
        )
        .await?;

        let latency = std::time::Duration::from_millis(args.latency_ms);
        let mut clock = t0;
        let steps: [(&'static str, Step); 6] = [
            (
                "first sync (full, creates every tenant)",
                Step::Sync(&["--full"]),
            ),
            ("incremental, no change", Step::Sync(&[])),
            ("full pass, no change", Step::Sync(&["--full"])),
            (psa.change_pass(), Step::Sync(&[])),
            (
                "publish, usage of 5% of PAYG companies changed",
                Step::Publish,
            ),
            ("publish again, nothing changed", Step::Publish),
        ];
        for (k, (pass, step)) in steps.into_iter().enumerate() {
            clock += Duration::minutes(15);
            if k == 3 {
                psa.change(clock);
            }
            if k == 4 {
                // Every 20th PAYG company's tenant reports workstations in use.
                let read = Instant::now();
                let records = ctx.store.companies(&partner).await?;
                // What every pass that reads all company records pays for it here (moto).
                eprintln!(
                    "{n:>6} companies | reading the {} company records from the store took {:.2} s",
                    records.len(),
                    read.elapsed().as_secs_f64()
                );
                let tenant: HashMap<&str, &str> = records
                    .iter()
                    .filter_map(|r| Some((r.company_id.as_str(), r.tenant_id()?)))
                    .collect();
                for c in psa.payg_companies.iter().step_by(20) {
                    let t = tenant
                        .get(c.as_str())
                        .context("a PAYG company has no tenant")?;
                    sb.platform.set_usage(t, "workstations", None, 3.0);
                }
            }
            psa.set_now(clock);
            psa.set_latency(latency);
            psa.reset_stats();
            let counted_before = psa.threshold_used();
            let started = Instant::now();
            // PSA_BRIDGE_BENCH_HEAPTRACK=<file>: the full pass without change runs under
            // heaptrack (its figures are then not the bench's), to see what holds the memory.
            let profile = std::env::var("PSA_BRIDGE_BENCH_HEAPTRACK")
                .ok()
                .filter(|_| k == 2);
            let mut cmd = match &profile {
                Some(file) => {
                    let mut c = tokio::process::Command::new("heaptrack");
                    c.args(["-o", file]).arg(&exe);
                    c
                }
                None => tokio::process::Command::new(&exe),
            };
            let concurrency = args.concurrency.to_string();
            let now = clock.to_rfc3339();
            let mut command: Vec<&str> = match step {
                Step::Sync(extra) => [&["sync", "--now", now.as_str()][..], extra].concat(),
                Step::Publish => vec!["publish", "--initiator", "bench"],
            };
            command.extend([
                "--partner",
                partner.as_str(),
                "--output",
                "json",
                "--concurrency",
                concurrency.as_str(),
            ]);
            let out = cmd
                .args([
                    "--endpoint-url",
                    &moto.endpoint,
                    "--table",
                    &resources.table,
                    "--bus",
                    &resources.bus,
                ])
                .args(&command)
                .env("PSA_BRIDGE_REPORT_RSS", "1")
                .env(ZONE_URL_ENV, &autotask.zone_url)
                .stdin(Stdio::null())
                .output()
                .await
                .context("running the measured sync")?;
            let wall = started.elapsed().as_secs_f64();
            psa.set_latency(std::time::Duration::ZERO);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() {
                bail!(
                    "{pass} at {n} companies failed: {stderr}{}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
            let report: serde_json::Value =
                serde_json::from_slice(&out.stdout).with_context(|| {
                    format!("sync output: {}", String::from_utf8_lossy(&out.stdout))
                })?;
            if matches!(step, Step::Publish) && report["result"] != "published" {
                bail!("{pass} at {n} companies did not publish: {report}");
            }
            if report["failures"].as_array().is_some_and(|f| !f.is_empty()) {
                bail!(
                    "{pass} at {n} companies had failures: {}",
                    report["failures"]
                );
            }
            let rss_kb: f64 = stderr
                .lines()
                .find_map(|l| l.strip_prefix("peak_rss_kb="))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0.0);
            let (cs, ps) = (psa.stats(), sb.platform.stats());
            let requests = cs.requests + ps.requests;
            let row = Row {
                companies: n,
                pass,
                psa_requests: cs.requests,
                psa_threshold_requests: counted_before
                    .zip(psa.threshold_used())
                    .map(|(before, after)| after.saturating_sub(before)),
                psa_max_per_endpoint: (psa.kind == PsaKind::Autotask)
                    .then(|| cs.max_in_flight_per_endpoint.values().copied().max())
                    .flatten(),
                psa_by_route: cs.by_route.clone(),
                platform_requests: ps.requests,
                platform_writes: ps.writes,
                wall_s: wall,
                floor_s: requests as f64 * args.latency_ms as f64
                    / 1000.0
                    / args.concurrency as f64,
                peak_rss_mb: rss_kb / 1024.0,
                max_in_flight: cs.max_in_flight.max(ps.max_in_flight),
            };
            eprintln!(
                "{n:>6} companies | {pass:<42} | PSA {:>6}{} | platform {:>6} (writes {:>5}) | {:>7.2} s (floor {:>6.2} s, {:.2}x) | {:>5.1} MB",
                row.psa_requests,
                row.psa_threshold_requests
                    .map(|c| format!(" (counted {c})"))
                    .unwrap_or_default(),
                row.platform_requests,
                row.platform_writes,
                row.wall_s,
                row.floor_s,
                row.wall_s / row.floor_s.max(1e-9),
                row.peak_rss_mb
            );
            // PSA_BRIDGE_BENCH_ROUTES=1: each pass's PSA requests per route, to see where they go.
            if std::env::var_os("PSA_BRIDGE_BENCH_ROUTES").is_some() {
                for (route, count) in &row.psa_by_route {
                    eprintln!("{:>6}   {route}", count);
                }
            }
            rows.push(row);
        }
    }
    Ok(rows)
}
