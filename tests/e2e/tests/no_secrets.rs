//! R-SET-2 over a whole run: every log line (TRACE and up) and every event of a run that meets
//! throttling, server errors, rotated keys and a platform refusal is scanned for the secrets it
//! used. Alone in its test binary, with the process-wide subscriber: tracing caches per call
//! site whether anyone listens, so a thread-local subscriber beside other tests misses lines.

use async_trait::async_trait;
use base64::Engine as _;
use domain::ports::{BusEvent, Events};
use domain::PortResult;
use e2e::*;
use sandbox::Fault;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Log lines written to memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The bus, with every event kept for the scan.
struct Recorded {
    inner: Arc<dyn Events>,
    seen: Mutex<Vec<BusEvent>>,
}

#[async_trait]
impl Events for Recorded {
    async fn publish(&self, events: &[BusEvent]) -> PortResult<()> {
        self.seen.lock().unwrap().extend_from_slice(events);
        self.inner.publish(events).await
    }
}

// R-SET-2: a run that meets throttling, server errors, a 401 from rotated keys and a platform
// refusal writes no secret it used — keys, client secret, the Basic header — into any log
// line (TRACE and up) or any event it publishes.
#[tokio::test]
async fn r_set_2_no_log_line_or_event_of_a_failing_run_carries_a_secret() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let w = World::new().await;
    let recorded = Arc::new(Recorded {
        inner: w.deps.events.clone(),
        seen: Mutex::new(Vec::new()),
    });
    let deps = sync_tenant::Deps {
        events: recorded.clone(),
        ..w.deps.clone()
    };
    let run = |pass: &'static str| {
        let deps = deps.clone();
        let w = &w;
        async move {
            w.invoke_with(
                &deps,
                "psa-bridge",
                "SyncPartner",
                json!({"partner": PARTNER, "pass": pass}),
            )
            .await
        }
    };
    let (_, a) = w.customer("Scanned");
    w.addition(a, w.products.ws, 2.0, Some("2027-06-30"));
    w.sandbox
        .connectwise
        .faults()
        .push(Fault::status(429, Some(0)).times(2));
    w.sandbox
        .connectwise
        .faults()
        .push(Fault::status(500, None).path_contains("additions").times(2));
    w.sandbox
        .platform
        .faults()
        .push(Fault::status(400, None).method("PUT").times(1));
    let _ = run("full").await;
    // Keys rotated on the PSA only: 401, read again, 401 again → CredentialsFailed.
    w.sandbox
        .connectwise
        .add_instance(CW_COMPANY, CW_PUBLIC, "privELSEWHERE000");
    w.advance(chrono::Duration::minutes(10));
    let failed = run("full").await;
    assert!(failed.is_err(), "the old keys are refused");

    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{CW_COMPANY}+{CW_PUBLIC}:{CW_PRIVATE}"));
    let secrets = [
        CW_PRIVATE,
        "privELSEWHERE000",
        w.account.client_secret.as_str(),
        basic.as_str(),
    ];
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let events: Vec<Value> = recorded
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|e| json!({"type": e.detail_type, "detail": e.detail}))
        .collect();
    assert!(
        events.iter().any(|e| e["type"] == "CredentialsFailed"),
        "{events:?}"
    );
    // The scan saw the run: its retries, the rejection and its summary are in the lines.
    for seen in [
        "retrying",
        "credentials rejected; reading them again",
        "sync finished",
    ] {
        assert!(text.contains(seen), "no log line has {seen:?}");
    }
    let events = serde_json::to_string(&events).unwrap();
    for s in secrets {
        for (i, line) in text.lines().enumerate() {
            assert!(!line.contains(s), "log line {i} carries a secret: {line}");
        }
        assert!(!events.contains(s), "an event carries a secret: {events}");
    }
}
