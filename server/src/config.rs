//! Command line and environment configuration of the server binary.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::logs::LogFormat;

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, global = true, env = "KHEO_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Directory of the embedded store (created if missing).
    #[arg(long, global = true, env = "KHEO_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// A PostgreSQL database (`postgres://user:password@host/db`) instead of
    /// the embedded store: for several server processes on one database.
    #[arg(long, global = true, env = "KHEO_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Most documents held in memory at once.
    #[arg(long, env = "KHEO_HOT_DOCS", default_value = "1024")]
    pub hot_docs: NonZeroUsize,
    /// Seed the demo models when the store is empty.
    #[arg(long, env = "KHEO_DEMO")]
    pub demo: bool,
    /// Directory of the built web app (`cargo xtask build-app` writes `app/dist`), served at `/`.
    #[arg(long, env = "KHEO_APP_DIR")]
    pub app_dir: Option<PathBuf>,
    /// A reverse proxy whose `X-Forwarded-For` names the client (repeat, or separate with commas).
    #[arg(long = "trusted-proxy", env = "KHEO_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,
    /// Time a connection has to send a whole request head (`10s`, `500ms`).
    #[arg(long, env = "KHEO_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Time a request body has to arrive whole, from the end of its head.
    #[arg(long, env = "KHEO_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    #[arg(long, env = "KHEO_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Time a write of an answer may wait for the client to read it.
    #[arg(long, env = "KHEO_WRITE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: Duration,
    /// Most connections open at once; more are answered `503` and closed.
    #[arg(long, env = "KHEO_MAX_CONNECTIONS", default_value = "1024",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,
    /// Address of a second listener that serves only `GET /metrics`
    /// (Prometheus text format), e.g. `127.0.0.1:9464`; off when not given.
    #[arg(long, env = "KHEO_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Photos one device may keep on the server, in MiB: the blobs it
    /// uploaded first and its unfinished uploads (docs/PROTOCOL.md §13.2).
    #[arg(long, env = "KHEO_BLOB_QUOTA_MIB", default_value = "64",
          value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub blob_quota_mib: u64,
    /// Log lines on stderr as `text` or `json` (one object a line).
    #[arg(long, global = true, env = "KHEO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `30s`, `500ms`, `2m`, or a bare number of seconds; at least 1 ms.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration such as 10s or 500ms"))?;
    let d = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        other => return Err(format!("unknown unit {other:?}: use ms, s or m")),
    };
    if d.is_zero() {
        return Err("a timeout must be longer than zero".into());
    }
    Ok(d)
}

impl Config {
    /// A configuration for tests: an ephemeral loopback port and the given store.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url: None,
            hot_docs: NonZeroUsize::new(64).unwrap_or(NonZeroUsize::MIN),
            demo: false,
            app_dir: None,
            trusted_proxies: Vec::new(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            max_connections: 1024,
            metrics_addr: None,
            blob_quota_mib: 64,
            log_format: LogFormat::Text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn trusted_proxies_repeat_or_split_on_commas() {
        let cli = Cli::try_parse_from([
            "kheo-server",
            "--trusted-proxy",
            "10.0.0.1,10.0.0.2",
            "--trusted-proxy",
            "::1",
            "--header-timeout",
            "500ms",
        ])
        .unwrap();
        let want: Vec<IpAddr> = ["10.0.0.1", "10.0.0.2", "::1"].iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(cli.config.trusted_proxies, want);
        assert_eq!(cli.config.header_timeout, Duration::from_millis(500));
        assert_eq!(cli.config.max_connections, 1024);
        assert_eq!(cli.config.blob_quota_mib, 64);
        assert!(Cli::try_parse_from(["kheo-server", "--trusted-proxy", "proxy.local"]).is_err());
    }

    #[test]
    fn log_format_and_metrics_address_parse() {
        let cli = Cli::try_parse_from(["kheo-server"]).unwrap();
        assert_eq!((cli.config.log_format, cli.config.metrics_addr), (LogFormat::Text, None));
        let cli =
            Cli::try_parse_from(["kheo-server", "--log-format", "json", "--metrics-addr", "127.0.0.1:9464"]).unwrap();
        assert_eq!(cli.config.log_format, LogFormat::Json);
        assert_eq!(cli.config.metrics_addr, Some(SocketAddr::from(([127, 0, 0, 1], 9464))));
        assert!(Cli::try_parse_from(["kheo-server", "--log-format", "yaml"]).is_err());
    }
}
