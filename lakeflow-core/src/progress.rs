//! Live progress for a person watching a run: a line per active flow when stderr is a
//! terminal, timestamped lines otherwise (as `spark-pipelines` prints them), or nothing.
//! An [`Observer`] of the event log; it never changes what a run does.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::event_log::{Event, Observer};

/// How a run shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProgressMode {
    /// Bars when stderr is a terminal, timestamped lines otherwise.
    #[default]
    Auto,
    /// A line per active flow, redrawn in place.
    Bars,
    /// One timestamped line per state change, on stderr.
    Lines,
    /// Nothing.
    Off,
}

impl ProgressMode {
    /// The observer that shows progress this way, if any.
    pub fn observer(self) -> Option<Arc<dyn Observer>> {
        let bars = match self {
            ProgressMode::Off => return None,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
            ProgressMode::Bars => true,
            ProgressMode::Lines => false,
        };
        Some(if bars {
            Arc::new(Bars::default())
        } else {
            Arc::new(Lines)
        })
    }
}

/// Timestamped lines on stderr.
struct Lines;

impl Observer for Lines {
    fn on_event(&self, _run_id: &str, event: &Event) {
        if matches!(event.event_type, "flow_progress" | "update_progress") {
            let time = chrono::DateTime::<chrono::Utc>::from(event.timestamp);
            eprintln!("{} {}", time.format("%Y-%m-%d %H:%M:%S%.3f"), event.message);
        }
    }
}

/// One spinner per active flow.
struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Default for Bars {
    fn default() -> Self {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Observer for Bars {
    fn on_event(&self, _run_id: &str, event: &Event) {
        let (Some(dataset), Some(state)) = (&event.dataset, event.flow_state) else {
            if event.event_type == "update_progress" {
                let _ = self.multi.println(&event.message);
            }
            return;
        };
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bars.entry(dataset.clone()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:<24} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(dataset.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let rows = event
            .details
            .pointer("/flow_progress/metrics/num_output_rows")
            .and_then(|v| v.as_u64());
        match (state.is_terminal(), rows) {
            (true, Some(rows)) => bar.finish_with_message(format!("{state} {rows} rows")),
            (true, None) => bar.finish_with_message(state.to_string()),
            (false, _) => bar.set_message(state.to_string()),
        }
    }
}
