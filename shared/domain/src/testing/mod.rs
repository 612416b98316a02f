//! In-memory implementations of every port, for service-level tests (feature `test-support`).
//!
//! Each fake keeps the semantics of the adapter it stands for (versioned writes, R-CO-5, the
//! platform's duplicate-name refusal, Autotask's absolute line quantities, change cursors) and
//! carries a fault switch ([`Faults`]) that fails the next N calls of a named method with a
//! given [`crate::PortError`], and counts every call. [`World`] wires them around a demo
//! partner. Tests assert on plans and on the state the fakes hold, not on call counts.

mod connector;
mod fake;
mod faults;
mod hooks;
mod platform;
mod psa;
mod store;
mod world;

pub use connector::{MemoryConnector, MemoryEvents};
pub use fake::Fake;
pub use faults::{credentials, rejected, transient, Faults, When};
pub use hooks::{DeliveryEntry, DeliveryState, HooksState, MemoryHooks};
pub use platform::{MemoryPlatform, PlatformState};
pub use psa::{agreement_start, MemoryPsa, PsaState};
pub use store::{MemoryStore, StoreState};
pub use world::{
    day, item, partner, start_time, storage, Products, World, INFRA, INFRA_2, PARTNER,
    PARTNER_TENANT,
};

use crate::ports::Clock;
use chrono::{DateTime, Utc};
use std::sync::Mutex;

/// A clock the test moves; the fakes stamp their changes and expire leases with it.
#[derive(Debug)]
pub struct TestClock(Mutex<DateTime<Utc>>);

impl TestClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        TestClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *faults::lock(&self.0) = at;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *faults::lock(&self.0)
    }
}
