//! A Delta snapshot read as what it is underneath: a list of Parquet files with their
//! partition values. Plans that cross a process boundary (a Ballista cluster) carry this list;
//! its scan is DataFusion's own Parquet scan, which every DataFusion process can run.
//!
//! Only what a reader needs is kept: each file's URL, size and partition values (as the Delta
//! log writes them, text). Tables whose files cannot be read this way — deletion vectors, or
//! column mapping (physical column names that differ from the schema's) — are refused with
//! an error naming the table.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Expr;
use datafusion::object_store::path::Path as StorePath;
use datafusion::physical_plan::ExecutionPlan;
use deltalake::DeltaTable;
use lakeflow_core::{Error, Result};
use serde_json::{Value, json};
use url::Url;

/// One data file of a [`FileListTable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// The file's absolute URL (`file:///..`, `s3://bucket/..`).
    pub url: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its value of each partition column, in the order of [`FileListTable::partition_cols`],
    /// as text (Delta's `partitionValues`); `None` is NULL.
    pub partition_values: Vec<Option<String>>,
}

/// A table as an explicit list of Parquet files: a Delta snapshot (or some of its files),
/// with the table's schema and partition columns. Its scan reads the files with DataFusion's
/// Parquet scan.
#[derive(Debug, Clone)]
pub struct FileListTable {
    schema: SchemaRef,
    partition_cols: Vec<String>,
    files: Vec<DataFile>,
}

impl FileListTable {
    /// A table of `files` with `schema` (the table's, partition columns included, in the
    /// table's order) partitioned by `partition_cols`.
    pub fn new(schema: SchemaRef, partition_cols: Vec<String>, files: Vec<DataFile>) -> Self {
        FileListTable {
            schema,
            partition_cols,
            files,
        }
    }

    /// The files of `table`'s loaded snapshot, all of them or (with `selection`) those whose
    /// log paths are listed. `name` is for messages.
    pub(crate) fn of_snapshot(
        table: &DeltaTable,
        name: &str,
        selection: Option<&HashSet<String>>,
    ) -> Result<Self> {
        let location = table.table_url().to_string();
        let state = table.snapshot().map_err(|e| Error::storage(&location, e))?;
        let metadata = state.metadata();
        let column_mapping = metadata
            .configuration()
            .get("delta.columnMapping.mode")
            .is_some_and(|mode| mode != "none");
        if column_mapping {
            return Err(unreadable(name, &location, "it uses column mapping"));
        }
        let partition_cols = metadata.partition_columns().to_vec();
        let schema = state.snapshot().arrow_schema();
        let mut root = table.table_url().clone();
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        let mut files = Vec::new();
        for file in state.log_data().iter() {
            let path = file.path();
            if selection.is_some_and(|s| !s.contains(path.as_ref())) {
                continue;
            }
            if file.deletion_vector_descriptor().is_some() {
                return Err(unreadable(name, &location, "it has deletion vectors"));
            }
            let url = match Url::parse(&path) {
                Ok(absolute) => absolute,
                Err(_) => root
                    .join(file.object_store_path().as_ref())
                    .map_err(|e| Error::storage(&location, e))?,
            };
            let values = file.partition_values_map();
            files.push(DataFile {
                url: url.to_string(),
                size: u64::try_from(file.size()).unwrap_or(0),
                partition_values: partition_cols
                    .iter()
                    .map(|c| values.get(c).cloned().flatten())
                    .collect(),
            });
        }
        Ok(FileListTable::new(schema, partition_cols, files))
    }

    /// Several lists of the same table (files selected from different versions) as one.
    pub(crate) fn concat(mut self, other: FileListTable) -> Self {
        self.files.extend(other.files);
        self
    }

    /// The partition columns.
    pub fn partition_cols(&self) -> &[String] {
        &self.partition_cols
    }

    /// The files.
    pub fn files(&self) -> &[DataFile] {
        &self.files
    }

    /// The list as JSON (its schema travels apart, with the plan).
    pub fn to_json(&self) -> Value {
        json!({
            "partition_cols": self.partition_cols,
            "files": self.files.iter().map(|f| json!({
                "url": f.url,
                "size": f.size,
                "partition_values": f.partition_values,
            })).collect::<Vec<_>>(),
        })
    }

    /// The list [`FileListTable::to_json`] wrote, with `schema`.
    pub fn from_json(value: &Value, schema: SchemaRef) -> DfResult<Self> {
        let bad = || DataFusionError::Internal(format!("not a lakeflow file list: {value}"));
        let texts = |v: &Value| -> DfResult<Vec<Option<String>>> {
            v.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|s| Ok(s.as_str().map(str::to_string)))
                .collect()
        };
        let partition_cols = texts(&value["partition_cols"])?
            .into_iter()
            .map(|c| c.ok_or_else(bad))
            .collect::<DfResult<Vec<_>>>()?;
        let files = value["files"]
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|f| {
                Ok(DataFile {
                    url: f["url"].as_str().ok_or_else(bad)?.to_string(),
                    size: f["size"].as_u64().ok_or_else(bad)?,
                    partition_values: texts(&f["partition_values"])?,
                })
            })
            .collect::<DfResult<Vec<_>>>()?;
        Ok(FileListTable::new(schema, partition_cols, files))
    }

    /// The schema of the files themselves (without partition columns), and the partition
    /// fields, in the order the scan appends them.
    fn split_schema(&self) -> (SchemaRef, Vec<FieldRef>) {
        let is_partition = |f: &Field| self.partition_cols.iter().any(|c| c == f.name());
        let file_fields: Vec<FieldRef> = self
            .schema
            .fields()
            .iter()
            .filter(|f| !is_partition(f))
            .cloned()
            .collect();
        let partition_fields = self
            .partition_cols
            .iter()
            .map(|c| {
                self.schema
                    .field_with_name(c)
                    .map(|f| Arc::new(f.clone()))
                    .unwrap_or_else(|_| Arc::new(Field::new(c, DataType::Utf8, true)))
            })
            .collect();
        (Arc::new(Schema::new(file_fields)), partition_fields)
    }
}

/// A file's path as [`FileListTable::of_snapshot`] selects it: percent-decoded, as the log's
/// file views give it.
pub(crate) fn log_path(raw: &str) -> String {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

fn unreadable(name: &str, location: &str, why: &str) -> Error {
    Error::Storage {
        location: location.to_string(),
        message: format!(
            "table `{name}` cannot be read as a list of Parquet files, as a cluster engine needs: {why}; run this pipeline with the in-process engine, or rewrite the table without that feature"
        ),
        source: None,
    }
}

/// A partition value as the column's type.
fn partition_value(text: &Option<String>, field: &Field) -> DfResult<ScalarValue> {
    match text {
        None => ScalarValue::try_from(field.data_type()),
        Some(text) => {
            ScalarValue::try_from_string(text.clone(), field.data_type()).or_else(|_| {
                // Delta writes timestamps as `2024-01-02 03:04:05.000000`, which a cast from
                // text reads; keep the text for types a cast cannot produce.
                ScalarValue::Utf8(Some(text.clone())).cast_to(field.data_type())
            })
        }
    }
}

#[async_trait]
impl TableProvider for FileListTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (file_schema, partition_fields) = self.split_schema();
        // The scan yields the file columns, then the partition columns; map the table's
        // column order onto that.
        let scan_index = |table_index: usize| -> DfResult<usize> {
            let name = self.schema.field(table_index).name();
            match self.partition_cols.iter().position(|c| c == name) {
                Some(p) => Ok(file_schema.fields().len() + p),
                None => Ok(file_schema.index_of(name)?),
            }
        };
        let indices = match projection {
            Some(p) => p
                .iter()
                .map(|&i| scan_index(i))
                .collect::<DfResult<Vec<_>>>()?,
            None => (0..self.schema.fields().len())
                .map(scan_index)
                .collect::<DfResult<Vec<_>>>()?,
        };
        let mut store: Option<ObjectStoreUrl> = None;
        let mut files = Vec::with_capacity(self.files.len());
        for file in &self.files {
            let url = Url::parse(&file.url)
                .map_err(|e| DataFusionError::Plan(format!("data file `{}`: {e}", file.url)))?;
            let this_store = ObjectStoreUrl::parse(&url[..url::Position::BeforePath])?;
            if store.as_ref().is_some_and(|s| s != &this_store) {
                return Err(DataFusionError::NotImplemented(format!(
                    "a table whose files live in several stores ({} and {this_store})",
                    store.as_ref().map(|s| s.as_str()).unwrap_or_default()
                )));
            }
            store = Some(this_store);
            let path = StorePath::from_url_path(url.path())
                .map_err(|e| DataFusionError::Plan(format!("data file `{}`: {e}", file.url)))?;
            let mut partitioned = PartitionedFile::new(path, file.size);
            partitioned.partition_values = file
                .partition_values
                .iter()
                .zip(&partition_fields)
                .map(|(v, f)| partition_value(v, f))
                .collect::<DfResult<_>>()?;
            files.push(partitioned);
        }
        let store = store.unwrap_or_else(ObjectStoreUrl::local_filesystem);
        let parallelism = state.config().target_partitions().max(1);
        let mut groups: Vec<Vec<PartitionedFile>> =
            vec![Vec::new(); parallelism.min(files.len()).max(1)];
        let count = groups.len();
        for (i, file) in files.into_iter().enumerate() {
            groups[i % count].push(file);
        }
        let table_schema = TableSchema::builder(file_schema)
            .with_table_partition_cols(partition_fields)
            .build();
        let source = Arc::new(ParquetSource::new(table_schema));
        let config = FileScanConfigBuilder::new(store, source)
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .with_projection_indices(Some(indices))?
            .with_limit(limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
