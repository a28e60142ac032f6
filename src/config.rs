//! The configuration tree: command-line flags, their `PULSYON_*` (or
//! `DATABASE_URL`) environment equivalents, defaults, and `validate()`.
//!
//! Parsing never touches the network or the disk beyond reading flags, so a bad
//! setting is reported (exit code 64) before anything is bound or started.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// File (under the data dir) holding the first key of the tenant the
/// embedded default creates; `seed` reads it when no key is given.
pub const KEY_FILE: &str = "api-key";

/// Bytes in a MiB (the byte-rate flags are in MiB).
const MIB: u64 = 1 << 20;

/// Exit code for bad configuration (`EX_USAGE` of sysexits.h).
pub const EXIT_CONFIG: i32 = 64;

/// Pulsyon: telemetry ingestion and incident engine.
#[derive(Debug, Parser)]
#[command(name = "pulsyon", version, about, propagate_version = true)]
pub struct Cli {
    /// Log line format on stderr.
    #[arg(long, env = "PULSYON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log shippers.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// What one `pulsyon serve` process does (`--roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The ingest doors: validation, limits, admission.
    pub ingest: bool,
    /// The writer, the rollups and the partition keeper.
    pub writer: bool,
    /// The detector (one leader among the processes that have the role).
    pub detect: bool,
    /// Query, Incidents (Watch and the incident hub) and Admin.
    pub query: bool,
    /// The dashboard on the HTTP port (its pages, JSON API and event stream).
    pub web: bool,
}

impl Roles {
    /// Every role: the single-process default.
    pub const ALL: Roles = Roles {
        ingest: true,
        writer: true,
        detect: true,
        query: true,
        web: true,
    };

    /// Each role's name and what it starts, for `pulsyon roles`.
    pub const TABLE: [(&'static str, &'static str); 5] = [
        (
            "ingest",
            "serves pulsyon.v1.Ingest and OTLP traces (gRPC Export, HTTP /v1/traces): validation, per-tenant limits, admission into the writer's queue (this process's, or the Redis buffer with --redis-url)",
        ),
        (
            "writer",
            "the batching writer (COPY into api_logs; drains the Redis buffer's shards it owns with --redis-url), the rollup task, the partition keeper",
        ),
        (
            "detect",
            "the detector (one leader at a time across processes, by advisory lock)",
        ),
        (
            "query",
            "serves pulsyon.v1.Query, pulsyon.v1.Incidents (with the incident hub for Watch) and pulsyon.v1.Admin",
        ),
        (
            "web",
            "the dashboard on the HTTP port: pages, JSON API, incident event stream (with the incident hub)",
        ),
    ];

    /// The grouped names `--roles` takes, and what each stands for.
    pub const GROUPS: [(&'static str, &'static str); 3] = [
        ("write", "ingest,writer"),
        ("read", "detect,query,web"),
        ("all", "ingest,writer,detect,query,web"),
    ];

    /// A comma-separated list of role names, or `all`.
    pub fn parse(list: &str) -> Result<Roles, String> {
        let mut roles = Roles {
            ingest: false,
            writer: false,
            detect: false,
            query: false,
            web: false,
        };
        for name in list.split(',').map(str::trim) {
            match name {
                "all" => roles = Roles::ALL,
                "ingest" => roles.ingest = true,
                "writer" => roles.writer = true,
                "detect" => roles.detect = true,
                "query" => roles.query = true,
                "web" => roles.web = true,
                "write" => (roles.ingest, roles.writer) = (true, true),
                "read" => (roles.detect, roles.query, roles.web) = (true, true, true),
                "" => return Err("empty role name".into()),
                other => {
                    return Err(format!(
                        "unknown role {other:?} (roles: all, ingest, writer, detect, query, web; groups: write, read)"
                    ));
                }
            }
        }
        Ok(roles)
    }

    /// Whether this combination can run: without a buffer between
    /// processes (`buffer`: Redis is configured), what ingest admits only
    /// this process's writer can write.
    pub fn check(&self, buffer: bool) -> Result<(), String> {
        if self.ingest != self.writer && !buffer {
            return Err(format!(
                "invalid --roles: {} without {} needs a buffer between processes: give --redis-url (Redis Streams), or run ingest and writer together",
                if self.ingest { "ingest" } else { "writer" },
                if self.ingest { "writer" } else { "ingest" },
            ));
        }
        Ok(())
    }

    /// The role names, comma-separated.
    pub fn names(&self) -> String {
        let on = [self.ingest, self.writer, self.detect, self.query, self.web];
        Roles::TABLE
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|((name, _), _)| *name)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (every role in one process by default; see `--roles`).
    Serve(Box<ServeArgs>),
    /// Print each role `--roles` takes and what it starts.
    Roles,
    /// Ask a running server's gRPC health service; exit 0 when it is
    /// SERVING, 1 otherwise (a container's health check: no grpcurl needed).
    Healthcheck(HealthcheckArgs),
    /// Apply the database migrations and exit.
    Migrate(DbArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage users (people who log in to the dashboard).
    #[command(subcommand)]
    User(UserCommand),
    /// Send generated history (with incidents at known times) through a
    /// running server's ingest API.
    Seed(SeedArgs),
    /// Detection tools.
    #[command(subcommand)]
    Detect(DetectCommand),
}

/// `pulsyon detect ...`
#[derive(Debug, Subcommand)]
pub enum DetectCommand {
    /// Replay the detector over stored rollups, writing nothing, and list the
    /// incidents it would have opened.
    Backtest {
        /// Start: an RFC 3339 time, or a duration before now (`7d`, `36h`).
        #[arg(long, value_parser = parse_instant)]
        from: time::OffsetDateTime,
        /// End: an RFC 3339 time, or a duration before now; default now.
        #[arg(long, value_parser = parse_instant)]
        to: Option<time::OffsetDateTime>,
        /// Only this tenant (by name); default every tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// One JSON object per incident instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// An instant: RFC 3339, or a duration before now.
pub fn parse_instant(value: &str) -> Result<time::OffsetDateTime, String> {
    if let Ok(t) =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
    {
        return Ok(t);
    }
    let ago = parse_duration(value)
        .map_err(|_| format!("{value:?} is neither an RFC 3339 time nor a duration like 7d"))?;
    Ok(time::OffsetDateTime::now_utc() - ago)
}

/// `pulsyon seed`
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// gRPC URL of the running server.
    #[arg(long, env = "PULSYON_URL", default_value = "http://127.0.0.1:50051")]
    pub url: String,
    /// API key with the `ingest` scope; when unset, the key file of the
    /// embedded default (`<data-dir>/api-key`).
    #[arg(long, env = "PULSYON_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Where the embedded default keeps its first key.
    #[arg(long, env = "PULSYON_DATA_DIR", default_value = "./.pulsyon")]
    pub data_dir: PathBuf,
    /// Services to generate (1 to 8).
    #[arg(long, default_value_t = 8)]
    pub services: usize,
    /// Days of history, ending now (fractions allowed; at most the server's retention).
    #[arg(long, default_value_t = 7.0)]
    pub days: f64,
    /// Average events per second of history, over all services (follows a daily cycle).
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Inject the incidents (error spike, latency degradation, outage).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub incidents: bool,
    /// Seed of the traffic shape.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Concurrent ingest streams.
    #[arg(long, default_value_t = 2)]
    pub streams: usize,
    /// Events per batch.
    #[arg(long, default_value_t = 1_000)]
    pub batch_size: usize,
    /// The fleet: `classic` (the load generator's services, evenly loaded, and
    /// five incidents) or `varied` (busy, quiet, fast, bursty and heavy-tailed
    /// services, and the failures past the happy path; `--services` does not
    /// apply, `--rate` scales the whole fleet, about 14 events/s at 1x).
    #[arg(long, value_enum, default_value_t = Shape::Classic)]
    pub shape: Shape,
}

/// The fleets `pulsyon seed` can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// The load generator's services and five incidents.
    Classic,
    /// Services of different kinds and the failures past the happy path.
    Varied,
}

/// `pulsyon tenant ...`
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its first API key (every scope).
    Create {
        /// Tenant name: 1 to 63 of a-z, 0-9, '-' and '_'.
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `pulsyon key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key for a tenant and print it (shown only once).
    Create {
        /// The tenant the key belongs to.
        #[arg(long)]
        tenant: String,
        /// Comma-separated scopes: ingest, read, admin.
        #[arg(long, default_value = "ingest,read")]
        scopes: String,
        /// A label for the key.
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `pulsyon user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user of a tenant. The password is read from standard input
    /// (one line) with --password-stdin, else generated and printed once.
    Create {
        /// The tenant the user belongs to.
        #[arg(long)]
        tenant: String,
        /// viewer (reads), responder (also acknowledges and resolves
        /// incidents) or admin (also keys, users, limits and rules).
        #[arg(long)]
        role: String,
        /// Read the password (12 to 256 characters) from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Login name: 1 to 64 of a-z, 0-9, '.', '_', '-' and '@'.
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `pulsyon healthcheck`
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// The server's gRPC address (an unspecified address, such as 0.0.0.0,
    /// means this host's loopback). Plaintext only.
    #[arg(long, env = "PULSYON_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,

    /// The service to ask about; empty for the whole server.
    #[arg(long, default_value = "")]
    pub service: String,

    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Where the database is: an external server, or the private cluster under the data dir.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL URL (postgres://...). When unset, Pulsyon runs a private
    /// PostgreSQL cluster under <data-dir>/pg.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Directory for the private PostgreSQL cluster and the first API key.
    #[arg(long, env = "PULSYON_DATA_DIR", default_value = "./.pulsyon")]
    pub data_dir: PathBuf,

    /// System user that runs the private cluster when Pulsyon runs as root
    /// (PostgreSQL refuses to run as root).
    #[arg(long, env = "PULSYON_PG_USER", default_value = "postgres")]
    pub pg_user: String,

    /// How long to keep trying to reach the database at start-up.
    #[arg(long, env = "PULSYON_DB_CONNECT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub db_connect_timeout: Duration,

    /// Most connections of the system pool (writer, rollups, detector, keys).
    #[arg(long, env = "PULSYON_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,

    /// Most connections of the request pool (Query, Incidents, Admin), apart
    /// from the system pool so that queries cannot starve ingest.
    #[arg(long, env = "PULSYON_DB_READ_CONNECTIONS", default_value_t = 16)]
    pub db_read_connections: u32,
}

/// `pulsyon serve`
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// How long shutdown may take before open streams are cut.
    #[arg(long, env = "PULSYON_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// How long API-key lookups are cached; a revoked key stops working on
    /// every process within this time.
    #[arg(long, env = "PULSYON_KEY_CACHE_TTL", default_value = "5s", value_parser = parse_duration)]
    pub key_cache_ttl: Duration,

    /// What this process does: `all`, or a comma-separated list of
    /// `ingest`, `writer`, `detect`, `query`, `web`, or the groups `write`
    /// (ingest,writer) and `read` (detect,query,web); `pulsyon roles` says
    /// what each starts.
    #[arg(long, env = "PULSYON_ROLES", default_value = "all", value_parser = Roles::parse)]
    pub roles: Roles,

    #[command(flatten)]
    pub db: DbArgs,

    /// Listeners, TLS and connections.
    #[command(flatten)]
    pub net: NetArgs,

    /// The ingest pipeline and the writer.
    #[command(flatten)]
    pub ingest: IngestArgs,

    /// Default per-tenant limits (overridden per tenant through Admin).
    #[command(flatten)]
    pub limits: LimitArgs,

    /// The rollup task and its retention.
    #[command(flatten)]
    pub rollup: RollupArgs,

    /// Detection, the incident lifecycle and Watch.
    #[command(flatten)]
    pub incidents: IncidentArgs,

    /// Redis, shared by the processes of a deployment.
    #[command(flatten)]
    pub redis: RedisArgs,
}

/// Listeners, TLS and connections.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Network")]
pub struct NetArgs {
    /// Address of the gRPC server.
    #[arg(long, env = "PULSYON_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,

    /// Address of the HTTP server (/metrics, /healthz, /readyz).
    #[arg(long, env = "PULSYON_HTTP_ADDR", default_value = "127.0.0.1:9464")]
    pub http_addr: SocketAddr,

    /// Write the bound addresses as `grpc=<addr>` and `http=<addr>` lines to
    /// this file once both are listening (useful with port 0).
    #[arg(long, env = "PULSYON_ADDR_FILE")]
    pub addr_file: Option<PathBuf>,

    /// PEM certificate chain: serve gRPC over TLS (with --tls-key).
    #[arg(long, env = "PULSYON_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "PULSYON_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA bundle: require client certificates it signed (mutual TLS).
    #[arg(long, env = "PULSYON_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,

    /// Most connections to the gRPC port at once (0: three quarters of the
    /// open-file limit less 1,024 kept for the database and files; the HTTP
    /// port has the other quarter). Past it new connections are closed at
    /// once, counted and logged.
    #[arg(long, env = "PULSYON_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,

    /// How long a new connection has to send its first request (the HTTP/2
    /// preface, then a request's headers, or an HTTP/1.1 request head; TLS
    /// handshakes have 10 s of their own). On the HTTP port also the longest
    /// wait for every later HTTP/1.1 request head, kept-alive or trickled.
    #[arg(long, env = "PULSYON_FIRST_REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub first_request_timeout: Duration,

    /// Most connections to the HTTP port at once (0: a quarter of the
    /// open-file limit less 1,024). Past it the oldest connection that has
    /// not sent a request is closed to make room, or else the new one.
    #[arg(long, env = "PULSYON_HTTP_MAX_CONNECTIONS", default_value_t = 0)]
    pub http_max_connections: usize,

    /// An HTTP/2 connection to the HTTP port with no request in flight this
    /// long is closed.
    #[arg(long, env = "PULSYON_HTTP_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub http_idle_timeout: Duration,

    /// PEM certificate chain: serve the HTTP port over TLS (with
    /// --http-tls-key; ALPN h2 and http/1.1; the session cookie is then
    /// `Secure`). May be the same files as --tls-cert.
    #[arg(long, env = "PULSYON_HTTP_TLS_CERT", requires = "http_tls_key")]
    pub http_tls_cert: Option<PathBuf>,

    /// PEM private key of --http-tls-cert.
    #[arg(long, env = "PULSYON_HTTP_TLS_KEY", requires = "http_tls_cert")]
    pub http_tls_key: Option<PathBuf>,
}

/// The ingest pipeline and the writer.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Ingest")]
pub struct IngestArgs {
    /// Most unanswered batches per ingest stream.
    #[arg(long, env = "PULSYON_STREAM_MAX_IN_FLIGHT", default_value_t = 8)]
    pub stream_max_in_flight: usize,

    /// An ingest stream that sends no batch for this long is ended with
    /// UNAVAILABLE, freeing its tenant's stream slot (SDKs reconnect on need).
    #[arg(long, env = "PULSYON_INGEST_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub ingest_idle_timeout: Duration,

    /// Longest a batch waits for queue space before RESOURCE_EXHAUSTED.
    #[arg(long, env = "PULSYON_ADMIT_WAIT", default_value = "1s", value_parser = parse_duration)]
    pub admit_wait: Duration,

    /// Rows that make a writer batch full.
    #[arg(long, env = "PULSYON_WRITER_BATCH_ROWS", default_value_t = 5_000)]
    pub writer_batch_rows: usize,

    /// Longest a writer batch waits for more rows.
    #[arg(long, env = "PULSYON_WRITER_BATCH_AGE", default_value = "10ms", value_parser = parse_duration)]
    pub writer_batch_age: Duration,

    /// Writer batches written at once, each on its own connection.
    #[arg(long, env = "PULSYON_WRITER_WORKERS", default_value_t = 2)]
    pub writer_workers: usize,

    /// Most MiB of admitted, unwritten batches; past it clients are slowed, then refused.
    #[arg(long, env = "PULSYON_WRITER_QUEUE_MIB", default_value_t = 64)]
    pub writer_queue_mib: usize,

    /// Recognise resent batches (the batch ledger). Turning it off loses
    /// "retries are free" and exists only to measure the ledger's cost.
    #[arg(long, env = "PULSYON_BATCH_DEDUP", default_value_t = true, action = clap::ArgAction::Set, hide = true)]
    pub batch_dedup: bool,

    /// Raw events older than this are refused and their partitions dropped.
    #[arg(long, env = "PULSYON_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub retention: Duration,
}

/// Default per-tenant limits (overridden per tenant through Admin).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Default sustained events per second of a tenant (Admin.SetTenantLimits overrides).
    #[arg(
        long,
        env = "PULSYON_LIMIT_EVENTS_PER_SEC",
        default_value_t = crate::domain::TenantLimits::default().events_per_sec
    )]
    pub limit_events_per_sec: f64,

    /// Default burst of events above the sustained rate.
    #[arg(long, env = "PULSYON_LIMIT_EVENTS_BURST", default_value_t = crate::domain::TenantLimits::default().events_burst)]
    pub limit_events_burst: u64,

    /// Default sustained MiB per second (encoded events) of a tenant.
    #[arg(long, env = "PULSYON_LIMIT_MIB_PER_SEC", default_value_t = crate::domain::TenantLimits::default().bytes_per_sec / MIB as f64)]
    pub limit_mib_per_sec: f64,

    /// Default burst of MiB above the sustained rate.
    #[arg(long, env = "PULSYON_LIMIT_MIB_BURST", default_value_t = crate::domain::TenantLimits::default().bytes_burst / MIB)]
    pub limit_mib_burst: u64,

    /// Default concurrent ingest streams of a tenant, per process.
    #[arg(long, env = "PULSYON_LIMIT_STREAMS", default_value_t = crate::domain::TenantLimits::default().max_streams)]
    pub limit_streams: u32,

    /// Default distinct services of a tenant; more go to the `_overflow` service.
    #[arg(long, env = "PULSYON_LIMIT_SERVICES", default_value_t = crate::domain::TenantLimits::default().max_services)]
    pub limit_services: u32,

    /// Default distinct endpoints per service; more go to the `_overflow` endpoint.
    #[arg(long, env = "PULSYON_LIMIT_ENDPOINTS", default_value_t = crate::domain::TenantLimits::default().max_endpoints)]
    pub limit_endpoints: u32,

    /// Default longest range of one QueryEvents call.
    #[arg(long, env = "PULSYON_LIMIT_QUERY_RANGE", default_value = "7d", value_parser = parse_duration)]
    pub limit_query_range: Duration,

    /// Default largest page of QueryEvents and ListFailedEvents.
    #[arg(long, env = "PULSYON_LIMIT_PAGE_SIZE", default_value_t = crate::domain::TenantLimits::default().max_page_size)]
    pub limit_page_size: u32,

    /// Most queries (Query and Incidents calls) one tenant may have running
    /// at once on this process; past it, RESOURCE_EXHAUSTED with a retry delay.
    #[arg(long, env = "PULSYON_LIMIT_CONCURRENT_QUERIES", default_value_t = 4)]
    pub limit_concurrent_queries: u32,
}

/// The rollup task and its retention.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Rollups")]
pub struct RollupArgs {
    /// Time between rollup passes (each merges everything stored since the last).
    #[arg(long, env = "PULSYON_ROLLUP_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub rollup_interval: Duration,

    /// How long per-minute rollups are kept (at least 7d: health windows reach 7 days).
    #[arg(long, env = "PULSYON_ROLLUP_MINUTE_RETENTION", default_value = "8d", value_parser = parse_duration)]
    pub rollup_minute_retention: Duration,

    /// How long hourly rollups are kept (at least the --retention of raw events).
    #[arg(long, env = "PULSYON_ROLLUP_RETENTION", default_value = "400d", value_parser = parse_duration)]
    pub rollup_retention: Duration,
}

/// Detection, the incident lifecycle and Watch.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Incidents")]
pub struct IncidentArgs {
    /// Run the detector in this process (one process leads at a time); false
    /// is the same as leaving `detect` out of `--roles`.
    #[arg(long, env = "PULSYON_DETECTOR", default_value_t = true, action = clap::ArgAction::Set)]
    pub detector: bool,

    /// Time between detector evaluations.
    #[arg(long, env = "PULSYON_DETECT_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub detect_interval: Duration,

    /// An incident resolves by itself once its alerts stayed clear this long.
    #[arg(long, env = "PULSYON_INCIDENT_RESOLVE_AFTER", default_value = "5m", value_parser = parse_duration)]
    pub incident_resolve_after: Duration,

    /// An alert this soon after its service's incident resolved reopens it.
    #[arg(long, env = "PULSYON_INCIDENT_REOPEN_WITHIN", default_value = "30m", value_parser = parse_duration)]
    pub incident_reopen_within: Duration,

    /// How long a resolved incident is kept, with its alerts and updates
    /// (at least 1d; ListIncidents reaches 400 days back).
    #[arg(long, env = "PULSYON_INCIDENT_RETENTION", default_value = "400d", value_parser = parse_duration)]
    pub incident_retention: Duration,

    /// Time between heartbeats of an idle Watch stream.
    #[arg(long, env = "PULSYON_WATCH_HEARTBEAT", default_value = "10s", value_parser = parse_duration)]
    pub watch_heartbeat: Duration,
}

/// Redis, shared by the processes of a deployment.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Redis")]
pub struct RedisArgs {
    /// Redis (`redis://host:port/db`; with `--redis-cluster`, comma-separated
    /// seed nodes): ingest rate limits hold across every process sharing it
    /// (unreachable, each process falls back to local limits), and it is the
    /// buffer that lets ingest and writer run in separate processes.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// `--redis-url` names the nodes of a Redis Cluster.
    #[arg(long, env = "PULSYON_REDIS_CLUSTER")]
    pub redis_cluster: bool,

    /// Prefix of Pulsyon's Redis keys (deployments sharing one Redis use different ones).
    #[arg(long, env = "PULSYON_REDIS_KEY_PREFIX", default_value = "pulsyon")]
    pub redis_key_prefix: String,

    /// Where admitted batches wait for a writer: `local` (this process's
    /// queue: ingest and writer together), `redis` (the buffer in Redis
    /// Streams), or `auto` (redis when ingest and writer run apart).
    #[arg(long, env = "PULSYON_BUFFER", default_value = "auto", value_parser = ["auto", "local", "redis"])]
    pub buffer: String,

    /// Streams of the buffer (each on its own Redis Cluster slot); every
    /// process of a deployment must use the same number.
    #[arg(long, env = "PULSYON_BUFFER_SHARDS", default_value_t = 8)]
    pub buffer_shards: u32,

    /// When an ingest process answers a batch: `buffered` (once it is in
    /// Redis: DURABILITY_BUFFERED) or `commit` (once a writer committed it:
    /// DURABILITY_COMMITTED).
    #[arg(long, env = "PULSYON_ACK_AFTER", default_value = "buffered", value_parser = ["buffered", "commit"])]
    pub ack_after: String,

    /// Accept a Redis that keeps nothing on disk as the buffer (a BUFFERED
    /// ack is then lost if Redis restarts).
    #[arg(long, env = "PULSYON_ALLOW_VOLATILE_BUFFER")]
    pub allow_volatile_buffer: bool,

    /// Entries a buffer shard holds before ingest refuses (RESOURCE_EXHAUSTED
    /// with a retry delay); nothing is ever dropped.
    #[arg(long, env = "PULSYON_BUFFER_MAX_ENTRIES", default_value_t = 1_000_000)]
    pub buffer_max_entries: u64,

    /// Deliveries after which a buffer entry is poison (kept in
    /// `buffer_poison`, acknowledged).
    #[arg(long, env = "PULSYON_BUFFER_MAX_DELIVERIES", default_value_t = 5)]
    pub buffer_max_deliveries: u32,

    /// How long a writer's lease of a buffer shard lasts without renewal
    /// (the time another writer waits to take a dead writer's shards over).
    #[arg(long, env = "PULSYON_BUFFER_LEASE", default_value = "10s", value_parser = parse_duration)]
    pub buffer_lease: Duration,
}

impl RedisArgs {
    /// The Redis URLs: one, or a cluster's seeds.
    pub fn urls(&self) -> Vec<String> {
        self.redis_url
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Whether admitted batches go through the Redis buffer, for `roles`.
    pub fn buffered(&self, roles: Roles) -> bool {
        self.redis_url.is_some()
            && match self.buffer.as_str() {
                "redis" => true,
                "local" => false,
                _ => roles.ingest != roles.writer,
            }
    }
}

impl Cli {
    /// Checks what clap cannot: relations between settings and their shapes.
    /// The error names the setting at fault.
    pub fn validate(&self) -> Result<(), String> {
        match &self.command {
            Command::Serve(serve) => serve.validate(),
            Command::Roles | Command::Healthcheck(_) => Ok(()),
            Command::Migrate(db) => db.validate(),
            Command::Seed(seed) => seed.validate(),
            Command::Detect(DetectCommand::Backtest { from, to, db, .. }) => {
                let to = to.unwrap_or_else(time::OffsetDateTime::now_utc);
                if *from >= to {
                    return Err("invalid --from: must be before --to".into());
                }
                if to - *from > time::Duration::days(8) {
                    return Err("invalid --from: at most 8 days before --to (minute rollups are kept 8 days)".into());
                }
                db.validate()
            }
            Command::Tenant(TenantCommand::Create { name, db }) => {
                if !crate::domain::valid_tenant_name(name) {
                    return Err(format!(
                        "invalid tenant name {name:?}: use 1 to 63 of a-z, 0-9, '-' and '_', starting with a letter or digit"
                    ));
                }
                db.validate()
            }
            Command::Key(KeyCommand::Create { scopes, db, .. }) => {
                crate::domain::Scope::parse_list(scopes)
                    .map_err(|e| format!("invalid --scopes: {e}"))?;
                db.validate()
            }
            Command::User(UserCommand::Create { role, name, db, .. }) => {
                if crate::domain::Role::parse(role).is_none() {
                    return Err(format!(
                        "invalid --role {role:?}: viewer, responder or admin"
                    ));
                }
                if !crate::domain::valid_user_name(name) {
                    return Err(format!(
                        "invalid user name {name:?}: use 1 to 64 of a-z, 0-9, '.', '_', '-' and '@', starting with a letter or digit"
                    ));
                }
                db.validate()
            }
        }
    }
}

impl SeedArgs {
    fn validate(&self) -> Result<(), String> {
        if !(1..=8).contains(&self.services) {
            return Err("invalid --services: 1 to 8".into());
        }
        if !(self.days > 0.0 && self.days <= 400.0) {
            return Err("invalid --days: more than 0 and at most 400".into());
        }
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            return Err("invalid --rate: more than 0".into());
        }
        if self.streams == 0 || self.batch_size == 0 {
            return Err("invalid --streams or --batch-size: at least 1".into());
        }
        Ok(())
    }
}

impl ServeArgs {
    /// The ingest settings these flags describe.
    pub fn ingest_config(&self) -> crate::ingest::IngestConfig {
        crate::ingest::IngestConfig {
            batch_rows: self.ingest.writer_batch_rows,
            batch_age: self.ingest.writer_batch_age,
            workers: self.ingest.writer_workers,
            queue_bytes: self.ingest.writer_queue_mib << 20,
            admit_wait: self.ingest.admit_wait,
            dedup: self.ingest.batch_dedup,
            ..Default::default()
        }
    }

    /// The rollup settings these flags describe.
    pub fn rollup_config(&self) -> crate::rollup::RollupConfig {
        crate::rollup::RollupConfig {
            interval: self.rollup.rollup_interval,
            minute_retention: self.rollup.rollup_minute_retention,
            hour_retention: self.rollup.rollup_retention,
            ..Default::default()
        }
    }

    /// The detector settings these flags describe.
    pub fn detect_config(&self) -> crate::detect::DetectConfig {
        crate::detect::DetectConfig {
            interval: self.incidents.detect_interval,
            lifecycle: crate::incidents::lifecycle::Policy {
                resolve_after: self.incidents.incident_resolve_after,
                reopen_within: self.incidents.incident_reopen_within,
            },
            ..Default::default()
        }
    }

    /// The default tenant limits these flags describe.
    pub fn tenant_limits(&self) -> crate::domain::TenantLimits {
        crate::domain::TenantLimits {
            events_per_sec: self.limits.limit_events_per_sec,
            events_burst: self.limits.limit_events_burst,
            bytes_per_sec: self.limits.limit_mib_per_sec * MIB as f64,
            bytes_burst: self.limits.limit_mib_burst.saturating_mul(MIB),
            max_streams: self.limits.limit_streams,
            max_services: self.limits.limit_services,
            max_endpoints: self.limits.limit_endpoints,
            max_query_range: self.limits.limit_query_range,
            max_page_size: self.limits.limit_page_size,
        }
    }

    /// The Redis buffer these flags describe.
    pub fn buffer_config(&self) -> crate::redis::buffer::BufferConfig {
        crate::redis::buffer::BufferConfig {
            urls: self.redis.urls(),
            cluster: self.redis.redis_cluster,
            prefix: self.redis.redis_key_prefix.clone(),
            shards: self.redis.buffer_shards,
            max_entries: self.redis.buffer_max_entries,
            max_deliveries: self.redis.buffer_max_deliveries,
            lease: self.redis.buffer_lease,
            ack_after_commit: self.redis.ack_after == "commit",
            allow_volatile: self.redis.allow_volatile_buffer,
        }
    }

    /// The event bounds these flags describe.
    pub fn event_bounds(&self) -> crate::ingest::validate::EventBounds {
        crate::ingest::validate::EventBounds {
            retention: self.ingest.retention,
            ..Default::default()
        }
    }

    /// The roles this process runs: `--roles`, without `detect` when
    /// `--detector false`.
    pub fn active_roles(&self) -> Roles {
        Roles {
            detect: self.roles.detect && self.incidents.detector,
            ..self.roles
        }
    }

    fn validate(&self) -> Result<(), String> {
        self.roles.check(self.redis.buffered(self.roles))?;
        if self.redis.buffer == "redis" && self.redis.redis_url.is_none() {
            return Err("invalid --buffer redis: needs --redis-url".into());
        }
        if self.redis.buffer == "local" && self.roles.ingest != self.roles.writer {
            return Err(
                "invalid --buffer local: ingest and writer run apart; they need the Redis buffer"
                    .into(),
            );
        }
        if !(1..=1024).contains(&self.redis.buffer_shards) {
            return Err("invalid --buffer-shards: 1 to 1024".into());
        }
        if self.redis.buffer_max_deliveries == 0 {
            return Err("invalid --buffer-max-deliveries: at least 1".into());
        }
        if self.redis.buffer_lease < Duration::from_secs(2) {
            return Err("invalid --buffer-lease: at least 2s".into());
        }
        if self.net.grpc_addr == self.net.http_addr && self.net.grpc_addr.port() != 0 {
            return Err(format!(
                "invalid --http-addr: {} is also the --grpc-addr",
                self.net.http_addr
            ));
        }
        if self.shutdown_grace.is_zero() {
            return Err("invalid --shutdown-grace: must be more than 0".into());
        }
        match (&self.net.tls_cert, &self.net.tls_key) {
            (Some(_), None) => return Err("invalid --tls-cert: needs --tls-key".into()),
            (None, Some(_)) => return Err("invalid --tls-key: needs --tls-cert".into()),
            (None, None) if self.net.tls_client_ca.is_some() => {
                return Err("invalid --tls-client-ca: needs --tls-cert and --tls-key".into());
            }
            _ => {}
        }
        if self.ingest.retention < Duration::from_secs(86_400) {
            return Err("invalid --retention: at least 1d".into());
        }
        if self.incidents.incident_retention < Duration::from_secs(86_400) {
            return Err("invalid --incident-retention: at least 1d".into());
        }
        if self.rollup.rollup_minute_retention < Duration::from_secs(7 * 86_400) {
            return Err("invalid --rollup-minute-retention: at least 7d".into());
        }
        if self.rollup.rollup_retention < self.ingest.retention {
            return Err(
                "invalid --rollup-retention: rollups are kept at least as long as the --retention of raw events".into(),
            );
        }
        for (name, value) in [
            ("--detect-interval", self.incidents.detect_interval),
            ("--watch-heartbeat", self.incidents.watch_heartbeat),
            ("--ingest-idle-timeout", self.ingest.ingest_idle_timeout),
            ("--key-cache-ttl", self.key_cache_ttl),
            ("--first-request-timeout", self.net.first_request_timeout),
            ("--http-idle-timeout", self.net.http_idle_timeout),
        ] {
            if value.is_zero() {
                return Err(format!("invalid {name}: must be more than 0"));
            }
        }
        if self.rollup.rollup_interval.is_zero() {
            return Err("invalid --rollup-interval: must be more than 0".into());
        }
        for (name, value) in [
            ("--writer-batch-rows", self.ingest.writer_batch_rows),
            ("--writer-workers", self.ingest.writer_workers),
            ("--writer-queue-mib", self.ingest.writer_queue_mib),
            ("--stream-max-in-flight", self.ingest.stream_max_in_flight),
            (
                "--limit-concurrent-queries",
                self.limits.limit_concurrent_queries as usize,
            ),
        ] {
            if value == 0 {
                return Err(format!("invalid {name}: must be at least 1"));
            }
        }
        let l = self.tenant_limits();
        let as_overrides = crate::domain::LimitOverrides {
            events_per_sec: Some(l.events_per_sec),
            events_burst: Some(l.events_burst),
            bytes_per_sec: Some(l.bytes_per_sec),
            bytes_burst: Some(l.bytes_burst),
            max_streams: Some(l.max_streams),
            max_services: Some(l.max_services),
            max_endpoints: Some(l.max_endpoints),
            max_query_range: Some(l.max_query_range),
            max_page_size: Some(l.max_page_size),
        };
        if let Err((field, problem)) = as_overrides.validate() {
            let flag = match field {
                "events_per_second" => "--limit-events-per-sec",
                "events_burst" => "--limit-events-burst",
                "bytes_per_second" => "--limit-mib-per-sec",
                "bytes_burst" => "--limit-mib-burst",
                "max_streams" => "--limit-streams",
                "max_services" => "--limit-services",
                "max_endpoints_per_service" => "--limit-endpoints",
                "max_query_range" => "--limit-query-range",
                _ => "--limit-page-size",
            };
            return Err(format!("invalid {flag}: {problem}"));
        }
        if self.redis.redis_url.is_some() {
            let urls = self.redis.urls();
            if urls.is_empty()
                || urls
                    .iter()
                    .any(|u| !(u.starts_with("redis://") || u.starts_with("rediss://")))
            {
                return Err("invalid --redis-url (REDIS_URL): expected redis://host:port".into());
            }
            if urls.len() > 1 && !self.redis.redis_cluster {
                return Err(
                    "invalid --redis-url (REDIS_URL): several nodes need --redis-cluster".into(),
                );
            }
        }
        if self.redis.redis_key_prefix.is_empty() || self.redis.redis_key_prefix.len() > 64 {
            return Err("invalid --redis-key-prefix: 1 to 64 characters".into());
        }
        if self.ingest.writer_workers > self.db.db_max_connections as usize {
            return Err("invalid --writer-workers: more than --db-max-connections".into());
        }
        self.db.validate()
    }
}

impl DbArgs {
    fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err("invalid --database-url (DATABASE_URL): expected postgres://user@host:port/database".into());
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err("invalid --data-dir (PULSYON_DATA_DIR): empty path".into());
        }
        if self.db_read_connections == 0 {
            return Err("invalid --db-read-connections: must be at least 1".into());
        }
        if self.db_max_connections == 0 {
            return Err("invalid --db-max-connections: must be at least 1".into());
        }
        Ok(())
    }
}

/// Parses a duration such as `250ms`, `10s`, `5m`, `1h` or `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (use ms, s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit {unit:?} (use ms, s, m, h or d)"
            ));
        }
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {

    #[test]
    fn roles_parse_and_ingest_goes_with_its_writer() {
        assert_eq!(Roles::parse("all").unwrap(), Roles::ALL);
        let split = Roles::parse("query, detect").unwrap();
        assert!(split.query && split.detect && !split.ingest && !split.writer);
        assert!(split.check(false).is_ok());
        assert_eq!(split.names(), "detect,query");
        assert!(Roles::parse("ingest,writer").unwrap().check(false).is_ok());
        assert_eq!(Roles::parse("write").unwrap().names(), "ingest,writer");
        assert_eq!(Roles::parse("read").unwrap().names(), "detect,query,web");
        assert_eq!(
            Roles::parse("write,read").unwrap(),
            Roles::parse("all").unwrap()
        );
        for alone in ["ingest", "writer,query"] {
            let err = Roles::parse(alone).unwrap().check(false).unwrap_err();
            assert!(err.starts_with("invalid --roles"), "{err}");
            assert!(err.contains("--redis-url"), "{err}");
            // With a buffer between processes, each runs on its own.
            assert!(Roles::parse(alone).unwrap().check(true).is_ok());
        }
        assert!(
            Roles::parse("ingest,wrtier")
                .unwrap_err()
                .contains("wrtier")
        );
        assert!(Roles::parse("").is_err());
    }

    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        for bad in ["", "10", "s", "1.5s", "10x", "-1s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_bad_setting() {
        let cli = Cli::try_parse_from(["pulsyon", "serve", "--database-url", "mysql://x"]).unwrap();
        assert!(cli.validate().unwrap_err().contains("--database-url"));

        let cli = Cli::try_parse_from([
            "pulsyon",
            "serve",
            "--grpc-addr",
            "127.0.0.1:7000",
            "--http-addr",
            "127.0.0.1:7000",
        ])
        .unwrap();
        assert!(cli.validate().unwrap_err().contains("--http-addr"));

        let cli = Cli::try_parse_from([
            "pulsyon", "key", "create", "--tenant", "t", "--scopes", "all",
        ])
        .unwrap();
        assert!(cli.validate().unwrap_err().contains("--scopes"));
    }
}
