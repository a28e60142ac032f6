//! `pulsyon serve`'s flag groups, one per concern, each under its own
//! heading in `--help`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};

use super::{
    MIB, Roles, at_least_2s, at_least_a_day, at_least_a_week, commands::at_least_one,
    parse_duration, positive_duration,
};

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
    #[arg(long, env = "PULSYON_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "PULSYON_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA bundle: require client certificates it signed (mutual TLS).
    #[arg(long, env = "PULSYON_TLS_CLIENT_CA", requires = "tls_cert")]
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
    #[arg(long, env = "PULSYON_FIRST_REQUEST_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub first_request_timeout: Duration,

    /// Most connections to the HTTP port at once (0: a quarter of the
    /// open-file limit less 1,024). Past it the oldest connection that has
    /// not sent a request is closed to make room, or else the new one.
    #[arg(long, env = "PULSYON_HTTP_MAX_CONNECTIONS", default_value_t = 0)]
    pub http_max_connections: usize,

    /// An HTTP/2 connection to the HTTP port with no request in flight this
    /// long is closed.
    #[arg(long, env = "PULSYON_HTTP_IDLE_TIMEOUT", default_value = "60s", value_parser = positive_duration)]
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
    #[arg(long, env = "PULSYON_STREAM_MAX_IN_FLIGHT", default_value_t = 8, value_parser = at_least_one)]
    pub stream_max_in_flight: usize,

    /// An ingest stream that sends no batch for this long is ended with
    /// UNAVAILABLE, freeing its tenant's stream slot (SDKs reconnect on need).
    #[arg(long, env = "PULSYON_INGEST_IDLE_TIMEOUT", default_value = "5m", value_parser = positive_duration)]
    pub ingest_idle_timeout: Duration,

    /// Longest a batch waits for queue space before RESOURCE_EXHAUSTED.
    #[arg(long, env = "PULSYON_ADMIT_WAIT", default_value = "1s", value_parser = parse_duration)]
    pub admit_wait: Duration,

    /// Rows that make a writer batch full.
    #[arg(long, env = "PULSYON_WRITER_BATCH_ROWS", default_value_t = 5_000, value_parser = at_least_one)]
    pub writer_batch_rows: usize,

    /// Longest a writer batch waits for more rows.
    #[arg(long, env = "PULSYON_WRITER_BATCH_AGE", default_value = "10ms", value_parser = parse_duration)]
    pub writer_batch_age: Duration,

    /// Writer batches written at once, each on its own connection.
    #[arg(long, env = "PULSYON_WRITER_WORKERS", default_value_t = 2, value_parser = at_least_one)]
    pub writer_workers: usize,

    /// Most MiB of admitted, unwritten batches; past it clients are slowed, then refused.
    #[arg(long, env = "PULSYON_WRITER_QUEUE_MIB", default_value_t = 64, value_parser = at_least_one)]
    pub writer_queue_mib: usize,

    /// Recognise resent batches (the batch ledger). Turning it off loses
    /// "retries are free" and exists only to measure the ledger's cost.
    #[arg(long, env = "PULSYON_BATCH_DEDUP", default_value_t = true, action = clap::ArgAction::Set, hide = true)]
    pub batch_dedup: bool,

    /// Raw events older than this are refused and their partitions dropped.
    #[arg(long, env = "PULSYON_RETENTION", default_value = "30d", value_parser = at_least_a_day)]
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
    #[arg(long, env = "PULSYON_LIMIT_CONCURRENT_QUERIES", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit_concurrent_queries: u32,
}

/// The rollup task and its retention.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Rollups")]
pub struct RollupArgs {
    /// Time between rollup passes (each merges everything stored since the last).
    #[arg(long, env = "PULSYON_ROLLUP_INTERVAL", default_value = "1s", value_parser = positive_duration)]
    pub rollup_interval: Duration,

    /// How long per-minute rollups are kept (at least 7d: health windows reach 7 days).
    #[arg(long, env = "PULSYON_ROLLUP_MINUTE_RETENTION", default_value = "8d", value_parser = at_least_a_week)]
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
    #[arg(long, env = "PULSYON_DETECT_INTERVAL", default_value = "5s", value_parser = positive_duration)]
    pub detect_interval: Duration,

    /// Time between evaluations of the service level objectives' burn rates
    /// (by the detector's leader, from the rollups).
    #[arg(long, env = "PULSYON_OBJECTIVE_INTERVAL", default_value = "30s", value_parser = positive_duration)]
    pub objective_interval: Duration,

    /// An incident resolves by itself once its alerts stayed clear this long.
    #[arg(long, env = "PULSYON_INCIDENT_RESOLVE_AFTER", default_value = "5m", value_parser = parse_duration)]
    pub incident_resolve_after: Duration,

    /// An alert this soon after its service's incident resolved reopens it.
    #[arg(long, env = "PULSYON_INCIDENT_REOPEN_WITHIN", default_value = "30m", value_parser = parse_duration)]
    pub incident_reopen_within: Duration,

    /// How long a resolved incident is kept, with its alerts and updates
    /// (at least 1d; ListIncidents reaches 400 days back).
    #[arg(long, env = "PULSYON_INCIDENT_RETENTION", default_value = "400d", value_parser = at_least_a_day)]
    pub incident_retention: Duration,

    /// Time between heartbeats of an idle Watch stream.
    #[arg(long, env = "PULSYON_WATCH_HEARTBEAT", default_value = "10s", value_parser = positive_duration)]
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
    #[arg(long, env = "REDIS_URL", value_parser = parse_redis_urls)]
    pub redis_url: Option<String>,

    /// `--redis-url` names the nodes of a Redis Cluster.
    #[arg(long, env = "PULSYON_REDIS_CLUSTER")]
    pub redis_cluster: bool,

    /// Prefix of Pulsyon's Redis keys (deployments sharing one Redis use different ones).
    #[arg(long, env = "PULSYON_REDIS_KEY_PREFIX", default_value = "pulsyon", value_parser = parse_key_prefix)]
    pub redis_key_prefix: String,

    /// Where admitted batches wait for a writer: `local` (this process's
    /// queue: ingest and writer together), `redis` (the buffer in Redis
    /// Streams), or `auto` (redis when ingest and writer run apart).
    #[arg(long, env = "PULSYON_BUFFER", value_enum, default_value_t = BufferMode::Auto)]
    pub buffer: BufferMode,

    /// Streams of the buffer (each on its own Redis Cluster slot); every
    /// process of a deployment must use the same number.
    #[arg(long, env = "PULSYON_BUFFER_SHARDS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub buffer_shards: u32,

    /// When an ingest process answers a batch: `buffered` (once it is in
    /// Redis: DURABILITY_BUFFERED) or `commit` (once a writer committed it:
    /// DURABILITY_COMMITTED).
    #[arg(long, env = "PULSYON_ACK_AFTER", value_enum, default_value_t = AckAfter::Buffered)]
    pub ack_after: AckAfter,

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
    #[arg(long, env = "PULSYON_BUFFER_MAX_DELIVERIES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub buffer_max_deliveries: u32,

    /// How long a writer's lease of a buffer shard lasts without renewal
    /// (the time another writer waits to take a dead writer's shards over).
    #[arg(long, env = "PULSYON_BUFFER_LEASE", default_value = "10s", value_parser = at_least_2s)]
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
            && match self.buffer {
                BufferMode::Redis => true,
                BufferMode::Local => false,
                BufferMode::Auto => roles.ingest != roles.writer,
            }
    }
}

/// Where admitted batches wait for a writer (`--buffer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BufferMode {
    /// The Redis buffer when ingest and writer run apart, else this
    /// process's queue.
    Auto,
    /// This process's queue (ingest and writer together).
    Local,
    /// The buffer in Redis Streams.
    Redis,
}

/// When an ingest process answers a batch (`--ack-after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AckAfter {
    /// Once it is in the Redis buffer (DURABILITY_BUFFERED).
    Buffered,
    /// Once a writer committed it (DURABILITY_COMMITTED).
    Commit,
}

/// `redis://` or `rediss://` URLs, comma-separated (checked; kept whole).
fn parse_redis_urls(text: &str) -> Result<String, String> {
    let urls: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    match !urls.is_empty()
        && urls
            .iter()
            .all(|u| u.starts_with("redis://") || u.starts_with("rediss://"))
    {
        true => Ok(text.to_owned()),
        false => Err("expected redis://host:port".into()),
    }
}

/// A Redis key prefix: 1 to 64 characters.
fn parse_key_prefix(text: &str) -> Result<String, String> {
    match (1..=64).contains(&text.len()) {
        true => Ok(text.to_owned()),
        false => Err("1 to 64 characters".into()),
    }
}

/// Notifications (the `notify` role).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Notifications")]
pub struct NotifyArgs {
    /// The dashboard's address as people reach it (`https://pulsyon.example.com`):
    /// every message links to its incident's page under it.
    #[arg(long, env = "PULSYON_PUBLIC_URL", default_value = "", value_parser = parse_public_url)]
    pub public_url: String,

    /// Let receivers point at loopback, private, link-local (cloud metadata)
    /// and other non-public addresses, and email go out without TLS: for a
    /// receiver inside the operator's own network, and for tests.
    #[arg(long, env = "PULSYON_NOTIFY_ALLOW_PRIVATE_TARGETS")]
    pub notify_allow_private_targets: bool,

    /// How long one attempt to a receiver may take.
    #[arg(long, env = "PULSYON_NOTIFY_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub notify_timeout: Duration,

    /// After this long undelivered, a delivery is `failed` (listed, and sent
    /// again by Incidents.RetryDelivery).
    #[arg(long, env = "PULSYON_NOTIFY_DEADLINE", default_value = "6h", value_parser = positive_duration)]
    pub notify_deadline: Duration,

    /// The first retry's delay; each next one doubles, up to --notify-max-backoff.
    #[arg(long, env = "PULSYON_NOTIFY_BACKOFF", default_value = "1s", value_parser = positive_duration)]
    pub notify_backoff: Duration,

    /// The longest delay between two attempts (a receiver's Retry-After may ask more).
    #[arg(long, env = "PULSYON_NOTIFY_MAX_BACKOFF", default_value = "5m", value_parser = positive_duration)]
    pub notify_max_backoff: Duration,

    /// Deliveries in flight to one receiver at most (per process).
    #[arg(long, env = "PULSYON_NOTIFY_PER_RECEIVER", default_value_t = 4, value_parser = clap::value_parser!(i64).range(1..=64))]
    pub notify_per_receiver: i64,
}

/// `--public-url`: empty, or an http(s) URL.
fn parse_public_url(text: &str) -> Result<String, String> {
    let t = text.trim().trim_end_matches('/');
    if t.is_empty() || t.starts_with("http://") || t.starts_with("https://") {
        Ok(t.to_owned())
    } else {
        Err("an http:// or https:// URL".into())
    }
}
