//! What an operation reports when it could not be done: the partner, the company and the thing.

use crate::error::PortError;
use crate::model::PsaKind;

/// An operation that could not be done. Nothing was written unless the variant says so.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error(
        "unknown partner {0:?}: apply its partner file first (`psa-bridge partner apply -f …`)"
    )]
    UnknownPartner(String),
    /// The input is wrong: each problem is named; nothing was written.
    #[error("partner {partner}: nothing was applied:\n  {}", problems.join("\n  "))]
    Invalid {
        partner: String,
        problems: Vec<String>,
    },
    /// A log-in with the given credentials failed; nothing was stored.
    #[error("partner {partner}: {system} log-in failed, nothing was stored: {source}")]
    LoginFailed {
        partner: String,
        system: String,
        #[source]
        source: PortError,
    },
    #[error(
        "partner {partner}: the file says psa: {file} but the stored credentials are for {stored}"
    )]
    PsaMismatch {
        partner: String,
        file: PsaKind,
        stored: PsaKind,
    },
    /// A system failed while doing `what`.
    #[error("partner {partner}: {what}: {source}")]
    Port {
        partner: String,
        what: String,
        #[source]
        source: PortError,
    },
}

impl OpError {
    /// A port error while doing `what` for `partner`.
    pub fn port(partner: &str, what: impl Into<String>) -> impl FnOnce(PortError) -> OpError {
        let (partner, what) = (partner.to_owned(), what.into());
        move |source| OpError::Port {
            partner,
            what,
            source,
        }
    }

    /// One problem with the input.
    pub fn invalid(partner: &str, problem: impl Into<String>) -> OpError {
        OpError::Invalid {
            partner: partner.to_owned(),
            problems: vec![problem.into()],
        }
    }

    /// Whether trying again later can help (a system was unavailable).
    pub fn is_retryable(&self) -> bool {
        matches!(self, OpError::Port { source, .. } if source.is_retryable())
    }
}
