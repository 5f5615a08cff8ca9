//! # kheo-server
//!
//! Receives the Automerge documents phones send, merges them, keeps them
//! durably and sends back what the phones lack.
//!
//! ## Layout
//!
//! * [`http`]: routes, header and body checks, CBOR/gzip framing; [`app`]
//!   builds the router;
//! * [`sync`]: the server half of the sync protocol, all or nothing per request;
//! * [`docs`]: the bounded cache of hot documents, one lock per document;
//! * [`writer`]: group commit: one task makes batches durable, in order;
//! * [`store`]: the storage trait and its embedded SQLite implementation;
//! * [`error`]: the error type and its mapping to status codes and JSON;
//! * [`config`]: flags and environment of the binary;
//! * [`demo`]: the demo models a newcomer sees (`--demo`).
//!
//! [`start`] wires these together on a listener and returns a handle that
//! shuts the server down gracefully; the binary and the tests both use it.

pub mod config;
pub mod demo;
pub mod docs;
pub mod error;
pub mod http;
pub mod store;
pub mod sync;
pub mod writer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use automerge::ActorId;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::Config;
pub use http::{AppState, app};

use crate::docs::DocCache;
use crate::store::{SqliteStore, Store};
use crate::sync::SyncService;
use crate::writer::Writer;

/// A server running in the background.
pub struct RunningServer {
    pub addr: SocketAddr,
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
}

/// Opens the store, binds the address and serves in the background.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let (stop, stopped) = oneshot::channel::<()>();
    let listener = TcpListener::bind(config.addr).await.with_context(|| format!("binding {}", config.addr))?;
    let addr = listener.local_addr()?;
    let shutdown = async move {
        let _ = stopped.await;
    };
    let prepared = prepare(&config).await?;
    let task = tokio::spawn(serve(listener, prepared, shutdown));
    Ok(RunningServer { addr, stop: Some(stop), task })
}

/// Serves until `shutdown` resolves, then drains and closes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.addr).await.with_context(|| format!("binding {}", config.addr))?;
    tracing::info!(addr = %listener.local_addr()?, data_dir = %config.data_dir.display(), "kheo server listening");
    let prepared = prepare(&config).await?;
    serve(listener, prepared, shutdown).await
}

struct Prepared {
    store: Arc<dyn Store>,
    state: AppState,
    writer_task: JoinHandle<()>,
}

async fn prepare(config: &Config) -> anyhow::Result<Prepared> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.data_dir).await.context("opening the store")?);
    let (writer, writer_task) = Writer::spawn(store.clone());
    // Each process writes its own (rare) merge changes under its own actor.
    let cache = DocCache::new(store.clone(), ActorId::random(), config.hot_docs);
    let sync = Arc::new(SyncService { store: store.clone(), cache, writer });
    Ok(Prepared { store, state: AppState { sync }, writer_task })
}

async fn serve(
    listener: TcpListener,
    prepared: Prepared,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let Prepared { store, state, writer_task } = prepared;
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await.context("serving")?;
    // Every request is done and every handle to the writer gone: it drains and ends.
    writer_task.await.context("writer task panicked")?;
    store.close().await;
    tracing::info!("kheo server stopped");
    Ok(())
}
