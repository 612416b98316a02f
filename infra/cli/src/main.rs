//! `psa-bridge` — the operator CLI.

use adapters::aws::{local_sdk_config, sdk_config, AwsAdapters, Resources};
use adapters::connector::VendorConnector;
use adapters::http::HttpSettings;
use anyhow::{anyhow, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use domain::ports::{Secrets, SystemClock};
use domain::rules::companies::CompanyFilter;
use domain::rules::settings::{
    AutotaskCredentials, ConnectWiseCredentials, PlatformCredentials, PsaCredentials,
};
use psa_bridge_cli::ops::{self, Ctx, SyncArgs};
use std::io::IsTerminal;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "psa-bridge",
    version,
    about = "Operate psa-bridge: PSA ↔ platform provisioning, billing and tickets"
)]
struct Cli {
    #[command(flatten)]
    aws: AwsArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct AwsArgs {
    /// DynamoDB table of the deployment (stack output TableName).
    #[arg(
        long,
        global = true,
        env = "PSA_BRIDGE_TABLE",
        default_value = "psa-bridge-prod"
    )]
    table: String,
    /// EventBridge bus of the deployment (stack output BusName).
    #[arg(
        long,
        global = true,
        env = "PSA_BRIDGE_BUS",
        default_value = "psa-bridge-prod"
    )]
    bus: String,
    /// Prefix of the partners' secrets in Secrets Manager.
    #[arg(
        long,
        global = true,
        env = "PSA_BRIDGE_SECRET_PREFIX",
        default_value = "psa-bridge/"
    )]
    secret_prefix: String,
    /// AWS endpoint override (a local moto server); uses test credentials.
    #[arg(long, global = true, env = "PSA_BRIDGE_ENDPOINT_URL")]
    endpoint_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system locally (moto, sandbox PSA and platform, the handlers) with demo data.
    Local {
        /// Run the demo once and exit instead of serving.
        #[arg(long)]
        once: bool,
        #[arg(long, default_value_t = 0)]
        cw_port: u16,
        #[arg(long, default_value_t = 0)]
        platform_port: u16,
    },
    /// Partner settings, product mapping and company mapping.
    #[command(subcommand)]
    Partner(PartnerCmd),
    /// PSA and platform credentials (verified by logging in before they are stored).
    #[command(subcommand)]
    Credentials(Box<CredentialsCmd>),
    /// PSA companies and their mapping.
    #[command(subcommand)]
    Companies(CompaniesCmd),
    /// Run a sync for a partner now (the same code the sync-tenant Lambda runs).
    Sync {
        #[arg(long)]
        partner: String,
        /// Only this PSA company (id).
        #[arg(long)]
        company: Option<String>,
        /// A full pass instead of an incremental one.
        #[arg(long)]
        full: bool,
        /// Print every change it would make and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply even when the blast-radius guard trips.
        #[arg(long)]
        force: bool,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Requests in flight at once to each system.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Run as if it were this instant (RFC 3339), for reproducible runs.
        #[arg(long)]
        now: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Measure sync-tenant at scale against the sandbox (see BENCHMARKS.md).
    Bench {
        /// The PSA of the measured partner.
        #[arg(long, value_enum, default_value_t = PsaArg::Connectwise)]
        psa: PsaArg,
        /// Company counts to measure, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1000usize, 10000])]
        companies: Vec<usize>,
        /// Latency added to every sandbox request, in milliseconds.
        #[arg(long, default_value_t = 20)]
        latency_ms: u64,
        /// Concurrency cap of the measured sync.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Write the rows as JSON to this file too.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
    },
    /// A partner's state: credentials, switches, last sync, failing companies.
    Status {
        #[arg(long)]
        partner: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Subcommand)]
enum PartnerCmd {
    /// Apply a partner file (idempotent; nothing is written unless all of it is valid).
    Apply {
        #[arg(short = 'f', long = "file")]
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum CredentialsCmd {
    /// Verify and store a partner's PSA and platform credentials (nothing is stored unless both
    /// log-ins work). Secret values are read from the environment variables named below.
    Set {
        #[arg(long)]
        partner: String,
        /// Which PSA the partner uses.
        #[arg(long, value_enum, default_value_t = PsaArg::Connectwise)]
        psa: PsaArg,
        /// Platform data-center URL, e.g. https://eu2-cloud.acronis.com
        #[arg(long)]
        platform_url: String,
        #[arg(long)]
        platform_client_id: String,
        #[arg(
            long,
            env = "PSA_BRIDGE_PLATFORM_CLIENT_SECRET",
            hide_env_values = true
        )]
        platform_client_secret: String,
        /// ConnectWise site host, e.g. api-na.myconnectwise.net
        #[arg(long, required_if_eq("psa", "connectwise"))]
        cw_site: Option<String>,
        /// ConnectWise login company id.
        #[arg(long, required_if_eq("psa", "connectwise"))]
        cw_company: Option<String>,
        #[arg(long, env = "PSA_BRIDGE_CW_PUBLIC_KEY", hide_env_values = true)]
        cw_public_key: Option<String>,
        #[arg(long, env = "PSA_BRIDGE_CW_PRIVATE_KEY", hide_env_values = true)]
        cw_private_key: Option<String>,
        /// The integration's clientId from developer.connectwise.com.
        #[arg(long, required_if_eq("psa", "connectwise"))]
        cw_client_id: Option<String>,
        /// Autotask API user (its e-mail address); the zone is discovered from it.
        #[arg(long, required_if_eq("psa", "autotask"))]
        at_username: Option<String>,
        #[arg(long, env = "PSA_BRIDGE_AT_SECRET", hide_env_values = true)]
        at_secret: Option<String>,
        #[arg(long, env = "PSA_BRIDGE_AT_INTEGRATION_CODE", hide_env_values = true)]
        at_integration_code: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum PsaArg {
    Connectwise,
    Autotask,
}

#[derive(Subcommand)]
enum CompaniesCmd {
    /// List PSA companies with their mapping and last sync.
    List {
        #[arg(long)]
        partner: String,
        #[arg(long, conflicts_with = "unmapped")]
        mapped: bool,
        #[arg(long)]
        unmapped: bool,
        /// Company type, e.g. Customer.
        #[arg(long = "type")]
        company_type: Option<String>,
        /// Part of the name or identifier.
        #[arg(long)]
        search: Option<String>,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Table,
    Json,
}

async fn adapters_for(a: &AwsArgs) -> AwsAdapters {
    let sdk = match &a.endpoint_url {
        Some(url) => local_sdk_config(url).await,
        None => sdk_config(None).await,
    };
    AwsAdapters::new(
        &sdk,
        &Resources {
            table: a.table.clone(),
            bus: a.bus.clone(),
            secret_prefix: a.secret_prefix.clone(),
        },
    )
}

fn ctx_for(aws: &AwsAdapters) -> Ctx {
    let http = HttpSettings::default();
    let secrets: Arc<dyn Secrets> = Arc::new(aws.secrets.clone());
    Ctx {
        store: Arc::new(aws.store.clone()),
        connector: Arc::new(VendorConnector::new(secrets.clone(), http.clone())),
        secrets,
        http,
        autotask: adapters::autotask::AutotaskConfig::from_env(),
    }
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

#[tokio::main]
async fn main() {
    let result = run().await;
    psa_bridge_cli::bench::report_rss();
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Local {
            once,
            cw_port,
            platform_port,
        } => {
            psa_bridge_cli::local::run(psa_bridge_cli::local::LocalArgs {
                once,
                cw_port,
                platform_port,
            })
            .await
        }
        Command::Partner(PartnerCmd::Apply { file }) => {
            let yaml = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let aws = adapters_for(&cli.aws).await;
            let applied = ops::apply_partner(&ctx_for(&aws), &yaml).await?;
            println!(
                "partner {}: settings {}; {} company mapping(s) changed",
                applied.partner,
                if applied.settings_changed { "saved" } else { "unchanged" },
                applied.companies_changed.len()
            );
            Ok(())
        }
        Command::Credentials(cmd) => {
            let CredentialsCmd::Set {
            partner,
            psa,
            platform_url,
            platform_client_id,
            platform_client_secret,
            cw_site,
            cw_company,
            cw_public_key,
            cw_private_key,
            cw_client_id,
            at_username,
            at_secret,
            at_integration_code,
        } = *cmd;
            let need = |v: Option<String>, what: &str| {
                v.ok_or_else(|| anyhow!("{what} is required for this PSA"))
            };
            let psa_creds = match psa {
                PsaArg::Connectwise => PsaCredentials::ConnectWise(ConnectWiseCredentials {
                    site: need(cw_site, "--cw-site")?,
                    company_id: need(cw_company, "--cw-company")?,
                    public_key: need(cw_public_key, "PSA_BRIDGE_CW_PUBLIC_KEY (or --cw-public-key)")?.into(),
                    private_key: need(cw_private_key, "PSA_BRIDGE_CW_PRIVATE_KEY (or --cw-private-key)")?.into(),
                    client_id: need(cw_client_id, "--cw-client-id")?,
                }),
                PsaArg::Autotask => PsaCredentials::Autotask(AutotaskCredentials {
                    username: need(at_username, "--at-username")?,
                    secret: need(at_secret, "PSA_BRIDGE_AT_SECRET (or --at-secret)")?.into(),
                    integration_code: need(
                        at_integration_code,
                        "PSA_BRIDGE_AT_INTEGRATION_CODE (or --at-integration-code)",
                    )?
                    .into(),
                }),
            };
            let aws = adapters_for(&cli.aws).await;
            let tenant = ops::set_credentials(
                &ctx_for(&aws),
                &partner,
                &platform_url,
                psa_creds,
                PlatformCredentials {
                    client_id: platform_client_id,
                    client_secret: platform_client_secret.into(),
                },
            )
            .await?;
            println!("partner {partner}: both log-ins work (platform API client acts for tenant {tenant}); credentials stored");
            Ok(())
        }
        Command::Companies(CompaniesCmd::List {
            partner,
            mapped,
            unmapped,
            company_type,
            search,
            output,
        }) => {
            let aws = adapters_for(&cli.aws).await;
            let filter = CompanyFilter {
                mapped: if mapped {
                    Some(true)
                } else if unmapped {
                    Some(false)
                } else {
                    None
                },
                company_type,
                search,
            };
            let rows = ops::list_companies(&ctx_for(&aws), &partner, &filter).await?;
            if output == Output::Json {
                return print_json(&rows);
            }
            println!("{:<8} {:<20} {:<30} {:<40} LAST SYNC / ERROR", "ID", "IDENTIFIER", "NAME", "MAPPING");
            for r in rows {
                let mapping = match &r.mapping {
                    domain::model::Mapping::Unmapped => "-".to_owned(),
                    domain::model::Mapping::NewTenant => "new tenant (next sync)".to_owned(),
                    domain::model::Mapping::Tenant(t) => t.clone(),
                };
                println!(
                    "{:<8} {:<20} {:<30} {:<40} {}",
                    r.id,
                    r.identifier,
                    r.name,
                    mapping,
                    r.last_error
                        .or_else(|| r.last_sync.map(|t| t.to_rfc3339()))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Sync {
            partner,
            company,
            full,
            dry_run,
            force,
            output,
            concurrency,
            now,
        } => {
            let aws = adapters_for(&cli.aws).await;
            let mut ctx = ctx_for(&aws);
            ctx.http.concurrency = concurrency;
            // A run pinned to an instant is pinned everywhere, Autotask's current units included.
            let clock: Arc<dyn domain::ports::Clock> = match now {
                Some(t) => Arc::new(domain::ports::FixedClock(t)),
                None => Arc::new(SystemClock),
            };
            ctx.autotask.clock = clock.clone();
            let deps = sync_tenant::Deps {
                store: ctx.store.clone(),
                events: Arc::new(aws.events.clone()),
                connector: Arc::new(
                    VendorConnector::new(ctx.secrets.clone(), ctx.http.clone())
                        .with_autotask(ctx.autotask.clone()),
                ),
                clock,
                concurrency,
                full_sync_hours: None,
            };
            let spinner = std::io::stderr().is_terminal().then(|| {
                let pb = indicatif::ProgressBar::new_spinner();
                pb.set_message(format!("syncing partner {partner}…"));
                pb.enable_steady_tick(std::time::Duration::from_millis(120));
                pb
            });
            let report = ops::run_sync(
                &deps,
                &partner,
                &SyncArgs {
                    company,
                    full,
                    dry_run,
                    force,
                },
            )
            .await;
            if let Some(pb) = spinner {
                pb.finish_and_clear();
            }
            let report = report?;
            if output == Output::Json {
                return print_json(&report);
            }
            println!(
                "partner {}: {} pass{} — {} companies, {} changes{}, {} failed",
                report.partner,
                report.scope,
                if report.dry_run { " (dry run: nothing changed)" } else { "" },
                report.companies,
                report.plan.changes.len(),
                if report.dry_run { String::new() } else { format!(" ({} applied)", report.applied) },
                report.failures.len()
            );
            if let Some(b) = &report.blocked {
                println!("BLOCKED: {b}");
            }
            for c in &report.plan.changes {
                println!("  {}", c.describe());
            }
            for f in &report.failures {
                println!("  ! {}", f.reason);
            }
            Ok(())
        }
        Command::Bench {
            psa,
            companies,
            latency_ms,
            concurrency,
            json,
        } => {
            let rows = psa_bridge_cli::bench::run(psa_bridge_cli::bench::BenchArgs {
                psa: match psa {
                    PsaArg::Connectwise => domain::model::PsaKind::Connectwise,
                    PsaArg::Autotask => domain::model::PsaKind::Autotask,
                },
                sizes: companies,
                latency_ms,
                concurrency,
            })
            .await?;
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&rows)?)?;
            }
            let at = psa == PsaArg::Autotask;
            println!(
                "| companies | pass | PSA requests{} | platform requests (writes) | wall s | floor s | ratio | peak RSS MB |",
                if at { " (counted) | most per endpoint" } else { "" }
            );
            println!("|---:|---|---:|{}---:|---:|---:|---:|---:|", if at { "---:|" } else { "" });
            for r in &rows {
                let psa_cell = match (r.psa_threshold_requests, r.psa_max_per_endpoint) {
                    (Some(c), m) => format!("{} ({c}) | {}", r.psa_requests, m.unwrap_or(0)),
                    _ => r.psa_requests.to_string(),
                };
                println!(
                    "| {} | {} | {} | {} ({}) | {:.2} | {:.2} | {:.2} | {:.1} |",
                    r.companies,
                    r.pass,
                    psa_cell,
                    r.platform_requests,
                    r.platform_writes,
                    r.wall_s,
                    r.floor_s,
                    r.wall_s / r.floor_s.max(1e-9),
                    r.peak_rss_mb
                );
            }
            Ok(())
        }
        Command::Status { partner, output } => {
            let aws = adapters_for(&cli.aws).await;
            let st = ops::status(&ctx_for(&aws), &partner).await?;
            if output == Output::Json {
                return print_json(&st);
            }
            println!("partner {} ({}), enabled: {}", st.partner, st.psa, st.enabled);
            println!(
                "switches: provisioning {}, two-way sync {}, tickets {}, usage {}",
                st.switches.provisioning, st.switches.two_way_sync, st.switches.tickets, st.switches.usage
            );
            match &st.mapping_usable {
                Ok(()) => println!("product mapping: usable"),
                Err(e) => println!("product mapping: {e}"),
            }
            match &st.status.credentials {
                Some(c) if c.ok => println!("credentials: ok (checked {})", c.checked_at),
                Some(c) => println!(
                    "credentials: FAILING since {} — {}",
                    c.checked_at,
                    c.problem.clone().unwrap_or_default()
                ),
                None => println!("credentials: not used yet"),
            }
            match &st.status.last_sync {
                Some(s) => println!(
                    "last sync: {} pass at {}: {} companies, {} applied, {} failed{}",
                    s.scope,
                    s.finished_at,
                    s.companies,
                    s.applied,
                    s.failed,
                    s.blocked.as_ref().map(|b| format!(", blocked: {b}")).unwrap_or_default()
                ),
                None => println!("last sync: never"),
            }
            println!(
                "companies: {} mapped, {} waiting for a new tenant",
                st.companies_mapped, st.companies_to_create
            );
            for (c, e) in &st.failing {
                println!("  ! company {c}: {e}");
            }
            Ok(())
        }
    }
    .map_err(|e: anyhow::Error| anyhow!(e))
}
