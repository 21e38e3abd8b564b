//! The spec file of a project: `lakeflow.yml` (or Spark's `spark-pipeline.yml` /
//! `spark-pipeline.yaml`), found in a directory or one of its parents, and read into a
//! [`Spec`] with every mistake reported at its line and column.
//!
//! The YAML is read as events with their positions and built into a small tree of marked
//! nodes, so that an unknown key, a value of the wrong shape or a glob that matches nothing
//! (checked by the caller) can name the line it is on. This module reads no SQL.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

use super::{Location, ProjectError};

/// The file names a spec may have, in the order they are looked for.
pub const SPEC_FILE_NAMES: [&str; 4] = [
    "lakeflow.yml",
    "lakeflow.yaml",
    "spark-pipeline.yml",
    "spark-pipeline.yaml",
];

/// A pipeline spec: what a project is made of and where its tables go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The spec file.
    pub path: PathBuf,
    /// `name`: the pipeline's name in its event log.
    pub name: String,
    /// `storage`: where tables are stored, a directory (relative to the spec file's
    /// directory) or a URL; `None` for lakeflow's default, `lakeflow-data` next to the spec.
    pub storage: Option<String>,
    /// `catalog`: names qualified with it are the pipeline's own datasets.
    pub catalog: Option<String>,
    /// `database` (or `schema`): names qualified with it are the pipeline's own datasets.
    pub database: Option<String>,
    /// `configuration`: values readable from definitions and substituted for `${key}` in SQL.
    pub configuration: BTreeMap<String, String>,
    /// `storage_options`: object-store options for the storage and the files the pipeline
    /// reads (`aws_endpoint`, `azure_storage_account_name`, ...); credentials are better
    /// left to the standard environment variables.
    pub storage_options: BTreeMap<String, String>,
    /// `libraries`: glob patterns of the definition files, relative to the spec's directory.
    pub libraries: Vec<LibraryGlob>,
    /// `engine`: the Ballista cluster that runs the flows (`df://host:50050`); `None` runs
    /// them in the process (needs a binary built with the `ballista` feature).
    pub engine: Option<String>,
    /// `tables`: tables outside the pipeline that its queries read by name, as a catalog
    /// would give them (`samples.tpch.orders: /data/tpch/orders`), in name order.
    pub tables: BTreeMap<String, TableMapping>,
}

/// One `tables` entry: a name the pipeline's queries read and where its data is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMapping {
    /// A directory or file (relative to the spec's directory) or a URL.
    pub path: String,
    /// What the data is: `format:` in the spec, Delta when it is not given.
    pub format: TableFormat,
    /// Where the entry is written in the spec file.
    pub location: Location,
}

/// The formats a `tables` entry may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// A Delta table (the default).
    Delta,
    /// Parquet files.
    Parquet,
    /// CSV files with a header line.
    Csv,
    /// JSON files, one object a line.
    Json,
}

impl TableFormat {
    /// Each format with its name in the spec.
    const NAMES: [(&'static str, TableFormat); 4] = [
        ("delta", TableFormat::Delta),
        ("parquet", TableFormat::Parquet),
        ("csv", TableFormat::Csv),
        ("json", TableFormat::Json),
    ];
}

/// One `libraries` entry: `- glob: {include: PATTERN}` (or the pattern alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryGlob {
    /// The pattern; `dir/**` means every file under `dir`.
    pub include: String,
    /// Where the pattern is written in the spec file.
    pub location: Location,
}

impl Spec {
    /// The directory the spec file is in: relative paths in the project start there.
    pub fn root(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Finds the spec file in `dir` or the nearest parent directory that has one.
    pub fn find(dir: &Path) -> Result<PathBuf, ProjectError> {
        let mut current = Some(dir);
        while let Some(dir) = current {
            let found: Vec<PathBuf> = SPEC_FILE_NAMES
                .iter()
                .map(|name| dir.join(name))
                .filter(|p| p.is_file())
                .collect();
            match found.len() {
                0 => current = dir.parent(),
                1 => return Ok(found.into_iter().next().unwrap_or_default()),
                _ => {
                    return Err(ProjectError::SeveralSpecs {
                        dir: dir.to_path_buf(),
                        files: found
                            .iter()
                            .filter_map(|p| p.file_name())
                            .map(|n| n.to_string_lossy().into_owned())
                            .collect(),
                    });
                }
            }
        }
        Err(ProjectError::SpecNotFound {
            dir: dir.to_path_buf(),
        })
    }

    /// Reads and checks the spec file at `path`.
    pub fn load(path: &Path) -> Result<Spec, ProjectError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProjectError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Spec::parse(path, &text)
    }

    /// Reads a spec from `text`; `path` names it in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Spec, ProjectError> {
        let file = path.display().to_string();
        let at = |mark: Mark, message: String| ProjectError::Invalid {
            location: Location::new(&file, mark.line, mark.column),
            message,
        };
        let root = parse_yaml(text).map_err(|(mark, message)| at(mark, message))?;
        let Some(root) = root else {
            return Err(at(
                Mark { line: 1, column: 1 },
                "the spec file is empty; it needs at least `name:` and `libraries:`".into(),
            ));
        };
        let NodeValue::Map(entries) = root.value else {
            return Err(at(
                root.mark,
                "a spec file is a mapping of keys such as `name:`, `storage:` and `libraries:`"
                    .into(),
            ));
        };
        let mut spec = Spec {
            path: path.to_path_buf(),
            name: String::new(),
            storage: None,
            catalog: None,
            database: None,
            configuration: BTreeMap::new(),
            storage_options: BTreeMap::new(),
            libraries: Vec::new(),
            engine: None,
            tables: BTreeMap::new(),
        };
        let mut seen: BTreeMap<String, Mark> = BTreeMap::new();
        let mut name = None;
        for (key, value) in entries {
            let key_text = key
                .scalar()
                .ok_or_else(|| at(key.mark, "a key of the spec must be a plain word".into()))?;
            let canonical = if key_text == "schema" {
                "database"
            } else {
                key_text
            };
            if let Some(first) = seen.get(canonical) {
                return Err(at(
                    key.mark,
                    format!(
                        "`{key_text}` is given twice (first at line {}); keep one",
                        first.line
                    ),
                ));
            }
            seen.insert(canonical.to_string(), key.mark);
            let string = |what: &str| -> Result<String, ProjectError> {
                value.scalar().map(str::to_string).ok_or_else(|| {
                    at(
                        value.mark,
                        format!("`{key_text}` must be {what}, not a list or a mapping"),
                    )
                })
            };
            match key_text {
                "name" => name = Some(string("the pipeline's name")?),
                "storage" => spec.storage = Some(string("a directory or a URL")?),
                "engine" => {
                    let url = string("a cluster URL, df://host:port")?;
                    if !cfg!(feature = "ballista") {
                        return Err(at(
                            value.mark,
                            format!(
                                "`engine: {url}` runs the flows on a Ballista cluster, which needs lakeflow built with the `ballista` feature (`cargo install lakeflow --features ballista`)"
                            ),
                        ));
                    }
                    spec.engine = Some(url);
                }
                "catalog" => spec.catalog = Some(string("a name")?),
                "database" | "schema" => spec.database = Some(string("a name")?),
                "configuration" => {
                    spec.configuration = configuration("configuration", &value, &at)?
                }
                "storage_options" => {
                    spec.storage_options = configuration("storage_options", &value, &at)?
                }
                "libraries" => spec.libraries = libraries(&value, &file, &at)?,
                "tables" => spec.tables = tables(&value, &file, &at)?,
                other => {
                    return Err(at(
                        key.mark,
                        format!(
                            "unknown key `{other}`; a spec has `name`, `storage`, `storage_options`, `libraries`, `catalog`, `database` (or `schema`), `configuration`, `tables` and `engine`{}",
                            suggest(other)
                        ),
                    ));
                }
            }
        }
        spec.name = match name {
            Some(name) if !name.trim().is_empty() => name,
            _ => {
                return Err(at(
                    Mark { line: 1, column: 1 },
                    "the spec has no `name:`; add `name: my_pipeline`".into(),
                ));
            }
        };
        if spec.libraries.is_empty() {
            return Err(at(
                seen.get("libraries").copied().unwrap_or(Mark { line: 1, column: 1 }),
                "the spec lists no `libraries:`, so the pipeline would have no definitions; add\n  libraries:\n    - glob:\n        include: transformations/**".into(),
            ));
        }
        Ok(spec)
    }
}

fn suggest(key: &str) -> String {
    const KEYS: [&str; 10] = [
        "engine",
        "tables",
        "name",
        "storage",
        "storage_options",
        "libraries",
        "catalog",
        "database",
        "schema",
        "configuration",
    ];
    KEYS.iter()
        .find(|k| {
            let k = k.as_bytes();
            let key = key.to_ascii_lowercase();
            let key = key.as_bytes();
            key == k
                || (key.len().abs_diff(k.len()) <= 2
                    && key.iter().zip(k).filter(|(a, b)| a == b).count() + 2 >= k.len())
        })
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

fn configuration(
    what: &str,
    value: &Node,
    at: &impl Fn(Mark, String) -> ProjectError,
) -> Result<BTreeMap<String, String>, ProjectError> {
    let NodeValue::Map(entries) = &value.value else {
        if value.scalar() == Some("") {
            return Ok(BTreeMap::new());
        }
        return Err(at(
            value.mark,
            format!("`{what}` must be a mapping of keys to string values"),
        ));
    };
    let mut out = BTreeMap::new();
    for (key, value) in entries {
        let key_text = key
            .scalar()
            .ok_or_else(|| at(key.mark, format!("a {what} key must be a plain word")))?;
        let value_text = value.scalar().ok_or_else(|| {
            at(
                value.mark,
                format!("{what} `{key_text}` must be a string, not a list or a mapping"),
            )
        })?;
        if out
            .insert(key_text.to_string(), value_text.to_string())
            .is_some()
        {
            return Err(at(
                key.mark,
                format!("{what} `{key_text}` is given twice; keep one"),
            ));
        }
    }
    Ok(out)
}

/// `tables:`, a mapping of names to a path (a Delta table) or to `{path: .., format: ..}`.
fn tables(
    value: &Node,
    file: &str,
    at: &impl Fn(Mark, String) -> ProjectError,
) -> Result<BTreeMap<String, TableMapping>, ProjectError> {
    let shape = "each `tables` entry is `name: path` (a Delta table) or `name: {path: .., format: parquet}`";
    let NodeValue::Map(entries) = &value.value else {
        if value.scalar() == Some("") {
            return Ok(BTreeMap::new());
        }
        return Err(at(
            value.mark,
            format!("`tables` must be a mapping; {shape}"),
        ));
    };
    let mut out: BTreeMap<String, TableMapping> = BTreeMap::new();
    for (key, entry) in entries {
        let name = key
            .scalar()
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| {
                at(
                    key.mark,
                    format!("a table's name must be a plain word; {shape}"),
                )
            })?;
        let (mut path, mut format) = (None, None);
        match &entry.value {
            NodeValue::Scalar(p) => path = Some(p.clone()),
            NodeValue::Map(fields) => {
                for (field, v) in fields {
                    let text = v.scalar().map(str::to_string).ok_or_else(|| {
                        at(
                            v.mark,
                            format!("table `{name}`: values must be strings; {shape}"),
                        )
                    })?;
                    match field.scalar() {
                        Some("path") => path = Some(text),
                        Some("format") => format = Some((text, v.mark)),
                        other => {
                            return Err(at(
                                field.mark,
                                format!(
                                    "table `{name}`: unknown key `{}`; a table has `path` and `format`",
                                    other.unwrap_or("?")
                                ),
                            ));
                        }
                    }
                }
            }
            NodeValue::Seq(_) => return Err(at(entry.mark, shape.into())),
        }
        let path = path
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| at(entry.mark, format!("table `{name}` has no `path`; {shape}")))?;
        let format = match format {
            None => TableFormat::Delta,
            Some((f, mark)) => TableFormat::NAMES
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&f))
                .map(|(_, format)| *format)
                .ok_or_else(|| {
                    let names: Vec<&str> = TableFormat::NAMES.iter().map(|(n, _)| *n).collect();
                    at(
                        mark,
                        format!(
                            "table `{name}`: `{f}` is not a format lakeflow reads; use one of {}",
                            names.join(", ")
                        ),
                    )
                })?,
        };
        if let Some(first) = out.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned() {
            return Err(at(
                key.mark,
                format!("table `{name}` is given twice (also as `{first}`); keep one"),
            ));
        }
        out.insert(
            name.to_string(),
            TableMapping {
                path,
                format,
                location: Location::new(file, key.mark.line, key.mark.column),
            },
        );
    }
    Ok(out)
}

fn libraries(
    value: &Node,
    file: &str,
    at: &impl Fn(Mark, String) -> ProjectError,
) -> Result<Vec<LibraryGlob>, ProjectError> {
    let shape = "each `libraries` entry is `- glob:` with `include: PATTERN` under it";
    let NodeValue::Seq(items) = &value.value else {
        return Err(at(
            value.mark,
            format!("`libraries` must be a list; {shape}"),
        ));
    };
    let mut out = Vec::new();
    for item in items {
        let include = match &item.value {
            NodeValue::Scalar(pattern) => (pattern.as_str(), item.mark),
            NodeValue::Map(entries) => match entries.as_slice() {
                [(key, glob)] if key.scalar() == Some("glob") => match &glob.value {
                    NodeValue::Map(inner) => match inner.as_slice() {
                        [(key, pattern)] if key.scalar() == Some("include") => {
                            let text = pattern.scalar().ok_or_else(|| {
                                at(pattern.mark, "`include` must be a glob pattern".into())
                            })?;
                            (text, pattern.mark)
                        }
                        [(key, _), ..] => {
                            return Err(at(key.mark, format!("unknown key under `glob`; {shape}")));
                        }
                        [] => return Err(at(glob.mark, shape.into())),
                    },
                    _ => return Err(at(glob.mark, shape.into())),
                },
                [(key, _), ..] => {
                    return Err(at(
                        key.mark,
                        format!(
                            "unknown library key `{}`; {shape}",
                            key.scalar().unwrap_or("?")
                        ),
                    ));
                }
                [] => return Err(at(item.mark, shape.into())),
            },
            NodeValue::Seq(_) => return Err(at(item.mark, shape.into())),
        };
        if include.0.trim().is_empty() {
            return Err(at(
                include.1,
                "an empty glob pattern matches nothing".into(),
            ));
        }
        out.push(LibraryGlob {
            include: include.0.to_string(),
            location: Location::new(file, include.1.line, include.1.column),
        });
    }
    Ok(out)
}

/// A line and column, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    line: usize,
    column: usize,
}

impl From<Marker> for Mark {
    fn from(m: Marker) -> Self {
        Mark {
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

/// A YAML node with where it starts.
#[derive(Debug)]
struct Node {
    value: NodeValue,
    mark: Mark,
}

#[derive(Debug)]
enum NodeValue {
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    fn scalar(&self) -> Option<&str> {
        match &self.value {
            NodeValue::Scalar(s) => Some(s),
            _ => None,
        }
    }
}

/// Builds the tree from parser events; an alias or a second document is an error.
#[derive(Default)]
struct Builder {
    stack: Vec<Node>,
    root: Option<Node>,
    documents: usize,
    error: Option<(Mark, String)>,
}

impl Builder {
    fn push_value(&mut self, node: Node) {
        match self.stack.last_mut() {
            Some(Node {
                value: NodeValue::Seq(items),
                ..
            }) => items.push(node),
            Some(Node {
                value: NodeValue::Map(entries),
                ..
            }) => {
                // Keys and values alternate; a key is pushed with a placeholder value.
                match entries.last_mut() {
                    Some((_, value)) if matches!(&value.value, NodeValue::Scalar(s) if s == PENDING) =>
                    {
                        *value = node;
                    }
                    _ => entries.push((
                        node,
                        Node {
                            value: NodeValue::Scalar(PENDING.into()),
                            mark: Mark { line: 0, column: 0 },
                        },
                    )),
                }
            }
            _ => self.root = Some(node),
        }
    }
}

/// Marks a mapping key whose value has not been read yet (a string YAML cannot produce
/// from a key's value, as it contains a NUL).
const PENDING: &str = "\u{0}pending";

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, marker: Marker) {
        if self.error.is_some() {
            return;
        }
        let mark = Mark::from(marker);
        match event {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    self.error = Some((mark, "a spec file holds one YAML document".into()));
                }
            }
            Event::Alias(_) => {
                self.error = Some((mark, "YAML aliases are not supported in a spec file".into()));
            }
            Event::Scalar(text, ..) => self.push_value(Node {
                value: NodeValue::Scalar(text),
                mark,
            }),
            Event::SequenceStart(..) => self.stack.push(Node {
                value: NodeValue::Seq(Vec::new()),
                mark,
            }),
            Event::MappingStart(..) => self.stack.push(Node {
                value: NodeValue::Map(Vec::new()),
                mark,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(node) = self.stack.pop() {
                    self.push_value(node);
                }
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

fn parse_yaml(text: &str) -> Result<Option<Node>, (Mark, String)> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, true)
        .map_err(|e| {
            (
                Mark::from(*e.marker()),
                format!("invalid YAML: {}", e.info()),
            )
        })?;
    if let Some(error) = builder.error {
        return Err(error);
    }
    Ok(builder.root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Spec, String> {
        Spec::parse(Path::new("lakeflow.yml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_spec_reads_every_key() {
        let spec = parse(
            "name: sales\nstorage: data\ncatalog: main\nschema: bronze\nconfiguration:\n  landing: in/orders\n  limit: 10\nlibraries:\n  - glob:\n      include: transformations/**\n  - more/*.sql\n",
        )
        .unwrap();
        assert_eq!(spec.name, "sales");
        assert_eq!(spec.storage.as_deref(), Some("data"));
        assert_eq!(spec.catalog.as_deref(), Some("main"));
        assert_eq!(spec.database.as_deref(), Some("bronze"));
        assert_eq!(spec.configuration["landing"], "in/orders");
        assert_eq!(spec.configuration["limit"], "10");
        assert_eq!(spec.libraries.len(), 2);
        assert_eq!(spec.libraries[0].include, "transformations/**");
        assert_eq!(spec.libraries[0].location.to_string(), "lakeflow.yml:10:16");
        assert_eq!(spec.libraries[1].location.to_string(), "lakeflow.yml:11:5");
    }

    #[test]
    fn tables_map_names_to_paths_and_formats() {
        let spec = parse(
            "name: x\nlibraries: [a]\ntables:\n  samples.tpch.orders: /data/orders\n  ref.c:\n    path: c.csv\n    format: CSV\n",
        )
        .unwrap();
        let orders = &spec.tables["samples.tpch.orders"];
        assert_eq!(
            (orders.path.as_str(), orders.format),
            ("/data/orders", TableFormat::Delta)
        );
        assert_eq!(spec.tables["ref.c"].format, TableFormat::Csv);
        assert_eq!(
            spec.tables["ref.c"].location.to_string(),
            "lakeflow.yml:5:3"
        );
        let err = parse("name: x\nlibraries: [a]\ntables:\n  t:\n    path: p\n    format: orc\n")
            .unwrap_err();
        assert!(
            err.starts_with("lakeflow.yml:6:13: table `t`: `orc` is not a format"),
            "{err}"
        );
        let err = parse("name: x\nlibraries: [a]\ntables:\n  t:\n    format: csv\n").unwrap_err();
        assert!(err.contains("table `t` has no `path`"), "{err}");
        let err = parse("name: x\nlibraries: [a]\ntables:\n  T: a\n  t: b\n").unwrap_err();
        assert!(
            err.starts_with("lakeflow.yml:5:3: table `t` is given twice"),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_key_names_its_line() {
        let err = parse("name: x\nlibraries:\n  - a/**\nstorag: data\n").unwrap_err();
        assert!(
            err.starts_with("lakeflow.yml:4:1: unknown key `storag`"),
            "{err}"
        );
        assert!(err.contains("did you mean `storage`?"), "{err}");
    }

    #[test]
    fn shapes_are_checked() {
        let err = parse("name: x\nlibraries: a/**\n").unwrap_err();
        assert!(
            err.starts_with("lakeflow.yml:2:12: `libraries` must be a list"),
            "{err}"
        );
        let err = parse("name: x\nlibraries:\n  - a/**\nconfiguration:\n  k: [1]\n").unwrap_err();
        assert!(
            err.starts_with("lakeflow.yml:5:6: configuration `k` must be a string"),
            "{err}"
        );
        let err = parse("libraries:\n  - a/**\n").unwrap_err();
        assert!(err.contains("no `name:`"), "{err}");
        let err = parse("name: x\nname: y\nlibraries: [a]\n").unwrap_err();
        assert!(
            err.starts_with("lakeflow.yml:2:1: `name` is given twice"),
            "{err}"
        );
        let err = parse("name: [x\n").unwrap_err();
        assert!(err.contains("invalid YAML"), "{err}");
    }
}
