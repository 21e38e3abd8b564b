//! Real object-store servers on loopback ports, started once per test binary: moto's S3
//! server and Azure's emulator azurite. `.ci/servers` installs them (and a Python with
//! `deltalake` to read tables back independently); it is idempotent, so the first test that
//! needs a server runs it. Each server runs under a watchdog shell that stops it when this
//! test process ends.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A started server.
pub struct Server {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The watchdog shell: it stops the server when this test process ends.
    _watchdog: std::process::Child,
}

impl Server {
    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The directory `.ci/servers` installed into.
pub fn installed() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("LAKEFLOW_SERVERS").map_or_else(
            || PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/lakeflow-servers"),
            PathBuf::from,
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/servers");
        let status = Command::new("bash")
            .arg(script)
            .env("LAKEFLOW_SERVERS", &dir)
            .status()
            .expect("bash runs .ci/servers");
        assert!(
            status.success(),
            ".ci/servers could not install the test servers"
        );
        dir
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `program args` under a watchdog that kills it when this process exits, and waits
/// until the port answers.
fn start(program: &Path, args: &[String], port: u16) -> Server {
    let command = format!(
        "{} {} & child=$!; while kill -0 {} 2>/dev/null; do sleep 1; done; kill $child",
        program.display(),
        args.join(" "),
        std::process::id()
    );
    let mut watchdog = Command::new("sh")
        .args(["-c", &command])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let stderr = watchdog.stderr.take().unwrap();
    // Keep reading its messages so it never blocks on a full pipe; show them on failure.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("Error") || line.contains("error") {
                eprintln!("object-store server: {line}");
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} did not open port {port}",
            program.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Server {
        port,
        _watchdog: watchdog,
    }
}

/// moto's S3 server, with the bucket `lake`.
pub fn moto() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let port = free_port();
        let server = start(
            &installed().join("bin/moto_server"),
            &["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()],
            port,
        );
        python(&format!(
            "import boto3; boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1').create_bucket(Bucket='lake')",
            server.endpoint()
        ));
        server
    })
}

/// The well-known key of azurite's account `devstoreaccount1`.
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// azurite's blob service, with the container `lake`.
pub fn azurite() -> &'static Server {
    static SERVER: OnceLock<(Server, tempfile::TempDir)> = OnceLock::new();
    let (server, _) = SERVER.get_or_init(|| {
        let port = free_port();
        let data = tempfile::tempdir().unwrap();
        let server = start(
            &installed().join("bin/azurite-blob"),
            &[
                "--blobHost".into(),
                "127.0.0.1".into(),
                "--blobPort".into(),
                port.to_string(),
                "--location".into(),
                data.path().display().to_string(),
                "--silent".into(),
                "--disableTelemetry".into(),
                "--skipApiVersionCheck".into(),
                "--loose".into(),
            ],
            port,
        );
        python(&format!(
            "from azure.storage.blob import BlobServiceClient as S; S.from_connection_string('DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};BlobEndpoint={}/devstoreaccount1;').create_container('lake')",
            server.endpoint()
        ));
        (server, data)
    });
    server
}

/// Runs `code` with the installed Python (boto3, deltalake, pyarrow, azure-storage-blob);
/// returns its standard output.
pub fn python(code: &str) -> String {
    python_with(code, &[])
}

/// [`python`] with extra environment variables.
pub fn python_with(code: &str, env: &[(&str, String)]) -> String {
    // Leave without running library destructors: pyarrow's threads sometimes abort at exit
    // ("terminate called without an active exception") after the script succeeded.
    let code =
        format!("{code}\nimport os as _os, sys as _sys\n_sys.stdout.flush()\n_os._exit(0)\n");
    let output = Command::new(installed().join("bin/python"))
        .args(["-c", code.as_str()])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("the installed python runs");
    assert!(
        output.status.success(),
        "python failed: {}\n{code}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The rows of the Delta table at `uri`, read by the Python `deltalake` package (an
/// independent reader), as sorted JSON lines with every value as text.
pub fn python_rows(uri: &str, options: &[(&str, String)], env: &[(&str, String)]) -> Vec<String> {
    let options: Vec<String> = options
        .iter()
        .map(|(k, v)| format!("{k:?}: {v:?}"))
        .collect();
    let code = format!(
        r#"
import json, os, sys
from deltalake import DeltaTable
t = DeltaTable({uri:?}, storage_options={{{}}}).to_pyarrow_table()
cols = sorted(t.column_names)
rows = [json.dumps([str(r[c]) for c in cols]) for r in t.to_pylist()]
print(json.dumps(cols))
for r in sorted(rows):
    print(r)
"#,
        options.join(", ")
    );
    python_with(&code, env)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The S3 options for moto, as lakeflow's storage options (object_store's keys).
pub fn s3_options() -> Vec<(&'static str, String)> {
    vec![
        ("aws_endpoint", moto().endpoint()),
        ("aws_allow_http", "true".into()),
        ("aws_access_key_id", "test".into()),
        ("aws_secret_access_key", "sekrit-test-key".into()),
        ("aws_region", "us-east-1".into()),
    ]
}

/// The same S3 settings as the standard environment variables.
pub fn s3_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto().endpoint()),
        ("AWS_ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "sekrit-test-key".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

/// Azure's emulator settings as the standard environment variables.
pub fn azure_env() -> Vec<(&'static str, String)> {
    vec![
        ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
        ("AZURITE_BLOB_STORAGE_URL", azurite().endpoint()),
    ]
}

/// fake-gcs-server, with the bucket `lake`. It serves `object_store`'s reads (get, head,
/// list) but none of its writes, so only sources are tested on it.
pub fn fake_gcs() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let port = free_port();
        let server = start(
            &installed().join("bin/fake-gcs-server"),
            &[
                "-scheme".into(),
                "http".into(),
                "-host".into(),
                "127.0.0.1".into(),
                "-port".into(),
                port.to_string(),
                "-backend".into(),
                "memory".into(),
                "-public-host".into(),
                format!("127.0.0.1:{port}"),
                "-external-url".into(),
                format!("http://127.0.0.1:{port}"),
                "-log-level".into(),
                "error".into(),
            ],
            port,
        );
        python(&format!(
            "import urllib.request as u; u.urlopen(u.Request('{}/storage/v1/b', data=b'{{\"name\": \"lake\"}}', headers={{'Content-Type': 'application/json'}}))",
            server.endpoint()
        ));
        server
    })
}

/// Uploads `text` as `gs://lake/<name>` through the emulator's JSON API.
pub fn gcs_upload(name: &str, text: &str) {
    python(&format!(
        "import urllib.request as u, urllib.parse as p; u.urlopen(u.Request('{}/upload/storage/v1/b/lake/o?uploadType=media&name=' + p.quote({name:?}, safe=''), data={text:?}.encode(), headers={{'Content-Type': 'text/csv'}}))",
        fake_gcs().endpoint()
    ));
}

/// `object_store`'s GCS options for the emulator: no OAuth, its base URL, plain HTTP.
pub fn gcs_options() -> Vec<(&'static str, String)> {
    let key = format!(
        r#"{{"gcs_base_url": "{}", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}}"#,
        fake_gcs().endpoint()
    );
    vec![
        ("google_service_account_key", key),
        ("allow_http", "true".into()),
    ]
}
