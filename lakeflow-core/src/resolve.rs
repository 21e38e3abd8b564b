//! Resolve: call each query function once, in a planning scope, and learn from the reads it
//! makes what it depends on.
//!
//! Inside the scope, `read("x")` and table names in `sql(...)` become placeholder scans that
//! carry `x`'s schema. When `x` is not resolved yet, the reader returns [`Error::Deferred`];
//! the user's `?` hands it back to the resolver, which resolves `x` first (or opens the
//! external source) and calls the function again. Query functions only describe data, so a
//! second call is harmless, and each function is called at most once more than it has
//! unresolved reads. A dataset met again while it is being resolved closes a cycle.
//!
//! This module owns the planning scope and must not execute plans or touch table data.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider, SchemaProvider,
};
use datafusion::common::tree_node::Transformed;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::provider_as_source;
use datafusion::execution::SessionStateBuilder;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, SubqueryAlias};
use datafusion::prelude::SessionContext;
use futures::FutureExt;
use futures::future::BoxFuture;

use crate::dataset::{DatasetDef, DatasetKind, Plan, SourceLocation};
use crate::error::{Error, Result};
use crate::placeholder::{Binding, Placeholder};
use crate::source::{ExternalTable, SourceSpec};
use crate::storage::Storage;
use lakeflow_sql::SparkSql;

tokio::task_local! {
    static SCOPE: Scope;
}

/// What a query function waits for before it can be planned. Resolver control flow only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pending {
    /// A pipeline dataset not resolved yet.
    Dataset(String),
    /// An external source not opened yet.
    Source(SourceSpec),
    /// A file source read as a stream, not opened yet.
    StreamSource(SourceSpec),
    /// A registered external table not opened yet.
    External(String),
}

impl fmt::Display for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pending::Dataset(name) | Pending::External(name) => f.write_str(name),
            Pending::Source(spec) | Pending::StreamSource(spec) => write!(f, "{spec}"),
        }
    }
}

/// How a query reads one of its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReadMode {
    /// The whole current contents (`read`, `sql`).
    Batch,
    /// As a stream of appended rows (`read_stream`).
    Stream,
    /// As a stream, leaving out commits that changed rather than appended rows.
    StreamSkippingChanges,
}

impl ReadMode {
    /// Whether this is a streaming read.
    pub fn is_stream(self) -> bool {
        self != ReadMode::Batch
    }
}

/// A dataset after its query function ran in the planning scope.
#[derive(Debug)]
pub struct Resolved {
    /// The definition.
    pub def: DatasetDef,
    /// The effective kind: `Table` becomes a streaming table or a materialized view.
    pub kind: DatasetKind,
    /// The query's plan, with placeholders for pipeline datasets.
    pub plan: LogicalPlan,
    /// The schema the query produces.
    pub output_schema: SchemaRef,
    /// The schema readers of this dataset see (after storage normalization for stored kinds).
    pub read_schema: SchemaRef,
    /// The pipeline datasets the query reads, and how.
    pub inputs: BTreeMap<String, ReadMode>,
    /// External sources and tables the query reads, for lineage.
    pub sources: BTreeSet<String>,
    /// The external file sources read whole, when every external read is one (so a
    /// fingerprint of their files tells whether the input changed); `None` when the query
    /// also reads an external source lakeflow cannot fingerprint (a Delta path, a provider).
    pub file_sources: Option<BTreeSet<SourceSpec>>,
    /// External sources the query reads as streams (files, Delta tables), by checkpoint key.
    pub stream_files: BTreeMap<String, SourceSpec>,
    /// The keys of `stream_files` read skipping change commits.
    pub stream_skips: BTreeSet<String>,
    /// For an append flow: the streaming table it writes (as the pipeline spells it).
    pub target: Option<String>,
    /// The columns the flow writes into its table: its output, or for an AUTO CDC flow the
    /// target's columns.
    pub writes: SchemaRef,
    /// For a streaming table: the append flows that write into it, by name.
    pub flows: Vec<String>,
    placeholder: Arc<dyn TableProvider>,
    stream_placeholder: Arc<dyn TableProvider>,
}

impl Resolved {
    /// Whether the query reads any stream (a dataset or a file source).
    pub fn reads_stream(&self) -> bool {
        !self.stream_files.is_empty() || self.inputs.values().any(|m| m.is_stream())
    }

    /// The table this node's flow writes: its target for an append flow, else its own.
    pub fn table(&self) -> &str {
        self.target.as_deref().unwrap_or(&self.def.name)
    }

    /// Whether the node runs a flow of its own: everything but temporary views (inlined
    /// into readers) and streaming tables without a query (only their append flows write).
    pub fn has_flow(&self) -> bool {
        self.kind != DatasetKind::TemporaryView && self.def.query.is_some()
    }

    /// Whether append flows write this table, so that several writers share it (a sink's
    /// flows share no table).
    pub fn is_shared(&self) -> bool {
        self.kind != DatasetKind::Sink && !self.flows.is_empty()
    }
}

/// The resolver: owns the planning session and everything resolved so far.
pub(crate) struct Resolver {
    session: SessionContext,
    defs: BTreeMap<String, DatasetDef>,
    by_lower: HashMap<String, String>,
    externals: BTreeMap<String, ExternalTable>,
    storage: Arc<dyn Storage>,
    /// Flows whose file streams infer their schema again (the run fully refreshes them)
    /// instead of taking the schema their checkpoint holds.
    reinfer: BTreeSet<String>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    resolved: HashMap<String, Arc<Resolved>>,
    sources: HashMap<SourceSpec, Arc<dyn TableProvider>>,
    /// Per reading dataset and file source: the schema the stream is planned with.
    stream_sources: HashMap<(String, SourceSpec), SchemaRef>,
    externals: HashMap<String, Arc<dyn TableProvider>>,
}

/// The task-local planning scope of one query function call.
#[derive(Clone)]
struct Scope {
    resolver: Arc<Resolver>,
    call: Arc<Mutex<Call>>,
}

struct Call {
    dataset: String,
    location: SourceLocation,
    inputs: BTreeMap<String, ReadMode>,
    sources: BTreeSet<String>,
    stream_files: BTreeMap<String, SourceSpec>,
    stream_skips: BTreeSet<String>,
    file_sources: Option<BTreeSet<SourceSpec>>,
}

impl Call {
    /// Records an external read: a file source can be fingerprinted, anything else cannot.
    fn external_read(&mut self, spec: Option<&SourceSpec>) {
        match (spec, &mut self.file_sources) {
            (Some(spec @ (SourceSpec::Files { .. } | SourceSpec::Ingest(_))), Some(files)) => {
                files.insert(spec.clone());
            }
            _ => self.file_sources = None,
        }
    }

    fn new(dataset: &str, location: SourceLocation) -> Self {
        Call {
            dataset: dataset.to_string(),
            location,
            inputs: BTreeMap::new(),
            sources: BTreeSet::new(),
            stream_files: BTreeMap::new(),
            stream_skips: BTreeSet::new(),
            file_sources: Some(BTreeSet::new()),
        }
    }
}

/// The outcome of resolving a whole pipeline: what resolved, and every error found.
pub(crate) struct Resolution {
    pub resolved: Vec<Arc<Resolved>>,
    pub errors: Vec<Error>,
}

impl Resolver {
    pub fn new(
        session: SessionContext,
        defs: BTreeMap<String, DatasetDef>,
        externals: BTreeMap<String, ExternalTable>,
        storage: Arc<dyn Storage>,
        reinfer: BTreeSet<String>,
    ) -> Arc<Self> {
        let by_lower = defs
            .keys()
            .map(|name| (name.to_ascii_lowercase(), name.clone()))
            .collect();
        Arc::new(Resolver {
            session,
            defs,
            by_lower,
            externals,
            storage,
            reinfer,
            state: Mutex::default(),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pipeline dataset `name` refers to, matching case-insensitively as SQL does.
    fn canonical(&self, name: &str) -> Option<&String> {
        self.defs
            .get_key_value(name)
            .map(|(k, _)| k)
            .or_else(|| self.by_lower.get(&name.to_ascii_lowercase()))
    }

    fn external(&self, name: &str) -> Option<(&String, &ExternalTable)> {
        self.externals.get_key_value(name).or_else(|| {
            self.externals
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
        })
    }

    /// Resolves every dataset, in name order, collecting all errors.
    pub async fn resolve_all(self: &Arc<Self>) -> Resolution {
        let mut errors = Vec::new();
        let mut failed = BTreeSet::new();
        let names: Vec<String> = self.defs.keys().cloned().collect();
        for name in &names {
            let mut stack = Vec::new();
            let _ = self
                .resolve_one(name, &mut stack, &mut failed, &mut errors)
                .await;
        }
        let state = self.state();
        let mut resolved: Vec<Arc<Resolved>> = state.resolved.values().cloned().collect();
        resolved.sort_by(|a, b| a.def.name.cmp(&b.def.name));
        Resolution { resolved, errors }
    }

    /// Resolves `name` and, on demand, what it reads. `Err(())` means it failed and the cause
    /// is already in `errors` (reported once, at the dataset where it arose).
    fn resolve_one<'a>(
        self: &'a Arc<Self>,
        name: &'a str,
        stack: &'a mut Vec<String>,
        failed: &'a mut BTreeSet<String>,
        errors: &'a mut Vec<Error>,
    ) -> BoxFuture<'a, Result<(), ()>> {
        async move {
            if self.state().resolved.contains_key(name) {
                return Ok(());
            }
            if failed.contains(name) {
                return Err(());
            }
            if let Some(start) = stack.iter().position(|n| n == name) {
                let mut path: Vec<(String, SourceLocation)> = stack[start..]
                    .iter()
                    .map(|n| (n.clone(), self.defs[n].location))
                    .collect();
                path.push((name.to_string(), self.defs[name].location));
                failed.extend(stack[start..].iter().cloned());
                errors.push(Error::Cycle { path });
                return Err(());
            }
            let def = self.defs[name].clone();
            stack.push(name.to_string());
            let outcome = self.resolve_def(&def, stack, failed, errors).await;
            stack.pop();
            match outcome {
                Ok(resolved) => {
                    let resolved = Arc::new(resolved);
                    if let Err(e) = self
                        .session
                        // Bare: `db2.mv2` is one name (a dataset of schema `db2`).
                        .register_table(
                            datafusion::common::TableReference::bare(name),
                            resolved.placeholder.clone(),
                        )
                    {
                        errors.push(Error::Internal(format!(
                            "registering `{name}` for SQL failed: {e}"
                        )));
                    }
                    self.state().resolved.insert(name.to_string(), resolved);
                    Ok(())
                }
                Err(None) => {
                    failed.insert(name.to_string());
                    Err(())
                }
                Err(Some(error)) => {
                    failed.insert(name.to_string());
                    errors.push(match error {
                        // These already name the dataset and its definition site.
                        e @ (Error::Cycle { .. }
                        | Error::UnknownDataset { .. }
                        | Error::Expectation { .. }
                        | Error::InvalidDefinition { .. }) => e,
                        e => Error::Definition {
                            dataset: name.to_string(),
                            location: def.location,
                            source: Box::new(e),
                        },
                    });
                    Err(())
                }
            }
        }
        .boxed()
    }

    /// Calls `def`'s query until it plans. `Err(None)`: an input failed (already reported).
    async fn resolve_def(
        self: &Arc<Self>,
        def: &DatasetDef,
        stack: &mut Vec<String>,
        failed: &mut BTreeSet<String>,
        errors: &mut Vec<Error>,
    ) -> Result<Resolved, Option<Error>> {
        let target = match &def.target {
            Some(target) => Some(self.flow_target(def, target).map_err(Some)?),
            None => None,
        };
        // The append flows into this table resolve first: a table without a query takes its
        // schema from them, and a flow that reads its own target closes a cycle here.
        let flows: Vec<String> = if def.kind.is_stored() || def.kind == DatasetKind::Sink {
            self.defs
                .values()
                .filter(|d| {
                    d.target
                        .as_ref()
                        .is_some_and(|t| t.eq_ignore_ascii_case(&def.name))
                })
                .map(|d| d.name.clone())
                .collect()
        } else {
            Vec::new()
        };
        let mut any_failed = false;
        for flow in &flows {
            any_failed |= self.resolve_one(flow, stack, failed, errors).await.is_err();
        }
        if any_failed {
            return Err(None);
        }
        let mut resolved = match &def.query {
            Some(query) => self.call_query(def, query, stack, failed, errors).await?,
            None => {
                let schema = self.flows_schema(def, &flows).map_err(Some)?;
                let plan = LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
                    produce_one_row: false,
                    schema: Arc::new(
                        datafusion::common::DFSchema::try_from(schema.as_ref().clone())
                            .map_err(|e| Some(e.into()))?,
                    ),
                });
                let df = DataFrame::new(self.session.state(), plan);
                self.finish(def, df, Call::new(&def.name, def.location))
                    .map_err(Some)?
            }
        };
        let cdc_flow = flows
            .iter()
            .find(|f| self.defs.get(*f).is_some_and(|d| d.cdc.is_some()));
        if let Some(cdc_flow) = cdc_flow
            && (flows.len() > 1 || def.query.is_some())
        {
            let others: Vec<String> = flows
                .iter()
                .filter(|f| *f != cdc_flow)
                .map(|f| format!("`{f}`"))
                .chain(def.query.is_some().then(|| "its own query".to_string()))
                .collect();
            return Err(Some(Error::InvalidDefinition {
                dataset: def.name.clone(),
                message: format!(
                    "AUTO CDC flow `{cdc_flow}` must be the only writer of its target, but {} also write it; give the CDC flow a table of its own (create_streaming_table)",
                    others.join(" and ")
                ),
            }));
        }
        if !flows.is_empty() && def.kind != DatasetKind::Sink {
            if resolved.kind != DatasetKind::StreamingTable
                || (def.query.is_some() && !resolved.reads_stream())
            {
                return Err(Some(Error::InvalidDefinition {
                    dataset: def.name.clone(),
                    message: format!(
                        "append flows ({}) write into it, but its query reads no stream, so each run would replace what they appended; read a stream in its query, or create it without a query (create_streaming_table)",
                        flows
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                }));
            }
            if def.query.is_some() || def.schema.is_some() {
                self.check_flows_fit(def, &resolved.output_schema, &flows)
                    .map_err(Some)?;
            }
        }
        resolved.target = target;
        resolved.flows = flows;
        Ok(resolved)
    }

    /// The canonical name of flow `def`'s target, which must be a table of the pipeline.
    fn flow_target(&self, def: &DatasetDef, target: &str) -> Result<String> {
        let invalid = |message: String| Error::InvalidDefinition {
            dataset: def.name.clone(),
            message,
        };
        let Some(canonical) = self.canonical(target) else {
            let hint = match self.suggestion(target) {
                Some(s) => format!("; did you mean `{s}`?"),
                None => String::new(),
            };
            return Err(invalid(format!(
                "its target `{target}` is not a dataset of this pipeline{hint} Create it with create_streaming_table!(\"{target}\") or #[streaming_table]"
            )));
        };
        let kind = self.defs[canonical].kind;
        if matches!(
            kind,
            DatasetKind::MaterializedView | DatasetKind::TemporaryView | DatasetKind::AppendFlow
        ) {
            return Err(invalid(format!(
                "its target `{canonical}` is a {kind}; append flows write into streaming tables"
            )));
        }
        for rule in &def.expectations {
            if self.defs[canonical]
                .expectations
                .iter()
                .any(|e| e.name == rule.name)
            {
                return Err(invalid(format!(
                    "expectation `{}` is also a rule of its target `{canonical}`, which applies to every flow into it; rename one",
                    rule.name
                )));
            }
        }
        Ok(canonical.clone())
    }

    /// The schema of a streaming table without a query: the one given, or the columns of its
    /// flows in flow-name order (a column two flows share must have one type).
    fn flows_schema(&self, def: &DatasetDef, flows: &[String]) -> Result<SchemaRef> {
        if let Some(schema) = &def.schema {
            self.check_flows_fit(def, schema, flows)?;
            return Ok(schema.clone());
        }
        if flows.is_empty() {
            return Err(Error::InvalidDefinition {
                dataset: def.name.clone(),
                message: "it has no query, no schema and no append flow writes into it; add an #[append_flow(target = \"..\")] or give it a schema".into(),
            });
        }
        let state = self.state();
        let mut fields: Vec<(String, datafusion::arrow::datatypes::FieldRef)> = Vec::new();
        for flow in flows {
            let Some(resolved) = state.resolved.get(flow) else {
                return Err(Error::Internal(format!("flow `{flow}` did not resolve")));
            };
            for field in resolved.writes.fields() {
                match fields.iter().find(|(_, f)| f.name() == field.name()) {
                    Some((first, f)) if f.data_type() != field.data_type() => {
                        return Err(Error::InvalidDefinition {
                            dataset: def.name.clone(),
                            message: format!(
                                "its flows `{first}` and `{flow}` give column `{}` different types ({} and {}); cast one of them so that they agree",
                                field.name(),
                                f.data_type(),
                                field.data_type()
                            ),
                        });
                    }
                    Some(_) => {}
                    None => fields.push((flow.clone(), field.clone())),
                }
            }
        }
        let fields: Vec<_> = fields.into_iter().map(|(_, f)| f).collect();
        Ok(Arc::new(Schema::new(fields)))
    }

    /// Every column of each flow must be a column of the table's `schema`, of a type that
    /// casts to the table's; the table's other columns are NULL in that flow's rows.
    fn check_flows_fit(&self, def: &DatasetDef, schema: &Schema, flows: &[String]) -> Result<()> {
        let state = self.state();
        for flow in flows {
            let Some(resolved) = state.resolved.get(flow) else {
                return Err(Error::Internal(format!("flow `{flow}` did not resolve")));
            };
            for field in resolved.writes.fields() {
                let Ok(column) = schema.field_with_name(field.name()) else {
                    return Err(Error::InvalidDefinition {
                        dataset: flow.clone(),
                        message: format!(
                            "it writes column `{}`, which `{}` does not have; its columns are {}",
                            field.name(),
                            def.name,
                            column_list(schema)
                        ),
                    });
                };
                if !datafusion::arrow::compute::can_cast_types(
                    field.data_type(),
                    column.data_type(),
                ) {
                    return Err(Error::InvalidDefinition {
                        dataset: flow.clone(),
                        message: format!(
                            "it writes column `{}` as {}, which does not cast to {} in `{}`",
                            field.name(),
                            field.data_type(),
                            column.data_type(),
                            def.name
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Calls `query` until it plans, resolving what it waits for.
    async fn call_query(
        self: &Arc<Self>,
        def: &DatasetDef,
        query: &crate::dataset::Query,
        stack: &mut Vec<String>,
        failed: &mut BTreeSet<String>,
        errors: &mut Vec<Error>,
    ) -> Result<Resolved, Option<Error>> {
        // Each retry follows new progress (a dataset resolved or a source opened), so the
        // number of calls is bounded by the reads; the cap only guards against a query that
        // returns a deferral it did not receive.
        for _ in 0..10_000 {
            let call = Arc::new(Mutex::new(Call::new(&def.name, def.location)));
            let scope = Scope {
                resolver: self.clone(),
                call: call.clone(),
            };
            let outcome = SCOPE.scope(scope, query()).await;
            match outcome {
                Ok(df) => {
                    let call = std::mem::replace(
                        &mut *call.lock().unwrap_or_else(|e| e.into_inner()),
                        Call::new("", def.location),
                    );
                    return self.finish(def, df, call).map_err(Some);
                }
                Err(Error::Deferred(Pending::Dataset(dep))) => {
                    if self.resolve_one(&dep, stack, failed, errors).await.is_err() {
                        return Err(None);
                    }
                }
                Err(Error::Deferred(Pending::Source(spec))) => {
                    let provider = spec
                        .open(&self.session, self.storage.as_ref())
                        .await
                        .map_err(Some)?;
                    self.state().sources.insert(spec, provider);
                }
                Err(Error::Deferred(Pending::StreamSource(spec))) => {
                    // A stream's schema is held fixed by its flow's checkpoint once it has one.
                    let key = Binding::Source(spec.clone())
                        .stream_key()
                        .expect("files are a stream");
                    let held = if self.reinfer.contains(&def.name) {
                        None
                    } else {
                        crate::checkpoint::fixed_schema(self.storage.as_ref(), &def.name, &key)
                            .await
                            .map_err(Some)?
                    };
                    let schema = match held {
                        Some(schema) => schema,
                        None => spec
                            .open(&self.session, self.storage.as_ref())
                            .await
                            .map_err(Some)?
                            .schema(),
                    };
                    self.state()
                        .stream_sources
                        .insert((def.name.clone(), spec), schema);
                }
                Err(Error::Deferred(Pending::External(name))) => {
                    let (name, spec) = self
                        .external(&name)
                        .map(|(n, s)| (n.clone(), s.clone()))
                        .ok_or_else(|| {
                            Some(Error::Internal(format!("external table `{name}` vanished")))
                        })?;
                    let provider = spec
                        .open(&self.session, self.storage.as_ref())
                        .await
                        .map_err(Some)?;
                    self.session
                        // Bare, as datasets are: `samples.tpch.orders` is one name.
                        .register_table(
                            datafusion::common::TableReference::bare(name.as_str()),
                            provider.clone(),
                        )
                        .map_err(|e| Some(e.into()))?;
                    self.state().externals.insert(name, provider);
                }
                Err(error) => return Err(Some(error)),
            }
        }
        Err(Some(Error::Internal(format!(
            "query of `{}` kept deferring without progress",
            def.name
        ))))
    }

    fn finish(&self, def: &DatasetDef, df: DataFrame, call: Call) -> Result<Resolved> {
        crate::expectations::validate(&def.name, def.location, &def.expectations, &df)?;
        let writes = match &def.cdc {
            Some(cdc) => cdc.target_schema(&def.name, &df)?,
            None => df.schema().inner().clone(),
        };
        let mut plan = df.into_unoptimized_plan();
        let mut call = call;
        if matches!(
            plan,
            LogicalPlan::Ddl(_) | LogicalPlan::Dml(_) | LogicalPlan::Statement(_)
        ) {
            return Err(Error::InvalidDefinition {
                dataset: def.name.clone(),
                message:
                    "a query function must describe rows (a SELECT), not a DDL or DML statement"
                        .into(),
            });
        }
        let output_schema = plan.schema().inner().clone();
        let mut seen = BTreeSet::new();
        for field in output_schema.fields() {
            if !seen.insert(field.name().as_str()) {
                return Err(Error::InvalidDefinition {
                    dataset: def.name.clone(),
                    message: format!(
                        "the query produces two columns named `{}`; select one or rename with an alias",
                        field.name()
                    ),
                });
            }
        }
        for col in &def.partition_cols {
            if output_schema.field_with_name(col).is_err() {
                return Err(Error::InvalidDefinition {
                    dataset: def.name.clone(),
                    message: format!(
                        "partition column `{col}` is not a column of the query; its columns are {}",
                        column_list(&output_schema)
                    ),
                });
            }
        }
        check_sql_confs(def, &call.inputs, &self.state().resolved)?;
        let mut streams =
            !call.stream_files.is_empty() || call.inputs.values().any(|m| m.is_stream());
        if def.persisted && streams {
            return Err(Error::InvalidDefinition {
                dataset: def.name.clone(),
                message: "a view (CREATE VIEW, which Spark persists) may not read a stream; make it a temporary view (CREATE TEMPORARY VIEW) to read it with STREAM(..), or read its inputs whole [INVALID_FLOW_QUERY_TYPE.STREAMING_RELATION_FOR_PERSISTED_VIEW]".into(),
            });
        }
        // In a SQL file, a streaming table is defined by a streaming query, as in Spark (a
        // Rust `#[streaming_table]` over a batch query is recomputed each run instead).
        if def.kind == DatasetKind::StreamingTable
            && def.query.is_some()
            && !streams
            && def.cdc.is_none()
            && def.location.file.ends_with(".sql")
        {
            return Err(Error::InvalidDefinition {
                dataset: def.name.clone(),
                message: "a streaming table is defined by a streaming query, but this one reads no stream; read its input with STREAM(..) (or STREAM read_files(..)), or make it a materialized view [INVALID_FLOW_QUERY_TYPE.BATCH_RELATION_FOR_STREAMING_TABLE]".into(),
            });
        }
        // A streaming table that aggregates streams of pipeline tables: Spark keeps the
        // aggregate's state and emits the complete result; lakeflow computes the same
        // result from the tables read whole (and merges the new rows' aggregates where it
        // can, as for materialized views). Exactly once holds: nothing is appended.
        if streams
            && matches!(def.kind, DatasetKind::StreamingTable | DatasetKind::Table)
            && call.stream_files.is_empty()
            && def.cdc.is_none()
            && def.watermark.is_none()
            && aggregates_a_stream(&plan)
        {
            plan = streams_read_whole(plan)?;
            for mode in call.inputs.values_mut() {
                *mode = ReadMode::Batch;
            }
            streams = false;
        }
        let kind = match def.kind {
            DatasetKind::Table if streams => DatasetKind::StreamingTable,
            DatasetKind::Table => DatasetKind::MaterializedView,
            kind => kind,
        };
        if kind == DatasetKind::AppendFlow {
            let target = def.target.as_deref().unwrap_or_default();
            if def.once && streams {
                return Err(Error::InvalidDefinition {
                    dataset: def.name.clone(),
                    message: format!(
                        "a `once` flow reads its inputs whole a single time, but it reads a stream; use read(..), or drop `once` to append `{target}`'s new rows each run"
                    ),
                });
            }
            let snapshots = def.cdc.as_ref().is_some_and(|c| c.snapshot.is_some());
            if !def.once && !streams && !snapshots {
                return Err(Error::InvalidDefinition {
                    dataset: def.name.clone(),
                    message: format!(
                        "an append flow appends new rows each run, but it reads no stream, so it would append everything again; read a stream (read_stream, read_stream_files), or make it `once = true` to append its rows to `{target}` a single time"
                    ),
                });
            }
        }
        if streams {
            // Streaming views are read through their batch placeholder (inlined later).
            let streamed: BTreeSet<String> = call
                .inputs
                .iter()
                .filter(|(_, mode)| mode.is_stream())
                .map(|(name, _)| name.clone())
                .collect();
            if def.watermark.is_some() && !call.stream_files.is_empty() {
                return Err(Error::InvalidDefinition {
                    dataset: def.name.clone(),
                    message: "a watermark closes the windows of a pipeline table's stream, but this query streams files or an external Delta table; land them in a streaming table first and aggregate its stream".into(),
                });
            }
            if unions_stream_and_batch(&plan, &streamed) {
                return Err(Error::InvalidDefinition {
                    dataset: def.name.clone(),
                    message: "a streaming query cannot be computed incrementally: it unions a stream with rows read whole, which would append those rows again in every run; read both sides as streams, or write the batch rows with a `once` flow [_LEGACY_ERROR_TEMP_3102]".into(),
                });
            }
            check_streaming_plan(def, kind, &plan)?;
        }
        let read_schema = if kind.is_stored() {
            self.storage.stored_schema(&output_schema)?
        } else {
            output_schema.clone()
        };
        let placeholder: Arc<dyn TableProvider> = Arc::new(Placeholder {
            binding: Binding::Dataset(def.name.clone()),
            schema: read_schema.clone(),
        });
        let stream_placeholder: Arc<dyn TableProvider> = Arc::new(Placeholder {
            binding: Binding::Stream(def.name.clone()),
            schema: read_schema.clone(),
        });
        Ok(Resolved {
            def: def.clone(),
            kind,
            plan,
            output_schema,
            read_schema,
            inputs: call.inputs,
            sources: call.sources,
            file_sources: call.file_sources,
            stream_files: call.stream_files,
            stream_skips: call.stream_skips,
            target: None,
            writes,
            flows: Vec::new(),
            placeholder,
            stream_placeholder,
        })
    }

    fn suggestion(&self, name: &str) -> Option<String> {
        let lower = name.to_ascii_lowercase();
        self.defs
            .keys()
            .chain(self.externals.keys())
            .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), c))
            .filter(|(d, c)| *d <= (c.len() / 3).max(2))
            .min()
            .map(|(_, c)| c.clone())
    }
}

pub(crate) fn column_list(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Levenshtein distance, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Whether `view` reads a stream, itself or through the temporary views it reads.
/// Spark fuses the SQL confs of the temporary views a flow reads (directly or through other
/// views) into the flow's own; two values of one key are an error.
fn check_sql_confs(
    def: &DatasetDef,
    inputs: &BTreeMap<String, ReadMode>,
    resolved: &HashMap<String, Arc<Resolved>>,
) -> Result<()> {
    let mut seen: BTreeMap<&str, (&str, &str)> = def
        .sql_conf
        .iter()
        .map(|(k, v)| (k.as_str(), (v.as_str(), def.name.as_str())))
        .collect();
    let mut stack: Vec<&str> = inputs.keys().map(String::as_str).collect();
    let mut visited = BTreeSet::new();
    while let Some(name) = stack.pop() {
        if !visited.insert(name) {
            continue;
        }
        let Some(view) = resolved
            .get(name)
            .filter(|r| r.kind == DatasetKind::TemporaryView)
        else {
            continue;
        };
        for (key, value) in &view.def.sql_conf {
            match seen.get(key.as_str()) {
                Some((other, by)) if *other != value.as_str() => {
                    return Err(Error::InvalidDefinition {
                        dataset: def.name.clone(),
                        message: format!(
                            "SQL conf `{key}` is '{other}' for `{by}` and '{value}' for `{name}`, which this flow reads; the confs of a flow and of the views it reads must agree (they apply to one query) [DUPLICATE_FLOW_SQL_CONF]"
                        ),
                    });
                }
                Some(_) => {}
                None => {
                    seen.insert(key.as_str(), (value.as_str(), view.def.name.as_str()));
                }
            }
        }
        stack.extend(view.inputs.keys().map(String::as_str));
    }
    Ok(())
}

fn streams_through_views(resolved: &HashMap<String, Arc<Resolved>>, view: &Resolved) -> bool {
    !view.stream_files.is_empty()
        || view.inputs.iter().any(|(input, mode)| {
            mode.is_stream()
                || resolved.get(input).is_some_and(|r| {
                    r.kind == DatasetKind::TemporaryView && streams_through_views(resolved, r)
                })
        })
}

impl Scope {
    fn current<T>(function: &'static str, f: impl FnOnce(&Scope) -> Result<T>) -> Result<T> {
        SCOPE
            .try_with(|scope| f(scope))
            .map_err(|_| Error::OutsideQueryFunction { function })?
    }

    fn call(&self) -> std::sync::MutexGuard<'_, Call> {
        self.call.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The provider a name in the current query stands for, recording the dependency.
    fn bind(&self, name: &str, mode: ReadMode) -> Result<(String, Arc<dyn TableProvider>)> {
        let resolver = &self.resolver;
        if let Some(dataset) = resolver.canonical(name) {
            let (current, location) = {
                let call = self.call();
                (call.dataset.clone(), call.location)
            };
            if *dataset == current {
                return Err(Error::Cycle {
                    path: vec![(current.clone(), location), (current, location)],
                });
            }
            if resolver.defs[dataset].kind == DatasetKind::Sink {
                return Err(Error::InvalidDefinition {
                    dataset: current,
                    message: format!(
                        "`{dataset}` is a sink, which append flows write and nothing reads; read the datasets its flows read"
                    ),
                });
            }
            if let Some(target) = &resolver.defs[dataset].target {
                return Err(Error::InvalidDefinition {
                    dataset: current,
                    message: format!(
                        "`{dataset}` is an append flow into `{target}`, not a dataset; read `{target}`"
                    ),
                });
            }
            let resolved = resolver
                .state()
                .resolved
                .get(dataset)
                .cloned()
                .ok_or_else(|| Error::Deferred(Pending::Dataset(dataset.clone())))?;
            if resolver.defs.get(&current).is_some_and(|d| d.persisted)
                && resolved.kind == DatasetKind::TemporaryView
                && !resolved.def.persisted
            {
                return Err(Error::InvalidDefinition {
                    dataset: current,
                    message: format!(
                        "a view (CREATE VIEW, which Spark persists) may not read the temporary view `{dataset}`; make it a temporary view too, or read the tables `{dataset}` reads [INVALID_TEMP_OBJ_REFERENCE]"
                    ),
                });
            }
            // A temporary view is inlined into its reader: read as a stream, its own stream
            // reads become the reader's (its plan is the batch placeholder's).
            let streaming_view = resolved.kind == DatasetKind::TemporaryView
                && streams_through_views(&resolver.state().resolved, &resolved);
            let placeholder = match mode {
                ReadMode::Batch if streaming_view => {
                    return Err(Error::InvalidDefinition {
                        dataset: current,
                        message: format!(
                            "`{dataset}` is a streaming view (its query reads a stream), so it is read as a stream: write STREAM({dataset}) (Python: read_stream) [INCOMPATIBLE_STREAMING_VIEW_READ]"
                        ),
                    });
                }
                ReadMode::Batch => resolved.placeholder.clone(),
                _ if streaming_view => resolved.placeholder.clone(),
                _ if resolved.kind == DatasetKind::TemporaryView => {
                    return Err(Error::InvalidDefinition {
                        dataset: current,
                        message: format!(
                            "`{dataset}` is a temporary view that reads no stream, so it cannot be read as a stream; read `{dataset}` whole, or make its query read a stream [INCOMPATIBLE_BATCH_VIEW_READ]"
                        ),
                    });
                }
                ReadMode::Stream | ReadMode::StreamSkippingChanges => {
                    resolved.stream_placeholder.clone()
                }
            };
            let mut call = self.call();
            let entry = call.inputs.entry(dataset.clone()).or_insert(mode);
            *entry = (*entry).max(mode);
            return Ok((dataset.clone(), placeholder));
        }
        if let Some((external, _)) = resolver.external(name) {
            if mode.is_stream() {
                let call = self.call();
                return Err(Error::InvalidDefinition {
                    dataset: call.dataset.clone(),
                    message: format!(
                        "`{external}` is an external table that is not a Delta table, so it cannot be read as a stream; read it whole, or land its files in a directory and read them as a stream of files"
                    ),
                });
            }
            let provider = resolver
                .state()
                .externals
                .get(external)
                .cloned()
                .ok_or_else(|| Error::Deferred(Pending::External(external.clone())))?;
            let spec = match resolver.external(external) {
                Some((_, ExternalTable::Source(spec))) => Some(spec.clone()),
                _ => None,
            };
            let mut call = self.call();
            call.sources.insert(external.clone());
            call.external_read(spec.as_ref());
            return Ok((external.clone(), provider));
        }
        let call = self.call();
        Err(Error::UnknownDataset {
            name: name.to_string(),
            referenced_by: call.dataset.clone(),
            location: call.location,
            suggestion: resolver.suggestion(name),
        })
    }

    fn scan(&self, table_name: String, provider: Arc<dyn TableProvider>) -> Plan {
        let plan =
            LogicalPlanBuilder::scan(table_name, provider_as_source(provider), None)?.build()?;
        Ok(DataFrame::new(self.resolver.session.state(), plan))
    }
}

/// Reads pipeline dataset `name` (or a registered external table) whole or as a stream.
pub(crate) fn read_dataset(name: &str, mode: ReadMode, function: &'static str) -> Plan {
    // An external Delta table read as a stream: its commits since the flow's checkpoint.
    let delta = Scope::current(function, |scope| {
        let resolver = &scope.resolver;
        Ok(match resolver.external(name) {
            Some((_, ExternalTable::Source(spec @ SourceSpec::Delta { .. })))
                if mode.is_stream() && resolver.canonical(name).is_none() =>
            {
                Some(spec.clone())
            }
            _ => None,
        })
    })?;
    if let Some(spec) = delta {
        return read_stream_source(spec, mode == ReadMode::StreamSkippingChanges, function);
    }
    Scope::current(function, |scope| {
        let (table, provider) = scope.bind(name, mode)?;
        scope.scan(table, provider)
    })
}

/// Reads an external source by path.
pub(crate) fn read_source(spec: SourceSpec, function: &'static str) -> Plan {
    Scope::current(function, |scope| {
        let provider = scope
            .resolver
            .state()
            .sources
            .get(&spec)
            .cloned()
            .ok_or_else(|| Error::Deferred(Pending::Source(spec.clone())))?;
        {
            let mut call = scope.call();
            call.sources.insert(spec.to_string());
            call.external_read(Some(&spec));
        }
        scope.scan(spec.table_name(), provider)
    })
}

/// Reads what an external source gained since the flow's checkpoint: the files under a path
/// not processed yet, or the commits of a Delta table.
pub(crate) fn read_stream_source(
    spec: SourceSpec,
    skip_change_commits: bool,
    function: &'static str,
) -> Plan {
    Scope::current(function, |scope| {
        let dataset = scope.call().dataset.clone();
        let schema = scope
            .resolver
            .state()
            .stream_sources
            .get(&(dataset, spec.clone()))
            .cloned()
            .ok_or_else(|| Error::Deferred(Pending::StreamSource(spec.clone())))?;
        let binding = Binding::Source(spec.clone());
        let key = binding.stream_key().expect("files are a stream");
        {
            let mut call = scope.call();
            call.sources.insert(spec.to_string());
            if skip_change_commits {
                call.stream_skips.insert(key.clone());
            }
            call.stream_files.insert(key, spec.clone());
        }
        let placeholder: Arc<dyn TableProvider> = Arc::new(Placeholder { binding, schema });
        scope.scan(spec.table_name(), placeholder)
    })
}

/// What a streaming query does with its streams that new rows alone cannot answer.
#[derive(Default)]
struct StreamUse {
    /// The first node that aggregates, deduplicates or windows rows of a stream.
    aggregate: Option<String>,
    /// Whether it joins two streams.
    joins_streams: bool,
}

impl StreamUse {
    fn of(plan: &LogicalPlan) -> StreamUse {
        let mut found = StreamUse::default();
        let _ = plan.apply_with_subqueries(|node| {
            match node {
                LogicalPlan::Aggregate(_) | LogicalPlan::Window(_) | LogicalPlan::Distinct(_)
                    if found.aggregate.is_none() && count_stream_scans(node) > 0 =>
                {
                    found.aggregate = Some(node.display().to_string());
                }
                LogicalPlan::Join(join)
                    if count_stream_scans(&join.left) > 0
                        && count_stream_scans(&join.right) > 0 =>
                {
                    found.joins_streams = true;
                }

                _ => {}
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        });
        found
    }
}

/// Whether `plan` aggregates (or deduplicates, or windows) rows of a stream, and joins no two
/// streams: a query whose complete result lakeflow computes from its inputs read whole.
fn aggregates_a_stream(plan: &LogicalPlan) -> bool {
    let found = StreamUse::of(plan);
    found.aggregate.is_some() && !found.joins_streams
}

/// `plan` with each stream of a pipeline dataset read whole instead.
fn streams_read_whole(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::common::tree_node::Transformed;
    let rewritten = plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::TableScan(scan) = &node else {
            return Ok(Transformed::no(node));
        };
        let Some(provider) = Placeholder::of(&scan.source) else {
            return Ok(Transformed::no(node));
        };
        let Some(placeholder) = provider.downcast_ref::<Placeholder>() else {
            return Ok(Transformed::no(node));
        };
        let Binding::Stream(name) = &placeholder.binding else {
            return Ok(Transformed::no(node));
        };
        let whole: Arc<dyn TableProvider> = Arc::new(Placeholder {
            binding: Binding::Dataset(name.clone()),
            schema: placeholder.schema.clone(),
        });
        let mut scan = scan.clone();
        scan.source = provider_as_source(whole);
        Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
    })?;
    Ok(rewritten.data)
}

/// A streaming query must be correct when it sees only new rows: no aggregation, window or
/// DISTINCT over a stream, and no join of two streams. Materialized views do not read streams.
fn check_streaming_plan(def: &DatasetDef, kind: DatasetKind, plan: &LogicalPlan) -> Result<()> {
    let invalid = |message: String| {
        Err(Error::InvalidDefinition {
            dataset: def.name.clone(),
            message,
        })
    };
    if kind == DatasetKind::MaterializedView {
        return invalid(
            "a materialized view reads its inputs whole: read them whole (`read(..)` in Rust, no `STREAM` in SQL), or make it a streaming table".into(),
        );
    }
    if kind == DatasetKind::TemporaryView {
        return Ok(());
    }
    let found = StreamUse::of(plan);
    let problem = if found.joins_streams {
        Some("it joins two streams, which would miss matches between rows of different runs; join a stream with a table read whole (read(..)) instead".to_string())
    } else if def.watermark.is_some() {
        // Time windows closed by the watermark are appended once each (`stream.rs`).
        (!groups_by_window(plan)).then(|| "it has a watermark but groups its stream by no time window; group by window(<event time>, '<duration>') so that each window is appended once the watermark passes its end".to_string())
    } else {
        found.aggregate.map(|node| format!(
            "it aggregates a stream ({node}), which would only see each run's new rows; aggregate a streaming table instead (land the files in one first), or compute it as a materialized view that reads them whole (no STREAM in SQL, read(..) in Rust)"
        ))
    };
    match problem {
        Some(message) => invalid(format!(
            "a streaming query cannot be computed incrementally: {message}"
        )),
        None => Ok(()),
    }
}

/// Whether an aggregate of `plan` groups by Spark's `window(..)`.
fn groups_by_window(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::Aggregate(aggregate) = node
            && aggregate
                .group_expr
                .iter()
                .any(|e| matches!(e, datafusion::logical_expr::Expr::ScalarFunction(f) if lakeflow_sql::functions::window::is_time_window(f.name())))
        {
            found = true;
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    found
}

/// Whether a `UNION` of `plan` has a stream on one side and no stream on another: a scan of
/// a stream, or of a dataset in `streamed` (a streaming view, read through its batch
/// placeholder), is a stream.
fn unions_stream_and_batch(plan: &LogicalPlan, streamed: &BTreeSet<String>) -> bool {
    let mut mixed = false;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::Union(union) = node {
            let streams: Vec<bool> = union
                .inputs
                .iter()
                .map(|i| stream_scans(i, streamed) > 0)
                .collect();
            mixed |= streams.contains(&true) && streams.contains(&false);
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    mixed
}

fn count_stream_scans(plan: &LogicalPlan) -> usize {
    stream_scans(plan, &BTreeSet::new())
}

/// The scans of `plan` that read a stream: of a dataset's or a source's new rows, or of a
/// dataset in `streamed` (a streaming view, read through its batch placeholder).
fn stream_scans(plan: &LogicalPlan, streamed: &BTreeSet<String>) -> usize {
    let mut count = 0;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Some(provider) = Placeholder::of(&scan.source)
            && let Some(placeholder) = provider.downcast_ref::<Placeholder>()
            && match &placeholder.binding {
                Binding::Dataset(name) => streamed.contains(name),
                binding => binding.stream_key().is_some(),
            }
        {
            count += 1;
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    });
    count
}

/// Plans a SQL query whose table names are pipeline datasets or registered external tables;
/// the names in `given` stand for the given plans instead (see [`crate::query::sql_with`]).
pub(crate) fn plan_sql(
    query: &str,
    given: &[(String, DataFrame)],
    options: crate::query::SqlOptions,
) -> Plan {
    let spark = Scope::current("sql", |scope| {
        Ok(SparkSql::of(scope.resolver.session.state().config()))
    })?;
    if let Some(spark) = spark {
        let spark = match options.ansi {
            Some(ansi) => spark.with_ansi(ansi),
            None => spark,
        };
        let spark = match &options.time_zone {
            Some(zone) => spark.with_time_zone(zone),
            None => spark,
        };
        return plan_spark_sql(
            spark,
            query,
            given,
            options.schema.as_deref(),
            options.time_zone.is_none(),
        );
    }
    Scope::current("sql", |scope| {
        let state = scope.resolver.session.state();
        let dialect = state.config().options().sql_parser.dialect;
        let statement = state.sql_to_statement(query, &dialect)?;
        let is_given = |name: &str| given.iter().any(|(g, _)| g.eq_ignore_ascii_case(name));
        let mut bound = Vec::new();
        for reference in state.resolve_table_references(&statement)? {
            let name = match (reference.schema(), reference.catalog()) {
                (None, None) => reference.table().to_string(),
                _ => reference.to_string(),
            };
            // Table functions (`generate_series(..)`, `range(..)`) are not datasets.
            let is_table_function = state.table_functions().contains_key(&name)
                && scope.resolver.canonical(&name).is_none();
            if !is_table_function && !is_given(&name) {
                let (_, provider) = scope.bind(&name, ReadMode::Batch)?;
                bound.push((reference.table().to_string(), provider));
            }
        }
        if given.is_empty() {
            // Every table the statement names is registered in memory now, so planning
            // finishes without waiting on anything.
            let plan = state
                .statement_to_plan(statement)
                .now_or_never()
                .ok_or_else(|| Error::Internal("SQL planning waited on I/O".into()))??;
            return Ok(DataFrame::new(state, plan));
        }
        // The given names live only in a catalog of this statement (the shared session is
        // not touched); each is planned as a view of its plan, then the view's scan is
        // replaced by the plan itself, so the planner sees the placeholders inside it.
        let schema = Arc::new(MemorySchemaProvider::new());
        for (name, provider) in bound {
            schema.register_table(name, provider)?;
        }
        for (name, df) in given {
            schema.register_table(name.to_ascii_lowercase(), df.clone().into_view())?;
        }
        let options = state.config().options();
        let catalog = Arc::new(MemoryCatalogProvider::new());
        catalog.register_schema(&options.catalog.default_schema, schema)?;
        let catalogs = Arc::new(MemoryCatalogProviderList::new());
        catalogs.register_catalog(options.catalog.default_catalog.clone(), catalog);
        let local = SessionStateBuilder::new_from_existing(state.clone())
            .with_catalog_list(catalogs)
            .build();
        let plan = local
            .statement_to_plan(statement)
            .now_or_never()
            .ok_or_else(|| Error::Internal("SQL planning waited on I/O".into()))??;
        let plan = plan
            .transform_up_with_subqueries(|node| {
                let LogicalPlan::TableScan(scan) = &node else {
                    return Ok(Transformed::no(node));
                };
                let Some((_, df)) = given
                    .iter()
                    .find(|(g, _)| g.eq_ignore_ascii_case(scan.table_name.table()))
                else {
                    return Ok(Transformed::no(node));
                };
                let inner = Arc::new(df.logical_plan().clone());
                let aliased = SubqueryAlias::try_new(inner, scan.table_name.clone())?;
                Ok(Transformed::yes(LogicalPlan::SubqueryAlias(aliased)))
            })?
            .data;
        Ok(DataFrame::new(state, plan))
    })
}

/// [`plan_sql`] in Spark's dialect (the session's config holds [`SparkSql`]): the statement
/// is parsed and rewritten by `lakeflow-sql`, each table it names is bound as [`read`]
/// would bind it, each path table (``parquet.`/data` ``) is read as files, and `given` names
/// stand for their plans.
fn plan_spark_sql(
    spark: SparkSql,
    query: &str,
    given: &[(String, DataFrame)],
    schema: Option<&str>,
    fuse_time_zone: bool,
) -> Plan {
    let parsed = spark.parse(query).map_err(|e| sql_error(query, e))?;
    let mut tables: Vec<(String, LogicalPlan)> = Vec::new();
    for path in parsed.paths() {
        let spec = match path.format.as_str() {
            "parquet" => SourceSpec::Files {
                path: path.path.clone(),
                format: crate::source::parquet(),
            },
            "csv" => SourceSpec::Files {
                path: path.path.clone(),
                // Spark reads ``csv.`path` `` without a header.
                format: crate::source::CsvFormat {
                    has_header: false,
                    delimiter: b',',
                }
                .into(),
            },
            "json" => SourceSpec::Files {
                path: path.path.clone(),
                format: crate::source::json(),
            },
            "delta" => SourceSpec::Delta {
                path: path.path.clone(),
            },
            other => {
                return Scope::current("sql", |scope| {
                    Err(Error::InvalidDefinition {
                        dataset: scope.call().dataset.clone(),
                        message: format!(
                            "`{other}.`{}`` reads files of a format lakeflow does not read; use parquet, csv, json or delta",
                            path.path
                        ),
                    })
                });
            }
        };
        let df = read_source(spec, "sql")?;
        tables.push((path.name.clone(), df.logical_plan().clone()));
    }
    Scope::current("sql", |scope| {
        let state = scope.resolver.session.state();
        let mut view_zone: Option<String> = None;
        for reference in parsed.table_references(&state)? {
            let name = match (reference.schema(), reference.catalog()) {
                (None, None) => reference.table().to_string(),
                _ => reference.to_string(),
            };
            if tables.iter().any(|(t, _)| t.eq_ignore_ascii_case(&name)) {
                continue;
            }
            if let Some((_, df)) = given.iter().find(|(g, _)| g.eq_ignore_ascii_case(&name)) {
                tables.push((name, df.logical_plan().clone()));
                continue;
            }
            // Table functions (`range(..)`) are not datasets.
            if state.table_functions().contains_key(&name)
                && scope.resolver.canonical(&name).is_none()
            {
                continue;
            }
            // After `USE SCHEMA s`, `x` is `s.x` when the pipeline defines it.
            let lookup = match (schema, reference.schema()) {
                (Some(schema), None)
                    if scope
                        .resolver
                        .canonical(&format!("{schema}.{name}"))
                        .is_some() =>
                {
                    format!("{schema}.{name}")
                }
                _ => name.clone(),
            };
            let (dataset, provider) = scope.bind(&lookup, ReadMode::Batch)?;
            // A temporary view's `spark.sql.session.timeZone` is the reading query's too
            // (Spark fuses a view's confs into the flow that reads it).
            if fuse_time_zone && view_zone.is_none() {
                view_zone = scope
                    .resolver
                    .state()
                    .resolved
                    .get(&dataset)
                    .filter(|r| r.kind == DatasetKind::TemporaryView)
                    .and_then(|r| r.def.sql_conf.get("spark.sql.session.timeZone").cloned());
            }
            let plan =
                LogicalPlanBuilder::scan(dataset, provider_as_source(provider), None)?.build()?;
            tables.push((name, plan));
        }
        let parsed = match &view_zone {
            Some(zone) => spark
                .with_time_zone(zone)
                .parse(query)
                .map_err(|e| sql_error(query, e))?,
            None => parsed,
        };
        let plan = parsed
            .plan(&state, tables)
            .map_err(|e| sql_error(query, e))?;
        Ok(DataFrame::new(state, plan))
    })
}

/// A DataFusion error from planning SQL, with advice where lakeflow has some.
fn sql_error(query: &str, error: datafusion::error::DataFusionError) -> Error {
    let text = error.to_string();
    if let Some(rest) = text.split("Invalid function '").nth(1)
        && let Some(name) = rest.split('\'').next()
    {
        return Error::UnknownFunction {
            name: name.to_string(),
            query: query.to_string(),
        };
    }
    Error::DataFusion(error)
}
