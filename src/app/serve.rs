//! `pulsyon serve`: start-up in numbered steps, each a function, then the
//! shutdown plan (DESIGN.md) in its own steps.

use std::{fs, path::Path, sync::Arc};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
use tokio::{net::TcpListener, signal::unix::SignalKind, task::JoinHandle};
use tonic_health::server::HealthReporter;

use super::{
    SESSION_LIFETIME,
    database::{ensure_default_tenant, open_database},
    stages::{ForDoors, Stages, Stops, start_stages},
};
use crate::{
    api::{self, ApiDeps, Authenticator},
    config::{Roles, ServeArgs},
    ops::Readiness,
    store::{Store, embedded::Cluster},
};

/// `pulsyon serve`: start-up in steps, then the shutdown plan.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let roles = args.active_roles();
    let metrics = crate::diagnostics::init_metrics().context("installing the metrics recorder")?;
    let tls = read_tls(&args)?;
    let http_tls = read_http_tls(&args)?
        .map(|m| crate::edge::tls::acceptor(&m, &[b"h2", b"http/1.1"]))
        .transpose()
        .context("the HTTP port's TLS (--http-tls-cert, --http-tls-key)")?;
    // 1. Listeners first, so that a taken port fails fast.
    let ports = Ports::bind(&args).await?;
    let mut signals = Signals::new()?;

    // 2. The database (external, or the private cluster), migrated.
    let (store, cluster) = tokio::select! {
        opened = open_database(&args.db, false) => opened?,
        _ = signals.recv() => return Ok(()),
    };
    let mut database = Database { store, cluster };
    if database.cluster.is_some()
        && let Err(err) = ensure_default_tenant(&database.store, &args.db.data_dir).await
    {
        database.close().await;
        return Err(err);
    }
    let store = database.store.clone();

    // 3. Health: every served service NOT_SERVING until the database answers.
    let stops = Stops::default();
    let readiness = Arc::new(Readiness::default());
    let (reporter, health_service) = api::health(roles).await;
    let monitor = api::health::spawn_monitor(
        store.clone(),
        reporter.clone(),
        roles,
        readiness.clone(),
        stops.monitor.clone(),
    );

    // 4. The stages the roles call for, and the HTTP endpoint with the
    //    roles' HTTP doors (OTLP/HTTP with ingest, the dashboard with web).
    let (stages, ForDoors { pipeline, hub }) =
        start_stages(&args, roles, &store, &stops, &readiness).await?;
    let doors = Doors {
        auth: Arc::new(Authenticator::new(
            store.clone(),
            args.key_cache_ttl,
            args.tenant_limits(),
        )),
        // One bound on a tenant's concurrent queries, shared by both doors.
        gate: crate::query::gate::QueryGate::new(args.limits.limit_concurrent_queries),
        store,
        pipeline,
        hub,
    };
    let dashboard = match roles.web {
        true => dashboard(&args, &doors, &stops, http_tls.is_some())?,
        false => None,
    };
    let http = crate::web::spawn(
        ports.http,
        crate::web::router(
            metrics,
            readiness.clone(),
            otlp_http_door(&doors),
            dashboard,
        ),
        http_edge(&args, ports.http_max, http_tls),
        stops.http.clone(),
    );

    // 5. The gRPC server with the roles' services.
    let tokens = Arc::new(page_tokens(&doors.store).await?);
    let deps = grpc_deps(&args, roles, doors, &stops, tls, tokens, ports.grpc_max);
    let otlp = otlp_grpc_door(&deps);
    let mut grpc = tokio::spawn(api::serve(
        ports.grpc,
        deps,
        health_service,
        otlp,
        stops.grpc.clone(),
    ));
    let (grpc_addr, http_addr) = (ports.grpc_addr, ports.http_addr);
    tracing::info!(grpc = %grpc_addr, http = %http_addr, roles = %roles.names(), "pulsyon serving");
    if let Some(path) = &args.net.addr_file {
        fs::write(path, format!("grpc={grpc_addr}\nhttp={http_addr}\n"))
            .with_context(|| format!("writing --addr-file {}", path.display()))?;
    }

    // 6. Until a signal (or the gRPC server fails).
    let mut result = Ok(());
    tokio::select! {
        signal = signals.recv() => tracing::info!(signal, "shutdown begins"),
        ended = &mut grpc => {
            result = match ended {
                Ok(Ok(())) => Err(anyhow::anyhow!("the gRPC server stopped unexpectedly")),
                Ok(Err(err)) => Err(err.into()),
                Err(join) => Err(anyhow::anyhow!("the gRPC server task failed: {join}")),
            };
        }
    }

    // 7. The shutdown plan.
    Running {
        roles,
        grace: args.shutdown_grace,
        readiness,
        reporter,
        monitor,
        stops,
        grpc,
        stages,
        http,
        database,
    }
    .shut_down()
    .await;
    result
}

/// The two listeners, bound, and each port's connection limit.
struct Ports {
    grpc: TcpListener,
    http: TcpListener,
    grpc_addr: std::net::SocketAddr,
    http_addr: std::net::SocketAddr,
    grpc_max: usize,
    http_max: usize,
}

impl Ports {
    async fn bind(args: &ServeArgs) -> anyhow::Result<Ports> {
        let grpc = bind(args.net.grpc_addr, "gRPC (--grpc-addr)").await?;
        let http = bind(args.net.http_addr, "HTTP (--http-addr)").await?;
        // Before the ports' connection limits are computed from it.
        crate::edge::raise_fd_limit();
        let grpc_max = connection_limit(args.net.max_connections, 3);
        let http_max = connection_limit(args.net.http_max_connections, 1);
        tracing::info!(
            max_connections = grpc_max,
            http_max_connections = http_max,
            "connection limits"
        );
        Ok(Ports {
            grpc_addr: grpc.local_addr()?,
            http_addr: http.local_addr()?,
            grpc,
            http,
            grpc_max,
            http_max,
        })
    }
}

/// SIGTERM and SIGINT, listened to from the start.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            terminate: tokio::signal::unix::signal(SignalKind::terminate())?,
            interrupt: tokio::signal::unix::signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal's name.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// The open database, and the private cluster when it serves it.
struct Database {
    store: Store,
    cluster: Option<Cluster>,
}

impl Database {
    async fn close(&mut self) {
        self.store.close().await;
        if let Some(c) = self.cluster.as_mut() {
            c.stop().await;
        }
    }
}

/// What the shutdown plan stops, in its order.
struct Running {
    roles: Roles,
    grace: std::time::Duration,
    readiness: Arc<Readiness>,
    reporter: HealthReporter,
    monitor: JoinHandle<()>,
    stops: Stops,
    grpc: JoinHandle<Result<(), api::ApiError>>,
    stages: Stages,
    http: JoinHandle<()>,
    database: Database,
}

impl Running {
    async fn shut_down(mut self) {
        // 7.1 Health NOT_SERVING, for good: the monitor stops first so it
        //     cannot flip it back.
        self.readiness.set_stopping();
        self.stops.monitor.cancel();
        let _ = (&mut self.monitor).await;
        api::health::set_all(&self.reporter, self.roles, false).await;
        // 7.2 Stop accepting; ingest streams stop reading, answer their
        //     in-flight batches (the writer keeps running) and end with
        //     UNAVAILABLE; other calls finish within the grace period.
        self.stops.grpc.cancel();
        self.stops.streams.cancel();
        if !self.grpc.is_finished() {
            match tokio::time::timeout(self.grace, &mut self.grpc).await {
                Ok(_) => tracing::info!("grpc server drained"),
                Err(_) => {
                    tracing::warn!(
                        grace_ms = self.grace.as_millis() as u64,
                        "grace period over; closing open streams"
                    );
                    self.grpc.abort();
                }
            }
        }
        // 7.3 The buffer's drain, then the writer.
        self.drain_writes().await;
        // 7.4 Background stages (the throttle counters flushed a last
        //     time), then the HTTP endpoint.
        self.stops.background.cancel();
        let stages = &mut self.stages;
        for task in [
            stages.flusher.take(),
            stages.monitor.take(),
            stages.stream_slots.take(),
            stages.partitions.take(),
            stages.incident_retention.take(),
            stages.rollups.take(),
            stages.hub.take(),
            stages.detector.take(),
            stages.notify.take(),
        ]
        .into_iter()
        .flatten()
        {
            let _ = task.await;
        }
        // Answers in flight are written whole; a client that does not read
        // its answer holds the exit up for the grace period at most.
        self.stops.http.cancel();
        if tokio::time::timeout(self.grace, &mut self.http)
            .await
            .is_err()
        {
            tracing::warn!("http connections still open after the grace period; closing them");
        }
        // 7.5 The database last.
        self.database.close().await;
        tracing::info!("shutdown complete");
    }

    /// The buffer's drain stops reading, waits for what it handed over and
    /// acknowledges it, gives its shards up; then the writer refuses new
    /// batches (connections cut at the end of the grace period may still
    /// hold admission handles), writes and answers what it holds, and ends.
    async fn drain_writes(&mut self) {
        self.stops.drain.cancel();
        if let Some(drain) = self.stages.drain.take()
            && tokio::time::timeout(self.grace, drain).await.is_err()
        {
            tracing::warn!("the buffer drain did not finish within the grace period");
        }
        self.stops.writer.cancel();
        if let Some(writer) = self.stages.writer.take()
            && tokio::time::timeout(self.grace, writer).await.is_err()
        {
            tracing::warn!("the writer did not drain within the grace period");
        }
    }
}

/// What both ports' doors share.
struct Doors {
    store: Store,
    auth: Arc<Authenticator>,
    gate: Arc<crate::query::gate::QueryGate>,
    /// The ingest pipeline (ingest role).
    pipeline: Option<crate::ingest::admit::Pipeline>,
    /// The incident hub (query or web role).
    hub: Option<Arc<crate::incidents::hub::Hub<crate::incidents::hub::Rendered>>>,
}

/// The OTLP/HTTP door, when this process ingests.
fn otlp_http_door(doors: &Doors) -> Vec<crate::web::HttpDoor> {
    let Some(pipeline) = &doors.pipeline else {
        return Vec::new();
    };
    vec![crate::web::HttpDoor {
        path: crate::otlp::http::TRACES_PATH,
        service: tower::util::BoxCloneSyncService::new(crate::otlp::http::OtlpHttp {
            service: crate::otlp::OtlpService {
                auth: doors.auth.clone(),
                pipeline: pipeline.clone(),
            },
        }),
    }]
}

/// The OTLP door's gRPC service, when this process ingests: the same
/// pipeline as Ingest, gzip accepted.
fn otlp_grpc_door(deps: &ApiDeps) -> Option<TraceServiceServer<crate::otlp::OtlpService>> {
    let pipeline = deps.pipeline.clone()?;
    Some(
        TraceServiceServer::new(crate::otlp::OtlpService {
            auth: deps.auth.clone(),
            pipeline,
        })
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(api::TRANSPORT_MAX_MESSAGE_BYTES),
    )
}

/// The dashboard (web role), on the incident hub.
fn dashboard(
    args: &ServeArgs,
    doors: &Doors,
    stops: &Stops,
    tls: bool,
) -> anyhow::Result<Option<crate::web::Dashboard>> {
    let Some(hub) = &doors.hub else {
        return Ok(None);
    };
    let logins =
        crate::auth::Logins::new(doors.store.clone(), doors.auth.clone(), SESSION_LIFETIME)
            .context("preparing logins")?;
    Ok(Some(crate::web::Dashboard {
        store: doors.store.clone(),
        logins: Arc::new(logins),
        hub: hub.clone(),
        admission: doors.pipeline.as_ref().map(|p| p.admission.clone()),
        heartbeat: args.incidents.watch_heartbeat,
        shutdown: stops.streams.clone(),
        tls,
        gate: doors.gate.clone(),
    }))
}

/// The HTTP port's bounds: it evicts the oldest silent connection when full.
fn http_edge(
    args: &ServeArgs,
    max: usize,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> crate::web::Edge {
    crate::web::Edge {
        limits: crate::edge::ConnLimits::new(
            max,
            args.net.first_request_timeout,
            "http",
            "--http-max-connections",
        )
        .evicting(),
        header_timeout: args.net.first_request_timeout,
        idle_timeout: args.net.http_idle_timeout,
        tls,
    }
}

/// What the gRPC server serves with.
fn grpc_deps(
    args: &ServeArgs,
    roles: Roles,
    doors: Doors,
    stops: &Stops,
    tls: Option<api::TlsMaterial>,
    tokens: Arc<api::tokens::PageTokens>,
    max: usize,
) -> ApiDeps {
    ApiDeps {
        roles,
        tokens,
        gate: doors.gate,
        connections: crate::edge::ConnLimits::new(
            max,
            args.net.first_request_timeout,
            "grpc",
            "--max-connections",
        ),
        store: doors.store,
        auth: doors.auth,
        pipeline: doors.pipeline,
        max_in_flight: args.ingest.stream_max_in_flight,
        ingest_idle_timeout: args.ingest.ingest_idle_timeout,
        shutdown: stops.streams.clone(),
        tls,
        hub: doors.hub,
        watch_heartbeat: args.incidents.watch_heartbeat,
        notify: Arc::new(args.notify_config()),
    }
}

/// The page-token signer, its secret shared by every process of the database.
async fn page_tokens(store: &Store) -> anyhow::Result<api::tokens::PageTokens> {
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh)
        .map_err(|e| anyhow::anyhow!("no randomness for the page-token secret: {e}"))?;
    let secret = store
        .shared_secret("page_tokens", &fresh)
        .await
        .context("reading the page-token secret")?;
    api::tokens::PageTokens::new(&secret).map_err(|e| anyhow::anyhow!("the page-token secret: {e}"))
}

/// A port's connection limit: `flag` when set, else `quarters` of the
/// open-file limit less 1,024 (the gRPC port 3, the HTTP port 1), at least 64.
fn connection_limit(flag: usize, quarters: u64) -> usize {
    match flag {
        0 => ((crate::edge::fd_limit().saturating_sub(1024) * quarters / 4) as usize).max(64),
        n => n,
    }
}

/// Reads the HTTP port's TLS files, when given (clap requires both).
fn read_http_tls(args: &ServeArgs) -> anyhow::Result<Option<api::TlsMaterial>> {
    let net = &args.net;
    tls_material(
        ("--http-tls-cert", net.http_tls_cert.as_deref()),
        ("--http-tls-key", net.http_tls_key.as_deref()),
        None,
    )
}

/// Reads the gRPC port's TLS files, when given (clap requires complete sets).
fn read_tls(args: &ServeArgs) -> anyhow::Result<Option<api::TlsMaterial>> {
    let net = &args.net;
    tls_material(
        ("--tls-cert", net.tls_cert.as_deref()),
        ("--tls-key", net.tls_key.as_deref()),
        net.tls_client_ca.as_deref().map(|p| ("--tls-client-ca", p)),
    )
}

/// A certificate chain and its key, each named by its flag, and the CA of
/// client certificates when asked for; `None` without a certificate.
fn tls_material(
    cert: (&str, Option<&Path>),
    key: (&str, Option<&Path>),
    client_ca: Option<(&str, &Path)>,
) -> anyhow::Result<Option<api::TlsMaterial>> {
    let ((cert_flag, Some(cert)), (key_flag, Some(key))) = (cert, key) else {
        return Ok(None);
    };
    Ok(Some(api::TlsMaterial {
        cert: read(cert_flag, cert)?,
        key: read(key_flag, key)?,
        client_ca: client_ca.map(|(flag, p)| read(flag, p)).transpose()?,
    }))
}

fn read(flag: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    fs::read(path).with_context(|| format!("reading {flag} {}", path.display()))
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} address {addr}"))
}
