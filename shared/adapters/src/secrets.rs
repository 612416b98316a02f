//! Secrets Manager: one secret per partner and system (R-SET-2), cached in the process for a
//! few minutes and dropped when a vendor rejects it.

use crate::dynamo::aws_message;
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use domain::ports::{CallbackSite, HookSecrets, Secrets, WebhookSecret};
use domain::rules::settings::{
    secret_name, AutotaskCredentials, ConnectWiseCredentials, PlatformCredentials, PsaCredentials,
    SecretKind,
};
use domain::{PortError, PortResult, System};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The `system` field of this adapter's log lines.
const LOG_SYSTEM: &str = "secretsmanager";

const CACHE_FOR: Duration = Duration::from_secs(300);

/// The JSON stored in a PSA secret.
#[derive(Serialize, Deserialize)]
#[serde(tag = "psa", rename_all = "lowercase")]
enum PsaSecret {
    Connectwise {
        site: String,
        company_id: String,
        public_key: String,
        private_key: String,
        client_id: String,
    },
    Autotask {
        username: String,
        secret: String,
        integration_code: String,
    },
}

#[derive(Serialize, Deserialize)]
struct PlatformSecret {
    client_id: String,
    client_secret: String,
}

#[derive(Clone)]
pub struct SecretsManager {
    client: Client,
    prefix: String,
    cache: Arc<Mutex<HashMap<String, (SecretString, Instant)>>>,
}

impl SecretsManager {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        SecretsManager {
            client,
            prefix: prefix.into(),
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Forget a partner's cached secrets (after a 401, the keys may have been rotated).
    pub async fn invalidate(&self, partner: &str) {
        let prefix = format!("{}{partner}/", self.prefix);
        self.cache
            .lock()
            .await
            .retain(|k, _| !k.starts_with(&prefix));
    }

    async fn read(&self, partner: &str, kind: SecretKind) -> PortResult<SecretString> {
        let name = checked_name(&self.prefix, partner, kind)?;
        if let Some((v, at)) = self.cache.lock().await.get(&name) {
            if at.elapsed() < CACHE_FOR {
                return Ok(v.clone());
            }
        }
        let out = self
            .client
            .get_secret_value()
            .secret_id(&name)
            .send()
            .await
            .map_err(|e| {
                let msg = aws_message(&e);
                if msg.contains("ResourceNotFound") || msg.contains("can't find") || format!("{e:?}").contains("ResourceNotFoundException") {
                    PortError::Credentials {
                        system: System::Secrets,
                        message: format!(
                            "partner {partner}: secret {name} does not exist — run `psa-bridge credentials set --partner {partner} …`"
                        ),
                    }
                } else if msg.contains("AccessDenied") || format!("{e:?}").contains("AccessDeniedException") {
                    // IAM answers a missing secret with AccessDenied when the policy names
                    // secrets by their ARN suffix (`-??????`), as template.yaml does.
                    PortError::Credentials {
                        system: System::Secrets,
                        message: format!(
                            "partner {partner}: secret {name} does not exist or this function may not read it — run `psa-bridge credentials set --partner {partner} …`"
                        ),
                    }
                } else {
                    PortError::Transient {
                        system: System::Secrets,
                        message: format!("reading secret {name}: {msg}"),
                    }
                }
            })?;
        let value = SecretString::from(out.secret_string.unwrap_or_default());
        self.cache
            .lock()
            .await
            .insert(name, (value.clone(), Instant::now()));
        Ok(value)
    }

    async fn write(&self, partner: &str, kind: SecretKind, value: String) -> PortResult<()> {
        let name = checked_name(&self.prefix, partner, kind)?;
        let put = self
            .client
            .put_secret_value()
            .secret_id(&name)
            .secret_string(value.clone())
            .send()
            .await;
        match put {
            Ok(_) => {}
            Err(e) if format!("{e:?}").contains("ResourceNotFoundException") => {
                self.client
                    .create_secret()
                    .name(&name)
                    .description(format!(
                        "psa-bridge {} credentials of partner {partner}",
                        kind.as_str()
                    ))
                    .secret_string(value)
                    .send()
                    .await
                    .map_err(|e| PortError::Transient {
                        system: System::Secrets,
                        message: format!("creating secret {name}: {}", aws_message(&e)),
                    })?;
            }
            Err(e) => {
                return Err(PortError::Transient {
                    system: System::Secrets,
                    message: format!("writing secret {name}: {}", aws_message(&e)),
                })
            }
        }
        self.cache.lock().await.remove(&name);
        Ok(())
    }
}

/// Reads a secret's JSON into `T`. Errors name what is wrong — not JSON, a field missing or not
/// a string, an unknown `psa` — and never quote the value (serde's own messages can: "invalid
/// type: integer `123`", "unknown variant `…`").
fn parse_secret<T: serde::de::DeserializeOwned>(
    partner: &str,
    kind: SecretKind,
    raw: &str,
) -> PortResult<T> {
    let bad = |why: String| {
        PortError::Credentials {
        system: System::Secrets,
        message: format!(
            "partner {partner}: the {} secret is malformed ({why}) — set it again with `psa-bridge credentials set`",
            kind.as_str()
        ),
    }
    };
    let v: serde_json::Value = serde_json::from_str(raw).map_err(|e| {
        bad(format!(
            "not JSON, at line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    let Some(obj) = v.as_object() else {
        return Err(bad("not a JSON object".into()));
    };
    let fields: &[&str] = match kind {
        SecretKind::Platform => &["client_id", "client_secret"],
        _ => match obj.get("psa").and_then(serde_json::Value::as_str) {
            Some("connectwise") => &[
                "site",
                "company_id",
                "public_key",
                "private_key",
                "client_id",
            ],
            Some("autotask") => &["username", "secret", "integration_code"],
            Some(_) => return Err(bad("field `psa` is neither connectwise nor autotask".into())),
            None => return Err(bad("field `psa` is missing or not a string".into())),
        },
    };
    for f in fields {
        if !obj.get(*f).is_some_and(serde_json::Value::is_string) {
            return Err(bad(format!("field `{f}` is missing or not a string")));
        }
    }
    serde_json::from_value(v).map_err(|_| bad("its fields do not read".into()))
}

#[async_trait]
impl Secrets for SecretsManager {
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM)
    )]
    async fn psa(&self, partner: &str) -> PortResult<PsaCredentials> {
        let raw = self.read(partner, SecretKind::Psa).await?;
        let parsed: PsaSecret = parse_secret(partner, SecretKind::Psa, raw.expose_secret())?;
        Ok(match parsed {
            PsaSecret::Connectwise {
                site,
                company_id,
                public_key,
                private_key,
                client_id,
            } => PsaCredentials::ConnectWise(ConnectWiseCredentials {
                site,
                company_id,
                public_key: public_key.into(),
                private_key: private_key.into(),
                client_id,
            }),
            PsaSecret::Autotask {
                username,
                secret,
                integration_code,
            } => PsaCredentials::Autotask(AutotaskCredentials {
                username,
                secret: secret.into(),
                integration_code: integration_code.into(),
            }),
        })
    }

    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM)
    )]
    async fn platform(&self, partner: &str) -> PortResult<PlatformCredentials> {
        let raw = self.read(partner, SecretKind::Platform).await?;
        let p: PlatformSecret = parse_secret(partner, SecretKind::Platform, raw.expose_secret())?;
        Ok(PlatformCredentials {
            client_id: p.client_id,
            client_secret: p.client_secret.into(),
        })
    }

    async fn forget(&self, partner: &str) {
        self.invalidate(partner).await;
    }

    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM)
    )]
    async fn put_psa(&self, partner: &str, c: &PsaCredentials) -> PortResult<()> {
        let secret = match c {
            PsaCredentials::ConnectWise(cw) => PsaSecret::Connectwise {
                site: cw.site.clone(),
                company_id: cw.company_id.clone(),
                public_key: cw.public_key.expose_secret().to_owned(),
                private_key: cw.private_key.expose_secret().to_owned(),
                client_id: cw.client_id.clone(),
            },
            PsaCredentials::Autotask(at) => PsaSecret::Autotask {
                username: at.username.clone(),
                secret: at.secret.expose_secret().to_owned(),
                integration_code: at.integration_code.expose_secret().to_owned(),
            },
        };
        let json = serde_json::to_string(&secret).expect("secret encodes");
        self.write(partner, SecretKind::Psa, json).await
    }

    #[tracing::instrument(
        level = "info",
        skip_all,
        fields(partner = %partner, system = LOG_SYSTEM)
    )]
    async fn put_platform(&self, partner: &str, c: &PlatformCredentials) -> PortResult<()> {
        let json = serde_json::to_string(&PlatformSecret {
            client_id: c.client_id.clone(),
            client_secret: c.client_secret.expose_secret().to_owned(),
        })
        .expect("secret encodes");
        self.write(partner, SecretKind::Platform, json).await
    }
}

/// A partner's secret name, once its id is known to be one (R-SET-1): an id from an event or a
/// request never builds another name.
/// The JSON stored in a webhook secret (R-HOOK-2): the URL token's hash, never the token.
#[derive(Serialize, Deserialize)]
struct HookSecret {
    token_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connectwise: Option<HookSite>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    autotask_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform_secret: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct HookSite {
    site: String,
    company_id: String,
}

#[async_trait]
impl HookSecrets for SecretsManager {
    #[tracing::instrument(level = "debug", skip_all, fields(partner = %partner, system = LOG_SYSTEM))]
    async fn webhook(&self, partner: &str) -> PortResult<Option<WebhookSecret>> {
        let raw = match self.read(partner, SecretKind::Webhook).await {
            Ok(raw) => raw,
            // Missing (or not readable by this function): no webhooks for this partner.
            Err(PortError::Credentials { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let h: HookSecret = serde_json::from_str(raw.expose_secret()).map_err(|e| {
            PortError::Credentials {
                system: System::Secrets,
                message: format!(
                    "partner {partner}: the webhook secret is malformed (at line {} column {}) — run `psa-bridge webhooks rotate-token --partner {partner}`",
                    e.line(),
                    e.column()
                ),
            }
        })?;
        Ok(Some(WebhookSecret {
            token_sha256: h.token_sha256,
            connectwise: h.connectwise.map(|c| CallbackSite {
                site: c.site,
                company_id: c.company_id,
            }),
            autotask_secret: h.autotask_secret.map(SecretString::from),
            platform_secret: h.platform_secret.map(SecretString::from),
        }))
    }

    #[tracing::instrument(level = "info", skip_all, fields(partner = %partner, system = LOG_SYSTEM))]
    async fn put_webhook(&self, partner: &str, w: &WebhookSecret) -> PortResult<()> {
        let json = serde_json::to_string(&HookSecret {
            token_sha256: w.token_sha256.clone(),
            connectwise: w.connectwise.as_ref().map(|c| HookSite {
                site: c.site.clone(),
                company_id: c.company_id.clone(),
            }),
            autotask_secret: w
                .autotask_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
            platform_secret: w
                .platform_secret
                .as_ref()
                .map(|s| s.expose_secret().to_owned()),
        })
        .expect("secret encodes");
        self.write(partner, SecretKind::Webhook, json).await
    }
}

/// A new random secret of `bytes` bytes from the operating system's generator, URL-safe
/// base64 without padding (a URL token, a webhook secret).
pub fn random_secret(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn checked_name(prefix: &str, partner: &str, kind: SecretKind) -> PortResult<String> {
    domain::rules::settings::check_partner_id(partner).map_err(|why| PortError::Rejected {
        system: System::Secrets,
        message: why,
    })?;
    Ok(secret_name(prefix, partner, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    // R-SET-1 R-SET-2: a secret name is only ever built from a valid partner id.
    #[test]
    fn r_set_2_secret_names_are_built_from_valid_partner_ids_only() {
        assert_eq!(
            checked_name("psa-bridge/", "acme", SecretKind::Psa).unwrap(),
            "psa-bridge/acme/psa"
        );
        for bad in ["", "../acme", "acme/*", "Acme", "a b", "-acme"] {
            assert!(
                matches!(
                    checked_name("psa-bridge/", bad, SecretKind::Psa),
                    Err(PortError::Rejected { .. })
                ),
                "{bad:?}"
            );
        }
    }

    // R-SET-2: a malformed secret is reported by what is wrong with it, never by its value.
    #[test]
    fn r_set_2_a_malformed_secret_names_the_field_never_the_value() {
        let cases: [(SecretKind, &str, &str); 6] = [
            (
                SecretKind::Platform,
                r#"{"client_id":"c","client_secret":918273645}"#,
                "field `client_secret`",
            ),
            (SecretKind::Platform, r#"{"client_id":"c""#, "not JSON"),
            (
                SecretKind::Platform,
                r#""hunter2-S3cret""#,
                "not a JSON object",
            ),
            (
                SecretKind::Psa,
                r#"{"psa":"hunter2-S3cret"}"#,
                "field `psa` is neither",
            ),
            (
                SecretKind::Psa,
                r#"{"psa":"autotask","username":"u","secret":["hunter2-S3cret"],"integration_code":"i"}"#,
                "field `secret`",
            ),
            (
                SecretKind::Psa,
                r#"{"psa":"connectwise","site":"s","company_id":"c","public_key":"p","private_key":"k"}"#,
                "field `client_id`",
            ),
        ];
        for (kind, raw, names) in cases {
            let e = match kind {
                SecretKind::Platform => parse_secret::<PlatformSecret>("acme", kind, raw).err(),
                _ => parse_secret::<PsaSecret>("acme", kind, raw).err(),
            }
            .expect(raw)
            .to_string();
            assert!(e.contains(names), "{raw}: {e}");
            for value in ["918273645", "hunter2-S3cret"] {
                assert!(!e.contains(value), "{raw}: {e}");
            }
        }
        let ok: PlatformSecret = parse_secret(
            "acme",
            SecretKind::Platform,
            r#"{"client_id":"c","client_secret":"s"}"#,
        )
        .unwrap();
        assert_eq!(ok.client_secret, "s");
    }
}
