//! The command line: every command, flag and its help text.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "psa-bridge",
    version,
    about = "Operate psa-bridge: PSA ↔ platform provisioning, billing and tickets",
    after_help = crate::exit::HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Clone)]
pub struct AwsArgs {
    /// DynamoDB table of the deployment (stack output TableName).
    #[arg(
        long,
        global = true,
        env = "PSA_BRIDGE_TABLE",
        default_value = "psa-bridge-prod"
    )]
    pub table: String,
    /// EventBridge bus of the deployment (stack output EventBusName).
    #[arg(
        long,
        global = true,
        env = "PSA_BRIDGE_BUS",
        default_value = "psa-bridge-prod"
    )]
    pub bus: String,
    /// Prefix of the partners' secrets in Secrets Manager.
    #[arg(
        long,
        global = true,
        env = "PSA_BRIDGE_SECRET_PREFIX",
        default_value = "psa-bridge/"
    )]
    pub secret_prefix: String,
    /// AWS endpoint override (a local moto server); uses test credentials.
    #[arg(long, global = true, env = "PSA_BRIDGE_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Autotask zone-discovery URL, for a non-standard zone or the local sandbox (default: the
    /// production `zoneInformation` service).
    #[arg(
        long,
        global = true,
        env = "PSA_BRIDGE_AUTOTASK_ZONE_URL",
        visible_alias = "autotask-zone-url"
    )]
    pub autotask_url: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the whole system locally (moto, sandbox PSA and platform, the handlers) with demo data.
    Local {
        /// Run the demo once and exit instead of serving.
        #[arg(long)]
        once: bool,
        /// Port of the sandbox ConnectWise (0: any free port).
        #[arg(long, default_value_t = 0)]
        cw_port: u16,
        /// Port of the sandbox platform (0: any free port).
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
        /// The partner's id.
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
        /// How to print the result.
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
        json: Option<PathBuf>,
    },
    /// Publish usage to the PSA's PAYG lines now (the publish-usage Lambda's manual publish):
    /// recorded in the history; the period's automatic publish still runs.
    Publish {
        /// The partner's id.
        #[arg(long)]
        partner: String,
        /// Only these PSA companies (ids, comma-separated); all mapped companies when omitted.
        #[arg(long, value_delimiter = ',')]
        companies: Vec<String>,
        /// A closed calendar month (YYYY-MM) from the platform's usage report; the month to
        /// date from current usage when omitted.
        #[arg(long)]
        period: Option<String>,
        /// Print every line old → new with the rule that decided it, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who publishes, for the history (default: $USER).
        #[arg(long)]
        initiator: Option<String>,
        /// How to print the result.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Requests in flight at once to each system.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// The last ten publish operations of a partner, newest first (R-USE-8).
    History {
        /// The partner's id.
        #[arg(long)]
        partner: String,
        /// How to print the result.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// A partner's state: credentials, switches, last sync, failing companies.
    Status {
        /// The partner's id.
        #[arg(long)]
        partner: String,
        /// How to print the result.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// A partner's webhook endpoints (R-HOOK).
    #[command(subcommand)]
    Webhooks(WebhooksCmd),
    /// What each rule decides (the rule IDs in every plan), from the rules' own documentation.
    Rules {
        /// One rule, e.g. R-PROV-4 (case-insensitive); all rules when omitted.
        id: Option<String>,
    },
    /// Print a shell completion script, e.g. `psa-bridge completions bash > /etc/bash_completion.d/psa-bridge`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
pub enum WebhooksCmd {
    /// Give a partner a new random URL token (the old one stops working at once) and print its
    /// endpoint URLs, once: only the token's hash is stored. Register the PSA's callbacks
    /// again afterwards, their URLs carry the token.
    RotateToken {
        /// The partner's id.
        #[arg(long)]
        partner: String,
        /// The deployment's webhook base URL (stack output WebhookBaseUrl, ending in /hooks).
        #[arg(long, env = "PSA_BRIDGE_WEBHOOK_URL")]
        base_url: Option<String>,
        /// How to print the result.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Subcommand)]
pub enum PartnerCmd {
    /// Apply a partner file (idempotent; nothing is written unless all of it is valid).
    Apply {
        /// The partner file (YAML).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Show a partner's stored settings and mapping.
    Show {
        /// The partner's id.
        #[arg(long)]
        partner: String,
        /// How to print the result.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Subcommand)]
pub enum CredentialsCmd {
    /// Verify and store a partner's PSA and platform credentials (nothing is stored unless both
    /// log-ins work). Secret values are read from the environment variables named below.
    Set(Box<SetCredentials>),
    /// Log in to the PSA and the platform with a partner's stored credentials.
    Test {
        /// The partner's id.
        #[arg(long)]
        partner: String,
    },
}

#[derive(Args)]
pub struct SetCredentials {
    /// The partner's id (a-z, 0-9, -).
    #[arg(long)]
    pub partner: String,
    /// Which PSA the partner uses.
    #[arg(long, value_enum, default_value_t = PsaArg::Connectwise)]
    pub psa: PsaArg,
    /// Platform data-center URL, e.g. https://eu2-cloud.acronis.com
    #[arg(long)]
    pub platform_url: String,
    /// The platform API client's id.
    #[arg(long)]
    pub platform_client_id: String,
    /// The platform API client's secret.
    #[arg(
        long,
        env = "PSA_BRIDGE_PLATFORM_CLIENT_SECRET",
        hide_env_values = true
    )]
    pub platform_client_secret: String,
    /// ConnectWise site host, e.g. api-na.myconnectwise.net
    #[arg(long, required_if_eq("psa", "connectwise"))]
    pub cw_site: Option<String>,
    /// ConnectWise login company id.
    #[arg(long, required_if_eq("psa", "connectwise"))]
    pub cw_company: Option<String>,
    /// The API member's public key.
    #[arg(long, env = "PSA_BRIDGE_CW_PUBLIC_KEY", hide_env_values = true)]
    pub cw_public_key: Option<String>,
    /// The API member's private key.
    #[arg(long, env = "PSA_BRIDGE_CW_PRIVATE_KEY", hide_env_values = true)]
    pub cw_private_key: Option<String>,
    /// The integration's clientId from developer.connectwise.com.
    #[arg(long, required_if_eq("psa", "connectwise"))]
    pub cw_client_id: Option<String>,
    /// Autotask API user (its e-mail address); the zone is discovered from it.
    #[arg(long, required_if_eq("psa", "autotask"))]
    pub at_username: Option<String>,
    /// The Autotask API user's secret.
    #[arg(long, env = "PSA_BRIDGE_AT_SECRET", hide_env_values = true)]
    pub at_secret: Option<String>,
    /// The Autotask API user's integration code (API tracking identifier).
    #[arg(long, env = "PSA_BRIDGE_AT_INTEGRATION_CODE", hide_env_values = true)]
    pub at_integration_code: Option<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum PsaArg {
    Connectwise,
    Autotask,
}

#[derive(Subcommand)]
pub enum CompaniesCmd {
    /// List PSA companies with their mapping and last sync.
    List {
        /// The partner's id.
        #[arg(long)]
        partner: String,
        /// Only mapped companies (including those waiting for a new tenant).
        #[arg(long, conflicts_with = "unmapped")]
        mapped: bool,
        /// Only companies that are not mapped.
        #[arg(long)]
        unmapped: bool,
        /// Company type, e.g. Customer.
        #[arg(long = "type")]
        company_type: Option<String>,
        /// Part of the name or identifier.
        #[arg(long)]
        search: Option<String>,
        /// How to print the result.
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Map a company to a customer tenant or a sub-partner, or to a new customer tenant the
    /// next sync creates (R-CO-1, R-CO-6).
    Map {
        /// The partner's id.
        #[arg(long)]
        partner: String,
        /// The PSA company (identifier or id).
        #[arg(long)]
        company: String,
        /// An existing customer or sub-partner tenant's id, or `new`.
        #[arg(long)]
        tenant: String,
    },
    /// Remove a company's mapping (its tenant is left as it is).
    Unmap {
        /// The partner's id.
        #[arg(long)]
        partner: String,
        /// The PSA company (identifier or id).
        #[arg(long)]
        company: String,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    fn check(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if a.get_help().is_none() && a.get_long_help().is_none() {
                missing.push(format!("{path} --{id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() && sub.get_name() != "help" {
                missing.push(format!("{path} {} (no about)", sub.get_name()));
            }
            check(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }

    #[test]
    fn every_flag_and_command_has_help_text() {
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = Vec::new();
        check(&cmd, "psa-bridge", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:?}");
    }
}
