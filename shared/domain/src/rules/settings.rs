//! SPEC §1 — Settings and credentials (R-SET).
//!
//! Credentials are typed with `secrecy::SecretString`: their `Debug` prints `[REDACTED]` and they
//! have no `Display` or `Serialize`, so they cannot end up in a log line, an error, an event or a
//! status (R-SET-2). Only the Secrets Manager adapter exposes them, to write them.

use crate::model::{Partner, PsaKind};
use secrecy::{ExposeSecret, SecretString};

/// The systems a partner has one secret each for (R-SET-2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Psa,
    Platform,
    Webhook,
}

impl SecretKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SecretKind::Psa => "psa",
            SecretKind::Platform => "platform",
            SecretKind::Webhook => "webhook",
        }
    }
}

/// R-SET-2: one secret per partner and system: `{prefix}{partner}/{system}`.
pub fn secret_name(prefix: &str, partner: &str, kind: SecretKind) -> String {
    format!("{prefix}{partner}/{}", kind.as_str())
}

/// R-SET-3: ConnectWise credentials: site, company id, public key, private key and client id.
#[derive(Debug, Clone)]
pub struct ConnectWiseCredentials {
    /// The site host, e.g. `api-na.myconnectwise.net` (or a full `https://…` URL).
    pub site: String,
    /// The login company id.
    pub company_id: String,
    pub public_key: SecretString,
    pub private_key: SecretString,
    /// The integration's clientId (a GUID from the ConnectWise developer portal).
    pub client_id: String,
}

/// R-SET-3: Autotask credentials; the zone is discovered from the user name.
#[derive(Debug, Clone)]
pub struct AutotaskCredentials {
    pub username: String,
    pub secret: SecretString,
    pub integration_code: SecretString,
}

/// PSA credentials of a partner.
#[derive(Debug, Clone)]
pub enum PsaCredentials {
    ConnectWise(ConnectWiseCredentials),
    Autotask(AutotaskCredentials),
}

impl PsaCredentials {
    pub fn kind(&self) -> PsaKind {
        match self {
            PsaCredentials::ConnectWise(_) => PsaKind::Connectwise,
            PsaCredentials::Autotask(_) => PsaKind::Autotask,
        }
    }
}

/// Platform API client credentials.
#[derive(Debug, Clone)]
pub struct PlatformCredentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

fn blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// R-SET-3: the fields a credential set needs, each named when missing.
pub fn check_psa_credentials(c: &PsaCredentials) -> Result<(), Vec<String>> {
    let mut e = Vec::new();
    match c {
        PsaCredentials::ConnectWise(cw) => {
            if blank(&cw.site) {
                e.push("ConnectWise site is empty (e.g. api-na.myconnectwise.net)".to_owned());
            } else if cw.site.starts_with("http://") && !is_loopback_url(&cw.site) {
                e.push("ConnectWise site must use https".to_owned());
            }
            if blank(&cw.company_id) {
                e.push("ConnectWise company id is empty".to_owned());
            }
            if blank(cw.public_key.expose_secret()) {
                e.push("ConnectWise public key is empty".to_owned());
            }
            if blank(cw.private_key.expose_secret()) {
                e.push("ConnectWise private key is empty".to_owned());
            }
            if blank(&cw.client_id) {
                e.push(
                    "ConnectWise clientId is empty (get one at developer.connectwise.com)"
                        .to_owned(),
                );
            }
        }
        PsaCredentials::Autotask(at) => {
            if blank(&at.username) || !at.username.contains('@') {
                e.push("Autotask API user name must be the API user's e-mail address".to_owned());
            }
            if blank(at.secret.expose_secret()) {
                e.push("Autotask secret is empty".to_owned());
            }
            if blank(at.integration_code.expose_secret()) {
                e.push("Autotask integration code is empty".to_owned());
            }
        }
    }
    if e.is_empty() {
        Ok(())
    } else {
        Err(e)
    }
}

/// Whether a URL's host is this machine — 127.0.0.0/8, ::1 or `localhost`, decided on the
/// parsed host, never on a prefix of the text (`http://localhost.evil.example` is not): the
/// only origins plain http is accepted for (the local sandbox).
pub fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// [`is_loopback`] of a URL given as text; false when it does not parse.
pub fn is_loopback_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| is_loopback(&u))
}

/// R-SET-3: a vendor URL credentials are sent to is https, or plain http to this machine only.
pub fn check_vendor_url(what: &str, url: &str) -> Result<(), String> {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Ok(()),
        Ok(u) if u.scheme() == "http" && is_loopback(&u) => Ok(()),
        _ => Err(format!(
            "{what} {url:?} must be an https:// URL (plain http only to 127.0.0.1 or localhost)"
        )),
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    // R-SET-3: credentials travel over https only, or to the local sandbox.
    #[test]
    fn r_set_3_loopback_is_decided_on_the_parsed_host() {
        for (url, loopback) in [
            ("http://127.0.0.1:8080/x", true),
            ("http://127.1.2.3", true),
            ("http://localhost:9000", true),
            ("http://[::1]:1", true),
            ("http://localhost.evil.example", false),
            ("http://127.0.0.1.evil.example", false),
            ("http://evil.example/127.0.0.1", false),
            ("http://user@evil.example#@127.0.0.1", false),
            ("not a url", false),
        ] {
            assert_eq!(is_loopback_url(url), loopback, "{url}");
        }
    }

    #[test]
    fn r_set_3_vendor_urls_are_https_or_loopback_http() {
        assert!(check_vendor_url("platform url", "https://eu2-cloud.acronis.com").is_ok());
        assert!(check_vendor_url("platform url", "http://127.0.0.1:4000").is_ok());
        let e = check_vendor_url("platform url", "http://eu2-cloud.acronis.com").unwrap_err();
        assert!(e.contains("platform url") && e.contains("https://"), "{e}");
        assert!(check_vendor_url("platform url", "http://localhost.evil.example").is_err());
        assert!(check_vendor_url("platform url", "ftp://x").is_err());
    }
}

/// R-SET-1: a partner id is 1-64 characters of a-z, 0-9 and -, neither starting nor ending
/// with - (it names the partner's secrets and table items, so it is checked before either is
/// built).
pub fn check_partner_id(id: &str) -> Result<(), String> {
    let chars_ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !chars_ok {
        return Err(format!(
            "partner id {id:?} must be 1-64 characters of a-z, 0-9 and -"
        ));
    }
    if id.starts_with('-') || id.ends_with('-') {
        return Err(format!(
            "partner id {id:?} must not start or end with -; use a-z, 0-9 and - inside"
        ));
    }
    Ok(())
}

/// R-SET-1: a partner's settings are complete and consistent: an id of 1-64 characters of a-z,
/// 0-9 and -, an https platform URL (plain http only for the local sandbox), an IANA time zone,
/// a blast-radius share between 0 and 1, a full sync at least every hour, deletion not before
/// disabling, and a product mapping of the right shape (R-MAP-1, R-MAP-2). Every problem is
/// named.
pub fn check_partner(p: &Partner) -> Result<(), Vec<String>> {
    let mut e = Vec::new();
    if let Err(why) = check_partner_id(&p.id) {
        e.push(why);
    }
    if check_vendor_url("platform url", &p.platform_url).is_err() {
        e.push(format!(
            "platform url {:?} must be an https:// URL of the partner's data center",
            p.platform_url
        ));
    }
    if p.time_zone.parse::<chrono_tz::Tz>().is_err() {
        e.push(format!(
            "time zone {:?} is not an IANA time zone (e.g. Europe/Berlin)",
            p.time_zone
        ));
    }
    if !(0.0..=1.0).contains(&p.guard.max_zero_share) {
        e.push(format!(
            "guard.max_zero_share {} must be between 0 and 1",
            p.guard.max_zero_share
        ));
    }
    if p.full_sync_hours == 0 {
        e.push("sync.full_every_hours must be at least 1".to_owned());
    }
    if !crate::rules::lines::REFRESH_HOURS.contains(&p.line_refresh_hours) {
        e.push(format!(
            "sync.line_refresh_hours {} must be a whole number of hours from {} to {} (R-PROV-8)",
            p.line_refresh_hours,
            crate::rules::lines::REFRESH_HOURS.start(),
            crate::rules::lines::REFRESH_HOURS.end()
        ));
    }
    let d = &p.provisioning.deprovision;
    if let (Some(dis), Some(del)) = (d.disable_after_days, d.delete_after_days) {
        if del < dis {
            e.push(format!(
                "deprovision.delete_after_days ({del}) must not be before disable_after_days ({dis})"
            ));
        }
    }
    if let Err(mut m) = crate::rules::mapping::check_shape(&p.mapping) {
        e.append(&mut m);
    }
    if e.is_empty() {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cw(site: &str, company: &str, public: &str, private: &str, client: &str) -> PsaCredentials {
        PsaCredentials::ConnectWise(ConnectWiseCredentials {
            site: site.into(),
            company_id: company.into(),
            public_key: SecretString::from(public.to_owned()),
            private_key: SecretString::from(private.to_owned()),
            client_id: client.into(),
        })
    }

    #[test]
    fn r_set_2_credentials_never_print_their_secrets() {
        let c = cw(
            "api-na.myconnectwise.net",
            "acme",
            "pub-XYZ",
            "priv-SECRET",
            "guid",
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("pub-XYZ") && !shown.contains("priv-SECRET"),
            "{shown}"
        );
        let p = PlatformCredentials {
            client_id: "cid".into(),
            client_secret: SecretString::from("s3cr3t-value".to_owned()),
        };
        assert!(!format!("{p:?}").contains("s3cr3t-value"));
        let a = PsaCredentials::Autotask(AutotaskCredentials {
            username: "api@msp.example".into(),
            secret: SecretString::from("at-secret".to_owned()),
            integration_code: SecretString::from("at-code".to_owned()),
        });
        let shown = format!("{a:?}");
        assert!(
            !shown.contains("at-secret") && !shown.contains("at-code"),
            "{shown}"
        );
    }

    #[test]
    fn r_set_2_one_secret_per_partner_and_system() {
        assert_eq!(
            secret_name("psa-bridge/", "acme", SecretKind::Psa),
            "psa-bridge/acme/psa"
        );
        assert_eq!(
            secret_name("psa-bridge/", "acme", SecretKind::Platform),
            "psa-bridge/acme/platform"
        );
        assert_eq!(
            secret_name("x/", "acme", SecretKind::Webhook),
            "x/acme/webhook"
        );
    }

    #[test]
    fn r_set_3_each_missing_credential_field_is_named() {
        let rows: [(&str, PsaCredentials, Option<&str>); 6] = [
            (
                "complete",
                cw("api-na.myconnectwise.net", "acme", "p", "k", "g"),
                None,
            ),
            (
                "no site",
                cw("", "acme", "p", "k", "g"),
                Some("site is empty"),
            ),
            (
                "no company",
                cw("api-na.myconnectwise.net", " ", "p", "k", "g"),
                Some("company id"),
            ),
            (
                "no private key",
                cw("api-na.myconnectwise.net", "a", "p", "", "g"),
                Some("private key"),
            ),
            (
                "no client id",
                cw("api-na.myconnectwise.net", "a", "p", "k", ""),
                Some("clientId"),
            ),
            (
                "plain http",
                cw("http://cw.example.com", "a", "p", "k", "g"),
                Some("https"),
            ),
        ];
        for (case, c, want) in rows {
            match (check_psa_credentials(&c), want) {
                (Ok(()), None) => {}
                (Err(e), Some(w)) => assert!(e.iter().any(|m| m.contains(w)), "{case}: {e:?}"),
                (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
            }
        }
        let at = PsaCredentials::Autotask(AutotaskCredentials {
            username: "not-an-email".into(),
            secret: SecretString::from(String::new()),
            integration_code: SecretString::from("code".to_owned()),
        });
        let e = check_psa_credentials(&at).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
    }
}
