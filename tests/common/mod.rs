//! Test helpers: a fresh database per test on the shared PostgreSQL, and the
//! real `pulsyon` binary started on 127.0.0.1:0.
//!
//! `PULSYON_TEST_DATABASE_URL` names a server and a database to connect to
//! for creating per-test databases (default: the local server's `postgres`
//! database, as `scripts/test.sh` sets up).

#![allow(dead_code)]

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use sqlx::{Connection, PgConnection};
use tonic::{Request, metadata::MetadataValue, transport::Channel};

pub const BIN: &str = env!("CARGO_BIN_EXE_pulsyon");

pub fn admin_url() -> String {
    std::env::var("PULSYON_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database of its own for one test, dropped at the end.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let admin = admin_url();
        let name = format!("pulsyon_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("connect to the test PostgreSQL (is it running? see scripts/test.sh)");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        TestDb {
            url: format!("{base}/{name}"),
            name,
        }
    }

    /// The store on this database, migrated (the one opener of every test).
    pub async fn store(&self) -> pulsyon::store::Store {
        let options = pulsyon::store::options_from_url(&self.url).unwrap();
        let store = pulsyon::store::Store::connect(options, 4, std::time::Duration::from_secs(10))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = admin_url();
        let name = self.name.clone();
        // Drop needs async I/O; a short-lived runtime on its own thread does it.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = PgConnection::connect(&admin).await.ok()?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .ok()
            })
        })
        .join();
    }
}

/// The real server binary, running on ephemeral ports.
pub struct Server {
    pub child: Child,
    pub grpc: String,
    pub http: String,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
}

pub struct ServerOpts<'a> {
    pub database_url: Option<&'a str>,
    /// A fixed gRPC address (to restart on the same port); default 127.0.0.1:0.
    pub grpc_addr: Option<&'a str>,
    pub data_dir: Option<&'a Path>,
    pub extra_args: &'a [&'a str],
    pub rust_log: &'a str,
}

impl Default for ServerOpts<'_> {
    fn default() -> Self {
        ServerOpts {
            database_url: None,
            grpc_addr: None,
            data_dir: None,
            extra_args: &[],
            rust_log: "info",
        }
    }
}

impl Server {
    pub fn start(opts: ServerOpts<'_>) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        // The private cluster runs as an unprivileged user, who must be able to enter it.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod tempdir");
        let addr_file = dir.path().join("addr");
        let log = dir.path().join("server.log");
        let log_file = fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.arg("--log-format")
            .arg("json")
            .arg("serve")
            .args([
                "--grpc-addr",
                opts.grpc_addr.unwrap_or("127.0.0.1:0"),
                "--http-addr",
                "127.0.0.1:0",
            ])
            .arg("--addr-file")
            .arg(&addr_file)
            .args(opts.extra_args)
            .env_remove("DATABASE_URL")
            .env("RUST_LOG", opts.rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        if let Some(url) = opts.database_url {
            cmd.arg("--database-url").arg(url);
        }
        let data_dir = opts
            .data_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.path().join("data"));
        cmd.arg("--data-dir").arg(&data_dir);
        let mut child = cmd.spawn().expect("spawn pulsyon");
        let deadline = Instant::now() + Duration::from_secs(120);
        let text = loop {
            if let Ok(text) = fs::read_to_string(&addr_file)
                && text.lines().count() >= 2
            {
                break text;
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!(
                    "pulsyon exited during start-up ({status}):\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "pulsyon did not start:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .expect("address line")
                .to_owned()
        };
        Server {
            grpc: field("grpc"),
            http: field("http"),
            child,
            dir,
            log,
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .expect("connect")
    }

    pub fn logs(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal)
            .expect("kill");
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(nix::sys::signal::Signal::SIGTERM);
            if self.wait_exit(Duration::from_secs(30)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Runs the `pulsyon` CLI; returns (exit status, stdout, stderr).
pub fn cli(args: &[&str]) -> (ExitStatus, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run pulsyon");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Creates a tenant with the CLI and returns its first key (every scope).
pub fn create_tenant(database_url: &str, name: &str) -> String {
    let (status, stdout, stderr) = cli(&["tenant", "create", name, "--database-url", database_url]);
    assert!(status.success(), "tenant create failed: {stderr}");
    stdout.trim().to_owned()
}

/// Creates a key with the CLI.
/// The two tenants of a test about isolation, `acme` and `globex`: their keys.
pub fn two_tenants(database_url: &str) -> (String, String) {
    (
        create_tenant(database_url, "acme"),
        create_tenant(database_url, "globex"),
    )
}

pub fn create_key(database_url: &str, tenant: &str, scopes: &str) -> String {
    let (status, stdout, stderr) = cli(&[
        "key",
        "create",
        "--tenant",
        tenant,
        "--scopes",
        scopes,
        "--database-url",
        database_url,
    ]);
    assert!(status.success(), "key create failed: {stderr}");
    stdout.trim().to_owned()
}

/// A request carrying `authorization: Bearer <key>`.
pub fn authed<T>(message: T, key: &str) -> Request<T> {
    let mut req = Request::new(message);
    let value: MetadataValue<_> = format!("Bearer {key}").parse().unwrap();
    req.metadata_mut().insert("authorization", value);
    req
}

/// The grpcurl binary: `$GRPCURL`, else `tools/bin/grpcurl` (installed by scripts/test.sh).
pub fn grpcurl() -> PathBuf {
    if let Ok(path) = std::env::var("GRPCURL") {
        return PathBuf::from(path);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/bin/grpcurl");
    assert!(
        path.exists(),
        "grpcurl not found at {}: run scripts/install-tools.sh or set GRPCURL",
        path.display()
    );
    path
}

/// A TCP port free at the moment of the call, for a server that must restart on the same address.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A connection pool to a test database, for reading what the server stored.
pub async fn pool(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .expect("connect to the test database")
}

/// An HTTP GET over plain TCP (no HTTP client crate needed); the whole response.
pub async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    out
}

/// A timestamp PostgreSQL keeps exactly (whole microseconds).
pub fn ts(t: std::time::SystemTime) -> prost_types::Timestamp {
    let mut ts = prost_types::Timestamp::from(t);
    ts.nanos -= ts.nanos % 1_000;
    ts
}

/// Publishes one batch with the unary RPC and returns its ack.
pub async fn publish(
    client: &mut pulsyon::proto::v1::ingest_client::IngestClient<Channel>,
    key: &str,
    batch: pulsyon::proto::v1::EventBatch,
) -> pulsyon::proto::v1::BatchAck {
    let request = pulsyon::proto::v1::PublishEventsRequest { batch: Some(batch) };
    client
        .publish_events(authed(request, key))
        .await
        .unwrap()
        .into_inner()
        .ack
        .unwrap()
}

/// Bytes in, bytes out: requests a test builds by hand (malformed ones, or
/// ones made from the descriptor set).
#[derive(Debug, Clone, Default)]
pub struct RawCodec;
#[allow(dead_code)]
pub struct RawEncoder;
#[allow(dead_code)]
pub struct RawDecoder;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use prost::bytes::Buf;
        let mut out = vec![0; src.remaining()];
        src.copy_to_slice(&mut out);
        Ok(Some(out))
    }
}

/// Fires `alert` into its service's incident under the default lifecycle,
/// reopening within `reopen_within`.
pub async fn fire(
    store: &pulsyon::store::Store,
    alert: &pulsyon::domain::incident::Alert,
    reopen_within: Duration,
) -> Result<
    (
        pulsyon::domain::incident::Alert,
        Vec<pulsyon::domain::incident::Update>,
    ),
    pulsyon::store::StoreError,
> {
    let policy = pulsyon::incidents::lifecycle::Policy {
        reopen_within,
        ..Default::default()
    };
    pulsyon::incidents::fire(
        store,
        alert,
        pulsyon::domain::incident::Grouping::Service,
        &policy,
    )
    .await
}

/// One HTTP/1.1 exchange over plain TCP: (status, headers in lower case, body).
pub async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Vec<(String, String)>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await.unwrap();
    // A compressed body is not text: it is kept only as far as it reads.
    let out = String::from_utf8_lossy(&bytes);
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = status_code(lines.next().unwrap());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A firing error-rate alert of `service`, stamped now.
pub fn alert(
    tenant: pulsyon::domain::TenantId,
    service: &str,
    severity: pulsyon::domain::rules::Severity,
) -> pulsyon::domain::incident::Alert {
    pulsyon::domain::incident::Alert {
        alert_id: 0,
        tenant_id: tenant,
        incident_id: None,
        service: service.into(),
        endpoint: String::new(),
        kind: pulsyon::domain::rules::Kind::ErrorRate,
        severity,
        observed: 0.3,
        baseline: 0.01,
        no_baseline: false,
        threshold: 0.05,
        window_secs: 90,
        fired_at: time::OffsetDateTime::now_utc(),
        cleared_at: None,
        detail: String::new(),
    }
}

/// A batch of one valid event of `tenant`, now (its digest made from `seq`).
pub fn one_event_batch(
    tenant: pulsyon::domain::TenantId,
    producer: &str,
    seq: i64,
) -> pulsyon::domain::BatchWrite {
    let now = time::OffsetDateTime::now_utc();
    pulsyon::domain::BatchWrite {
        tenant_id: tenant,
        producer_id: producer.into(),
        seq,
        received_at: now,
        events: vec![request_event("checkout", now, 200, 5.0)],
        rejected: vec![],
        overflowed: 0,
        digest: [seq as u8; 32],
    }
}

/// A protobuf batch of `events` from `producer`, numbered `seq`.
pub fn batch(
    producer: &str,
    seq: u64,
    events: Vec<pulsyon::proto::v1::Event>,
) -> pulsyon::proto::v1::EventBatch {
    pulsyon::proto::v1::EventBatch {
        producer_id: producer.into(),
        seq,
        events,
    }
}

/// A stored event of `POST /pay` on `service` at `time`, nothing else set.
pub fn request_event(
    service: &str,
    time: time::OffsetDateTime,
    status_code: i16,
    latency_ms: f64,
) -> pulsyon::domain::Event {
    pulsyon::domain::Event {
        event_id: uuid::Uuid::now_v7(),
        time,
        service: service.into(),
        endpoint: "/pay".into(),
        method: "POST".into(),
        status_code,
        latency_ms,
        trace_id: String::new(),
        request_id: String::new(),
        attributes: vec![],
        environment: String::new(),
        release: String::new(),
        host: String::new(),
        request_bytes: 0,
        response_bytes: 0,
    }
}

/// The status code of an HTTP/1.1 status line (`HTTP/1.1 200 OK`).
pub fn status_code(line: &str) -> u16 {
    line.split(' ').nth(1).unwrap().parse().unwrap()
}
