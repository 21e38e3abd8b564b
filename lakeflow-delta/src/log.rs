//! Reading single commits of a Delta log: which files a version added, and whether it
//! removed or changed rows. Streaming reads need this per version, which the snapshot API
//! (the table as of a version) does not give.

use datafusion::object_store::ObjectStoreExt;
use deltalake::ObjectStore;
use deltalake::Path;
use serde_json::Value;

/// What one commit did to the rows of a table.
#[derive(Debug, Default)]
pub(crate) struct Commit {
    /// Paths of data files added with `dataChange`.
    pub added: Vec<String>,
    /// Whether the commit removed files with `dataChange` (an update, delete or overwrite).
    pub changes_rows: bool,
    /// Whether the commit removed files without `dataChange`: a compaction (OPTIMIZE) that
    /// rewrote rows into other files. The files added before it may no longer be in later
    /// snapshots, though they are still on storage until a vacuum.
    pub rearranges: bool,
}

/// Reads `_delta_log/<version>.json` under the table's store.
pub(crate) async fn read_commit(
    store: &dyn ObjectStore,
    version: u64,
) -> Result<Commit, Box<dyn std::error::Error + Send + Sync>> {
    let path = Path::from(format!("_delta_log/{version:020}.json"));
    let bytes = store.get(&path).await?.bytes().await?;
    let text = std::str::from_utf8(&bytes)?;
    let mut commit = Commit::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let action: Value = serde_json::from_str(line)?;
        let data_change = |a: &Value| a.get("dataChange").and_then(Value::as_bool).unwrap_or(true);
        if let Some(add) = action.get("add") {
            if data_change(add)
                && let Some(path) = add.get("path").and_then(Value::as_str)
            {
                commit.added.push(percent_decode(path));
            }
        } else if let Some(remove) = action.get("remove") {
            if data_change(remove) {
                commit.changes_rows = true;
            } else {
                commit.rearranges = true;
            }
        }
    }
    Ok(commit)
}

/// Delta stores paths percent-encoded (RFC 3986); file selection wants the object-store path.
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from(Path::from(
        String::from_utf8(out).unwrap_or_else(|_| path.to_string()),
    ))
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_partition_paths() {
        assert_eq!(
            percent_decode("country=FR/part-1.parquet"),
            "country=FR/part-1.parquet"
        );
        assert_eq!(
            percent_decode("a%20b/x.parquet"),
            String::from(super::Path::from("a b/x.parquet"))
        );
    }
}
