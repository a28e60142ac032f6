//! Wiring: which database, which stages, in which order they start and stop.
//!
//! Only this module knows the deployment mode (embedded cluster or external
//! database) and the roles of the process (`--roles`). Start-up, in steps:
//! bind the listeners (so a taken port fails fast), open the database and
//! migrate, health and the HTTP endpoint, the stages the roles call for, the
//! gRPC server with the roles' services. The shutdown plan follows
//! DESIGN.md: health NOT_SERVING, stop accepting, let in-flight calls finish
//! within the grace period, drain the writer, stop and join every background
//! task, close the pool, stop the private cluster.

use std::{
    fs::{self, OpenOptions},
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
    sync::Arc,
};

use anyhow::Context;
use tokio::{net::TcpListener, signal::unix::SignalKind, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    api::{self, ApiDeps, Authenticator},
    config::{
        Command, DbArgs, DetectCommand, HealthcheckArgs, KeyCommand, Roles, ServeArgs,
        TenantCommand, UserCommand,
    },
    domain::{ApiKeySecret, Role, Scope},
    incidents::hub::{Hub, Rendered},
    ops::Readiness,
    store::{
        self, Store, StoreError,
        embedded::{Cluster, EmbeddedError},
    },
};

/// How long a dashboard session lasts.
pub const SESSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(12 * 3_600);

/// Name of the tenant created on the first start of the embedded default.
pub const DEFAULT_TENANT: &str = "default";

/// Runs one subcommand to completion.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(*args).await,
        Command::Roles => {
            for (name, starts) in Roles::TABLE {
                println!("{name:<8} {starts}");
            }
            for (name, stands_for) in Roles::GROUPS {
                println!("{name:<8} = {stands_for}");
            }
            println!(
                "ingest and writer run in one process unless --redis-url joins them (the Redis buffer); `all` is the default"
            );
            Ok(())
        }
        Command::Healthcheck(args) => healthcheck(args).await,
        Command::Seed(args) => crate::seed::run(args).await,
        Command::Detect(DetectCommand::Backtest {
            from,
            to,
            tenant,
            json,
            db,
        }) => {
            with_database(&db, |store| async move {
                let to = to.unwrap_or_else(time::OffsetDateTime::now_utc);
                let tenant = match tenant {
                    Some(name) => Some(store.tenant_by_name(&name).await?.id),
                    None => None,
                };
                let outcome =
                    crate::detect::backtest::replay(&store, tenant, from, to, &Default::default())
                        .await?;
                crate::detect::backtest::print(&outcome, json);
                Ok(())
            })
            .await
        }
        Command::Migrate(db) => {
            let (store, mut cluster) = open_database(&db, false).await?;
            store.close().await;
            if let Some(c) = cluster.as_mut() {
                c.stop().await;
            }
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Tenant(TenantCommand::Create { name, db }) => {
            with_database(&db, |store| async move {
                let secret = ApiKeySecret::generate()?;
                let (tenant, key) = store
                    .create_tenant_with_key(&name, "initial", &secret, || Ok(()))
                    .await
                    .with_context(|| format!("creating tenant {name:?}"))?;
                print_key(&tenant.name, &key.key_id.to_string(), &Scope::ALL, &secret);
                Ok(())
            })
            .await
        }
        Command::Key(KeyCommand::Create {
            tenant,
            scopes,
            name,
            db,
        }) => {
            let scopes = Scope::parse_list(&scopes).map_err(anyhow::Error::msg)?;
            with_database(&db, |store| async move {
                let tenant = match store.tenant_by_name(&tenant).await {
                    Err(StoreError::NotFound(_)) => anyhow::bail!("no tenant named {tenant:?}"),
                    other => other?,
                };
                let secret = ApiKeySecret::generate()?;
                let key = store.create_key(&tenant, &name, &scopes, &secret).await?;
                print_key(&tenant.name, &key.key_id.to_string(), &scopes, &secret);
                Ok(())
            })
            .await
        }
        Command::User(UserCommand::Create {
            tenant,
            role,
            password_stdin,
            name,
            db,
        }) => {
            let role = Role::parse(&role).context("--role")?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (crate::auth::generate_password()?, true)
            };
            let hash = crate::auth::hash_password(&password)?;
            with_database(&db, |store| async move {
                let tenant = match store.tenant_by_name(&tenant).await {
                    Err(StoreError::NotFound(_)) => anyhow::bail!("no tenant named {tenant:?}"),
                    other => other?,
                };
                let user = match store.create_user(tenant.id, &name, role, &hash).await {
                    Err(StoreError::Conflict(_)) => {
                        anyhow::bail!("tenant {:?} already has a user named {name:?}", tenant.name)
                    }
                    other => other?,
                };
                eprintln!(
                    "user {:?} of tenant {:?} created (role {}, id {})",
                    user.name,
                    tenant.name,
                    user.role.as_str(),
                    user.user_id
                );
                if generated {
                    eprintln!("its password is shown only once:");
                    println!("{password}");
                }
                Ok(())
            })
            .await
        }
    }
}

/// `pulsyon healthcheck`: Ok when the server answers SERVING in time.
async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<()> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let mut addr = args.grpc_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let ask = async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: args.service.clone(),
            })
            .await?;
        anyhow::Ok(answer.into_inner().status)
    };
    match tokio::time::timeout(args.timeout, ask).await {
        Ok(Ok(status)) if status == ServingStatus::Serving as i32 => {
            println!("serving");
            Ok(())
        }
        Ok(Ok(status)) => anyhow::bail!(
            "{addr}: {:?}",
            ServingStatus::try_from(status).unwrap_or(ServingStatus::Unknown)
        ),
        Ok(Err(err)) => anyhow::bail!("{addr}: {err}"),
        Err(_) => anyhow::bail!("{addr}: no answer within {:?}", args.timeout),
    }
}

/// Prints a new key: the secret alone on stdout (for scripts), the rest on stderr.
fn print_key(tenant: &str, key_id: &str, scopes: &[Scope], secret: &ApiKeySecret) {
    let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    eprintln!(
        "new API key for tenant {tenant} (id {key_id}, scopes {}); it is shown only once:",
        scopes.join(",")
    );
    println!("{}", secret.expose());
}

/// Opens the database for a one-shot command (attaching to a running
/// server's private cluster if there is one), runs `f`, and closes it.
async fn with_database<F, Fut>(db: &DbArgs, f: F) -> anyhow::Result<()>
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let (store, mut cluster) = open_database(db, true).await?;
    let result = f(store.clone()).await;
    store.close().await;
    if let Some(c) = cluster.as_mut() {
        c.stop().await;
    }
    result
}

/// Connects to `DATABASE_URL`, or starts the private cluster, and migrates.
async fn open_database(db: &DbArgs, attach: bool) -> anyhow::Result<(Store, Option<Cluster>)> {
    let (options, cluster) = match &db.database_url {
        Some(url) => (store::options_from_url(url).context("DATABASE_URL")?, None),
        None => {
            let cluster = if attach {
                Cluster::start_or_attach(&db.data_dir, &db.pg_user).await
            } else {
                Cluster::start(&db.data_dir, &db.pg_user).await
            };
            let cluster = cluster.map_err(|e: EmbeddedError| anyhow::anyhow!(e))?;
            (cluster.connect_options(), Some(cluster))
        }
    };
    let opened = async {
        let store = Store::connect_split(
            options,
            db.db_max_connections,
            db.db_read_connections,
            db.db_connect_timeout,
        )
        .await
        .context("connecting to PostgreSQL")?;
        store.migrate().await.context("applying migrations")?;
        anyhow::Ok(store)
    }
    .await;
    match opened {
        Ok(store) => Ok((store, cluster)),
        Err(err) => {
            if let Some(mut c) = cluster {
                c.stop().await;
            }
            Err(err)
        }
    }
}

/// On the first start of the embedded default: a tenant `default` with a key
/// of every scope, saved to `<data-dir>/api-key` (0600) before the commit.
async fn ensure_default_tenant(store: &Store, data_dir: &Path) -> anyhow::Result<()> {
    match store.tenant_by_name(DEFAULT_TENANT).await {
        Ok(_) => return Ok(()),
        Err(StoreError::NotFound(_)) => {}
        Err(err) => return Err(err.into()),
    }
    let secret = ApiKeySecret::generate()?;
    let path = data_dir.join(crate::config::KEY_FILE);
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        writeln!(file, "{}", secret.expose())?;
        file.sync_all()
    };
    store
        .create_tenant_with_key(DEFAULT_TENANT, "initial", &secret, write)
        .await
        .context("creating the default tenant")?;
    tracing::info!(
        path = %path.display(),
        tenant = DEFAULT_TENANT,
        "first start: created tenant `default` and an API key with every scope; the key is in this file"
    );
    Ok(())
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
    let (Some(cert), Some(key)) = (&args.net.http_tls_cert, &args.net.http_tls_key) else {
        return Ok(None);
    };
    let read = |flag: &str, path: &Path| {
        fs::read(path).with_context(|| format!("reading {flag} {}", path.display()))
    };
    Ok(Some(api::TlsMaterial {
        cert: read("--http-tls-cert", cert)?,
        key: read("--http-tls-key", key)?,
        client_ca: None,
    }))
}

/// Reads the TLS files named by the flags (validated to come in complete sets).
fn read_tls(args: &ServeArgs) -> anyhow::Result<Option<api::TlsMaterial>> {
    let read = |flag: &str, path: &Path| {
        fs::read(path).with_context(|| format!("reading {flag} {}", path.display()))
    };
    let (Some(cert), Some(key)) = (&args.net.tls_cert, &args.net.tls_key) else {
        return Ok(None);
    };
    Ok(Some(api::TlsMaterial {
        cert: read("--tls-cert", cert)?,
        key: read("--tls-key", key)?,
        client_ca: args
            .net
            .tls_client_ca
            .as_deref()
            .map(|p| read("--tls-client-ca", p))
            .transpose()?,
    }))
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {what} address {addr}"))
}

/// Background stages of a process, as its roles start them; each is
/// joined at shutdown.
struct Stages {
    /// Writer role: partitions ahead, retention.
    partitions: Option<JoinHandle<()>>,
    /// Writer role: rollup deltas merged.
    rollups: Option<JoinHandle<()>>,
    /// Query role: incident updates fanned out to Watch.
    hub: Option<JoinHandle<()>>,
    /// Detect role: the detector and its leader election.
    detector: Option<JoinHandle<()>>,
    /// Ingest and writer roles: the writer and the throttle-counter flusher.
    writer: Option<JoinHandle<()>>,
    flusher: Option<JoinHandle<()>>,
    /// Writer role with the Redis buffer: its shards drained into the writer.
    drain: Option<JoinHandle<()>>,
    /// Ingest role with the Redis buffer: its fill read (and commit reports).
    monitor: Option<JoinHandle<()>>,
    /// Ingest role with Redis: the renewal of its streams' shared slots.
    stream_slots: Option<JoinHandle<()>>,
}

/// Cancellation of each phase of the shutdown plan.
#[derive(Default)]
struct Stops {
    /// The health monitor (first, so it cannot flip health back).
    monitor: CancellationToken,
    /// The gRPC server stops accepting.
    grpc: CancellationToken,
    /// Long streams (ingest, Watch) stop reading and end.
    streams: CancellationToken,
    /// The buffer's drain hands nothing more to the writer, finishes and
    /// acknowledges what it handed over, and gives its shards up.
    drain: CancellationToken,
    /// The writer refuses new batches, drains and ends.
    writer: CancellationToken,
    /// Background stages.
    background: CancellationToken,
    /// The HTTP endpoint.
    http: CancellationToken,
}

/// What the started stages give the doors.
struct ForDoors {
    /// The ingest pipeline (ingest role).
    pipeline: Option<crate::ingest::admit::Pipeline>,
    /// The incident hub (query or web role).
    hub: Option<Arc<Hub<Rendered>>>,
}

/// An incident update as each streaming door sends it, rendered once.
fn render_update(u: &crate::domain::incident::Update) -> Rendered {
    Rendered {
        watch: api::incidents::render_update(u),
        events: crate::web::render_update(u),
    }
}

/// Starts the background stages `roles` call for; returns them with what
/// the doors need of them.
async fn start_stages(
    args: &ServeArgs,
    roles: Roles,
    store: &Store,
    stops: &Stops,
    readiness: &Arc<Readiness>,
) -> anyhow::Result<(Stages, ForDoors)> {
    let background = &stops.background;
    let mut stages = Stages {
        partitions: None,
        rollups: None,
        hub: None,
        detector: None,
        writer: None,
        flusher: None,
        drain: None,
        monitor: None,
        stream_slots: None,
    };
    if roles.writer {
        stages.partitions = Some(crate::ingest::partitions::spawn(
            store.clone(),
            crate::ingest::partitions::Retention {
                events: args.ingest.retention,
                incidents: args.incidents.incident_retention,
            },
            background.clone(),
        ));
        stages.rollups = Some(crate::rollup::spawn(
            store.clone(),
            args.rollup_config(),
            background.clone(),
        ));
    }
    let mut hub = None;
    if roles.query || roles.web {
        let (h, task) =
            crate::incidents::hub::spawn(store.clone(), render_update, background.clone());
        hub = Some(h);
        stages.hub = Some(task);
    }
    if roles.detect {
        stages.detector = Some(crate::detect::spawn(
            store.clone(),
            args.detect_config(),
            background.clone(),
        ));
    }
    let mut pipeline = None;
    // Where admitted batches wait for a writer: this process's queue (ingest
    // and writer together), or the Redis buffer between processes.
    let buffer = match args.redis.buffered(roles) {
        true => Some(Arc::new(
            crate::redis::buffer::Buffer::connect(
                args.buffer_config(),
                Arc::new(api::record::BufferRecord),
                Some(readiness.clone()),
            )
            .await
            .context("the ingest buffer (--redis-url)")?,
        )),
        false => None,
    };
    let local = if roles.writer {
        let local = crate::ingest::spawn(
            store.clone(),
            &args.ingest_config(),
            background.clone(),
            stops.writer.clone(),
        );
        stages.writer = Some(local.writer);
        stages.flusher = Some(local.flusher);
        if let Some(buffer) = &buffer {
            stages.drain = Some(crate::redis::buffer::spawn_drain(
                buffer.clone(),
                store.clone(),
                local.queue.sender(),
                stops.drain.clone(),
            ));
        }
        Some((local.queue, local.throttles))
    } else {
        None
    };
    if roles.ingest {
        let (admission, throttles): (Arc<dyn crate::ingest::Admission>, _) = match (&buffer, local)
        {
            (Some(buffer), local) => {
                let (admission, monitor) =
                    crate::redis::buffer::RedisAdmission::start(buffer.clone(), background.clone());
                stages.monitor = Some(monitor);
                let throttles = match local {
                    Some((_, throttles)) => throttles,
                    None => {
                        let (throttles, flusher) =
                            crate::ingest::spawn_flusher(store.clone(), background.clone());
                        stages.flusher = Some(flusher);
                        throttles
                    }
                };
                (Arc::new(admission), throttles)
            }
            (None, Some((queue, throttles))) => (queue, throttles),
            (None, None) => anyhow::bail!("ingest without writer needs the Redis buffer"),
        };
        // With Redis, each tenant's concurrent streams are counted across processes.
        let shared_streams: Option<Arc<dyn crate::ingest::limits::SharedStreams>> =
            match &args.redis.redis_url {
                Some(_) => {
                    let (streams, task) = crate::redis::streams::RedisStreams::start(
                        &args.redis.urls(),
                        args.redis.redis_cluster,
                        &args.redis.redis_key_prefix,
                        background.clone(),
                    );
                    stages.stream_slots = Some(task);
                    Some(streams)
                }
                None => None,
            };
        // With Redis, the ingest rate budget is shared by every process.
        let shared: Option<Arc<dyn crate::ingest::limits::SharedBudget>> =
            match &args.redis.redis_url {
                Some(_) => Some(Arc::new(
                    crate::redis::RedisRates::new(
                        &args.redis.urls(),
                        args.redis.redis_cluster,
                        &args.redis.redis_key_prefix,
                    )
                    .context("--redis-url")?,
                )),
                None => None,
            };
        pipeline = Some(crate::ingest::admit::Pipeline {
            admission,
            throttles,
            bounds: Arc::new(args.event_bounds()),
            guards: Arc::new(crate::ingest::limits::Guards {
                rates: crate::ingest::limits::RateLimiter::new(shared),
                streams: Arc::new(crate::ingest::limits::StreamSlots::with_shared(
                    shared_streams,
                )),
                cardinality: crate::ingest::limits::Cardinality::with_shared(
                    store.clone(),
                    args.redis.redis_url.as_ref().map(|_| {
                        Arc::new(crate::redis::catalogue::RedisCatalogue::new(
                            &args.redis.urls(),
                            args.redis.redis_cluster,
                            &args.redis.redis_key_prefix,
                        ))
                            as Arc<dyn crate::ingest::limits::SharedCatalogue>
                    }),
                ),
            }),
        });
    }
    Ok((stages, ForDoors { pipeline, hub }))
}

/// `pulsyon serve`: start-up in steps, then the shutdown plan.
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let roles = args.active_roles();
    let metrics = crate::diagnostics::init_metrics().context("installing the metrics recorder")?;
    let tls = read_tls(&args)?;
    let http_tls = read_http_tls(&args)?
        .map(|m| crate::edge::tls::acceptor(&m, &[b"h2", b"http/1.1"]))
        .transpose()
        .context("the HTTP port's TLS (--http-tls-cert, --http-tls-key)")?;
    // 1. Listeners first, so that a taken port fails fast.
    let grpc_listener = bind(args.net.grpc_addr, "gRPC (--grpc-addr)").await?;
    let http_listener = bind(args.net.http_addr, "HTTP (--http-addr)").await?;
    let grpc_addr = grpc_listener.local_addr()?;
    let http_addr = http_listener.local_addr()?;
    // Before the ports' connection limits are computed from it.
    crate::edge::raise_fd_limit();
    let grpc_max = connection_limit(args.net.max_connections, 3);
    let http_max = connection_limit(args.net.http_max_connections, 1);
    tracing::info!(
        max_connections = grpc_max,
        http_max_connections = http_max,
        "connection limits"
    );

    let mut terminate = tokio::signal::unix::signal(SignalKind::terminate())?;
    let mut interrupt = tokio::signal::unix::signal(SignalKind::interrupt())?;

    // 2. The database (external, or the private cluster), migrated.
    let (store, mut cluster) = tokio::select! {
        opened = open_database(&args.db, false) => opened?,
        _ = terminate.recv() => return Ok(()),
        _ = interrupt.recv() => return Ok(()),
    };
    if cluster.is_some()
        && let Err(err) = ensure_default_tenant(&store, &args.db.data_dir).await
    {
        store.close().await;
        if let Some(c) = cluster.as_mut() {
            c.stop().await;
        }
        return Err(err);
    }

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
    //    roles' HTTP doors (OTLP/HTTP with ingest).
    let (stages, ForDoors { pipeline, hub }) =
        start_stages(&args, roles, &store, &stops, &readiness).await?;
    let auth = Arc::new(Authenticator::new(
        store.clone(),
        args.key_cache_ttl,
        args.tenant_limits(),
    ));
    let doors: Vec<crate::web::HttpDoor> = match &pipeline {
        Some(pipeline) => vec![crate::web::HttpDoor {
            path: api::otlp_http::TRACES_PATH,
            service: tower::util::BoxCloneSyncService::new(api::otlp_http::OtlpHttp {
                service: api::otlp::OtlpService {
                    auth: auth.clone(),
                    pipeline: pipeline.clone(),
                },
            }),
        }],
        None => Vec::new(),
    };
    // One bound on a tenant's concurrent queries, shared by both doors.
    let gate = crate::query::gate::QueryGate::new(args.limits.limit_concurrent_queries);
    // The dashboard, with the web role.
    let dashboard = match &hub {
        Some(hub) if roles.web => Some(crate::web::Dashboard {
            store: store.clone(),
            logins: Arc::new(
                crate::auth::Logins::new(store.clone(), auth.clone(), SESSION_LIFETIME)
                    .context("preparing logins")?,
            ),
            hub: hub.clone(),
            admission: pipeline.as_ref().map(|p| p.admission.clone()),
            heartbeat: args.incidents.watch_heartbeat,
            shutdown: stops.streams.clone(),
            tls: http_tls.is_some(),
            gate: gate.clone(),
        }),
        _ => None,
    };
    let http = crate::web::spawn(
        http_listener,
        crate::web::router(metrics, readiness.clone(), doors, dashboard),
        crate::web::Edge {
            limits: crate::edge::ConnLimits::new(
                http_max,
                args.net.first_request_timeout,
                "http",
                "--http-max-connections",
            )
            .evicting(),
            header_timeout: args.net.first_request_timeout,
            idle_timeout: args.net.http_idle_timeout,
            tls: http_tls,
        },
        stops.http.clone(),
    );

    // 5. The gRPC server with the roles' services.
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh)
        .map_err(|e| anyhow::anyhow!("no randomness for the page-token secret: {e}"))?;
    let token_secret = store
        .shared_secret("page_tokens", &fresh)
        .await
        .context("reading the page-token secret")?;
    let deps = ApiDeps {
        roles,
        tokens: Arc::new(
            api::tokens::PageTokens::new(&token_secret)
                .map_err(|e| anyhow::anyhow!("the page-token secret: {e}"))?,
        ),
        gate: gate.clone(),
        connections: crate::edge::ConnLimits::new(
            grpc_max,
            args.net.first_request_timeout,
            "grpc",
            "--max-connections",
        ),
        store: store.clone(),
        auth,
        pipeline,
        max_in_flight: args.ingest.stream_max_in_flight,
        ingest_idle_timeout: args.ingest.ingest_idle_timeout,
        shutdown: stops.streams.clone(),
        tls,
        hub,
        watch_heartbeat: args.incidents.watch_heartbeat,
    };
    let mut grpc = tokio::spawn(api::serve(
        grpc_listener,
        deps,
        health_service,
        stops.grpc.clone(),
    ));

    tracing::info!(grpc = %grpc_addr, http = %http_addr, roles = %roles.names(), "pulsyon serving");
    if let Some(path) = &args.net.addr_file {
        fs::write(path, format!("grpc={grpc_addr}\nhttp={http_addr}\n"))
            .with_context(|| format!("writing --addr-file {}", path.display()))?;
    }

    // 6. Until a signal (or the gRPC server fails).
    let mut result = Ok(());
    tokio::select! {
        _ = terminate.recv() => tracing::info!(signal = "SIGTERM", "shutdown begins"),
        _ = interrupt.recv() => tracing::info!(signal = "SIGINT", "shutdown begins"),
        ended = &mut grpc => {
            result = match ended {
                Ok(Ok(())) => Err(anyhow::anyhow!("the gRPC server stopped unexpectedly")),
                Ok(Err(err)) => Err(err.into()),
                Err(join) => Err(anyhow::anyhow!("the gRPC server task failed: {join}")),
            };
        }
    }

    // 7. The shutdown plan.
    // 7.1 Health NOT_SERVING, for good: the monitor stops first so it cannot flip it back.
    readiness.set_stopping();
    stops.monitor.cancel();
    let _ = monitor.await;
    api::health::set_all(&reporter, roles, false).await;
    // 7.2 Stop accepting; ingest streams stop reading, answer their in-flight
    //     batches (the writer keeps running) and end with UNAVAILABLE; other
    //     calls finish within the grace period.
    stops.grpc.cancel();
    stops.streams.cancel();
    if !grpc.is_finished() {
        match tokio::time::timeout(args.shutdown_grace, &mut grpc).await {
            Ok(_) => tracing::info!("grpc server drained"),
            Err(_) => {
                tracing::warn!(
                    grace_ms = args.shutdown_grace.as_millis() as u64,
                    "grace period over; closing open streams"
                );
                grpc.abort();
            }
        }
    }
    // 7.3 The buffer's drain stops reading, waits for what it handed over
    //     and acknowledges it, gives its shards up; then the writer refuses
    //     new batches (connections cut at the end of the grace period may
    //     still hold admission handles), writes and answers what it holds,
    //     and ends.
    stops.drain.cancel();
    if let Some(drain) = stages.drain
        && tokio::time::timeout(args.shutdown_grace, drain)
            .await
            .is_err()
    {
        tracing::warn!("the buffer drain did not finish within the grace period");
    }
    stops.writer.cancel();
    if let Some(writer) = stages.writer
        && tokio::time::timeout(args.shutdown_grace, writer)
            .await
            .is_err()
    {
        tracing::warn!("the writer did not drain within the grace period");
    }
    // 7.4 Background stages (the throttle counters flushed a last time),
    //     then the HTTP endpoint.
    stops.background.cancel();
    for task in [
        stages.flusher,
        stages.monitor,
        stages.stream_slots,
        stages.partitions,
        stages.rollups,
        stages.hub,
        stages.detector,
    ]
    .into_iter()
    .flatten()
    {
        let _ = task.await;
    }
    // Answers in flight are written whole; a client that does not read its
    // answer holds the exit up for the grace period at most.
    stops.http.cancel();
    if tokio::time::timeout(args.shutdown_grace, http)
        .await
        .is_err()
    {
        tracing::warn!("http connections still open after the grace period; closing them");
    }
    // 7.5 The database last.
    store.close().await;
    if let Some(c) = cluster.as_mut() {
        c.stop().await;
    }
    tracing::info!("shutdown complete");
    result
}
