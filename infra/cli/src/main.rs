//! `psa-bridge` — the operator CLI. Everything is in `psa_bridge_cli::app`.

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let code = psa_bridge_cli::app::run(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )
    .await;
    psa_bridge_cli::bench::report_rss();
    std::process::exit(code);
}
