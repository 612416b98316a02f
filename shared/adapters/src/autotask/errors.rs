//! How Autotask error answers read ([`ErrorDialect`]): `{"errors": ["…"]}` (or `[{message}]`),
//! often HTTP 500 even for permanent errors; credentials never reach a message.

use super::zone::zone_unknown;
use super::{Autotask, Cfg, VENDOR};
use crate::http::{ErrorDialect, Forbidden};
use domain::{PortError, System};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::Value;

impl ErrorDialect for Cfg {
    const SYSTEM: System = System::Psa;
    const VENDOR: &'static str = VENDOR;

    fn message(&self, body: &str) -> Option<String> {
        let msgs = error_messages(body);
        (!msgs.is_empty()).then(|| msgs.join("; "))
    }

    fn unauthorized(&self) -> &'static str {
        "check the API user's secret (and user name)"
    }

    fn forbidden(&self) -> Forbidden {
        Forbidden::Credentials(
            "the user has no API access: use an API-only user (security level 'API User \
             (system)') with this integration's tracking identifier",
        )
    }

    fn server_error_retryable(&self, status: StatusCode, body: &str) -> bool {
        retryable(status, body)
    }

    /// An unknown API user (no zone) and a bad integration code, whatever the status.
    fn vendor_code(&self, _status: StatusCode, text: &str, what: &str) -> Option<PortError> {
        let lower = text.to_ascii_lowercase();
        if lower.contains("zone information could not be determined") {
            return Some(zone_unknown());
        }
        if lower.contains("integrationcode is invalid")
            || (lower.contains("integration code") && lower.contains("invalid"))
        {
            return Some(PortError::Credentials {
                system: System::Psa,
                message: format!(
                    "{VENDOR} rejected the integration code — check the API tracking identifier \
                     assigned to the API user ({what}: {text})"
                ),
            });
        }
        None
    }

    fn redact(&self, text: String) -> String {
        let mut out = text;
        for secret in [
            self.secret.expose_secret(),
            self.code.expose_secret(),
            self.username.as_str(),
        ] {
            let secret = secret.trim();
            if secret.len() >= 3 {
                out = replace_ci(&out, secret, "[redacted]");
            }
        }
        out
    }
}

/// The messages of an Autotask error body (`{"errors":["…"]}` or `[{message}]`).
pub(super) fn error_messages(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v.get("errors")
        .and_then(Value::as_array)
        .map(|errs| {
            errs.iter()
                .filter_map(|e| match e {
                    Value::String(s) => Some(s.clone()),
                    other => other
                        .get("message")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an error answer is worth repeating: 502/503/504 always; a 500 only when it reads
/// like a server failure (Autotask answers 500 to bad credentials and bad queries too).
pub(super) fn retryable(status: StatusCode, body: &str) -> bool {
    match status.as_u16() {
        502..=504 => true,
        500 => {
            let msgs = error_messages(body);
            if msgs.is_empty() {
                return true;
            }
            let text = msgs.join(" ").to_ascii_lowercase();
            [
                "unexpected error",
                "try again",
                "timeout",
                "timed out",
                "temporarily",
                "deadlock",
            ]
            .iter()
            .any(|m| text.contains(m))
        }
        _ => false,
    }
}

/// Replaces every case-insensitive (ASCII) occurrence of `needle`.
pub(super) fn replace_ci(hay: &str, needle: &str, with: &str) -> String {
    let lower_hay = hay.to_ascii_lowercase();
    let lower_needle = needle.to_ascii_lowercase();
    if lower_needle.is_empty() || lower_hay.len() != hay.len() {
        return hay.replace(needle, with);
    }
    let mut out = String::with_capacity(hay.len());
    let mut i = 0;
    while let Some(pos) = lower_hay[i..].find(&lower_needle) {
        out.push_str(&hay[i..i + pos]);
        out.push_str(with);
        i += pos + needle.len();
    }
    out.push_str(&hay[i..]);
    out
}

impl Autotask {
    /// Text from Autotask with the credentials blanked out (they never reach an error).
    pub(super) fn scrub(&self, text: &str) -> String {
        self.cfg.redact(text.to_owned())
    }

    pub(super) fn error_from(&self, status: StatusCode, body: &str, what: &str) -> PortError {
        self.cfg.classify(status, body, what)
    }
}
