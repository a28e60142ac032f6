//! The background stages a process's roles call for, started in steps, and
//! what the doors need of them.

use std::sync::Arc;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::redis::buffer::Buffer;
use crate::{
    api,
    config::{Roles, ServeArgs},
    incidents::hub::{Hub, Rendered},
    ingest::{
        Admission,
        limits::{SharedBudget, SharedCatalogue, SharedStreams},
    },
    ops::Readiness,
    store::Store,
};

/// Background stages of a process, as its roles start them; each is
/// joined at shutdown.
#[derive(Default)]
pub struct Stages {
    /// Writer role: partitions ahead, retention.
    pub partitions: Option<JoinHandle<()>>,
    /// Writer role: incidents past their retention deleted.
    pub incident_retention: Option<JoinHandle<()>>,
    /// Writer role: rollup deltas merged.
    pub rollups: Option<JoinHandle<()>>,
    /// Query role: incident updates fanned out to Watch.
    pub hub: Option<JoinHandle<()>>,
    /// Detect role: the detector and its leader election.
    pub detector: Option<JoinHandle<()>>,
    /// Notify role: deliveries planned and sent.
    pub notify: Option<JoinHandle<()>>,
    /// Ingest and writer roles: the writer and the throttle-counter flusher.
    pub writer: Option<JoinHandle<()>>,
    pub flusher: Option<JoinHandle<()>>,
    /// Writer role with the Redis buffer: its shards drained into the writer.
    pub drain: Option<JoinHandle<()>>,
    /// Ingest role with the Redis buffer: its fill read (and commit reports).
    pub monitor: Option<JoinHandle<()>>,
    /// Ingest role with Redis: the renewal of its streams' shared slots.
    pub stream_slots: Option<JoinHandle<()>>,
}

/// Cancellation of each phase of the shutdown plan.
#[derive(Default)]
pub struct Stops {
    /// The health monitor (first, so it cannot flip health back).
    pub monitor: CancellationToken,
    /// The gRPC server stops accepting.
    pub grpc: CancellationToken,
    /// Long streams (ingest, Watch) stop reading and end.
    pub streams: CancellationToken,
    /// The buffer's drain hands nothing more to the writer, finishes and
    /// acknowledges what it handed over, and gives its shards up.
    pub drain: CancellationToken,
    /// The writer refuses new batches, drains and ends.
    pub writer: CancellationToken,
    /// Background stages.
    pub background: CancellationToken,
    /// The HTTP endpoint.
    pub http: CancellationToken,
}

/// What the started stages give the doors.
pub struct ForDoors {
    /// The ingest pipeline (ingest role).
    pub pipeline: Option<crate::ingest::admit::Pipeline>,
    /// The incident hub (query or web role).
    pub hub: Option<Arc<Hub<Rendered>>>,
}

/// The writer of this process: its queue and throttle counters.
type LocalWriter = (Arc<crate::ingest::LocalQueue>, crate::ingest::Throttles);

/// An incident update as each streaming door sends it, rendered once.
fn render_update(u: &crate::domain::incident::Update) -> Rendered {
    Rendered {
        watch: api::incidents::render_update(u),
        events: crate::web::render_update(u),
    }
}

/// Starts the background stages `roles` call for; returns them with what
/// the doors need of them.
pub async fn start_stages(
    args: &ServeArgs,
    roles: Roles,
    store: &Store,
    stops: &Stops,
    readiness: &Arc<Readiness>,
) -> anyhow::Result<(Stages, ForDoors)> {
    let mut stages = Stages::default();
    // 1. The writer role's upkeep: partitions, retention, rollups.
    if roles.writer {
        start_upkeep(args, store, &stops.background, &mut stages);
    }
    // 2. The incident hub (query, web) and the detector (detect).
    let mut hub = None;
    if roles.query || roles.web {
        let (h, task) =
            crate::incidents::hub::spawn(store.clone(), render_update, stops.background.clone());
        hub = Some(h);
        stages.hub = Some(task);
    }
    if roles.detect {
        stages.detector = Some(crate::detect::spawn(
            store.clone(),
            args.detect_config(),
            stops.background.clone(),
        ));
    }
    if roles.notify {
        stages.notify = Some(crate::notify::spawn(
            store.clone(),
            args.notify_config(),
            stops.background.clone(),
        )?);
    }
    // 3. Where admitted batches wait for a writer: this process's queue
    //    (ingest and writer together), or the Redis buffer between processes.
    let buffer = match args.redis.buffered(roles) {
        true => Some(connect_buffer(args, readiness).await?),
        false => None,
    };
    // 4. The writer, draining the buffer when there is one.
    let local = match roles.writer {
        true => Some(start_writer(
            args,
            store,
            stops,
            buffer.as_ref(),
            &mut stages,
        )),
        false => None,
    };
    // 5. The ingest pipeline the doors admit batches through.
    let pipeline = match roles.ingest {
        true => Some(ingest_pipeline(
            args,
            store,
            &stops.background,
            buffer,
            local,
            &mut stages,
        )?),
        false => None,
    };
    Ok((stages, ForDoors { pipeline, hub }))
}

/// Partitions ahead, the retention of events and incidents, rollups (the
/// writer role).
fn start_upkeep(args: &ServeArgs, store: &Store, stop: &CancellationToken, stages: &mut Stages) {
    stages.partitions = Some(crate::ingest::partitions::spawn(
        store.clone(),
        args.ingest.retention,
        stop.clone(),
    ));
    stages.incident_retention = Some(crate::incidents::retention::spawn(
        store.clone(),
        args.incidents.incident_retention,
        stop.clone(),
    ));
    stages.rollups = Some(crate::rollup::spawn(
        store.clone(),
        args.rollup_config(),
        stop.clone(),
    ));
}

/// The Redis buffer (`--redis-url`), its fill read into readiness.
async fn connect_buffer(
    args: &ServeArgs,
    readiness: &Arc<Readiness>,
) -> anyhow::Result<Arc<Buffer>> {
    let buffer = Buffer::connect(
        args.buffer_config(),
        Arc::new(crate::wire::record::BufferRecord),
        Some(readiness.clone()),
    )
    .await
    .context("the ingest buffer (--redis-url)")?;
    Ok(Arc::new(buffer))
}

/// The writer and its throttle-counter flusher; with a buffer, its drain.
fn start_writer(
    args: &ServeArgs,
    store: &Store,
    stops: &Stops,
    buffer: Option<&Arc<Buffer>>,
    stages: &mut Stages,
) -> LocalWriter {
    let local = crate::ingest::spawn(
        store.clone(),
        &args.ingest_config(),
        stops.background.clone(),
        stops.writer.clone(),
    );
    stages.writer = Some(local.writer);
    stages.flusher = Some(local.flusher);
    if let Some(buffer) = buffer {
        stages.drain = Some(crate::redis::buffer::spawn_drain(
            buffer.clone(),
            store.clone(),
            local.queue.sender(),
            stops.drain.clone(),
        ));
    }
    (local.queue, local.throttles)
}

/// Admission (the local queue or the buffer), throttle counters, and the
/// limits, shared across processes through Redis when it is configured.
fn ingest_pipeline(
    args: &ServeArgs,
    store: &Store,
    stop: &CancellationToken,
    buffer: Option<Arc<Buffer>>,
    local: Option<LocalWriter>,
    stages: &mut Stages,
) -> anyhow::Result<crate::ingest::admit::Pipeline> {
    let (admission, throttles): (Arc<dyn Admission>, _) = match (buffer, local) {
        (Some(buffer), local) => {
            let (admission, monitor) =
                crate::redis::buffer::RedisAdmission::start(buffer, stop.clone());
            stages.monitor = Some(monitor);
            let throttles = match local {
                Some((_, throttles)) => throttles,
                None => {
                    let (throttles, flusher) =
                        crate::ingest::spawn_flusher(store.clone(), stop.clone());
                    stages.flusher = Some(flusher);
                    throttles
                }
            };
            (Arc::new(admission), throttles)
        }
        (None, Some((queue, throttles))) => (queue, throttles),
        (None, None) => anyhow::bail!("ingest without writer needs the Redis buffer"),
    };
    let shared = match &args.redis.redis_url {
        Some(_) => Some(shared_limits(args, stop, stages)?),
        None => None,
    };
    let (budget, streams, catalogue) = match shared {
        Some(s) => (Some(s.budget), Some(s.streams), Some(s.catalogue)),
        None => (None, None, None),
    };
    Ok(crate::ingest::admit::Pipeline {
        admission,
        throttles,
        bounds: Arc::new(args.event_bounds()),
        guards: Arc::new(crate::ingest::limits::Guards {
            rates: crate::ingest::limits::RateLimiter::new(budget),
            streams: Arc::new(crate::ingest::limits::StreamSlots::with_shared(streams)),
            cardinality: crate::ingest::limits::Cardinality::with_shared(store.clone(), catalogue),
        }),
    })
}

/// A tenant's limits as every process sees them (through Redis).
struct SharedLimits {
    budget: Arc<dyn SharedBudget>,
    streams: Arc<dyn SharedStreams>,
    catalogue: Arc<dyn SharedCatalogue>,
}

/// With Redis, a tenant's rate budget, concurrent streams and catalogue
/// are shared by every process.
fn shared_limits(
    args: &ServeArgs,
    stop: &CancellationToken,
    stages: &mut Stages,
) -> anyhow::Result<SharedLimits> {
    let (urls, cluster, prefix) = (
        args.redis.urls(),
        args.redis.redis_cluster,
        &args.redis.redis_key_prefix,
    );
    let (streams, task) =
        crate::redis::streams::RedisStreams::start(&urls, cluster, prefix, stop.clone());
    stages.stream_slots = Some(task);
    let streams: Arc<dyn SharedStreams> = streams;
    let budget: Arc<dyn SharedBudget> =
        Arc::new(crate::redis::RedisRates::new(&urls, cluster, prefix).context("--redis-url")?);
    let catalogue: Arc<dyn SharedCatalogue> = Arc::new(
        crate::redis::catalogue::RedisCatalogue::new(&urls, cluster, prefix),
    );
    Ok(SharedLimits {
        budget,
        streams,
        catalogue,
    })
}
