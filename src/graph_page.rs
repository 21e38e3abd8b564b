//! The graph page: after a run, one self-contained HTML file beside the event log
//! (`<storage>/_lakeflow/graph.html`) that draws the dependency graph with each dataset's
//! status in that run, its rows written and its expectation results, and lists the same in a
//! table below. Open it in a browser; it loads nothing from the network.
//!
//! Layout: a dataset's column is one more than the column of its furthest input (the
//! longest path from a source), so every edge points right; within a column, datasets keep
//! the graph's topological order. Boxes and edges are inline SVG computed here, in Rust.
//! This module only formats: it reads the graph and the report and writes one state file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use lakeflow_core::graph::Edge;
use lakeflow_core::resolve::Resolved;
use lakeflow_core::{
    DatasetGraph, DatasetKind, DatasetReport, FlowStatus, Result, RunReport, Storage,
};

/// Where the page is stored, relative to the storage root (the event log is
/// `_lakeflow/event_log`).
pub(crate) const GRAPH_PAGE: &str = "_lakeflow/graph.html";

/// Renders the page for `graph` and the run's `report` and stores it at [`GRAPH_PAGE`].
pub(crate) async fn write(
    storage: &dyn Storage,
    graph: &DatasetGraph,
    report: &RunReport,
) -> Result<()> {
    let page = render(graph, report);
    storage.write_state(GRAPH_PAGE, page.into_bytes()).await
}

const BOX_WIDTH: u32 = 250;
const LINE: u32 = 17;
const PAD: u32 = 10;
const GAP_X: u32 = 90;
const GAP_Y: u32 = 26;
const MARGIN: u32 = 20;

/// One dataset's box: where it is and what it says.
struct Placed<'a> {
    node: &'a Resolved,
    report: Option<&'a DatasetReport>,
    x: u32,
    y: u32,
    height: u32,
}

/// The whole page.
pub(crate) fn render(graph: &DatasetGraph, report: &RunReport) -> String {
    let nodes: Vec<&Resolved> = graph.in_order().map(|n| n.as_ref()).collect();
    let edges = crate::cli::render::edges(graph);
    let placed = layout(&nodes, &edges, report);
    let width = placed
        .iter()
        .map(|p| p.x + BOX_WIDTH + MARGIN)
        .max()
        .unwrap_or(2 * MARGIN);
    let height = placed
        .iter()
        .map(|p| p.y + p.height + MARGIN)
        .max()
        .unwrap_or(2 * MARGIN);
    let status = if report.succeeded() {
        "COMPLETED"
    } else {
        "FAILED"
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>lakeflow run {status}: {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        escape(&report.storage)
    );
    let _ = writeln!(
        out,
        "<h1>Run <span class=\"{}\">{status}</span></h1>\n<p>{} in {:.2}s: {} completed, {} failed, {} skipped, {} up to date, {} excluded</p>",
        if report.succeeded() { "ok" } else { "bad" },
        escape(&report.storage),
        report.duration.as_secs_f64(),
        count(report, FlowStatus::Completed),
        count(report, FlowStatus::Failed),
        count(report, FlowStatus::Skipped),
        count(report, FlowStatus::UpToDate),
        count(report, FlowStatus::Excluded),
    );
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"dependency graph\">\n<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#555\"/></marker></defs>"
    );
    let at: BTreeMap<&str, &Placed> = placed
        .iter()
        .map(|p| (p.node.def.name.as_str(), p))
        .collect();
    for (from, to, edge) in &edges {
        let (Some(a), Some(b)) = (at.get(from), at.get(to)) else {
            continue;
        };
        let (x1, y1) = (a.x + BOX_WIDTH, a.y + a.height / 2);
        let (x2, y2) = (b.x, b.y + b.height / 2);
        let bend = GAP_X / 2;
        let class = match edge {
            Edge::Read(mode) if mode.is_stream() => "edge stream",
            Edge::Read(_) => "edge read",
            Edge::Flow => "edge flow",
        };
        let _ = writeln!(
            out,
            "<path class=\"{class}\" d=\"M {x1} {y1} C {} {y1}, {} {y2}, {x2} {y2}\" marker-end=\"url(#arrow)\"><title>{} \u{2192} {} ({})</title></path>",
            x1 + bend,
            x2.saturating_sub(bend),
            escape(from),
            escape(to),
            crate::cli::render::edge_kind(*edge)
        );
    }
    for p in &placed {
        node_box(&mut out, p);
    }
    out.push_str("</svg>\n");
    table(&mut out, &placed);
    out.push_str(LEGEND);
    out.push_str("</body>\n</html>\n");
    out
}

fn count(report: &RunReport, status: FlowStatus) -> usize {
    report
        .datasets
        .iter()
        .filter(|d| d.status == status)
        .count()
}

/// Columns by longest path from a source, rows in topological order within a column.
fn layout<'a>(
    nodes: &[&'a Resolved],
    edges: &[(&str, &str, Edge)],
    report: &'a RunReport,
) -> Vec<Placed<'a>> {
    let mut column: BTreeMap<&str, u32> = BTreeMap::new();
    // `nodes` is in topological order, so every input's column is known before its reader's.
    for node in nodes {
        let name = node.def.name.as_str();
        let c = edges
            .iter()
            .filter(|(_, to, _)| *to == name)
            .filter_map(|(from, _, _)| column.get(from).map(|c| c + 1))
            .max()
            .unwrap_or(0);
        column.insert(name, c);
    }
    let mut next_y: BTreeMap<u32, u32> = BTreeMap::new();
    nodes
        .iter()
        .map(|node| {
            let name = node.def.name.as_str();
            let c = column.get(name).copied().unwrap_or(0);
            let report = report.dataset(name);
            let lines = 3 + expectation_lines(node, report).len() as u32;
            let height = 2 * PAD + lines * LINE;
            let y = next_y.entry(c).or_insert(MARGIN);
            let placed = Placed {
                node,
                report,
                x: MARGIN + c * (BOX_WIDTH + GAP_X),
                y: *y,
                height,
            };
            *y += height + GAP_Y;
            placed
        })
        .collect()
}

/// The status word and CSS class of a box.
fn status(p: &Placed) -> (&'static str, &'static str) {
    match p.report.map(|r| r.status) {
        Some(FlowStatus::Completed) => ("COMPLETED", "completed"),
        Some(FlowStatus::Failed) => ("FAILED", "failed"),
        Some(FlowStatus::Skipped) => ("SKIPPED", "skipped"),
        Some(FlowStatus::Excluded) => ("EXCLUDED", "excluded"),
        Some(FlowStatus::UpToDate) => ("UP_TO_DATE", "uptodate"),
        None if p.node.kind == DatasetKind::TemporaryView => ("NOT STORED", "view"),
        None => ("NOT RUN", "view"),
    }
}

/// One line per expectation: `name (action): passed P, failed F` once the run counted it,
/// else `name (action)`; and whether it had violations.
fn expectation_lines(node: &Resolved, report: Option<&DatasetReport>) -> Vec<(String, bool)> {
    match report.filter(|r| !r.expectations.is_empty()) {
        Some(r) => r
            .expectations
            .iter()
            .map(|e| {
                (
                    format!(
                        "{} ({}): passed {}, failed {}",
                        e.name, e.action, e.passed, e.failed
                    ),
                    e.failed > 0,
                )
            })
            .collect(),
        None => node
            .def
            .expectations
            .iter()
            .map(|e| (format!("{} ({})", e.name, e.action), false))
            .collect(),
    }
}

fn rows(report: Option<&DatasetReport>) -> String {
    let Some(r) = report else {
        return "rows: -".to_string();
    };
    let mut text = match r.rows_written {
        Some(n) => format!("rows written: {n}"),
        None => "rows written: -".to_string(),
    };
    if let Some(dropped) = r.dropped_rows.filter(|d| *d > 0) {
        let _ = write!(text, ", dropped: {dropped}");
    }
    text
}

fn node_box(out: &mut String, p: &Placed) {
    let (word, class) = status(p);
    let name = &p.node.def.name;
    let mut tooltip = format!("{name} ({})", p.node.def.location);
    if let Some(reason) = p.report.and_then(|r| r.reason.as_deref()) {
        let _ = write!(tooltip, "\n{reason}");
    }
    let _ = writeln!(
        out,
        "<g class=\"node {class}\" data-name=\"{}\">\n<title>{}</title>\n<rect x=\"{}\" y=\"{}\" width=\"{BOX_WIDTH}\" height=\"{}\" {}/>",
        escape(name),
        escape(&tooltip),
        p.x,
        p.y,
        p.height,
        match p.node.kind {
            DatasetKind::TemporaryView => "rx=\"6\" stroke-dasharray=\"5 3\"",
            DatasetKind::AppendFlow => "rx=\"18\"",
            _ => "rx=\"6\"",
        }
    );
    let x = p.x + PAD;
    let mut y = p.y + PAD + LINE - 4;
    let mut line = |out: &mut String, class: &str, text: &str| {
        let _ = writeln!(
            out,
            "<text class=\"{class}\" x=\"{x}\" y=\"{y}\">{}</text>",
            escape(&clip(text))
        );
        y += LINE;
    };
    line(out, "name", name);
    line(out, "kind", &format!("{} \u{b7} {word}", p.node.kind));
    line(out, "rows", &rows(p.report));
    for (text, failed) in expectation_lines(p.node, p.report) {
        line(out, if failed { "exp violated" } else { "exp" }, &text);
    }
    out.push_str("</g>\n");
}

/// Text that fits a box: at most 38 characters.
fn clip(text: &str) -> String {
    const MAX: usize = 38;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let mut short: String = text.chars().take(MAX - 1).collect();
        short.push('\u{2026}');
        short
    }
}

fn table(out: &mut String, placed: &[Placed]) {
    out.push_str("<table>\n<tr><th>dataset</th><th>kind</th><th>status</th><th>rows written</th><th>dropped</th><th>time</th><th>expectations</th><th>defined at</th><th>reason</th></tr>\n");
    for p in placed {
        let (word, class) = status(p);
        let number = |n: Option<u64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
        let expectations: Vec<String> = expectation_lines(p.node, p.report)
            .into_iter()
            .map(|(text, failed)| {
                let class = if failed { " class=\"violated\"" } else { "" };
                format!("<div{class}>{}</div>", escape(&text))
            })
            .collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{word}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&p.node.def.name),
            p.node.kind,
            number(p.report.and_then(|r| r.rows_written)),
            number(p.report.and_then(|r| r.dropped_rows)),
            p.report.map_or_else(
                || "-".to_string(),
                |r| format!("{:.2}s", r.duration.as_secs_f64())
            ),
            expectations.join(""),
            escape(&p.node.def.location.to_string()),
            escape(p.report.and_then(|r| r.reason.as_deref()).unwrap_or("")),
        );
    }
    out.push_str("</table>\n");
}

/// Text for HTML and SVG content and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body { font-family: Helvetica, Arial, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } .ok { color: #2e7d32; } .bad { color: #c62828; }
svg { display: block; margin: 16px 0; }
.node rect { stroke-width: 1.5; }
.node.completed rect { fill: #e8f5e9; stroke: #2e7d32; }
.node.failed rect { fill: #ffebee; stroke: #c62828; }
.node.skipped rect { fill: #fff3e0; stroke: #ef6c00; }
.node.excluded rect { fill: #f5f5f5; stroke: #9e9e9e; }
.node.uptodate rect { fill: #e3f2fd; stroke: #1565c0; }
.node.view rect { fill: #ffffff; stroke: #9e9e9e; }
.node text { font-size: 12px; fill: #333; }
.node text.name { font-weight: bold; font-size: 13px; }
.node text.violated { fill: #c62828; }
.edge { fill: none; stroke: #555; stroke-width: 1.5; }
.edge.stream { stroke-dasharray: 6 4; }
.edge.flow { stroke: #6a1b9a; stroke-width: 2.5; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
td.completed { color: #2e7d32; } td.failed { color: #c62828; } td.skipped { color: #ef6c00; }
td.uptodate { color: #1565c0; } td.excluded, td.view { color: #757575; }
.violated { color: #c62828; }
";

const LEGEND: &str = "<p>Solid arrows: a dataset read whole; dashed: read as a stream; thick purple: a flow writing its table. Hover a box for where it is defined and why it failed.</p>\n";

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use lakeflow_core::{ExpectAction, ExpectationResult, MemoryStorage};

    use super::*;
    use crate::{Dataset, Pipeline, sql};

    /// raw -> clean -> doubled (a temporary view) -> gold, and landing files read as a
    /// stream by `events`, appended by flow `copy` into `all_events`.
    async fn graph() -> DatasetGraph {
        let dir = tempfile::tempdir().unwrap();
        let landing = dir.path().join("landing");
        std::fs::create_dir(&landing).unwrap();
        std::fs::write(landing.join("1.csv"), "id\n1\n").unwrap();
        let landing = landing.display().to_string();
        Pipeline::builder()
            .storage_backend(Arc::new(MemoryStorage::new()))
            .streaming_table("events", move || {
                crate::read_stream_files(landing.clone(), crate::csv())
            })
            .create_streaming_table("all_events")
            .append_flow("all_events", "copy", || crate::read_stream("events"))
            .materialized_view("raw", || sql("SELECT 1 AS x UNION ALL SELECT -1 AS x"))
            .dataset(
                Dataset::materialized_view("clean", || sql("SELECT x FROM raw"))
                    .expect_or_drop("positive", "x > 0"),
            )
            .temporary_view("doubled", || sql("SELECT x * 2 AS y FROM clean"))
            .materialized_view("gold", || sql("SELECT sum(y) AS total FROM doubled"))
            .dry_run()
            .await
            .unwrap()
    }

    fn row(name: &str, kind: DatasetKind, status: FlowStatus, rows: Option<u64>) -> DatasetReport {
        DatasetReport {
            name: name.into(),
            kind,
            status,
            rows_written: rows,
            version: rows.map(|_| 0),
            duration: Duration::from_millis(120),
            location: format!("mem://{name}"),
            expectations: Vec::new(),
            dropped_rows: None,
            reason: None,
        }
    }

    fn report() -> RunReport {
        let mut clean = row(
            "clean",
            DatasetKind::MaterializedView,
            FlowStatus::Completed,
            Some(1),
        );
        clean.expectations = vec![ExpectationResult {
            name: "positive".into(),
            action: ExpectAction::Drop,
            passed: 1,
            failed: 1,
        }];
        clean.dropped_rows = Some(1);
        let mut gold = row(
            "gold",
            DatasetKind::MaterializedView,
            FlowStatus::Failed,
            None,
        );
        gold.reason = Some("division by <zero> & \"worse\"".into());
        RunReport {
            datasets: vec![
                row(
                    "raw",
                    DatasetKind::MaterializedView,
                    FlowStatus::Completed,
                    Some(2),
                ),
                clean,
                gold,
            ],
            duration: Duration::from_millis(1500),
            storage: "memory".into(),
            maintenance: Vec::new(),
        }
    }

    fn occurrences(text: &str, pattern: &str) -> usize {
        text.matches(pattern).count()
    }

    #[tokio::test]
    async fn the_page_draws_every_dataset_with_its_status_rows_and_expectations() {
        let page = render(&graph().await, &report());
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(
            page.contains("Run <span class=\"bad\">FAILED</span>"),
            "{page}"
        );
        for name in ["raw", "clean", "doubled", "gold"] {
            assert!(
                page.contains(&format!("data-name=\"{name}\"")),
                "box of {name}: {page}"
            );
        }
        assert!(page.contains("<g class=\"node completed\" data-name=\"raw\">"));
        assert!(page.contains("<g class=\"node failed\" data-name=\"gold\">"));
        assert!(page.contains("<g class=\"node view\" data-name=\"doubled\">"));
        assert!(page.contains("temporary view \u{b7} NOT STORED"), "{page}");
        assert!(page.contains("rows written: 2"), "{page}");
        assert!(page.contains("rows written: 1, dropped: 1"), "{page}");
        assert!(
            page.contains("<text class=\"exp violated\""),
            "a violated expectation is marked: {page}"
        );
        assert!(
            page.contains("positive (drop): passed 1, failed 1"),
            "{page}"
        );
        // A reason is text, never markup.
        assert!(page.contains("division by &lt;zero&gt; &amp; &quot;worse&quot;"));
        assert!(!page.contains("<zero>"));
        // Three reads (raw -> clean -> doubled -> gold), a stream (events -> copy) and a flow
        // writing its table (copy -> all_events); datasets the report lacks did not run.
        assert_eq!(occurrences(&page, "<path class=\"edge read\""), 3, "{page}");
        assert_eq!(
            occurrences(&page, "<path class=\"edge stream\""),
            1,
            "{page}"
        );
        assert_eq!(occurrences(&page, "<path class=\"edge flow\""), 1, "{page}");
        assert!(page.contains("append flow \u{b7} NOT RUN"), "{page}");
        assert!(
            page.contains("<rect x=\"20\" y=\"20\" width=\"250\" height=\"71\" rx=\"18\"/>")
                || page.contains("rx=\"18\"/>")
        );
    }

    #[tokio::test]
    async fn the_page_is_well_formed_and_laid_out_left_to_right() {
        let page = render(&graph().await, &report());
        assert_eq!(occurrences(&page, "<svg"), 1);
        assert_eq!(occurrences(&page, "</svg>"), 1);
        assert!(page.find("<svg").unwrap() < page.find("</svg>").unwrap());
        assert_eq!(occurrences(&page, "<g "), occurrences(&page, "</g>"));
        assert_eq!(occurrences(&page, "<text "), occurrences(&page, "</text>"));
        assert_eq!(occurrences(&page, "<tr>"), occurrences(&page, "</tr>"));
        assert_eq!(occurrences(&page, "<html"), 1);
        assert!(page.trim_end().ends_with("</html>"));
        assert!(!page.contains("<script"));
        assert!(!page.contains("src="), "nothing is loaded from elsewhere");
        // Each dataset is one column to the right of its input.
        let x = |name: &str| {
            let at = page.find(&format!("data-name=\"{name}\"")).unwrap();
            let rect = &page[at..];
            let start = rect.find("<rect x=\"").unwrap() + 9;
            let end = start + rect[start..].find('"').unwrap();
            rect[start..end].parse::<u32>().unwrap()
        };
        assert!(x("raw") < x("clean"));
        assert!(x("clean") < x("doubled"));
        assert!(x("doubled") < x("gold"));
    }

    #[tokio::test]
    async fn the_page_is_stored_beside_the_event_log() {
        let storage = MemoryStorage::new();
        write(&storage, &graph().await, &report()).await.unwrap();
        let stored = storage.read_state(GRAPH_PAGE).await.unwrap().unwrap();
        let page = String::from_utf8(stored).unwrap();
        assert!(page.contains("data-name=\"gold\""));
        assert_eq!(GRAPH_PAGE, "_lakeflow/graph.html");
    }
}
