//! Group commit: one task owns every write to the store.
//!
//! Sync handlers hand it a [`WriteBatch`] and wait. The task takes every
//! batch that is queued, commits them in one transaction (one fsync), and
//! answers each handler. Order is kept: a batch never becomes durable before
//! a batch queued earlier, which lets a handler queue a document's snapshot
//! behind earlier chunks of the same document without further locking.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use kheo_shared::ids::DocId;

use crate::metrics::Metrics;
use crate::store::{Committed, Store, StoreError, WriteBatch};

/// Most batches folded into one transaction; bounds commit latency.
const MAX_GROUP: usize = 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error("commit failed: {0}")]
    Failed(Arc<StoreError>),
    #[error("the writer has stopped")]
    Stopped,
    /// Written meanwhile by another process, or merged on top of a batch
    /// that was: nothing of the batch was kept.
    #[error("{0} changed since it was merged")]
    Conflict(DocId),
}

struct Job {
    batch: WriteBatch,
    done: oneshot::Sender<Result<(), WriteError>>,
}

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task. It ends when every `Writer` clone is dropped
    /// and the queue is drained.
    pub fn spawn(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> (Writer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
        let task = tokio::spawn(run(store, rx, metrics));
        (Writer { jobs: tx }, task)
    }

    /// Returns once the batch is durable.
    pub async fn write(&self, batch: WriteBatch) -> Result<(), WriteError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.queue(batch).await
    }

    async fn queue(&self, batch: WriteBatch) -> Result<(), WriteError> {
        let (done, wait) = oneshot::channel();
        self.jobs.send(Job { batch, done }).await.map_err(|_| WriteError::Stopped)?;
        wait.await.map_err(|_| WriteError::Stopped)?
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>, metrics: Arc<Metrics>) {
    let mut jobs = Vec::with_capacity(MAX_GROUP);
    while rx.recv_many(&mut jobs, MAX_GROUP).await > 0 {
        let batches: Vec<WriteBatch> = jobs.iter_mut().map(|j| std::mem::take(&mut j.batch)).collect();
        let started = std::time::Instant::now();
        let result = store.commit(&batches).await;
        metrics.committed(started.elapsed(), batches.len());
        let result = result.map_err(|e| {
            tracing::error!(error = %e, batches = batches.len(), "group commit failed");
            WriteError::Failed(Arc::new(e))
        });
        tracing::trace!(batches = batches.len(), "group committed");
        for (at, job) in jobs.drain(..).enumerate() {
            let answer = match &result {
                Ok(outcomes) => match outcomes.get(at) {
                    Some(Committed::Done) => Ok(()),
                    Some(Committed::Conflict(doc)) => Err(WriteError::Conflict(*doc)),
                    None => Err(WriteError::Failed(Arc::new(StoreError::Corrupt("a batch had no outcome".into())))),
                },
                Err(e) => Err(e.clone()),
            };
            // A handler that gave up waiting (client gone) is no loss: its data is committed.
            let _ = job.done.send(answer);
        }
    }
}
