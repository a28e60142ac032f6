//! gRPC health (`grpc.health.v1`) for the server and each Pulsyon service
//! this process serves (its roles decide which).
//!
//! A monitor pings the database every second: every served service is
//! SERVING while the database answers and NOT_SERVING otherwise, and
//! NOT_SERVING for good from the moment shutdown begins (the caller stops
//! the monitor first, then sets every status with [`set_all`]).

use std::{sync::Arc, time::Duration};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::{
    config::Roles,
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

/// The Pulsyon services a process with `roles` serves.
pub fn served(roles: Roles) -> Vec<&'static str> {
    let mut names = Vec::new();
    if roles.ingest {
        names.extend([
            <IngestServer<super::ingest::IngestService> as NamedService>::NAME,
            trace_service_server::SERVICE_NAME,
        ]);
    }
    if roles.query {
        names.extend([
            <QueryServer<super::query::QueryService> as NamedService>::NAME,
            <IncidentsServer<super::incidents::IncidentsService> as NamedService>::NAME,
            <AdminServer<super::admin::AdminService> as NamedService>::NAME,
        ]);
    }
    names
}

/// The names health is reported for: the whole server ("") and each
/// service a process with `roles` serves.
pub fn service_names(roles: Roles) -> Vec<&'static str> {
    let mut names = vec![""];
    names.extend(served(roles));
    names
}

/// Sets every reported service of `roles` to one status.
pub async fn set_all(reporter: &HealthReporter, roles: Roles, serving: bool) {
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    for name in service_names(roles) {
        reporter.set_service_status(name, status).await;
    }
}

/// Starts the monitor. It stops when `stop` is cancelled, leaving the status as it is.
pub fn spawn_monitor(
    store: Store,
    reporter: HealthReporter,
    roles: Roles,
    readiness: Arc<Readiness>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // `None` until the first ping, so that the first result is always applied.
        let mut last: Option<bool> = None;
        loop {
            let db_up = matches!(
                tokio::time::timeout(PING_TIMEOUT, store.ping()).await,
                Ok(Ok(()))
            );
            readiness.set_db_up(db_up);
            let up = db_up && readiness.dependencies_up();
            if stop.is_cancelled() {
                return;
            }
            if last != Some(up) {
                if up {
                    tracing::info!("database reachable; serving");
                } else if !db_up {
                    tracing::warn!("database unreachable; health is NOT_SERVING");
                } else {
                    tracing::warn!(
                        "the ingest buffer (Redis) is unreachable; health is NOT_SERVING"
                    );
                }
                set_all(&reporter, roles, up).await;
                last = Some(up);
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PING_EVERY) => {}
            }
        }
    })
}
