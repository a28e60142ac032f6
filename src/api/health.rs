//! gRPC health (`grpc.health.v1`) for the server and each Pulsyon service.
//!
//! A monitor pings the database every second: every service is SERVING while
//! the database answers and NOT_SERVING otherwise, and NOT_SERVING for good
//! from the moment shutdown begins. It must never report SERVING after
//! `shutting_down` was called.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    ops::Readiness,
    proto::v1::{
        admin_server::AdminServer, incidents_server::IncidentsServer, ingest_server::IngestServer,
        query_server::QueryServer,
    },
    store::Store,
};

/// How often the database is pinged.
const PING_EVERY: Duration = Duration::from_secs(1);
/// How long a ping may take before the database counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The names health is reported for: the whole server ("") and each service.
pub fn service_names() -> [&'static str; 5] {
    [
        "",
        <IngestServer<super::ingest::IngestService> as NamedService>::NAME,
        <QueryServer<super::query::QueryService> as NamedService>::NAME,
        <IncidentsServer<super::incidents::IncidentsService> as NamedService>::NAME,
        <AdminServer<super::admin::AdminService> as NamedService>::NAME,
    ]
}

/// Sets every reported service to one status.
pub async fn set_all(reporter: &HealthReporter, serving: bool) {
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    for name in service_names() {
        reporter.set_service_status(name, status).await;
    }
}

/// Starts the monitor. It stops when `stop` is cancelled, leaving the status as it is.
pub fn spawn_monitor(
    store: Store,
    reporter: HealthReporter,
    readiness: Arc<Readiness>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // `None` until the first ping, so that the first result is always applied.
        let mut last: Option<bool> = None;
        loop {
            let up = matches!(
                tokio::time::timeout(PING_TIMEOUT, store.ping()).await,
                Ok(Ok(()))
            );
            if stop.is_cancelled() {
                return;
            }
            if last != Some(up) {
                if up {
                    tracing::info!("database reachable; serving");
                } else {
                    tracing::warn!("database unreachable; health is NOT_SERVING");
                }
                readiness.set_db_up(up);
                set_all(&reporter, up).await;
                last = Some(up);
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PING_EVERY) => {}
            }
        }
    })
}
