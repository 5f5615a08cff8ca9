//! Where the log goes and in what shape: lines on stderr, as text for a
//! person (colour only when stderr is a terminal) or as one JSON object a
//! line (`--log-format json`) for a log collector. `RUST_LOG` filters
//! either (default `info,sqlx=warn`). Stdout keeps the few lines a person
//! starting the server reads (its address, the demo accounts).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, the message and its fields.
    Json,
}

/// Installs the process's logger; a second call (tests) leaves the first one.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match format {
        // Colour codes only for a person at a terminal, not in a journal or a file.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_ansi(false).try_init(),
    };
    if let Err(e) = installed {
        tracing::debug!(error = %e, "a logger was already installed");
    }
}
