//! Errors that cross a port: what failed, for whom, and whether trying again can help.

use thiserror::Error;

/// Which outside system an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Psa,
    Platform,
    Store,
    Secrets,
    Events,
}

impl std::fmt::Display for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            System::Psa => "PSA",
            System::Platform => "platform",
            System::Store => "store",
            System::Secrets => "Secrets Manager",
            System::Events => "EventBridge",
        })
    }
}

/// An error from a port. Classified once: retryable (throttled, 5xx, timeout, lost connection)
/// or permanent (bad input, rejected credentials, missing thing).
#[derive(Debug, Clone, Error)]
pub enum PortError {
    /// Credentials were rejected or are missing (R-SET-4).
    #[error("{system}: credentials rejected: {message}")]
    Credentials { system: System, message: String },
    /// The thing asked for does not exist.
    #[error("{system}: not found: {message}")]
    NotFound { system: System, message: String },
    /// A conditional write lost a race (version / attribute_not_exists).
    #[error("{system}: conflict: {message}")]
    Conflict { system: System, message: String },
    /// The request was wrong; retrying will not help.
    #[error("{system}: rejected: {message}")]
    Rejected { system: System, message: String },
    /// Throttled, 5xx, timeout: retried already within budget, may work later.
    #[error("{system}: temporarily unavailable: {message}")]
    Transient { system: System, message: String },
}

impl PortError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, PortError::Transient { .. })
    }
    pub fn system(&self) -> System {
        match self {
            PortError::Credentials { system, .. }
            | PortError::NotFound { system, .. }
            | PortError::Conflict { system, .. }
            | PortError::Rejected { system, .. }
            | PortError::Transient { system, .. } => *system,
        }
    }
}

pub type PortResult<T> = Result<T, PortError>;
