//! Command line and environment configuration of the server binary.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, global = true, env = "KHEO_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Directory of the embedded store (created if missing).
    #[arg(long, global = true, env = "KHEO_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Most documents held in memory at once.
    #[arg(long, env = "KHEO_HOT_DOCS", default_value = "1024")]
    pub hot_docs: NonZeroUsize,
    /// Seed the demo models when the store is empty.
    #[arg(long, env = "KHEO_DEMO")]
    pub demo: bool,
    /// Directory of the built web app (`cargo xtask build-app` writes `app/dist`), served at `/`.
    #[arg(long, env = "KHEO_APP_DIR")]
    pub app_dir: Option<PathBuf>,
}

impl Config {
    /// A configuration for tests: an ephemeral loopback port and the given store.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            hot_docs: NonZeroUsize::new(64).unwrap_or(NonZeroUsize::MIN),
            demo: false,
            app_dir: None,
        }
    }
}
