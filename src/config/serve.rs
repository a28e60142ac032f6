//! `pulsyon serve`: its flags, each stage's config as they describe it, and
//! the rules between flags that clap cannot say.

use std::time::Duration;

use clap::Args;

use super::{
    AckAfter, BufferMode, DbArgs, IncidentArgs, IngestArgs, LimitArgs, MIB, NetArgs, NotifyArgs,
    RedisArgs, Roles, RollupArgs, positive_duration,
};

/// `pulsyon serve`
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// How long shutdown may take before open streams are cut.
    #[arg(long, env = "PULSYON_SHUTDOWN_GRACE", default_value = "10s", value_parser = positive_duration)]
    pub shutdown_grace: Duration,

    /// How long API-key lookups are cached; a revoked key stops working on
    /// every process within this time.
    #[arg(long, env = "PULSYON_KEY_CACHE_TTL", default_value = "5s", value_parser = positive_duration)]
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

    /// Notifications.
    #[command(flatten)]
    pub notify: NotifyArgs,
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

    /// The notification settings these flags describe.
    pub fn notify_config(&self) -> crate::notify::NotifyConfig {
        crate::notify::NotifyConfig {
            public_url: self.notify.public_url.clone(),
            allow_private_targets: self.notify.notify_allow_private_targets,
            timeout: self.notify.notify_timeout,
            deadline: self.notify.notify_deadline,
            per_receiver: self.notify.notify_per_receiver,
            base_backoff: self.notify.notify_backoff,
            max_backoff: self.notify.notify_max_backoff,
            lifecycle: self.detect_config().lifecycle,
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
            objective_interval: self.incidents.objective_interval,
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
            ack_after_commit: self.redis.ack_after == AckAfter::Commit,
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

    /// The rules between flags (each flag's own are clap's).
    pub(super) fn validate(&self) -> Result<(), String> {
        self.roles.check(self.redis.buffered(self.roles))?;
        self.check_buffer()?;
        if self.net.grpc_addr == self.net.http_addr && self.net.grpc_addr.port() != 0 {
            return Err(format!(
                "invalid --http-addr: {} is also the --grpc-addr",
                self.net.http_addr
            ));
        }
        if self.rollup.rollup_retention < self.ingest.retention {
            return Err(
                "invalid --rollup-retention: rollups are kept at least as long as the --retention of raw events".into(),
            );
        }
        if self.ingest.writer_workers > self.db.db_max_connections as usize {
            return Err("invalid --writer-workers: more than --db-max-connections".into());
        }
        self.check_limits()
    }

    /// The buffer's mode against Redis and the roles.
    fn check_buffer(&self) -> Result<(), String> {
        if self.redis.buffer == BufferMode::Redis && self.redis.redis_url.is_none() {
            return Err("invalid --buffer redis: needs --redis-url".into());
        }
        if self.redis.buffer == BufferMode::Local && self.roles.ingest != self.roles.writer {
            return Err(
                "invalid --buffer local: ingest and writer run apart; they need the Redis buffer"
                    .into(),
            );
        }
        if self.redis.urls().len() > 1 && !self.redis.redis_cluster {
            return Err(
                "invalid --redis-url (REDIS_URL): several nodes need --redis-cluster".into(),
            );
        }
        Ok(())
    }

    /// The default tenant limits, held to the rules of Admin's overrides.
    fn check_limits(&self) -> Result<(), String> {
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
        let Err((field, problem)) = as_overrides.validate() else {
            return Ok(());
        };
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
        Err(format!("invalid {flag}: {problem}"))
    }
}
