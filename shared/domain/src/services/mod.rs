//! Services: every operation psa-bridge offers, orchestrating narrow ports around the pure
//! rules. The Lambda handlers, the CLI and the admin API call these and only present results.

pub mod companies;
mod error;
pub mod partners;
pub mod publish;
pub mod status;
pub mod sync;
pub mod webhooks;

pub use error::OpError;
