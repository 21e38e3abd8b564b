//! One writer per pipeline storage at a time: the run's lease.
//!
//! A run that writes takes a lease on its storage before it plans anything, and gives it back
//! when it ends. The lease is a small document under the storage root, one per generation:
//!
//! ```text
//! _lakeflow/lease/<generation>.json   {"holder", "host", "pid", "run", "started",
//!                                      "heartbeat", "ttl_ms", "released"}
//! ```
//!
//! The newest generation speaks. Taking the lease means creating the next generation with
//! put-if-absent (a conditional put on object stores, create-new on local disk), so of two
//! runs that try at once exactly one wins, and a run may only do so when the newest generation
//! is released or has expired (its holder stopped heartbeating for `ttl`: a crashed run does
//! not block the storage for longer than that). The holder rewrites its own generation with
//! a fresh heartbeat every `ttl / 3`; before each heartbeat and each table commit it checks
//! that no newer generation exists, so a run that stalled past its lease and was overtaken
//! notices and stops writing ([`Error::LeaseLost`]). Releasing marks the generation released
//! and removes the older ones.
//!
//! The lease is the first line of defence; the second does not depend on clocks: offsets are
//! created with put-if-absent and every commit carries its batch's transaction id, so even
//! two writers without a lease never commit a batch twice (see [`crate::checkpoint`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::storage::{Committed, MaintainRequest, Maintained, Storage, TableUpsert, TableWrite};

const PREFIX: &str = "_lakeflow/lease";

/// How long a lease lives without a heartbeat, unless configured.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

/// How a run takes the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseOptions {
    /// How long the lease lives without a heartbeat: a crashed holder blocks the storage for
    /// at most this long.
    pub ttl: Duration,
    /// Wait for the holder to finish instead of failing at once with [`Error::StorageBusy`].
    pub wait: bool,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions {
            ttl: DEFAULT_TTL,
            wait: false,
        }
    }
}

/// One generation of the lease document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Holder {
    /// `host:pid`, for messages.
    holder: String,
    host: String,
    pid: u32,
    /// A random id of the run, so two processes with the same pid on two hosts differ.
    run: String,
    /// The machine boot and pid namespace the holder runs in, and its process start time:
    /// a holder on this machine whose process is gone frees the lease at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    process: Option<Process>,
    started: DateTime<Utc>,
    heartbeat: DateTime<Utc>,
    ttl_ms: u64,
    released: bool,
}

impl Holder {
    fn expires(&self) -> DateTime<Utc> {
        self.heartbeat + chrono::Duration::milliseconds(self.ttl_ms as i64)
    }

    fn is_free(&self, now: DateTime<Utc>) -> bool {
        self.released || self.expires() < now || self.is_dead_here()
    }

    /// Whether the holder ran on this machine (same boot, same pid namespace) and its process
    /// is gone (or the pid now names a process that started later).
    fn is_dead_here(&self) -> bool {
        let (Some(theirs), Some(ours)) = (&self.process, Process::current()) else {
            return false;
        };
        if theirs.machine != ours.machine {
            return false;
        }
        Process::start_time(self.pid) != Some(theirs.start_time)
    }
}

/// Where a process runs and when it started, as Linux tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Process {
    /// The boot id and the pid namespace.
    machine: String,
    /// The process start time, in clock ticks since boot.
    start_time: u64,
}

impl Process {
    fn current() -> Option<Process> {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
        Some(Process {
            machine: format!("{}/{}", boot.trim(), namespace.display()),
            start_time: Process::start_time(std::process::id())?,
        })
    }

    /// Field 22 of `/proc/<pid>/stat`, after the parenthesised command name.
    fn start_time(pid: u32) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 1..];
        rest.split_whitespace().nth(19)?.parse().ok()
    }
}

fn key(generation: u64) -> String {
    format!("{PREFIX}/{generation:020}.json")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The newest generation and its document, if any.
async fn newest(storage: &dyn Storage) -> Result<Option<(u64, Holder)>> {
    let keys = storage.list_state(PREFIX).await?;
    let newest = keys
        .iter()
        .filter_map(|k| {
            let name = k.rsplit('/').next()?.strip_suffix(".json")?;
            name.parse::<u64>().ok()
        })
        .max();
    let Some(generation) = newest else {
        return Ok(None);
    };
    let Some(bytes) = storage.read_state(&key(generation)).await? else {
        // Released and cleaned up between the listing and the read: try again.
        return Box::pin(newest_retry(storage)).await;
    };
    let holder = serde_json::from_slice(&bytes).map_err(|e| Error::Storage {
        location: format!("{}/{}", storage.location(), key(generation)),
        message: format!(
            "the lease document does not parse ({e}); if no run is going on, delete it and run again"
        ),
        source: None,
    })?;
    Ok(Some((generation, holder)))
}

async fn newest_retry(storage: &dyn Storage) -> Result<Option<(u64, Holder)>> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    newest(storage).await
}

/// A held lease. Dropping it without [`Lease::release`] stops the heartbeat and leaves the
/// lease to expire.
#[derive(Debug)]
pub struct Lease {
    storage: Arc<dyn Storage>,
    generation: u64,
    holder: Holder,
    lost: Arc<AtomicBool>,
    heartbeat: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Lease {
    /// Takes the lease on `storage`: at once, or after waiting for the holder when
    /// `options.wait`; else [`Error::StorageBusy`] naming the holder.
    pub async fn acquire(storage: Arc<dyn Storage>, options: LeaseOptions) -> Result<Lease> {
        let host = hostname();
        let pid = std::process::id();
        let run = format!("{:016x}", random_id());
        loop {
            let now = Utc::now();
            let next = match newest(storage.as_ref()).await? {
                None => 1,
                Some((generation, holder)) if holder.is_free(now) => generation + 1,
                Some((_, holder)) => {
                    if options.wait {
                        let pause = (options.ttl / 4)
                            .clamp(Duration::from_millis(50), Duration::from_secs(2));
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                    return Err(Error::StorageBusy {
                        location: storage.location(),
                        holder: format!(
                            "run {} on host {} (pid {})",
                            holder.run, holder.host, holder.pid
                        ),
                        since: rfc3339(holder.started),
                        heartbeat: rfc3339(holder.heartbeat),
                        expires: rfc3339(holder.expires()),
                    });
                }
            };
            let holder = Holder {
                holder: format!("{host}:{pid}"),
                host: host.clone(),
                pid,
                run: run.clone(),
                process: Process::current(),
                started: now,
                heartbeat: now,
                ttl_ms: options.ttl.as_millis() as u64,
                released: false,
            };
            if storage.create_state(&key(next), to_json(&holder)?).await? {
                let lost = Arc::new(AtomicBool::new(false));
                let heartbeat = tokio::spawn(beat(
                    storage.clone(),
                    next,
                    holder.clone(),
                    lost.clone(),
                    options.ttl,
                ));
                return Ok(Lease {
                    storage,
                    generation: next,
                    holder,
                    lost,
                    heartbeat: std::sync::Mutex::new(Some(heartbeat)),
                });
            }
            // Another run created that generation first: look again.
        }
    }

    /// Fails with [`Error::LeaseLost`] if another run has taken the lease over.
    pub async fn check(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(self.lost_error("it was not renewed in time"));
        }
        if self
            .storage
            .read_state(&key(self.generation + 1))
            .await?
            .is_some()
        {
            self.lost.store(true, Ordering::SeqCst);
            return Err(self.lost_error("another run took it over after it expired"));
        }
        Ok(())
    }

    fn lost_error(&self, message: &str) -> Error {
        Error::LeaseLost {
            location: self.storage.location(),
            message: message.to_string(),
        }
    }

    /// Gives the lease back: marks this generation released and removes the older ones.
    pub async fn release(&self) -> Result<()> {
        self.stop_heartbeat();
        if self.check().await.is_err() {
            // Taken over: the newer generation is not ours to touch.
            return Ok(());
        }
        let mut released = self.holder.clone();
        released.released = true;
        released.heartbeat = Utc::now();
        self.storage
            .write_state(&key(self.generation), to_json(&released)?)
            .await?;
        for old in self.storage.list_state(PREFIX).await? {
            if old < key(self.generation) {
                self.storage.delete_state(&old).await?;
            }
        }
        Ok(())
    }

    /// `storage` guarded by this lease: every table commit first checks the lease is still
    /// held, and no state is written once it is lost.
    pub fn guard(self: &Arc<Self>, storage: Arc<dyn Storage>) -> Arc<dyn Storage> {
        Arc::new(Leased {
            inner: storage,
            lease: self.clone(),
        })
    }
}

impl Lease {
    fn stop_heartbeat(&self) {
        let handle = self
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(handle) = handle {
            handle.abort();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop_heartbeat();
    }
}

/// Renews the lease every `ttl / 3` until aborted or lost.
async fn beat(
    storage: Arc<dyn Storage>,
    generation: u64,
    mut holder: Holder,
    lost: Arc<AtomicBool>,
    ttl: Duration,
) {
    let period = (ttl / 3).max(Duration::from_millis(10));
    let mut renewed = std::time::Instant::now();
    loop {
        tokio::time::sleep(period).await;
        match storage.read_state(&key(generation + 1)).await {
            Ok(Some(_)) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("lease heartbeat: {e}");
                if renewed.elapsed() > ttl {
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
                continue;
            }
        }
        holder.heartbeat = Utc::now();
        let Ok(bytes) = to_json(&holder) else {
            continue;
        };
        match storage.write_state(&key(generation), bytes).await {
            Ok(()) => renewed = std::time::Instant::now(),
            Err(e) => {
                tracing::warn!("lease heartbeat: {e}");
                if renewed.elapsed() > ttl {
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}

fn to_json(holder: &Holder) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(holder)
        .map_err(|e| Error::Internal(format!("the lease document does not serialize: {e}")))
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_string())
}

/// A run id unlikely to repeat: the clock and the process mixed through the std hasher.
fn random_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// A storage whose writes first check the lease.
#[derive(Debug)]
struct Leased {
    inner: Arc<dyn Storage>,
    lease: Arc<Lease>,
}

impl Leased {
    fn held(&self) -> Result<()> {
        if self.lease.lost.load(Ordering::SeqCst) {
            return Err(self.lease.lost_error("it was not renewed in time"));
        }
        Ok(())
    }
}

#[async_trait]
impl Storage for Leased {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn table_location(&self, name: &str) -> String {
        self.inner.table_location(name)
    }

    fn stored_schema(&self, schema: &Schema) -> Result<SchemaRef> {
        self.inner.stored_schema(schema)
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.inner.table(name).await
    }

    async fn replace(&self, write: TableWrite) -> Result<Committed> {
        self.lease.check().await?;
        self.inner.replace(write).await
    }

    async fn append(&self, write: TableWrite) -> Result<Committed> {
        self.lease.check().await?;
        self.inner.append(write).await
    }

    async fn prepare_files(
        &self,
        write: TableWrite,
        replace: bool,
    ) -> Result<Option<crate::storage::FilesPrepared>> {
        self.lease.check().await?;
        self.inner.prepare_files(write, replace).await
    }

    async fn prepare_merge(
        &self,
        upsert: &TableUpsert,
    ) -> Result<Option<crate::storage::MergePrepared>> {
        self.lease.check().await?;
        self.inner.prepare_merge(upsert).await
    }

    async fn commit_merge(
        &self,
        upsert: &TableUpsert,
        merge: &crate::storage::MergeFiles,
        files: Vec<serde_json::Value>,
    ) -> Result<Committed> {
        self.lease.check().await?;
        self.inner.commit_merge(upsert, merge, files).await
    }

    async fn commit_files(
        &self,
        write: TableWrite,
        replace: bool,
        files: Vec<serde_json::Value>,
    ) -> Result<Committed> {
        self.lease.check().await?;
        self.inner.commit_files(write, replace, files).await
    }

    async fn version(&self, name: &str) -> Result<Option<u64>> {
        self.inner.version(name).await
    }

    async fn partition_columns(&self, name: &str) -> Result<Option<Vec<String>>> {
        self.inner.partition_columns(name).await
    }

    async fn transaction_version(&self, name: &str, app_id: &str) -> Result<Option<i64>> {
        self.inner.transaction_version(name, app_id).await
    }

    async fn appended(
        &self,
        name: &str,
        after: Option<u64>,
        upto: u64,
        skip_change_commits: bool,
    ) -> Result<Arc<dyn TableProvider>> {
        self.inner
            .appended(name, after, upto, skip_change_commits)
            .await
    }

    async fn read_state(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.read_state(key).await
    }

    async fn write_state(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.held()?;
        self.inner.write_state(key, bytes).await
    }

    async fn create_state(&self, key: &str, bytes: Vec<u8>) -> Result<bool> {
        self.held()?;
        self.inner.create_state(key, bytes).await
    }

    async fn list_state(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list_state(prefix).await
    }

    async fn delete_state(&self, key: &str) -> Result<()> {
        self.held()?;
        self.inner.delete_state(key).await
    }

    async fn open_table_at(&self, path: &str) -> Result<Arc<dyn TableProvider>> {
        self.inner.open_table_at(path).await
    }

    async fn upsert(&self, upsert: TableUpsert) -> Result<Committed> {
        self.lease.check().await?;
        self.inner.upsert(upsert).await
    }

    async fn version_at(&self, path: &str) -> Result<Option<u64>> {
        self.inner.version_at(path).await
    }

    async fn maintain(&self, request: &MaintainRequest) -> Result<Option<Maintained>> {
        self.lease.check().await?;
        self.inner.maintain(request).await
    }

    async fn appended_at(
        &self,
        path: &str,
        after: Option<u64>,
        upto: u64,
        skip_change_commits: bool,
    ) -> Result<Arc<dyn TableProvider>> {
        self.inner
            .appended_at(path, after, upto, skip_change_commits)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    fn short(wait: bool) -> LeaseOptions {
        LeaseOptions {
            ttl: Duration::from_millis(300),
            wait,
        }
    }

    #[tokio::test]
    async fn a_second_run_is_refused_while_the_first_holds_the_lease() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let first = Lease::acquire(storage.clone(), LeaseOptions::default())
            .await
            .unwrap();
        let busy = Lease::acquire(storage.clone(), LeaseOptions::default())
            .await
            .unwrap_err();
        let text = busy.to_string();
        assert!(matches!(busy, Error::StorageBusy { .. }), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        first.release().await.unwrap();
        let second = Lease::acquire(storage.clone(), LeaseOptions::default())
            .await
            .unwrap();
        assert_eq!(second.generation, 2);
        second.release().await.unwrap();
        // Releasing removes the older generations: the folder stays small.
        assert_eq!(storage.list_state(PREFIX).await.unwrap(), [key(2)],);
    }

    #[tokio::test]
    async fn a_lease_without_heartbeat_expires_and_its_holder_notices_the_take_over() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let stalled = Lease::acquire(storage.clone(), short(false)).await.unwrap();
        // The holder stops heartbeating (a crash, a long pause).
        stalled.stop_heartbeat();
        let next = Lease::acquire(storage.clone(), short(true)).await.unwrap();
        assert_eq!(next.generation, 2);
        let lost = stalled.check().await.unwrap_err();
        assert!(matches!(lost, Error::LeaseLost { .. }), "{lost}");
        let guarded = Arc::new(stalled).guard(storage.clone());
        let write = guarded.create_state("x", Vec::new()).await.unwrap_err();
        assert!(matches!(write, Error::LeaseLost { .. }), "{write}");
        next.release().await.unwrap();
    }

    #[tokio::test]
    async fn a_lease_whose_process_is_gone_is_free_at_once() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let held = Lease::acquire(storage.clone(), LeaseOptions::default())
            .await
            .unwrap();
        held.stop_heartbeat();
        // The same document, as a process of this machine that has ended would have left it.
        let mut gone = held.holder.clone();
        let Some(process) = gone.process.as_mut() else {
            return; // not Linux: only expiry frees a lease
        };
        process.start_time += 1;
        storage
            .write_state(&key(held.generation), to_json(&gone).unwrap())
            .await
            .unwrap();
        let next = Lease::acquire(storage.clone(), LeaseOptions::default())
            .await
            .unwrap();
        assert_eq!(next.generation, held.generation + 1);
        next.release().await.unwrap();
    }

    #[tokio::test]
    async fn a_heartbeating_lease_outlives_its_ttl() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        // Heartbeats every second; a stall of over three seconds would be needed to lose it.
        let options = LeaseOptions {
            ttl: Duration::from_secs(3),
            wait: false,
        };
        let held = Lease::acquire(storage.clone(), options).await.unwrap();
        tokio::time::sleep(Duration::from_secs(7)).await;
        let busy = Lease::acquire(storage.clone(), options).await;
        assert!(matches!(busy, Err(Error::StorageBusy { .. })), "{busy:?}");
        held.check().await.unwrap();
        held.release().await.unwrap();
    }
}
