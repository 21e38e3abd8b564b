//! The dependency graph of a resolved pipeline.
//!
//! Model: one node per dataset and per append flow, one edge per read, pointing from the
//! dataset read to the dataset reading it, and one edge from each append flow to the
//! streaming table it writes (so readers of the table come after every flow into it). The graph is built only from resolved datasets, whose reads the
//! resolver has already checked for cycles, so it is acyclic by construction; [`DatasetGraph::new`]
//! still verifies that. This module knows nothing of storage or execution.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::Arc;

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{Dfs, EdgeRef, Reversed};

use crate::dataset::DatasetKind;
use crate::error::{Error, Result};
use crate::resolve::{ReadMode, Resolved};

/// A node: one resolved dataset.
pub type Node = Arc<Resolved>;

/// An edge: how the downstream dataset reads the upstream one, or a flow writing its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The target reads the source.
    Read(ReadMode),
    /// The source is an append flow that writes into the target.
    Flow,
}

/// The petgraph type behind [`DatasetGraph`].
pub type Graph = DiGraph<Node, Edge>;

/// The resolved datasets and who reads whom.
#[derive(Debug)]
pub struct DatasetGraph {
    graph: Graph,
    /// Invariant: maps each dataset name to its node, and every node is in it.
    index: BTreeMap<String, NodeIndex>,
    /// Invariant: every node exactly once, each after all of its inputs; ties in name order.
    order: Vec<NodeIndex>,
}

impl DatasetGraph {
    /// Builds the graph; every input of every dataset must be among `datasets`.
    pub fn new(datasets: Vec<Arc<Resolved>>) -> Result<Self> {
        let mut graph = Graph::new();
        let mut index = BTreeMap::new();
        for dataset in datasets {
            let name = dataset.def.name.clone();
            index.insert(name, graph.add_node(dataset));
        }
        for (name, &node) in &index {
            let inputs: Vec<(String, ReadMode)> = graph[node]
                .inputs
                .iter()
                .map(|(n, m)| (n.clone(), *m))
                .collect();
            for (input, mode) in inputs {
                let from = *index.get(&input).ok_or_else(|| {
                    Error::Internal(format!("`{name}` reads `{input}`, which did not resolve"))
                })?;
                graph.add_edge(from, node, Edge::Read(mode));
            }
            if let Some(target) = graph[node].target.clone() {
                let to = *index.get(&target).ok_or_else(|| {
                    Error::Internal(format!("`{name}` writes `{target}`, which did not resolve"))
                })?;
                graph.add_edge(node, to, Edge::Flow);
            }
        }
        // Kahn's algorithm with a name-ordered ready set: a deterministic topological order.
        let mut missing: BTreeMap<NodeIndex, usize> = graph
            .node_indices()
            .map(|n| (n, graph.edges_directed(n, Direction::Incoming).count()))
            .collect();
        let mut ready: BTreeSet<(String, NodeIndex)> = missing
            .iter()
            .filter(|(_, c)| **c == 0)
            .map(|(n, _)| (graph[*n].def.name.clone(), *n))
            .collect();
        let mut order = Vec::with_capacity(graph.node_count());
        while let Some(next) = ready.pop_first() {
            order.push(next.1);
            for edge in graph.edges_directed(next.1, Direction::Outgoing) {
                let count = missing
                    .get_mut(&edge.target())
                    .expect("every node is counted");
                *count -= 1;
                if *count == 0 {
                    ready.insert((graph[edge.target()].def.name.clone(), edge.target()));
                }
            }
        }
        if order.len() != graph.node_count() {
            return Err(Error::Internal(
                "the resolved dependency graph has a cycle the resolver missed".into(),
            ));
        }
        Ok(DatasetGraph {
            graph,
            index,
            order,
        })
    }

    /// The datasets, each after all of its inputs.
    pub fn in_order(&self) -> impl Iterator<Item = &Arc<Resolved>> {
        self.order.iter().map(|n| &self.graph[*n])
    }

    /// The dataset called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Resolved>> {
        self.index.get(name).map(|n| &self.graph[*n])
    }

    /// Every dataset that reads `name`, directly or through others.
    pub fn downstream(&self, name: &str) -> BTreeSet<String> {
        self.reachable(name, false)
    }

    /// Every dataset `name` reads, directly or through others.
    pub fn upstream(&self, name: &str) -> BTreeSet<String> {
        self.reachable(name, true)
    }

    fn reachable(&self, name: &str, reverse: bool) -> BTreeSet<String> {
        let Some(&start) = self.index.get(name) else {
            return BTreeSet::new();
        };
        let mut found = BTreeSet::new();
        if reverse {
            let mut dfs = Dfs::new(Reversed(&self.graph), start);
            while let Some(n) = dfs.next(Reversed(&self.graph)) {
                found.insert(self.graph[n].def.name.clone());
            }
        } else {
            let mut dfs = Dfs::new(&self.graph, start);
            while let Some(n) = dfs.next(&self.graph) {
                found.insert(self.graph[n].def.name.clone());
            }
        }
        found.remove(name);
        found
    }

    /// The underlying petgraph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The graph in Graphviz DOT: one box per dataset labelled with its kind, dashed edges for
    /// streaming reads.
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph pipeline {\n  rankdir=LR;\n  node [shape=box];\n");
        for node in self.in_order() {
            let shape = match node.kind {
                DatasetKind::TemporaryView => ", style=dashed",
                DatasetKind::StreamingTable => ", style=bold",
                DatasetKind::AppendFlow => ", shape=ellipse",
                _ => "",
            };
            let _ = writeln!(
                out,
                "  \"{}\" [label=\"{}\\n{}\"{shape}];",
                node.def.name, node.def.name, node.kind
            );
        }
        for n in &self.order {
            for edge in self.graph.edges_directed(*n, Direction::Outgoing) {
                let style = match edge.weight() {
                    Edge::Read(ReadMode::Stream | ReadMode::StreamSkippingChanges) => {
                        " [style=dashed]"
                    }
                    Edge::Read(ReadMode::Batch) => "",
                    Edge::Flow => " [arrowhead=empty]",
                };
                let _ = writeln!(
                    out,
                    "  \"{}\" -> \"{}\"{style};",
                    self.graph[edge.source()].def.name,
                    self.graph[edge.target()].def.name
                );
            }
        }
        out.push_str("}\n");
        out
    }
}
