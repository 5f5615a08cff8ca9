//! One server process for the multi-process tests: the server as
//! `kheo-server` runs it, configured by the `KHEO_*` environment, printing
//! its address on its first line, logging as the binary does. The tests
//! kill it with SIGKILL. Its `admin ...` commands are `kheo-server`'s, for
//! tests that run them as a process.

use clap::Parser;
use kheo_server::cli::{self, Cli};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cli::run(Cli::parse(), std::future::pending()).await
}
