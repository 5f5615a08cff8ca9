//! The binary's command line: serve (no subcommand), or `admin ...`. One
//! definition for `kheo-server` and for the tests' `kheo-process`, so a
//! test that runs a command as a process runs the same parser.

use std::future::Future;

use clap::{Parser, Subcommand};

use crate::Config;
use crate::admin_cli::AdminCommand;

#[derive(Debug, Parser)]
#[command(name = "kheo-server", version, about = "Kheo sync and records server")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Administer accounts, devices and the organisation tree on the store in
    /// --data-dir; move, back up or restore a whole store.
    #[command(subcommand)]
    Admin(AdminCommand),
}

/// Serves until `shutdown` resolves, or runs the admin command.
pub async fn run(cli: Cli, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    crate::logs::init(cli.config.log_format);
    match cli.command {
        None => crate::run(cli.config, shutdown).await,
        Some(Command::Admin(command)) => crate::admin_cli::run(&cli.config, command).await,
    }
}
