//! Secrets Manager: one secret per partner and system (R-SET-2), cached in the process for a
//! few minutes and dropped when a vendor rejects it.

use crate::dynamo::aws_message;
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use domain::ports::Secrets;
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
        let name = secret_name(&self.prefix, partner, kind);
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
        let name = secret_name(&self.prefix, partner, kind);
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

fn malformed(partner: &str, kind: SecretKind, e: serde_json::Error) -> PortError {
    // serde's message names the missing field; it never contains the secret's value.
    PortError::Credentials {
        system: System::Secrets,
        message: format!(
            "partner {partner}: the {} secret is malformed ({e}) — set it again with `psa-bridge credentials set`",
            kind.as_str()
        ),
    }
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
        let parsed: PsaSecret = serde_json::from_str(raw.expose_secret())
            .map_err(|e| malformed(partner, SecretKind::Psa, e))?;
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
        let p: PlatformSecret = serde_json::from_str(raw.expose_secret())
            .map_err(|e| malformed(partner, SecretKind::Platform, e))?;
        Ok(PlatformCredentials {
            client_id: p.client_id,
            client_secret: p.client_secret.into(),
        })
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
