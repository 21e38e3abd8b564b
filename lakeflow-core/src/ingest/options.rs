//! The options of file ingestion, as `read_files(path, key => value, ..)`, `cloud_files(path,
//! fmt, map(..))` and Auto Loader's `cloudFiles.*` spell them: names are case-insensitive, a
//! `cloudFiles.` prefix is accepted, options that only configure Databricks' cloud services
//! are accepted with a warning, and any other name is an error that lists the known ones.
//!
//! This module is data only: it parses and checks option values; `reader.rs` and `listing.rs`
//! act on them.

use std::fmt;

/// How the files of an ingested source are encoded.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum IngestFormat {
    /// Comma (or `sep`) separated values.
    Csv,
    /// JSON: one record per line, or with `multiLine` whole files (a record or an array).
    Json,
    /// Apache Parquet.
    Parquet,
    /// Text: one row per line, in a column `value`.
    Text,
}

impl IngestFormat {
    /// The format named `name` (`csv`, `json`, `parquet`, `text`), case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "csv" => IngestFormat::Csv,
            "json" => IngestFormat::Json,
            "parquet" => IngestFormat::Parquet,
            "text" => IngestFormat::Text,
            _ => return None,
        })
    }

    /// Whether values are text that schema inference types only when asked.
    pub fn is_text(self) -> bool {
        matches!(self, IngestFormat::Csv | IngestFormat::Json)
    }
}

impl fmt::Display for IngestFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IngestFormat::Csv => "csv",
            IngestFormat::Json => "json",
            IngestFormat::Parquet => "parquet",
            IngestFormat::Text => "text",
        })
    }
}

/// What to do with a record that does not fit the schema (Spark's `mode`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Mode {
    /// Keep the row: values that do not fit become NULL and go to the rescued data column.
    Permissive,
    /// Leave the row out, and count it.
    DropMalformed,
    /// Fail the flow, naming the file and the line.
    FailFast,
}

/// What a new column in a new file does to the held schema (`schemaEvolutionMode`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum SchemaEvolution {
    /// The flow fails naming the file and the column; the held schema gains the column and
    /// the next run reads it (the default without a given schema).
    AddNewColumns,
    /// As `AddNewColumns`, and a column whose values in a new file need a wider type (INT to
    /// BIGINT or DOUBLE, FLOAT to DOUBLE, a wider DECIMAL, DATE to TIMESTAMP_NTZ) is widened:
    /// the flow stops, and the next run widens the table's column, keeping its rows.
    AddNewColumnsWithTypeWidening,
    /// The schema never changes; new columns go to the rescued data column.
    Rescue,
    /// The flow fails until the schema is changed or the file removed.
    FailOnNewColumns,
    /// The schema never changes and new columns are ignored (the default with a schema).
    None,
}

/// How to read the files of an ingested source: the format and every `read_files` / Auto
/// Loader option lakeflow understands.
///
/// ```
/// use lakeflow_core::ingest::FileOptions;
///
/// let options = FileOptions::csv()
///     .header(true)
///     .option("cloudFiles.inferColumnTypes", "false")
///     .option("schemaHints", "amount DECIMAL(10,2)");
/// assert!(options.check().is_ok());
/// ```
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct FileOptions {
    pub(crate) format: IngestFormat,
    pub(crate) header: bool,
    pub(crate) delimiter: u8,
    pub(crate) quote: u8,
    pub(crate) escape: u8,
    pub(crate) comment: Option<u8>,
    pub(crate) multi_line: bool,
    pub(crate) null_value: String,
    pub(crate) date_format: Option<String>,
    pub(crate) timestamp_format: Option<String>,
    pub(crate) mode: Mode,
    pub(crate) infer_types: bool,
    pub(crate) schema: Option<String>,
    pub(crate) schema_hints: Option<String>,
    pub(crate) rescued_column: Option<String>,
    pub(crate) evolution: Option<SchemaEvolution>,
    pub(crate) glob: Option<String>,
    pub(crate) recursive: bool,
    pub(crate) modified_after: Option<i64>,
    pub(crate) modified_before: Option<i64>,
    pub(crate) max_files: Option<u64>,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) include_existing: bool,
    pub(crate) allow_overwrites: bool,
    /// `useIncrementalListing` true: list only the names after the last file read.
    pub(crate) incremental_listing: bool,
    /// Whether rows carry the `_metadata` column.
    pub(crate) metadata: bool,
    /// Options accepted but meaningless here, as given.
    pub(crate) ignored: Vec<String>,
    /// The first invalid option given to a builder method, reported when the source is read.
    pub(crate) invalid: Option<String>,
}

/// The options that change what is read, as the error for an unknown one lists them.
pub const KNOWN_OPTIONS: &[&str] = &[
    "format",
    "schema",
    "header",
    "sep",
    "delimiter",
    "quote",
    "escape",
    "comment",
    "multiLine",
    "nullValue",
    "encoding",
    "dateFormat",
    "timestampFormat",
    "mode",
    "inferSchema",
    "inferColumnTypes",
    "schemaHints",
    "rescuedDataColumn",
    "schemaEvolutionMode",
    "pathGlobFilter",
    "recursiveFileLookup",
    "modifiedAfter",
    "modifiedBefore",
    "maxFilesPerTrigger",
    "maxBytesPerTrigger",
    "includeExistingFiles",
    "allowOverwrites",
    "useIncrementalListing",
];

/// Options that configure Databricks' cloud services or its own schema store; lakeflow lists
/// files itself and holds the schema in the flow's checkpoint, so they mean nothing here.
const IGNORED_OPTIONS: &[&str] = &[
    "useNotifications",
    "useManagedFileEvents",
    "schemaLocation",
    "region",
    "queueUrl",
    "connectionString",
    "resourceGroup",
    "subscriptionId",
    "tenantId",
    "clientId",
    "clientSecret",
    "projectId",
    "subscription",
    "resourceTag",
    "backfillInterval",
    "useStrictGlobber",
    "validateOptions",
    "fetchParallelism",
    "pathRewrites",
    "maxFileAge",
    "cleanSource",
];

/// The name of the rescued data column unless `rescuedDataColumn` names another.
pub const DEFAULT_RESCUED_COLUMN: &str = "_rescued_data";

impl FileOptions {
    fn new(format: IngestFormat) -> Self {
        FileOptions {
            format,
            header: true,
            delimiter: b',',
            quote: b'"',
            escape: b'\\',
            comment: None,
            multi_line: false,
            null_value: String::new(),
            date_format: None,
            timestamp_format: None,
            mode: Mode::Permissive,
            infer_types: true,
            schema: None,
            schema_hints: None,
            rescued_column: None,
            evolution: None,
            glob: None,
            recursive: true,
            modified_after: None,
            modified_before: None,
            max_files: None,
            max_bytes: None,
            include_existing: true,
            allow_overwrites: false,
            incremental_listing: false,
            metadata: false,
            ignored: Vec::new(),
            invalid: None,
        }
    }

    /// CSV with a header line, `,` as separator, column types inferred (as `read_files`).
    pub fn csv() -> Self {
        Self::new(IngestFormat::Csv)
    }

    /// JSON, one record per line; column types inferred (as `read_files`).
    pub fn json() -> Self {
        Self::new(IngestFormat::Json)
    }

    /// Apache Parquet.
    pub fn parquet() -> Self {
        Self::new(IngestFormat::Parquet)
    }

    /// Text files, one row per line in a column `value`.
    pub fn text() -> Self {
        Self::new(IngestFormat::Text)
    }

    /// Options for `format` with the defaults of `read_files`.
    pub fn for_format(format: IngestFormat) -> Self {
        Self::new(format)
    }

    /// The defaults of Auto Loader (`cloud_files`, `cloudFiles.*`): text formats infer every
    /// column as STRING unless `inferColumnTypes` is set.
    pub fn auto_loader(format: IngestFormat) -> Self {
        FileOptions {
            infer_types: false,
            ..Self::new(format)
        }
    }

    /// The format.
    pub fn format(&self) -> IngestFormat {
        self.format
    }

    /// Whether the first line of a CSV file holds the column names.
    pub fn header(mut self, header: bool) -> Self {
        self.header = header;
        self
    }

    /// The CSV field separator.
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// The schema, in Spark's DDL (`"id INT, name STRING"`), instead of inferring one.
    pub fn schema(mut self, ddl: impl Into<String>) -> Self {
        self.schema = Some(ddl.into());
        self
    }

    /// Types for some columns of the inferred schema (`"amount DOUBLE, day DATE"`).
    pub fn schema_hints(mut self, ddl: impl Into<String>) -> Self {
        self.schema_hints = Some(ddl.into());
        self
    }

    /// Whether text formats infer column types (else every column is STRING).
    pub fn infer_column_types(mut self, infer: bool) -> Self {
        self.infer_types = infer;
        self
    }

    /// What to do with records that do not fit.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The name of the rescued data column.
    pub fn rescued_data_column(mut self, name: impl Into<String>) -> Self {
        self.rescued_column = Some(name.into());
        self
    }

    /// Adds the `_metadata` column (`file_path`, `file_name`, `file_size`,
    /// `file_modification_time`) to the rows. SQL adds it when the query names `_metadata`.
    pub fn with_metadata(mut self) -> Self {
        self.metadata = true;
        self
    }

    /// Any option by its `read_files` / Auto Loader name (case-insensitive, `cloudFiles.`
    /// prefix allowed). An invalid option or value makes reading the source fail with a
    /// message naming it.
    pub fn option(mut self, key: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        if let Err(message) = self.set(key.as_ref(), value.as_ref()) {
            self.invalid.get_or_insert(message);
        }
        self
    }

    /// Every option given and how it was taken, or the first invalid one's message.
    pub fn check(&self) -> Result<(), String> {
        match &self.invalid {
            Some(message) => Err(message.clone()),
            None => {
                if let Some(ddl) = &self.schema {
                    super::ddl::parse_schema(ddl).map_err(|e| format!("option `schema`: {e}"))?;
                }
                if let Some(ddl) = &self.schema_hints {
                    super::ddl::parse_schema(ddl)
                        .map_err(|e| format!("option `schemaHints`: {e}"))?;
                }
                Ok(())
            }
        }
    }

    /// Options given that lakeflow accepts and ignores (notification services, regions, the
    /// schema location): the run warns about each.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// The rescued data column, if rows carry one: the name given, or `_rescued_data` when
    /// the schema is inferred.
    pub fn rescued_column(&self) -> Option<&str> {
        match (&self.rescued_column, &self.schema) {
            (Some(name), _) => Some(name.as_str()),
            (None, None) if self.format != IngestFormat::Text => Some(DEFAULT_RESCUED_COLUMN),
            _ => None,
        }
    }

    /// The schema evolution mode in effect: as given, else `addNewColumns` when the schema is
    /// inferred and `none` when it is given.
    pub fn evolution(&self) -> SchemaEvolution {
        match (self.evolution, &self.schema) {
            (Some(mode), _) => mode,
            (None, None) => SchemaEvolution::AddNewColumns,
            (None, Some(_)) => SchemaEvolution::None,
        }
    }

    /// The read mode.
    pub fn read_mode(&self) -> Mode {
        self.mode
    }

    /// Sets option `key` to `value`; the error says what is wrong with either.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let name = key.trim();
        let bare = name
            .strip_prefix_ignore_case("cloudFiles.")
            .unwrap_or(name)
            .to_ascii_lowercase();
        let bool_value = || parse_bool(name, value);
        match bare.as_str() {
            "format" => {
                self.format = IngestFormat::parse(value).ok_or_else(|| {
                    format!("format `{value}` is not supported; use csv, json, parquet or text")
                })?
            }
            "schema" => self.schema = Some(value.to_string()),
            "header" => self.header = bool_value()?,
            "sep" | "delimiter" => self.delimiter = parse_char(name, value)?,
            "quote" => self.quote = parse_char(name, value)?,
            "escape" => self.escape = parse_char(name, value)?,
            "comment" => {
                self.comment = match value {
                    "" => None,
                    _ => Some(parse_char(name, value)?),
                }
            }
            "multiline" => self.multi_line = bool_value()?,
            "nullvalue" => self.null_value = value.to_string(),
            "encoding" | "charset" => {
                let lower = value.to_ascii_lowercase().replace(['-', '_'], "");
                if lower != "utf8" {
                    return Err(format!(
                        "option `{name}` is `{value}`, but lakeflow reads UTF-8 only; convert the files (for example `iconv -f {value} -t UTF-8`) or leave the option out"
                    ));
                }
            }
            "dateformat" => self.date_format = Some(value.to_string()),
            "timestampformat" => self.timestamp_format = Some(value.to_string()),
            "mode" => {
                self.mode = match value.to_ascii_uppercase().as_str() {
                    "PERMISSIVE" => Mode::Permissive,
                    "DROPMALFORMED" => Mode::DropMalformed,
                    "FAILFAST" => Mode::FailFast,
                    _ => {
                        return Err(format!(
                            "option `{name}` is PERMISSIVE, DROPMALFORMED or FAILFAST, not `{value}`"
                        ));
                    }
                }
            }
            "inferschema" | "infercolumntypes" => self.infer_types = bool_value()?,
            "schemahints" => self.schema_hints = Some(value.to_string()),
            "rescueddatacolumn" => {
                if value.trim().is_empty() {
                    return Err(format!("option `{name}` needs a column name"));
                }
                self.rescued_column = Some(value.trim().to_string())
            }
            "schemaevolutionmode" => {
                self.evolution = Some(match value.to_ascii_lowercase().as_str() {
                    "addnewcolumns" => SchemaEvolution::AddNewColumns,
                    "addnewcolumnswithtypewidening" => {
                        SchemaEvolution::AddNewColumnsWithTypeWidening
                    }
                    "rescue" => SchemaEvolution::Rescue,
                    "failonnewcolumns" => SchemaEvolution::FailOnNewColumns,
                    "none" => SchemaEvolution::None,
                    _ => {
                        return Err(format!(
                            "option `{name}` is addNewColumns, addNewColumnsWithTypeWidening, rescue, failOnNewColumns or none, not `{value}`"
                        ));
                    }
                })
            }
            "pathglobfilter" | "filenamepattern" => {
                glob::Pattern::new(value)
                    .map_err(|e| format!("option `{name}`: `{value}` is not a glob: {e}"))?;
                self.glob = Some(value.to_string())
            }
            "recursivefilelookup" => self.recursive = bool_value()?,
            "modifiedafter" => self.modified_after = Some(parse_time(name, value)?),
            "modifiedbefore" => self.modified_before = Some(parse_time(name, value)?),
            "maxfilespertrigger" => {
                self.max_files = Some(
                    value
                        .trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            format!("option `{name}` is a number of files above 0, not `{value}`")
                        })?,
                )
            }
            "maxbytespertrigger" => self.max_bytes = Some(parse_bytes(name, value)?),
            "includeexistingfiles" => self.include_existing = bool_value()?,
            "allowoverwrites" => self.allow_overwrites = bool_value()?,
            // `auto` lists everything, as `false` does: lakeflow cannot know that names
            // arrive in order unless told.
            "useincrementallisting" => {
                self.incremental_listing = match value.trim().to_ascii_lowercase().as_str() {
                    "auto" => false,
                    _ => bool_value()?,
                }
            }
            other => {
                if IGNORED_OPTIONS
                    .iter()
                    .any(|o| o.eq_ignore_ascii_case(other))
                {
                    self.ignored.push(name.to_string());
                } else {
                    return Err(format!(
                        "unknown option `{name}`; lakeflow reads {} (names are case-insensitive, `cloudFiles.` may prefix them)",
                        KNOWN_OPTIONS.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }
}

trait StripPrefixIgnoreCase {
    fn strip_prefix_ignore_case(&self, prefix: &str) -> Option<&str>;
}

impl StripPrefixIgnoreCase for str {
    fn strip_prefix_ignore_case(&self, prefix: &str) -> Option<&str> {
        let head = self.get(..prefix.len())?;
        head.eq_ignore_ascii_case(prefix)
            .then(|| &self[prefix.len()..])
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("option `{name}` is true or false, not `{value}`")),
    }
}

fn parse_char(name: &str, value: &str) -> Result<u8, String> {
    match value {
        "\\t" => return Ok(b'\t'),
        "\\n" => return Ok(b'\n'),
        "\\\\" => return Ok(b'\\'),
        _ => {}
    }
    match value.as_bytes() {
        [byte] if byte.is_ascii() => Ok(*byte),
        _ => Err(format!(
            "option `{name}` is one ASCII character (or \\t), not `{value}`"
        )),
    }
}

/// A time as Spark's `modifiedAfter` takes it (`2024-06-01T13:00:00`, optionally with a zone
/// offset; without one, UTC), in microseconds since the epoch.
fn parse_time(name: &str, value: &str) -> Result<i64, String> {
    let value = value.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(t.timestamp_micros());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, format) {
            return Ok(t.and_utc().timestamp_micros());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(d
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_micros());
    }
    Err(format!(
        "option `{name}` is a time such as 2024-06-01T13:00:00 (UTC) or 2024-06-01T13:00:00+02:00, not `{value}`"
    ))
}

/// A size such as `10g`, `512m`, `100k` or `2048` (bytes).
fn parse_bytes(name: &str, value: &str) -> Result<u64, String> {
    let lower = value.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, unit) = match lower.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&lower[..i], &lower[i..]),
        None => (lower, ""),
    };
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => 0,
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|n| *n > 0)
        .ok_or_else(|| {
            format!("option `{name}` is a size such as 10g, 512m or 1048576, not `{value}`")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_may_carry_the_cloud_files_prefix() {
        let mut o = FileOptions::csv();
        o.set("HEADER", "false").unwrap();
        o.set("cloudFiles.InferColumnTypes", "FALSE").unwrap();
        o.set("Sep", "\\t").unwrap();
        o.set("cloudfiles.maxBytesPerTrigger", "10m").unwrap();
        assert!(!o.header);
        assert!(!o.infer_types);
        assert_eq!(o.delimiter, b'\t');
        assert_eq!(o.max_bytes, Some(10 << 20));
    }

    #[test]
    fn cloud_service_options_are_ignored_by_name() {
        let mut o = FileOptions::json();
        o.set("cloudFiles.useNotifications", "true").unwrap();
        o.set("cloudFiles.schemaLocation", "/x").unwrap();
        assert_eq!(
            o.ignored(),
            ["cloudFiles.useNotifications", "cloudFiles.schemaLocation"]
        );
    }

    #[test]
    fn an_unknown_option_is_named_with_the_known_ones() {
        let e = FileOptions::csv()
            .set("inferColumTypes", "true")
            .unwrap_err();
        assert!(e.contains("unknown option `inferColumTypes`"), "{e}");
        assert!(e.contains("inferColumnTypes"), "{e}");
        let e = FileOptions::csv().set("encoding", "latin1").unwrap_err();
        assert!(e.contains("UTF-8 only"), "{e}");
        let e = FileOptions::csv().set("mode", "lenient").unwrap_err();
        assert!(e.contains("FAILFAST"), "{e}");
    }

    #[test]
    fn defaults_follow_read_files_and_auto_loader() {
        assert!(FileOptions::csv().infer_types);
        assert!(!FileOptions::auto_loader(IngestFormat::Csv).infer_types);
        let inferred = FileOptions::csv();
        assert_eq!(inferred.rescued_column(), Some("_rescued_data"));
        assert_eq!(inferred.evolution(), SchemaEvolution::AddNewColumns);
        let given = FileOptions::csv().schema("a INT");
        assert_eq!(given.rescued_column(), None);
        assert_eq!(given.evolution(), SchemaEvolution::None);
        let renamed = given.rescued_data_column("bad");
        assert_eq!(renamed.rescued_column(), Some("bad"));
    }

    #[test]
    fn times_and_sizes_parse() {
        assert_eq!(parse_time("t", "1970-01-01T00:00:01").unwrap(), 1_000_000);
        assert_eq!(parse_time("t", "1970-01-01T01:00:00+01:00").unwrap(), 0);
        assert!(parse_time("t", "yesterday").is_err());
        assert_eq!(parse_bytes("b", "1k").unwrap(), 1024);
        assert_eq!(parse_bytes("b", "2GB").unwrap(), 2 << 30);
        assert!(parse_bytes("b", "lots").is_err());
    }
}
