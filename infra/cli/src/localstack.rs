//! The local stand-in for AWS: a moto server from the project's venv on 127.0.0.1, and the
//! resources template.yaml would create (table with GSI and TTL, event bus).

use adapters::aws::Resources;
use anyhow::{anyhow, bail, Context, Result};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A moto server owned by this process; it stops when dropped.
pub struct Moto {
    _child: Child,
    pub endpoint: String,
}

/// Where the moto server binary is: `$PSA_BRIDGE_MOTO`, else the project venv.
pub fn moto_binary() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("PSA_BRIDGE_MOTO") {
        if !p.is_empty() {
            return Ok(PathBuf::from(p));
        }
    }
    let root = repo_root();
    let venv = root.join(".venv/bin/moto_server");
    if venv.exists() {
        return Ok(venv);
    }
    bail!(
        "moto_server not found at {} — run `bash infra/local/setup.sh` (or set PSA_BRIDGE_MOTO)",
        venv.display()
    )
}

/// The workspace root (this crate lives in infra/cli).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

impl Moto {
    /// Starts moto on 127.0.0.1 with a free port and waits until it listens.
    pub async fn start() -> Result<Moto> {
        let bin = moto_binary()?;
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        for stream in [
            Box::new(stderr) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(stdout),
        ] {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = tx.send(line);
                }
            });
        }
        let endpoint = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = rx.recv().await {
                if let Some(i) = line.find("http://127.0.0.1:") {
                    let url: String = line[i..]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    return Some(url);
                }
            }
            None
        })
        .await
        .map_err(|_| anyhow!("moto did not start within 60 s"))?
        .ok_or_else(|| anyhow!("moto exited before listening"))?;
        Ok(Moto {
            _child: child,
            endpoint,
        })
    }
}

/// Creates the table (keys, GSIs `gsi1` and `gsi2`, TTL on `ttl`) and the event bus, as template.yaml does.
pub async fn create_resources(sdk: &SdkConfig, r: &Resources) -> Result<()> {
    let ddb = aws_sdk_dynamodb::Client::new(sdk);
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .expect("key")
    };
    ddb.create_table()
        .table_name(&r.table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(vec![
            attr("pk"),
            attr("sk"),
            attr("gsi1pk"),
            attr("gsi1sk"),
            attr("gsi2pk"),
            attr("gsi2sk"),
        ]))
        .set_key_schema(Some(vec![
            key("pk", KeyType::Hash),
            key("sk", KeyType::Range),
        ]))
        .set_global_secondary_indexes(Some(
            ["gsi1", "gsi2"]
                .into_iter()
                .map(|g| {
                    GlobalSecondaryIndex::builder()
                        .index_name(g)
                        .set_key_schema(Some(vec![
                            key(&format!("{g}pk"), KeyType::Hash),
                            key(&format!("{g}sk"), KeyType::Range),
                        ]))
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .expect("gsi")
                })
                .collect(),
        ))
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "creating table {}: {}",
                r.table,
                adapters::dynamo::aws_message(&e)
            )
        })?;
    ddb.update_time_to_live()
        .table_name(&r.table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("ttl")
                .build()
                .expect("ttl"),
        )
        .send()
        .await
        .map_err(|e| anyhow!("enabling TTL: {}", adapters::dynamo::aws_message(&e)))?;
    aws_sdk_eventbridge::Client::new(sdk)
        .create_event_bus()
        .name(&r.bus)
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "creating bus {}: {}",
                r.bus,
                adapters::dynamo::aws_message(&e)
            )
        })?;
    Ok(())
}
