//! psa-bridge operator CLI: the local stack, partner configuration, credentials, company lists,
//! sync runs and status. `main.rs` parses arguments; the work is in these modules.

pub mod bench;
pub mod local;
pub mod localstack;
pub mod ops;
