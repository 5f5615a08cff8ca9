use clap::{Parser, Subcommand};
use kheo_server::Config;
use kheo_server::admin_cli::AdminCommand;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    kheo_server::logs::init(cli.config.log_format);
    match cli.command {
        None => kheo_server::run(cli.config, shutdown_signal()).await,
        Some(Command::Admin(command)) => kheo_server::admin_cli::run(&cli.config, command).await,
    }
}

#[derive(Debug, Parser)]
#[command(name = "kheo-server", version, about = "Kheo sync and records server")]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Administer accounts, devices and the organisation tree on the store in --data-dir.
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// SIGTERM (service managers) or Ctrl-C (a terminal).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight syncs");
}
