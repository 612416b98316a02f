//! The fault switch and request counter every memory port carries.
//!
//! A fault fails the next N calls of a named method (the port trait's method name, e.g.
//! `"set_quotas"`), optionally only for one subject (the tenant, company or agreement the call
//! is about), either before the call takes effect or after it (the write happened but its answer
//! was lost). Every call is counted, failed or not: the counts are the ports' request counters.

use crate::error::{PortError, PortResult, System};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, ignoring poisoning (one failed assertion must not wedge the other checks).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// When an armed fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// The call fails and changes nothing.
    Before,
    /// The call takes effect, then fails (a lost answer).
    After,
}

#[derive(Debug, Clone)]
struct Fault {
    method: String,
    subject: Option<String>,
    remaining: usize,
    when: When,
    error: PortError,
}

#[derive(Debug, Default)]
struct State {
    armed: Vec<Fault>,
    calls: BTreeMap<String, u64>,
}

/// Faults to inject into one port, and the calls it has seen.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    /// Fails the next `times` calls of `method` with `error`; nothing is changed by them.
    pub fn fail(&self, method: &str, times: usize, error: PortError) -> &Self {
        self.arm(method, None, times, When::Before, error)
    }

    /// [`Faults::fail`] for the calls about `subject` only (a tenant id, a company id, …).
    pub fn fail_for(&self, method: &str, subject: &str, times: usize, error: PortError) -> &Self {
        self.arm(method, Some(subject), times, When::Before, error)
    }

    /// The next `times` calls of `method` (about `subject`, if given) take effect, then answer
    /// `error`: the write happened but its answer was lost.
    pub fn lose_answer(
        &self,
        method: &str,
        subject: Option<&str>,
        times: usize,
        error: PortError,
    ) -> &Self {
        self.arm(method, subject, times, When::After, error)
    }

    fn arm(
        &self,
        method: &str,
        subject: Option<&str>,
        times: usize,
        when: When,
        error: PortError,
    ) -> &Self {
        lock(&self.state).armed.push(Fault {
            method: method.to_owned(),
            subject: subject.map(str::to_owned),
            remaining: times,
            when,
            error,
        });
        self
    }

    /// Calls of `method` so far.
    pub fn calls(&self, method: &str) -> u64 {
        lock(&self.state).calls.get(method).copied().unwrap_or(0)
    }

    /// Calls of every method so far.
    pub fn total(&self) -> u64 {
        lock(&self.state).calls.values().sum()
    }

    /// The methods that still have faults to fire.
    pub fn pending(&self) -> Vec<String> {
        lock(&self.state)
            .armed
            .iter()
            .filter(|f| f.remaining > 0)
            .map(|f| f.method.clone())
            .collect()
    }

    /// Takes one firing of the first armed fault matching the call.
    fn take(&self, method: &str, subject: &str, when: When) -> Option<PortError> {
        let mut st = lock(&self.state);
        let f = st.armed.iter_mut().find(|f| {
            f.remaining > 0
                && f.when == when
                && f.method == method
                && f.subject.as_deref().is_none_or(|s| s == subject)
        })?;
        f.remaining -= 1;
        Some(f.error.clone())
    }

    /// Runs one call of `method` about `subject`: counts it, fails it when a fault is armed
    /// before, runs `body`, and replaces its success by the error of a fault armed after.
    pub fn call<T>(
        &self,
        method: &str,
        subject: &str,
        body: impl FnOnce() -> PortResult<T>,
    ) -> PortResult<T> {
        *lock(&self.state)
            .calls
            .entry(method.to_owned())
            .or_default() += 1;
        if let Some(e) = self.take(method, subject, When::Before) {
            return Err(e);
        }
        let out = body()?;
        match self.take(method, subject, When::After) {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// A throttled / 5xx / timed-out call of `system` (retryable).
pub fn transient(system: System) -> PortError {
    PortError::Transient {
        system,
        message: "injected: temporarily unavailable".into(),
    }
}

/// A permanent refusal by `system`.
pub fn rejected(system: System) -> PortError {
    PortError::Rejected {
        system,
        message: "injected: rejected".into(),
    }
}

/// Credentials refused by `system` (R-SET-4).
pub fn credentials(system: System) -> PortError {
    PortError::Credentials {
        system,
        message: "injected: the keys were rotated".into(),
    }
}

/// A conflict of `system` with `message`.
pub(crate) fn conflict(system: System, message: String) -> PortError {
    PortError::Conflict { system, message }
}

/// A missing thing of `system` with `message`.
pub(crate) fn not_found(system: System, message: String) -> PortError {
    PortError::NotFound { system, message }
}
