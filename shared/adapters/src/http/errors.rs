//! Classify once: every vendor's error answer becomes a [`PortError`] here, by one rule —
//! 401 credentials, 403 a permission, 404 not found, 409 conflict, 429 and server failures
//! transient, anything else rejected. What differs per vendor is small and given by its
//! [`ErrorDialect`]: how to read the message out of its error body, what an operator should
//! check after a 401 or 403, whether a 5xx may succeed when repeated, and codes of its own.

use super::snippet;
use domain::{PortError, System};
use reqwest::StatusCode;

/// What a 403 means for a vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// The credentials lack a permission: the operator fixes the API user (R-SET-4).
    Credentials(&'static str),
    /// This request is refused; the credentials are fine.
    Rejected(&'static str),
}

/// The vendor-specific inputs of [`ErrorDialect::classify`].
pub trait ErrorDialect {
    /// Which system the errors are from.
    const SYSTEM: System;
    /// The vendor's name as error messages start with it.
    const VENDOR: &'static str;
    /// The message of the vendor's error body; `None` when the body is not in the vendor's
    /// error shape (the body's start is shown instead).
    fn message(&self, body: &str) -> Option<String>;
    /// What a 401 asks the operator to check.
    fn unauthorized(&self) -> &'static str;
    /// What a 403 is, and what it asks the operator to check.
    fn forbidden(&self) -> Forbidden;
    /// Whether a server failure may succeed when repeated (some vendors answer 500 to
    /// permanent errors too). Every 5xx, unless a vendor says otherwise.
    fn server_error_retryable(&self, _status: StatusCode, _body: &str) -> bool {
        true
    }
    /// A vendor code that decides the error by itself, whatever the status (`text` is the
    /// message as it will be shown, already redacted).
    fn vendor_code(&self, _status: StatusCode, _text: &str, _what: &str) -> Option<PortError> {
        None
    }
    /// Text from the vendor with anything secret blanked out (default: as it is).
    fn redact(&self, text: String) -> String {
        text
    }

    /// The error for a vendor's non-success answer to `what` (a path or an operation).
    fn classify(&self, status: StatusCode, body: &str, what: &str) -> PortError {
        // Redact the whole text first, then cut it: a secret across the cut is never half shown.
        let text = snippet(&self.redact(self.message(body).unwrap_or_else(|| body.to_owned())));
        if let Some(e) = self.vendor_code(status, &text, what) {
            return e;
        }
        let (system, vendor) = (Self::SYSTEM, Self::VENDOR);
        let message = format!("{vendor} {what}: {text} ({status})");
        let hinted = |hint: &str| format!("{message} — {hint}");
        match status.as_u16() {
            401 => PortError::Credentials {
                system,
                message: hinted(self.unauthorized()),
            },
            403 => match self.forbidden() {
                Forbidden::Credentials(hint) => PortError::Credentials {
                    system,
                    message: hinted(hint),
                },
                Forbidden::Rejected(hint) => PortError::Rejected {
                    system,
                    message: hinted(hint),
                },
            },
            404 => PortError::NotFound { system, message },
            409 => PortError::Conflict { system, message },
            429 => PortError::Transient { system, message },
            500..=599 if self.server_error_retryable(status, body) => {
                PortError::Transient { system, message }
            }
            _ => PortError::Rejected { system, message },
        }
    }

    /// The answer to `what` broke off while its body was read (transient).
    fn broke_off(&self, what: &str, e: impl std::fmt::Display) -> PortError {
        PortError::Transient {
            system: Self::SYSTEM,
            message: format!("{} {what}: the answer broke off: {e}", Self::VENDOR),
        }
    }

    /// A success answer to `what` whose body is not what we read (rejected).
    fn unexpected_body(&self, what: &str, e: impl std::fmt::Display) -> PortError {
        PortError::Rejected {
            system: Self::SYSTEM,
            message: format!("{} {what}: unexpected body: {e}", Self::VENDOR),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain;

    impl ErrorDialect for Plain {
        const SYSTEM: System = System::Platform;
        const VENDOR: &'static str = "Vendor";
        fn message(&self, body: &str) -> Option<String> {
            body.strip_prefix("msg:").map(str::to_owned)
        }
        fn unauthorized(&self) -> &'static str {
            "check the key"
        }
        fn forbidden(&self) -> Forbidden {
            Forbidden::Rejected("not on this tenant")
        }
    }

    #[test]
    fn r_rel_1_one_classification_for_every_status() {
        let rows: [(u16, &str, &str); 9] = [
            (
                401,
                "credentials",
                "Vendor x: bad (401 Unauthorized) — check the key",
            ),
            (403, "rejected", "— not on this tenant"),
            (404, "not found", "Vendor x: bad (404 Not Found)"),
            (409, "conflict", "(409 Conflict)"),
            (429, "temporarily", "(429 Too Many Requests)"),
            (500, "temporarily", "(500 Internal Server Error)"),
            (503, "temporarily", "(503 Service Unavailable)"),
            (400, "rejected", "(400 Bad Request)"),
            (422, "rejected", "Vendor x: bad"),
        ];
        for (code, kind, text) in rows {
            let e = Plain.classify(StatusCode::from_u16(code).unwrap(), "msg:bad", "x");
            let shown = e.to_string();
            assert!(
                shown.contains(kind) && shown.contains(text),
                "{code}: {shown}"
            );
            assert_eq!(e.is_retryable(), matches!(code, 429 | 500..=599), "{code}");
        }
        let e = Plain.classify(StatusCode::BAD_GATEWAY, "<html>down</html>", "x");
        assert!(
            e.to_string().contains("Vendor x: <html>down</html> (502"),
            "{e}"
        );
    }
}
