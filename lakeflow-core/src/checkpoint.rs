//! Checkpoints of streaming flows: which input each batch covered, written before the batch
//! runs, and which batches committed.
//!
//! Layout under the pipeline storage:
//!
//! ```text
//! _lakeflow/checkpoints/<flow>/current.json            {"version": N}   the live checkpoint version
//! _lakeflow/checkpoints/<flow>/v<N>/latest.json        {"planned": b}   the newest planned batch
//! _lakeflow/checkpoints/<flow>/v<N>/offsets/<b>.json   the inputs' end offsets of batch b
//! _lakeflow/checkpoints/<flow>/v<N>/commits/<b>.json   batch b committed (table version)
//! _lakeflow/checkpoints/<flow>/v<N>/schemas.json       the held schema of each file source (it
//!                                                      only gains columns: schema evolution)
//! _lakeflow/tables/<table>.json                         {"epoch": E}    resets of a shared table
//! ```
//!
//! A full refresh starts version N+1 and leaves older versions in place. The protocol that
//! makes a batch exactly-once: write its offsets (and `latest`), then commit the data to Delta
//! with the transaction `(app_id, b)`, then write `commits/<b>`. After a crash or a failure, a
//! planned batch without a commit marker is checked against the table's transaction version:
//! committed means only the marker is missing (it is written, and the next batch starts at
//! b's offsets); not committed means nothing of b is visible anywhere, so b is planned again
//! from the end of b-1. The checkpoint never runs ahead of the data, and a batch's rows are
//! in the table once or not at all.
//!
//! A table that append flows write is shared by several checkpoints, so a full refresh cannot
//! be "the first batch replaces the table". Instead: the table's epoch is raised (written
//! first), the table is truncated by a commit carrying the transaction
//! `(lakeflow:reset:<table>, E)`, and every flow whose checkpoint started in an older epoch
//! starts a new checkpoint version in epoch E. Each flow checks both before its batch, so a
//! crash anywhere in between finishes the reset on the next run: the truncation happens once
//! (its transaction id says whether it did) and before any batch of the new epoch.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::storage::Storage;

/// Where one input of a streaming flow has been read up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Offset {
    /// A table: every commit up to and including this version.
    Table {
        /// The last table version read.
        version: u64,
    },
    /// A directory of files: these files (relative to the source path).
    Files {
        /// Every file read so far.
        files: BTreeSet<String>,
        /// The size and modification time of each file when it was read, so a file that
        /// changes afterwards is noticed (absent in checkpoints written before they were kept).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        stamps: BTreeMap<String, FileStamp>,
    },
}

/// What a listing says of a file: its size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStamp {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, microseconds since the epoch.
    pub modified: i64,
}

/// The end offsets of one batch, per input (`dataset:<name>` or `files:<path>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offsets {
    /// The batch id.
    pub batch: u64,
    /// End offset per input.
    pub sources: BTreeMap<String, Offset>,
}

impl Offsets {
    /// Whether `self` covers anything `start` does not.
    pub fn is_ahead_of(&self, start: &Offsets) -> bool {
        self.sources
            .iter()
            .any(|(key, end)| start.sources.get(key) != Some(end))
    }
}

#[derive(Serialize, Deserialize)]
struct Current {
    version: u64,
    /// The reset epoch of the flow's table this version started in (shared tables only).
    #[serde(default)]
    epoch: u64,
}

#[derive(Serialize, Deserialize)]
struct Latest {
    planned: u64,
}

#[derive(Serialize, Deserialize)]
struct CommitMarker {
    batch: u64,
    table_version: u64,
}

/// The checkpoint of one streaming flow, at its live version.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    flow: String,
    version: u64,
    epoch: u64,
}

const ROOT: &str = "_lakeflow/checkpoints";

impl Checkpoint {
    /// The live checkpoint of `flow`; version 1 if it has none.
    pub async fn open(storage: &dyn Storage, flow: &str) -> Result<Self> {
        let (version, epoch) =
            match read_json::<Current>(storage, &format!("{ROOT}/{flow}/current.json")).await? {
                Some(current) => (current.version, current.epoch),
                None => (1, 0),
            };
        Ok(Checkpoint {
            flow: flow.to_string(),
            version,
            epoch,
        })
    }

    /// Starts a new checkpoint version for a full refresh; older versions stay as history.
    /// `epoch` is the reset epoch of a shared table the new version starts in (else kept).
    pub async fn reset(storage: &dyn Storage, flow: &str, epoch: Option<u64>) -> Result<Self> {
        let old = Checkpoint::open(storage, flow).await?;
        let fresh = Checkpoint {
            flow: flow.to_string(),
            version: old.version + 1,
            epoch: epoch.unwrap_or(old.epoch),
        };
        write_json(
            storage,
            &format!("{ROOT}/{flow}/current.json"),
            &Current {
                version: fresh.version,
                epoch: fresh.epoch,
            },
        )
        .await?;
        Ok(fresh)
    }

    /// The reset epoch of the flow's table this checkpoint version started in.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The id this flow's commits carry as their Delta transaction application id.
    pub fn app_id(&self) -> String {
        format!("lakeflow:{}:v{}", self.flow, self.version)
    }

    /// The checkpoint version.
    pub fn version(&self) -> u64 {
        self.version
    }

    fn key(&self, rest: &str) -> String {
        format!("{ROOT}/{}/v{}/{rest}", self.flow, self.version)
    }

    /// The newest batch whose offsets were written.
    pub async fn latest_planned(&self, storage: &dyn Storage) -> Result<Option<u64>> {
        Ok(read_json::<Latest>(storage, &self.key("latest.json"))
            .await?
            .map(|l| l.planned))
    }

    /// The offsets of batch `batch`.
    pub async fn offsets(&self, storage: &dyn Storage, batch: u64) -> Result<Offsets> {
        read_json(storage, &self.key(&format!("offsets/{batch:020}.json")))
            .await?
            .ok_or_else(|| Error::Checkpoint {
                flow: self.flow.clone(),
                message: format!("the offsets of batch {batch} are missing"),
            })
    }

    /// Whether batch `batch` has its commit marker.
    pub async fn is_committed(&self, storage: &dyn Storage, batch: u64) -> Result<bool> {
        Ok(storage
            .read_state(&self.key(&format!("commits/{batch:020}.json")))
            .await?
            .is_some())
    }

    /// Writes the offsets of a batch ahead of running it, and returns the offsets the batch
    /// covers. A new batch's offsets are created with put-if-absent: when another writer
    /// planned the same batch first (no lease, or a lost one), its offsets win and are
    /// returned, so both run the same batch and its transaction id lets only one commit it.
    /// `replan` overwrites offsets an earlier, failed attempt at the batch left (the table's
    /// transaction id said it did not commit).
    pub async fn plan(
        &self,
        storage: &dyn Storage,
        offsets: &Offsets,
        replan: bool,
    ) -> Result<Offsets> {
        let key = self.key(&format!("offsets/{:020}.json", offsets.batch));
        let planned = if replan {
            write_json(storage, &key, offsets).await?;
            offsets.clone()
        } else if storage.create_state(&key, to_json(&key, offsets)?).await? {
            offsets.clone()
        } else {
            tracing::warn!(
                "flow `{}`: batch {} was planned by another writer at the same time; running it as planned there",
                self.flow,
                offsets.batch
            );
            self.offsets(storage, offsets.batch).await?
        };
        write_json(
            storage,
            &self.key("latest.json"),
            &Latest {
                planned: offsets.batch,
            },
        )
        .await?;
        Ok(planned)
    }

    /// Records that batch `batch` committed as table version `table_version`, then expires
    /// the files of the batch [`RETAINED_BATCHES`] before it (and, every that many batches,
    /// any older ones left by earlier versions of lakeflow).
    pub async fn commit(
        &self,
        storage: &dyn Storage,
        batch: u64,
        table_version: u64,
    ) -> Result<()> {
        write_json(
            storage,
            &self.key(&format!("commits/{batch:020}.json")),
            &CommitMarker {
                batch,
                table_version,
            },
        )
        .await?;
        self.expire(storage, batch).await;
        Ok(())
    }

    /// Deletes the offsets and commit markers of batches older than the retained ones. Only
    /// the newest two batches are ever read again (the next batch starts at the last one's end
    /// offsets; a replayed batch at the one before it). Deleting is bookkeeping: a failure
    /// leaves files the next sweep deletes, and never fails the committed batch.
    async fn expire(&self, storage: &dyn Storage, batch: u64) {
        let Some(oldest_kept) = batch.checked_sub(RETAINED_BATCHES - 1) else {
            return;
        };
        let mut expired = Vec::new();
        if batch.is_multiple_of(RETAINED_BATCHES) {
            for folder in ["offsets", "commits"] {
                let keys = storage
                    .list_state(&self.key(folder))
                    .await
                    .unwrap_or_default();
                expired.extend(
                    keys.into_iter()
                        .filter(|key| batch_of(key).is_some_and(|b| b < oldest_kept)),
                );
            }
        } else if let Some(old) = oldest_kept.checked_sub(1) {
            for folder in ["offsets", "commits"] {
                expired.push(self.key(&format!("{folder}/{old:020}.json")));
            }
        }
        for key in expired {
            let _ = storage.delete_state(&key).await;
        }
    }
}

/// How many batches of a checkpoint keep their offsets and commit markers (Spark's
/// `spark.sql.streaming.minBatchesToRetain` is 100 too).
pub const RETAINED_BATCHES: u64 = 100;

/// The batch number of an `offsets/<b>.json` or `commits/<b>.json` key.
fn batch_of(key: &str) -> Option<u64> {
    let name = key.rsplit('/').next()?;
    name.strip_suffix(".json")?.parse().ok()
}

#[derive(Serialize, Deserialize)]
struct TableEpoch {
    epoch: u64,
}

/// The reset epoch of a table that several flows write (`_lakeflow/tables/<table>.json`):
/// 0 until its first full refresh, then one more for each. A flow whose checkpoint started in
/// an older epoch starts a new checkpoint version.
pub async fn table_epoch(storage: &dyn Storage, table: &str) -> Result<u64> {
    Ok(
        read_json::<TableEpoch>(storage, &format!("_lakeflow/tables/{table}.json"))
            .await?
            .map_or(0, |e| e.epoch),
    )
}

/// Starts the next reset epoch of `table`; returns it.
pub async fn next_table_epoch(storage: &dyn Storage, table: &str) -> Result<u64> {
    let epoch = table_epoch(storage, table).await? + 1;
    write_json(
        storage,
        &format!("_lakeflow/tables/{table}.json"),
        &TableEpoch { epoch },
    )
    .await?;
    Ok(epoch)
}

/// The held schema of a file source read by `flow`, if its live checkpoint has one.
pub async fn fixed_schema(
    storage: &dyn Storage,
    flow: &str,
    key: &str,
) -> Result<Option<SchemaRef>> {
    let checkpoint = Checkpoint::open(storage, flow).await?;
    let mut schemas = checkpoint.held_schemas(storage).await?;
    Ok(schemas.remove(key))
}

/// A column of a held schema.
#[derive(Serialize, Deserialize)]
struct StoredField {
    name: String,
    data_type: String,
    nullable: bool,
}

impl Checkpoint {
    /// Holds the schemas of the flow's file sources, unless already held.
    pub async fn hold_schemas(
        &self,
        storage: &dyn Storage,
        schemas: &BTreeMap<String, SchemaRef>,
    ) -> Result<()> {
        let key = self.key("schemas.json");
        if storage.read_state(&key).await?.is_some() || schemas.is_empty() {
            return Ok(());
        }
        self.write_schemas(storage, schemas).await
    }

    /// The held schema of each file source, by input key (none before the first batch).
    pub async fn held_schemas(&self, storage: &dyn Storage) -> Result<BTreeMap<String, SchemaRef>> {
        let stored: Option<BTreeMap<String, Vec<StoredField>>> =
            read_json(storage, &self.key("schemas.json")).await?;
        let mut schemas = BTreeMap::new();
        for (key, fields) in stored.unwrap_or_default() {
            let fields = fields
                .into_iter()
                .map(|f| {
                    let data_type =
                        DataType::from_str(&f.data_type).map_err(|e| Error::Checkpoint {
                            flow: self.flow.clone(),
                            message: format!(
                                "the held type of column `{}` does not parse: {e}",
                                f.name
                            ),
                        })?;
                    Ok(Field::new(f.name, data_type, f.nullable))
                })
                .collect::<Result<Vec<_>>>()?;
            schemas.insert(key, Arc::new(Schema::new(fields)));
        }
        Ok(schemas)
    }

    /// Replaces the held schema of file source `key` (schema evolution: the schema gained
    /// columns). One atomic write of `schemas.json`; the other sources' schemas are kept.
    pub async fn evolve_schema(
        &self,
        storage: &dyn Storage,
        key: &str,
        schema: SchemaRef,
    ) -> Result<()> {
        let mut schemas = self.held_schemas(storage).await?;
        schemas.insert(key.to_string(), schema);
        self.write_schemas(storage, &schemas).await
    }

    async fn write_schemas(
        &self,
        storage: &dyn Storage,
        schemas: &BTreeMap<String, SchemaRef>,
    ) -> Result<()> {
        let stored: BTreeMap<&String, Vec<StoredField>> = schemas
            .iter()
            .map(|(k, schema)| {
                let fields = schema
                    .fields()
                    .iter()
                    .map(|f| StoredField {
                        name: f.name().clone(),
                        data_type: f.data_type().to_string(),
                        nullable: f.is_nullable(),
                    })
                    .collect();
                (k, fields)
            })
            .collect();
        write_json(storage, &self.key("schemas.json"), &stored).await
    }
}

async fn read_json<T: for<'de> Deserialize<'de>>(
    storage: &dyn Storage,
    key: &str,
) -> Result<Option<T>> {
    let Some(bytes) = storage.read_state(key).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::Checkpoint {
            flow: key.to_string(),
            message: format!("`{key}` is not a valid checkpoint file ({e}); restore it or run a full refresh of the flow"),
        })
}

fn to_json<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Internal(format!("checkpoint `{key}` does not serialize: {e}")))
}

async fn write_json<T: Serialize>(storage: &dyn Storage, key: &str, value: &T) -> Result<()> {
    storage.write_state(key, to_json(key, value)?).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    #[tokio::test]
    async fn plan_commit_and_reset() {
        let storage = MemoryStorage::new();
        let ckpt = Checkpoint::open(&storage, "silver").await.unwrap();
        assert_eq!(ckpt.app_id(), "lakeflow:silver:v1");
        assert_eq!(ckpt.latest_planned(&storage).await.unwrap(), None);
        let mut offsets = Offsets {
            batch: 0,
            sources: BTreeMap::new(),
        };
        offsets
            .sources
            .insert("dataset:bronze".into(), Offset::Table { version: 3 });
        assert_eq!(ckpt.plan(&storage, &offsets, false).await.unwrap(), offsets);
        assert_eq!(ckpt.latest_planned(&storage).await.unwrap(), Some(0));
        // A second writer that planned batch 0 at the same time runs it as planned first.
        let mut other = offsets.clone();
        other
            .sources
            .insert("dataset:bronze".into(), Offset::Table { version: 4 });
        assert_eq!(ckpt.plan(&storage, &other, false).await.unwrap(), offsets);
        // A replan after a failed attempt replaces the offsets.
        assert_eq!(ckpt.plan(&storage, &other, true).await.unwrap(), other);
        ckpt.plan(&storage, &offsets, true).await.unwrap();
        assert!(!ckpt.is_committed(&storage, 0).await.unwrap());
        ckpt.commit(&storage, 0, 7).await.unwrap();
        assert!(ckpt.is_committed(&storage, 0).await.unwrap());
        assert_eq!(ckpt.offsets(&storage, 0).await.unwrap(), offsets);

        let fresh = Checkpoint::reset(&storage, "silver", None).await.unwrap();
        assert_eq!(fresh.app_id(), "lakeflow:silver:v2");
        assert_eq!(fresh.latest_planned(&storage).await.unwrap(), None);
        let reopened = Checkpoint::open(&storage, "silver").await.unwrap();
        assert_eq!(reopened.version(), 2);
        // History is kept.
        assert!(ckpt.is_committed(&storage, 0).await.unwrap());
    }

    #[tokio::test]
    async fn old_batches_expire_and_the_newest_stay() {
        let storage = MemoryStorage::new();
        let ckpt = Checkpoint::open(&storage, "silver").await.unwrap();
        // Files of batches 0..5 as an older lakeflow left them (never expired).
        for batch in 0..5 {
            let offsets = Offsets {
                batch,
                sources: BTreeMap::new(),
            };
            ckpt.plan(&storage, &offsets, false).await.unwrap();
            write_json(
                &storage,
                &ckpt.key(&format!("commits/{batch:020}.json")),
                &CommitMarker {
                    batch,
                    table_version: batch,
                },
            )
            .await
            .unwrap();
        }
        for batch in 5..250 {
            let offsets = Offsets {
                batch,
                sources: BTreeMap::new(),
            };
            ckpt.plan(&storage, &offsets, false).await.unwrap();
            ckpt.commit(&storage, batch, batch).await.unwrap();
            let kept = storage.list_state(&ckpt.key("offsets")).await.unwrap();
            assert!(
                kept.len() as u64 <= RETAINED_BATCHES,
                "batch {batch}: {}",
                kept.len()
            );
        }
        let offsets = storage.list_state(&ckpt.key("offsets")).await.unwrap();
        let commits = storage.list_state(&ckpt.key("commits")).await.unwrap();
        assert_eq!(offsets.len(), 100);
        assert_eq!(commits.len(), 100);
        assert_eq!(batch_of(&offsets[0]), Some(150));
        assert!(ckpt.is_committed(&storage, 249).await.unwrap());
        assert_eq!(ckpt.offsets(&storage, 248).await.unwrap().batch, 248);
        assert!(!ckpt.is_committed(&storage, 149).await.unwrap());
    }

    #[tokio::test]
    async fn a_held_schema_evolves_and_the_others_stay() {
        let storage = MemoryStorage::new();
        let ckpt = Checkpoint::open(&storage, "bronze").await.unwrap();
        let one = |names: &[&str]| -> SchemaRef {
            Arc::new(Schema::new(
                names
                    .iter()
                    .map(|n| Field::new(*n, DataType::Utf8, true))
                    .collect::<Vec<_>>(),
            ))
        };
        let mut held = BTreeMap::new();
        held.insert("files:a".to_string(), one(&["id"]));
        held.insert("files:b".to_string(), one(&["x"]));
        ckpt.hold_schemas(&storage, &held).await.unwrap();
        // Held once: a second hold does not replace it.
        held.insert("files:a".to_string(), one(&["other"]));
        ckpt.hold_schemas(&storage, &held).await.unwrap();
        assert_eq!(
            fixed_schema(&storage, "bronze", "files:a").await.unwrap(),
            Some(one(&["id"]))
        );
        ckpt.evolve_schema(&storage, "files:a", one(&["id", "extra"]))
            .await
            .unwrap();
        assert_eq!(
            fixed_schema(&storage, "bronze", "files:a").await.unwrap(),
            Some(one(&["id", "extra"]))
        );
        assert_eq!(
            fixed_schema(&storage, "bronze", "files:b").await.unwrap(),
            Some(one(&["x"]))
        );
    }

    #[test]
    fn offsets_compare_per_source() {
        let mut a = Offsets::default();
        a.sources.insert("x".into(), Offset::Table { version: 1 });
        let mut b = a.clone();
        assert!(!b.is_ahead_of(&a));
        b.sources.insert("x".into(), Offset::Table { version: 2 });
        assert!(b.is_ahead_of(&a));
    }
}
