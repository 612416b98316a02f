//! psa-bridge domain: the model, the SPEC rules as pure functions, plans, ports and the
//! services that orchestrate them. No I/O, no AWS, no HTTP: adapters implement the ports.

pub mod config;
pub mod error;
pub mod model;
pub mod plan;
pub mod ports;
pub mod rules;
pub mod services;
#[cfg(feature = "test-support")]
pub mod testing;

pub use error::{PortError, PortResult, System};
