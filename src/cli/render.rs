//! The dependency graph as text: Graphviz DOT, a Mermaid flowchart, or JSON. Each dataset
//! shows its kind and its expectations; edges say whether they are a whole read, a stream
//! or an append flow writing its table. Only formatting lives here.

use std::fmt::Write as _;

use lakeflow_core::graph::Edge;
use lakeflow_core::resolve::Resolved;
use lakeflow_core::{DatasetGraph, DatasetKind, ExpectAction, Rule};
use serde_json::json;

fn action(action: ExpectAction) -> &'static str {
    match action {
        ExpectAction::Warn => "warn",
        ExpectAction::Drop => "drop",
        ExpectAction::Fail => "fail",
    }
}

/// `name (action)` for each expectation of a node.
fn expectations(node: &Resolved) -> Vec<String> {
    node.def
        .expectations
        .iter()
        .map(|e| format!("expect {} ({})", e.name, action(e.action)))
        .collect()
}

/// Every edge as (source name, target name, edge), in the order of the datasets.
pub(crate) fn edges(graph: &DatasetGraph) -> Vec<(&str, &str, Edge)> {
    let g = graph.graph();
    let mut out: Vec<(&str, &str, Edge)> = g
        .edge_indices()
        .filter_map(|e| {
            let (from, to) = g.edge_endpoints(e)?;
            Some((
                g[from].def.name.as_str(),
                g[to].def.name.as_str(),
                *g.edge_weight(e)?,
            ))
        })
        .collect();
    let position = |name: &str| graph.in_order().position(|n| n.def.name == name);
    out.sort_by_key(|(from, to, _)| (position(from), position(to)));
    out
}

pub(crate) fn edge_kind(edge: Edge) -> &'static str {
    match edge {
        Edge::Read(mode) if mode.is_stream() => "stream",
        Edge::Read(_) => "read",
        Edge::Flow => "append",
    }
}

fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz DOT: boxes for tables (bold for streaming tables), dashed boxes for temporary
/// views, ellipses for append flows; dashed edges for streams, hollow arrows for flows.
pub fn dot(graph: &DatasetGraph, name: &str) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n",
        dot_escape(name)
    );
    for node in graph.in_order() {
        let style = match node.kind {
            DatasetKind::TemporaryView => ", style=dashed",
            DatasetKind::StreamingTable => ", style=bold",
            DatasetKind::AppendFlow => ", shape=ellipse",
            _ => "",
        };
        let mut label = vec![node.def.name.clone(), node.kind.to_string()];
        label.extend(expectations(node));
        let label: Vec<String> = label.iter().map(|l| dot_escape(l)).collect();
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\"{style}];",
            dot_escape(&node.def.name),
            label.join("\\n")
        );
    }
    for (from, to, edge) in edges(graph) {
        let style = match edge {
            Edge::Read(mode) if mode.is_stream() => " [style=dashed, label=\"stream\"]",
            Edge::Read(_) => "",
            Edge::Flow => " [arrowhead=empty, label=\"append\"]",
        };
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\"{style};",
            dot_escape(from),
            dot_escape(to)
        );
    }
    out.push_str("}\n");
    out
}

fn mermaid_escape(text: &str) -> String {
    text.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}

/// A Mermaid flowchart: `[..]` materialized views, `[[..]]` streaming tables, `(..)`
/// temporary views, `([..])` append flows; `-.->` streams, `==>` flows, `-->` reads.
pub fn mermaid(graph: &DatasetGraph) -> String {
    let mut out = String::from("flowchart LR\n");
    let ids: Vec<(&str, String)> = graph
        .in_order()
        .enumerate()
        .map(|(i, n)| (n.def.name.as_str(), format!("n{i}")))
        .collect();
    let id = |name: &str| {
        ids.iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| "unknown".to_string(), |(_, id)| id.clone())
    };
    for node in graph.in_order() {
        let mut label = vec![node.def.name.clone(), node.kind.to_string()];
        label.extend(expectations(node));
        let label = label
            .iter()
            .map(|l| mermaid_escape(l))
            .collect::<Vec<_>>()
            .join("<br/>");
        let (open, close) = match node.kind {
            DatasetKind::StreamingTable => ("[[", "]]"),
            DatasetKind::TemporaryView => ("(", ")"),
            DatasetKind::AppendFlow => ("([", "])"),
            _ => ("[", "]"),
        };
        let _ = writeln!(out, "  {}{open}\"{label}\"{close}", id(&node.def.name));
    }
    for (from, to, edge) in edges(graph) {
        let arrow = match edge {
            Edge::Read(mode) if mode.is_stream() => "-. stream .->",
            Edge::Read(_) => "-->",
            Edge::Flow => "== append ==>",
        };
        let _ = writeln!(out, "  {} {arrow} {}", id(from), id(to));
    }
    out
}

/// JSON: `{"pipeline", "datasets": [{name, kind, comment, target, location, expectations}],
/// "edges": [{from, to, kind}]}` with `kind` of an edge `read`, `stream` or `append`.
pub fn json(graph: &DatasetGraph, name: &str) -> String {
    let datasets: Vec<_> = graph
        .in_order()
        .map(|node| {
            let expectations: Vec<_> = node
                .def
                .expectations
                .iter()
                .map(|e| {
                    let rule = match &e.rule {
                        Rule::Sql(sql) => json!({ "sql": sql }),
                        Rule::Unique(cols) => json!({ "unique": cols }),
                    };
                    json!({ "name": e.name, "action": action(e.action), "rule": rule })
                })
                .collect();
            json!({
                "name": node.def.name,
                "kind": node.kind.to_string(),
                "comment": node.def.comment,
                "target": node.target,
                "location": node.def.location.to_string(),
                "expectations": expectations,
            })
        })
        .collect();
    let edges: Vec<_> = edges(graph)
        .into_iter()
        .map(|(from, to, edge)| json!({ "from": from, "to": to, "kind": edge_kind(edge) }))
        .collect();
    let value = json!({ "pipeline": name, "datasets": datasets, "edges": edges });
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}
