//! The adapters' calls log with their partner, system and company or tenant, and never with a
//! credential: a run's JSON logs can be filtered by partner and company (DESIGN
//! "Observability", R-SET-2).

mod common;

use adapters::http::{HttpSettings, RetryPolicy};
use domain::model::PsaKind;
use domain::rules::settings::{ConnectWiseCredentials, PlatformCredentials, PsaCredentials};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PRIVATE_KEY: &str = "private-K3y-value";
const CLIENT_SECRET: &str = "platform-S3cret-value";

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

impl Captured {
    fn lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON log line"))
            .collect()
    }
}

#[tokio::test]
async fn adapter_calls_log_their_partner_system_and_company_never_a_secret() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let settings = HttpSettings {
        retry: RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::quick()
        },
        timeout: Duration::from_secs(5),
        concurrency: 2,
        deadline: Default::default(),
    };
    let clients = adapters::connector::clients_from_with(
        &common::partner(PsaKind::Connectwise),
        &PsaCredentials::ConnectWise(ConnectWiseCredentials {
            site: "http://127.0.0.1:9".into(),
            company_id: "acme_cw".into(),
            public_key: "public".into(),
            private_key: PRIVATE_KEY.into(),
            client_id: "client-id".into(),
        }),
        &PlatformCredentials {
            client_id: "platform-client".into(),
            client_secret: CLIENT_SECRET.into(),
        },
        adapters::http::client(Duration::from_secs(5)),
        &settings,
        &Default::default(),
    )
    .unwrap();
    let e = clients.psa.primary_contact("42").await.unwrap_err();
    assert!(e.is_retryable(), "{e}");
    let e = clients.tenants.set_enabled("t-7", false).await.unwrap_err();
    assert!(e.is_retryable(), "{e}");

    let lines = logs.lines();
    let span_of = |line: &serde_json::Value| line.get("span").cloned().unwrap_or_default();
    let psa: Vec<_> = lines
        .iter()
        .map(span_of)
        .filter(|s| s["name"] == "primary_contact")
        .collect();
    assert!(!psa.is_empty(), "the retries log inside the call's span");
    for s in &psa {
        assert_eq!(s["partner"], "acme");
        assert_eq!(s["system"], "connectwise");
        assert_eq!(s["company"], "42");
    }
    let platform: Vec<_> = lines
        .iter()
        .map(span_of)
        .filter(|s| s["name"] == "set_enabled")
        .collect();
    assert!(!platform.is_empty());
    for s in &platform {
        assert_eq!(s["partner"], "acme");
        assert_eq!(s["system"], "platform");
        assert_eq!(s["tenant"], "t-7");
    }
    let all = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for secret in [PRIVATE_KEY, CLIENT_SECRET] {
        assert!(!all.contains(secret), "a credential reached the logs");
    }
}
