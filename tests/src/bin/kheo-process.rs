//! One server process for the multi-process tests: the server as
//! `kheo-server` runs it, configured by the `KHEO_*` environment, printing
//! its address on its first line, logging as the binary does. The tests
//! kill it with SIGKILL.

use clap::Parser;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    config: kheo_server::Config,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    kheo_server::logs::init(cli.config.log_format);
    kheo_server::run(cli.config, std::future::pending()).await
}
