//! Continuous mode: run the pipeline again and again at an interval until told to stop.
//!
//! A stop request never interrupts a run: the run in progress finishes — its batches commit
//! or fail whole, as always — and then the loop ends. `run_continuously` stops on Ctrl-C or
//! SIGTERM; `run_until` on any future.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lakeflow_core::{Error, Result, RunReport};
use tokio::sync::Notify;

use crate::Pipeline;

/// What a continuous run did before it stopped.
#[derive(Debug, Default)]
pub struct ContinuousSummary {
    /// Runs that completed.
    pub completed_runs: usize,
    /// Runs that failed (the pipeline went on with the next one).
    pub failed_runs: usize,
    /// The report of the last run.
    pub last_report: Option<RunReport>,
    /// The error of the last failed run, if the last run failed.
    pub last_error: Option<String>,
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

impl Pipeline {
    /// Runs the pipeline every `interval` (measured from the end of one run to the start of
    /// the next) until Ctrl-C or SIGTERM, then returns after the run in progress finishes.
    pub async fn run_continuously(&self, interval: Duration) -> Result<ContinuousSummary> {
        self.run_until(interval, shutdown_signal()).await
    }

    /// Like [`Pipeline::run_continuously`], stopping when `stop` resolves.
    pub async fn run_until<F>(&self, interval: Duration, stop: F) -> Result<ContinuousSummary>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stopped = Arc::new(AtomicBool::new(false));
        let wake = Arc::new(Notify::new());
        // Listen from the start, so a request during a run is not missed.
        let listener = {
            let stopped = stopped.clone();
            let wake = wake.clone();
            tokio::spawn(async move {
                stop.await;
                stopped.store(true, Ordering::SeqCst);
                wake.notify_one();
            })
        };
        let mut summary = ContinuousSummary::default();
        while !stopped.load(Ordering::SeqCst) {
            match self.run().await {
                Ok(report) => {
                    summary.completed_runs += 1;
                    summary.last_report = Some(report);
                    summary.last_error = None;
                }
                Err(Error::RunFailed { report }) => {
                    summary.failed_runs += 1;
                    summary.last_error = Some(report.to_string());
                    summary.last_report = Some(*report);
                }
                // The definition itself is wrong: running again cannot help.
                Err(e) => {
                    listener.abort();
                    return Err(e);
                }
            }
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
        }
        Ok(summary)
    }
}
