//! psa-bridge operator CLI: arguments, wiring and presentation around `domain::services`,
//! plus the local stack and the benchmark driver. `main.rs` only calls [`app::run`].

pub mod app;
pub mod args;
pub mod bench;
pub mod exit;
pub mod local;
pub mod localstack;
pub mod present;
pub mod wiring;
