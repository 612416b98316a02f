//! Fault injection: [`Fault`]s matched against requests, and the per-fake [`Faults`] registry.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::http::Method;
use serde::{Deserialize, Serialize};

use super::lock;

/// One injected fault. It matches a request when `method` (case-insensitive, `None` = any) and
/// `path_contains` (substring of the path and query, `None` = any) both match, and fires `times`
/// times; then it is spent and removed.
///
/// JSON form (control API): `{"method":"GET","path_contains":"/tenants","times":2,
/// "kind":{"type":"status","code":429,"retry_after_secs":1}}`; other kinds:
/// `{"type":"latency","ms":500}`, `{"type":"drop_response_after_write"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path_contains: Option<String>,
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// A fault of `kind` for any request, firing once.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            method: None,
            path_contains: None,
            kind,
            times: 1,
        }
    }
    /// Convenience: a `Status` fault.
    pub fn status(code: u16, retry_after_secs: Option<u64>) -> Self {
        Self::new(FaultKind::Status {
            code,
            retry_after_secs,
        })
    }
    /// Builder: restrict to an HTTP method.
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_string());
        self
    }
    /// Builder: restrict to paths containing `needle`.
    pub fn path_contains(mut self, needle: &str) -> Self {
        self.path_contains = Some(needle.to_string());
        self
    }
    /// Builder: number of times the fault fires.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }

    fn matches(&self, method: &Method, path_and_query: &str) -> bool {
        if let Some(m) = &self.method {
            if !m.eq_ignore_ascii_case(method.as_str()) {
                return false;
            }
        }
        if let Some(p) = &self.path_contains {
            if !path_and_query.contains(p.as_str()) {
                return false;
            }
        }
        true
    }
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FaultKindRepr", into = "FaultKindRepr")]
pub enum FaultKind {
    /// Answer with this status code and the vendor's error body, without processing the
    /// request. `retry_after_secs` adds a `Retry-After` header (use 0 or 1 in tests).
    Status {
        code: u16,
        retry_after_secs: Option<u64>,
    },
    /// Wait this long, then process the request normally.
    Latency(Duration),
    /// Process the request (state changes happen), then close the connection without sending
    /// any response bytes.
    DropResponseAfterWrite,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FaultKindRepr {
    Status {
        code: u16,
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    Latency {
        ms: u64,
    },
    DropResponseAfterWrite,
}

impl From<FaultKindRepr> for FaultKind {
    fn from(r: FaultKindRepr) -> Self {
        match r {
            FaultKindRepr::Status {
                code,
                retry_after_secs,
            } => FaultKind::Status {
                code,
                retry_after_secs,
            },
            FaultKindRepr::Latency { ms } => FaultKind::Latency(Duration::from_millis(ms)),
            FaultKindRepr::DropResponseAfterWrite => FaultKind::DropResponseAfterWrite,
        }
    }
}

impl From<FaultKind> for FaultKindRepr {
    fn from(k: FaultKind) -> Self {
        match k {
            FaultKind::Status {
                code,
                retry_after_secs,
            } => FaultKindRepr::Status {
                code,
                retry_after_secs,
            },
            FaultKind::Latency(d) => FaultKindRepr::Latency {
                ms: d.as_millis() as u64,
            },
            FaultKind::DropResponseAfterWrite => FaultKindRepr::DropResponseAfterWrite,
        }
    }
}

/// Fault registry of one fake (a cheap clone handle).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultsState>>,
}

#[derive(Debug, Default)]
struct FaultsState {
    list: Vec<Fault>,
    latency: Duration,
}

impl Faults {
    /// Adds a fault (faults are checked in insertion order; the first match fires).
    pub fn push(&self, fault: Fault) {
        if fault.times > 0 {
            lock(&self.inner).list.push(fault);
        }
    }
    /// Latency added to every request (benchmarks); `Duration::ZERO` turns it off.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.inner).latency = latency;
    }
    /// Removes all pending faults and resets the added latency to zero.
    pub fn clear(&self) {
        let mut s = lock(&self.inner);
        s.list.clear();
        s.latency = Duration::ZERO;
    }
    /// Faults not yet spent (with their remaining `times`).
    pub fn pending(&self) -> Vec<Fault> {
        lock(&self.inner).list.clone()
    }

    /// Base latency plus the first matching fault (consuming one of its `times`).
    pub(super) fn take(
        &self,
        method: &Method,
        path_and_query: &str,
    ) -> (Duration, Option<FaultKind>) {
        let mut s = lock(&self.inner);
        let latency = s.latency;
        let idx = s
            .list
            .iter()
            .position(|f| f.matches(method, path_and_query));
        let kind = idx.map(|i| {
            let f = &mut s.list[i];
            f.times -= 1;
            let kind = f.kind.clone();
            if f.times == 0 {
                s.list.remove(i);
            }
            kind
        });
        (latency, kind)
    }
}
