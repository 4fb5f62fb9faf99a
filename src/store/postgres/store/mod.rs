//! The PostgreSQL implementation's handle: a few worker threads, each with its own connection,
//! run the store's blocking operations; a caller waits for its result as it would wait for
//! SQLite's lock. Each concern's module (`ledger`, `audit`, ...) adds its operations to it.

mod audit;
mod claims;
mod drift;
mod health;
mod known;
mod leadership;
mod ledger;
mod outcomes;
mod probe;
mod rotation;
mod routes;
mod sinks;
mod streams;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use crate::store::StoreError;
use crate::store::error::PgOp;
use crate::store::postgres::{PgTarget, migrate};

/// Connections kept open to the PostgreSQL state by one process.
const WORKERS: usize = 4;

/// One operation, run on a worker's connection.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Writes carry no epoch: nothing is fenced (a single process, the CLI).
pub(crate) const UNFENCED: i64 = 0;

/// A replica that does not lead: every write to a table the leader owns is refused.
pub(crate) const STANDING_BY: i64 = -1;

/// The PostgreSQL state. Cheap to clone; clones share the workers.
#[derive(Clone)]
pub(crate) struct PgStore {
    jobs: Sender<Job>,
    /// The epoch every connection carries in `opsync.epoch` (see the schema's fence).
    epoch: Arc<AtomicI64>,
}

/// A worker's connection, opened again after it broke.
pub(crate) struct Connection {
    target: PgTarget,
    client: Option<postgres::Client>,
    epoch: Arc<AtomicI64>,
    /// The epoch this session carries now.
    carried: Option<i64>,
}

impl Connection {
    /// The client, connected (again) if it is not, carrying the process's epoch.
    fn client(&mut self) -> Result<&mut postgres::Client, StoreError> {
        if self.client.as_ref().is_none_or(postgres::Client::is_closed) {
            self.client = None;
            self.carried = None;
            let client = self
                .target
                .connect_blocking()
                .map_err(|e| StoreError::Postgres(Box::new(e)))?;
            self.client = Some(client);
        }
        let client = self
            .client
            .as_mut()
            .ok_or(StoreError::Task("PostgreSQL connection lost".into()))?;
        let epoch = self.epoch.load(Ordering::SeqCst);
        if self.carried != Some(epoch) {
            let value = match epoch {
                UNFENCED => String::new(),
                e => e.to_string(),
            };
            client
                .execute("SELECT set_config('opsync.epoch', $1, false)", &[&value])
                .op("carry the leader epoch")?;
            self.carried = Some(epoch);
        }
        Ok(client)
    }
}

impl PgStore {
    /// Migrates the database at `target` and starts the workers; fails when it cannot be
    /// reached.
    pub(crate) fn open(target: &PgTarget) -> Result<PgStore, StoreError> {
        migrate_blocking(target)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let epoch = Arc::new(AtomicI64::new(UNFENCED));
        for i in 0..WORKERS {
            let queue = Arc::clone(&queue);
            let mut connection = Connection {
                target: target.clone(),
                client: None,
                epoch: Arc::clone(&epoch),
                carried: None,
            };
            std::thread::Builder::new()
                .name(format!("opsync-pg-{i}"))
                .spawn(move || work(&queue, &mut connection))
                .map_err(|e| StoreError::Task(format!("cannot start a PostgreSQL worker: {e}")))?;
        }
        Ok(PgStore { jobs, epoch })
    }

    /// From the next operation on, every write carries `epoch` ([`UNFENCED`], [`STANDING_BY`]
    /// or the epoch this replica leads with).
    pub(crate) fn carry_epoch(&self, epoch: i64) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    /// Runs `op` on a worker's connection and waits for its result.
    pub(crate) fn run<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut postgres::Client) -> Result<T, StoreError> + Send + 'static,
    {
        let (done, result) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |connection| {
            let _ = done.send(connection.client().and_then(op));
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Task("the PostgreSQL workers stopped".into()))?;
        result
            .recv()
            .map_err(|_| StoreError::Task("a PostgreSQL worker stopped mid-operation".into()))?
    }
}

/// A worker: runs jobs until every handle is gone.
fn work(queue: &Mutex<Receiver<Job>>, connection: &mut Connection) {
    loop {
        let job = {
            let queue = queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.recv()
        };
        match job {
            Ok(job) => job(connection),
            Err(_) => return,
        }
    }
}

/// Brings the schema up to date on a thread of its own, outside any async runtime.
fn migrate_blocking(target: &PgTarget) -> Result<(), StoreError> {
    let target = target.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Task(format!("PostgreSQL migration runtime: {e}")))?;
        runtime
            .block_on(async {
                let mut client = target.connect().await?;
                migrate(&mut client).await.map(drop)
            })
            .map_err(|e| StoreError::Postgres(Box::new(e)))
    })
    .join()
    .map_err(|_| StoreError::Task("the PostgreSQL migration panicked".into()))?
}
