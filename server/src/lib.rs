//! # kheo-server
//!
//! Receives the Automerge documents phones send, merges them, keeps them
//! durably and sends back what the phones lack.
//!
//! ## Layout
//!
//! * [`http`]: routes, header and body checks, CBOR/gzip framing; [`app`]
//!   builds the router; [`http::openapi`] is the OpenAPI document of its routes;
//! * [`gate`]: every byte of a sync message parsed and bounded before
//!   Automerge reads it;
//! * [`sync`]: the server half of the sync protocol, all or nothing per request;
//! * [`docs`]: the bounded cache of hot documents, one lock per document;
//! * [`writer`]: group commit: one task makes batches durable, in order;
//! * [`store`]: the storage trait and its embedded SQLite implementation;
//! * [`error`]: the error type and its mapping to status codes and JSON;
//! * [`auth`]: secrets, device tokens, login throttling, the request's
//!   [`auth::Principal`] and the write rules;
//! * [`blobs`]: photos' bytes: uploads in parts, their checks, downloads;
//! * [`changes`]: the "anything new?" long-poll of a phone with the app open;
//! * [`model_list`]: the staff's model list: search, filters, counts, pages;
//! * [`accounts`]: accounts, logins and devices (API and CLI share it);
//! * [`access`]: scope and write checks applied to each merge;
//! * [`org`]: the organisation tree, its 2025 reform and its import/export;
//! * [`cli`]: the binary's command line (serve, or `admin ...`);
//! * [`admin_cli`]: `kheo-server admin ...`;
//! * [`config`]: flags and environment of the binary;
//! * [`connections`]: the accept loop: connection cap, header, body and idle
//!   timeouts, graceful shutdown;
//! * [`client_ip`]: the client's address, behind trusted proxies too;
//! * [`demo`]: the demo models a newcomer sees (`--demo`);
//! * [`app_files`]: the web app, served for every path no API route takes;
//! * [`health`]: `/healthz` from a database probe that runs in the background;
//! * [`metrics`]: this process's metrics, on `--metrics-addr`;
//! * [`logs`]: text or JSON log lines on stderr.
//!
//! [`start`] wires these together on a listener and returns a handle that
//! shuts the server down gracefully; the binary and the tests both use it.

pub mod access;
pub mod accounts;
pub mod admin_cli;
pub mod app_files;
pub mod auth;
pub mod blobs;
pub mod changes;
pub mod charts;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod connections;
pub mod demo;
pub mod docs;
pub mod error;
pub mod gate;
pub mod health;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod model_list;
pub mod org;
pub mod read_model;
pub mod reports;
pub mod store;
pub mod sync;
pub mod writer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use automerge::ActorId;
use kheo_shared::codes::Code;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::Config;
pub use http::{AppState, app};

use crate::accounts::Accounts;
use crate::app_files::AppFiles;
use crate::changes::ChangeFeed;
use crate::docs::DocCache;
use crate::org::OrgTree;
use crate::store::Store;
use crate::sync::SyncService;
use crate::writer::Writer;

/// A server running in the background.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// Where `GET /metrics` answers, when `--metrics-addr` was given.
    pub metrics_addr: Option<SocketAddr>,
    /// Account administration of this server, for tests and tools.
    pub accounts: Arc<Accounts>,
    store: Arc<dyn Store>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, finishes in-flight syncs, flushes and closes the store.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.context("server task panicked")?
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes the store's connections while the server goes on serving:
    /// what a database that went away looks like to this process (tests of
    /// `/healthz`). Requests that need the store fail from then on.
    pub async fn close_database(&self) {
        self.store.close().await;
    }
}

/// Binds the main address and, when configured, the metrics address.
async fn bind(config: &Config) -> anyhow::Result<(TcpListener, Option<TcpListener>)> {
    let listener = TcpListener::bind(config.addr).await.with_context(|| format!("binding {}", config.addr))?;
    let metrics = match config.metrics_addr {
        Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| format!("binding {addr} for metrics"))?),
        None => None,
    };
    Ok((listener, metrics))
}

/// Opens the store, binds the address and serves in the background.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let (stop, stopped) = oneshot::channel::<()>();
    let (listener, metrics_listener) = bind(&config).await?;
    let addr = listener.local_addr()?;
    let metrics_addr = metrics_listener.as_ref().map(TcpListener::local_addr).transpose()?;
    let shutdown = async move {
        let _ = stopped.await;
    };
    let prepared = prepare(&config).await?;
    let accounts = prepared.state.accounts.clone();
    let store = prepared.database.store.clone();
    let task = tokio::spawn(serve(listener, metrics_listener, prepared, shutdown));
    Ok(RunningServer { addr, metrics_addr, accounts, store, stop: Some(stop), task })
}

/// Serves until `shutdown` resolves, then drains and closes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let (listener, metrics_listener) = bind(&config).await?;
    let store =
        if config.database_url.is_some() { "PostgreSQL".to_owned() } else { config.data_dir.display().to_string() };
    tracing::info!(addr = %listener.local_addr()?, %store, "kheo server listening");
    let prepared = prepare(&config).await?;
    println!("Kheo is serving on http://{}", listener.local_addr()?);
    if let Some(metrics) = &metrics_listener {
        println!("Metrics on http://{}/metrics", metrics.local_addr()?);
    }
    println!("Serving {}", prepared.state.app_files.describe());
    if config.demo {
        println!("Demo accounts (username / password or PIN, role, unit):");
        for (username, secret, role, unit, _) in demo::DEMO_ACCOUNTS {
            println!("  {username:<14} {secret:<14} {:<15} {unit}", role.code());
        }
    }
    serve(listener, metrics_listener, prepared, shutdown).await
}

struct Prepared {
    database: store::Database,
    state: AppState,
    /// Set at shutdown, so that waiting polls answer instead of holding it up.
    closing: tokio::sync::watch::Sender<bool>,
    writer_task: JoinHandle<()>,
    /// The database probe behind `/healthz`; aborted at shutdown.
    health_task: JoinHandle<()>,
    metrics: metrics::Scrape,
    limits: connections::Limits,
    proxies: client_ip::TrustedProxies,
}

async fn prepare(config: &Config) -> anyhow::Result<Prepared> {
    let app_files = Arc::new(AppFiles::new(config.app_dir.as_deref())?);
    let database = store::open(config.database_url.as_deref(), &config.data_dir).await.context("opening the store")?;
    let store::Database { store, directory, reports, logins, blobs: blob_store, .. } = database.clone();
    let blobs = Arc::new(blobs::Blobs::new(blob_store, config.blob_quota_mib));
    let (units, successions) = directory.org().await.context("reading the organisation tree")?;
    let org = OrgTree::new(units, successions).context("the stored organisation tree is invalid")?;
    let accounts = Arc::new(Accounts::new(directory.clone(), logins, org));
    if config.demo {
        demo::seed(store.as_ref(), &accounts).await.context("seeding demo data")?;
    }
    let model_units = directory.model_units().await.context("reading model units")?;
    if reports.read_model_size().await? < model_units.len() as i64 {
        let rows = read_model::rebuild(store.as_ref()).await.context("rebuilding the read model")?;
        tracing::info!(rows, "rebuilt the read model from the documents");
    }
    let filled = sync::quiet::backfill_heads(store.as_ref()).await.context("storing the documents' heads")?;
    if filled > 0 {
        tracing::info!(documents = filled, "stored the heads of documents written without them");
    }
    let metrics = Arc::new(metrics::Metrics::new());
    let (writer, writer_task) = Writer::spawn(store.clone(), metrics.clone());
    // Each process writes its own (rare) merge changes under its own actor.
    let cache = DocCache::new(store.clone(), ActorId::random(), config.hot_docs);
    let sync = Arc::new(SyncService { store: store.clone(), directory, cache, writer, metrics: metrics.clone() });
    let (health, health_task) = health::Health::start(store.clone()).await;
    let (closing, closing_seen) = tokio::sync::watch::channel(false);
    let changes = Arc::new(ChangeFeed::new(store.clone(), closing_seen));
    let limits = connections::Limits {
        header_timeout: config.header_timeout,
        body_timeout: config.body_timeout,
        idle_timeout: config.idle_timeout,
        write_timeout: config.write_timeout,
        max_connections: config.max_connections,
    };
    let proxies = client_ip::TrustedProxies::new(config.trusted_proxies.iter().copied());
    Ok(Prepared {
        database,
        metrics: metrics::Scrape { metrics: metrics.clone(), sync: sync.clone() },
        state: AppState { sync, accounts, reports, app_files, changes, health, metrics, blobs },
        closing,
        writer_task,
        health_task,
        limits,
        proxies,
    })
}

async fn serve(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    prepared: Prepared,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Prepared { database, state, closing, writer_task, health_task, metrics, limits, proxies } = prepared;
    // The scraper's own listener, with the same timeouts and a small cap.
    let metrics_task = metrics_listener.map(|listener| {
        let mut closed = closing.subscribe();
        let limits = connections::Limits { max_connections: 16, ..limits };
        let stopped = async move {
            let _ = closed.wait_for(|closing| *closing).await;
        };
        let proxies = client_ip::TrustedProxies::default();
        tokio::spawn(connections::serve(listener, metrics::router(metrics), limits, proxies, stopped))
    });
    let shutdown = async move {
        shutdown.await;
        let _ = closing.send(true);
    };
    // Connection limits and timeouts; client addresses feed the login throttle.
    connections::serve(listener, app(state), limits, proxies, shutdown).await;
    if let Some(task) = metrics_task {
        task.await.context("metrics listener panicked")?;
    }
    health_task.abort();
    // Every request is done and every handle to the writer gone: it drains and ends.
    writer_task.await.context("writer task panicked")?;
    database.close().await;
    tracing::info!("kheo server stopped");
    Ok(())
}
