//! [`Fake`]: what the memory store, PSA and platform are made of — their state behind one lock,
//! the clock they stamp with, and the fault switch every port call goes through.

use super::faults::{lock, Faults};
use crate::error::PortResult;
use crate::ports::Clock;
use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

/// A memory port over the state `S` (see [`super::MemoryStore`], [`super::MemoryPsa`],
/// [`super::MemoryPlatform`]).
pub struct Fake<S> {
    state: Mutex<S>,
    clock: Arc<dyn Clock>,
    faults: Faults,
}

impl<S: Clone> Fake<S> {
    pub(crate) fn from_state(clock: Arc<dyn Clock>, state: S) -> Self {
        Fake {
            state: Mutex::new(state),
            clock,
            faults: Faults::default(),
        }
    }

    /// The fault switch and call counts of this port.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Requests made so far (every port call, failed or not).
    pub fn requests(&self) -> u64 {
        self.faults.total()
    }

    /// A copy of everything held; compare two to prove that nothing was written.
    pub fn state(&self) -> S {
        lock(&self.state).clone()
    }

    /// The state for a test's own setup or assertion: not a port call, never faulted.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut S, DateTime<Utc>) -> R) -> R {
        f(&mut lock(&self.state), self.clock.now())
    }

    /// One port call of `method` about `subject`: counted and subject to the faults.
    pub(crate) fn call<T>(
        &self,
        method: &str,
        subject: &str,
        f: impl FnOnce(&mut S, DateTime<Utc>) -> PortResult<T>,
    ) -> PortResult<T> {
        self.faults.call(method, subject, || self.with(f))
    }
}
