//! Named moments of a run where a crash test can stop the process (`LAKEFLOW_FAILPOINT=name`
//! or `name:k` for the k-th time the point is reached). At the point the process says so on
//! stderr and waits to be killed with SIGKILL by the test; after a minute without that it
//! aborts. Without the variable every point is a no-op: one environment look-up, once.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The marker a test waits for on stderr.
pub const REACHED: &str = "lakeflow failpoint reached:";

fn armed() -> Option<&'static (String, usize)> {
    static SPEC: OnceLock<Option<(String, usize)>> = OnceLock::new();
    SPEC.get_or_init(|| {
        let spec = std::env::var("LAKEFLOW_FAILPOINT").ok()?;
        match spec.split_once(':') {
            Some((name, k)) => Some((name.to_string(), k.parse().ok()?)),
            None => Some((spec, 1)),
        }
    })
    .as_ref()
}

/// Marks the moment `name`; stops here if a test asked for it.
pub fn hit(name: &str) {
    let Some((wanted, nth)) = armed() else {
        return;
    };
    if wanted != name {
        return;
    }
    static COUNTS: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    let count = {
        let mut counts = COUNTS
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let c = counts.entry(name.to_string()).or_insert(0);
        *c += 1;
        *c
    };
    if count != *nth {
        return;
    }
    let mut stderr = std::io::stderr();
    let _ = writeln!(stderr, "{REACHED} {name}");
    let _ = stderr.flush();
    std::thread::sleep(Duration::from_secs(60));
    std::process::abort();
}
