//! The gRPC edge: one file per service, plus authentication, conversions,
//! health and the single error-to-status mapping.
//!
//! Only this module and `proto.rs` know tonic and prost. Handlers check the
//! caller first (tenant and scope from the API key), then delegate to stages
//! and the store; they never build SQL and never take a tenant from a request body.

pub mod admin;
pub mod auth;
pub mod coalesce;
pub mod codec;
pub mod convert;
pub mod health;
pub mod incidents;
pub mod ingest;
pub mod objectives;
pub mod preauth;
pub mod query;
pub mod receivers;
pub mod request;
pub mod routes;
pub mod status;
pub mod tls;
pub mod tokens;
pub mod watch;

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic_health::server::HealthReporter;

use crate::{
    config::Roles,
    proto::{
        FILE_DESCRIPTOR_SET,
        v1::{admin_server::AdminServer, query_server::QueryServer},
    },
    store::Store,
};

/// Why the gRPC server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The reflection service could not be built from the descriptor set.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("grpc server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The TLS material cannot be used.
    #[error("tls: {0}")]
    Tls(#[from] crate::edge::tls::TlsError),
}

/// What the services need.
#[derive(Debug, Clone)]
pub struct ApiDeps {
    /// The database.
    pub store: Store,
    /// Checks API keys.
    pub auth: Arc<Authenticator>,
    /// What this process serves.
    pub roles: Roles,
    /// The ingest pipeline every ingest door calls (with the ingest role).
    pub pipeline: Option<crate::ingest::admit::Pipeline>,
    /// Most unanswered batches per ingest stream.
    pub max_in_flight: usize,
    /// An ingest stream silent this long is ended (UNAVAILABLE).
    pub ingest_idle_timeout: Duration,
    /// Cancelled when shutdown begins, so that long streams end by themselves.
    pub shutdown: CancellationToken,
    /// TLS for the gRPC port; plaintext when `None`.
    pub tls: Option<TlsMaterial>,
    /// This process's fan-out of incident updates (with the query role).
    pub hub: Option<Arc<crate::incidents::hub::Hub<crate::incidents::hub::Rendered>>>,
    /// Time between heartbeats of an idle Watch stream.
    pub watch_heartbeat: Duration,
    /// Signs and verifies page tokens (the key shared through the database).
    pub tokens: Arc<tokens::PageTokens>,
    /// Bounds each tenant's concurrent queries.
    pub gate: Arc<crate::query::gate::QueryGate>,
    /// Bounds on connections (how many, how soon the first request).
    pub connections: crate::edge::ConnLimits,
    /// Notification settings (receivers' checks, test messages, retries).
    pub notify: Arc<crate::notify::NotifyConfig>,
}

pub use crate::edge::tls::TlsMaterial;

pub use codec::{MAX_MESSAGE_BYTES, TRANSPORT_MAX_MESSAGE_BYTES};

pub use auth::Authenticator;

/// A new health reporter and its gRPC service, every service of `roles`
/// NOT_SERVING until the health monitor says otherwise.
pub async fn health(
    roles: Roles,
) -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    let (reporter, service) = tonic_health::server::health_reporter();
    health::set_all(&reporter, roles, false).await;
    (reporter, service)
}

/// Reflection of exactly what this process serves (its roles' services,
/// health and reflection); every type stays describable.
fn reflection(roles: Roles) -> tonic_reflection::server::Builder<'static> {
    health::served(roles)
        .into_iter()
        .chain([
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ])
        .fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(opentelemetry_proto::DESCRIPTORS)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
            |builder, name| builder.with_service_name(name),
        )
}

/// The plaintext port's connections: admitted by the port's limits, Nagle
/// off, writes coalesced. The builder's `tcp_nodelay` only reaches sockets
/// tonic accepts itself; these come from our listener, so Nagle is turned
/// off here. Without it a small answer waits for the client's delayed ACK
/// (about 40 ms).
fn plaintext_incoming(
    listener: TcpListener,
    limits: crate::edge::ConnLimits,
) -> impl futures_util::Stream<
    Item = std::io::Result<crate::edge::Guarded<coalesce::Coalesced<tokio::net::TcpStream>>>,
> {
    Box::pin(futures_util::stream::unfold(
        (listener, limits),
        |(listener, limits)| async move {
            loop {
                match listener.accept().await {
                    Ok((tcp, peer)) => {
                        // Refused: dropping the socket closes it.
                        let Some(slot) = limits.admit(peer) else {
                            continue;
                        };
                        let _ = tcp.set_nodelay(true);
                        let conn = crate::edge::Guarded::new(coalesce::Coalesced::new(tcp), slot);
                        return Some((Ok::<_, std::io::Error>(conn), (listener, limits)));
                    }
                    Err(err) => {
                        // Out of descriptors, say: wait instead of spinning.
                        tracing::warn!(error = %err, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        },
    ))
}

/// Serves every gRPC service on `listener` until `stop` is cancelled, then
/// stops accepting and waits for in-flight calls (the caller bounds the wait).
/// `otlp` is the OTLP door's service (src/otlp) when the process ingests:
/// given by the wiring, so that this module does not depend on that door.
pub async fn serve<O>(
    listener: TcpListener,
    deps: ApiDeps,
    health_service: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    otlp: Option<O>,
    stop: CancellationToken,
) -> Result<(), ApiError>
where
    O: tower::Service<
            tonic::codegen::http::Request<tonic::body::Body>,
            Response = tonic::codegen::http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    O::Future: Send + 'static,
{
    let reflection_v1 = reflection(deps.roles).build_v1()?;
    // grpcurl 1.8 and many other tools only speak v1alpha.
    let reflection_v1alpha = reflection(deps.roles).build_v1alpha()?;
    let query = deps.roles.query.then_some(());

    // Checked before anything is served: bad material fails the start.
    let tls = deps.tls.as_ref().map(tls::acceptor).transpose()?;
    // No global request timeout: it would cut long-lived ingest and Watch streams.
    let router = Server::builder()
        // Keys are checked before a request's body is read (api/preauth.rs).
        .layer(preauth::PreAuthLayer {
            auth: deps.auth.clone(),
        })
        // Larger HTTP/2 windows: an ingest batch is hundreds of KiB, and the
        // 64 KiB defaults would cost many round trips and window updates.
        // Memory stays bounded by the window sizes per connection.
        .initial_stream_window_size(Some(1 << 20))
        .initial_connection_window_size(Some(4 << 20))
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        // Ingest decodes each event on its own (api/ingest.rs), so one bad
        // event is rejected alone instead of failing its batch.
        .add_optional_service(deps.pipeline.clone().map(|pipeline| {
            ingest::IngestRoutes::new(ingest::IngestService {
                auth: deps.auth.clone(),
                pipeline,
                max_in_flight: deps.max_in_flight.max(1),
                idle_timeout: deps.ingest_idle_timeout,
                shutdown: deps.shutdown.clone(),
            })
        }))
        // The OTLP door's gRPC service (src/otlp), given by the wiring.
        .add_optional_service(otlp)
        .add_optional_service(query.map(|()| {
            QueryServer::new(query::QueryService {
                auth: deps.auth.clone(),
                store: deps.store.clone(),
                tokens: deps.tokens.clone(),
                gate: deps.gate.clone(),
            })
            .max_decoding_message_size(TRANSPORT_MAX_MESSAGE_BYTES)
        }))
        // Watch sends the hub's encoded updates as they are (api/watch.rs).
        .add_optional_service(deps.hub.clone().filter(|_| deps.roles.query).map(|hub| {
            watch::IncidentsRoutes::new(incidents::IncidentsService {
                auth: deps.auth.clone(),
                store: deps.store.clone(),
                hub,
                heartbeat: deps.watch_heartbeat,
                shutdown: deps.shutdown.clone(),
                tokens: deps.tokens.clone(),
                gate: deps.gate.clone(),
                notify: deps.notify.clone(),
            })
        }))
        .add_optional_service(query.map(|()| {
            AdminServer::new(admin::AdminService {
                store: deps.store.clone(),
                auth: deps.auth.clone(),
                notify: deps.notify.clone(),
            })
            .max_decoding_message_size(TRANSPORT_MAX_MESSAGE_BYTES)
        }));
    // Writes are coalesced per scheduler round (api/coalesce.rs): one Watch
    // update to thousands of streams becomes a few writes per connection.
    // With TLS the wrapper sits above the TLS stream (api/tls.rs).
    match tls {
        Some(acceptor) => {
            router
                .serve_with_incoming_shutdown(
                    tls::incoming(listener, acceptor, deps.connections),
                    stop.cancelled_owned(),
                )
                .await?
        }
        None => {
            let incoming = plaintext_incoming(listener, deps.connections);
            router
                .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                .await?
        }
    }
    Ok(())
}
