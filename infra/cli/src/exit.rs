//! The CLI's exit status, documented in `psa-bridge --help` and the README.

/// Everything asked for was done.
pub const OK: i32 = 0;
/// An error: bad input, a system that refused or could not be reached. Nothing was written, or
/// (a sync that could not run) the run did not happen.
pub const FAILED: i32 = 1;
/// The command line itself is wrong (clap's own status).
pub const USAGE: i32 = 2;
/// A sync ran, but one or more companies failed (each is listed with its reason).
pub const COMPANIES_FAILED: i32 = 3;
/// A sync was blocked: the blast-radius guard (R-PROV-10), an unusable product mapping
/// (R-MAP-6), or provisioning switched off. Nothing was applied.
pub const BLOCKED: i32 = 4;

/// The text `--help` ends with.
pub const HELP: &str = "Exit status: 0 done; 1 error (bad input, a system refused or was \
unreachable, a publish failed or its period's usage is not ready; nothing written); 2 wrong \
command line; 3 sync or publish ran but a company failed; 4 sync blocked (guard R-PROV-10, \
unusable mapping R-MAP-6, provisioning off).";

/// The status of a publish.
pub fn of_publish(r: &domain::ports::PublishRecord) -> i32 {
    use domain::ports::PublishResult as R;
    match r.result {
        R::Published => OK,
        R::PartlyFailed => COMPANIES_FAILED,
        R::Failed | R::NotReady => FAILED,
    }
}

/// The status of a sync report.
pub fn of_sync(r: &domain::services::sync::SyncReport) -> i32 {
    if r.blocked.is_some() {
        BLOCKED
    } else if !r.failures.is_empty() {
        COMPANIES_FAILED
    } else {
        OK
    }
}
