//! Pulsyon: a telemetry ingestion and incident engine on PostgreSQL.
//!
//! The path of an event: an SDK streams batches to `Ingest.StreamEvents`
//! (`api::ingest`); each event is validated, admitted under per-tenant limits
//! into a bounded queue, and a batching writer COPYs accepted events into daily
//! partitions of `api_logs`, answering each batch only after its transaction
//! commits. Rejected events go to `failed_events` with their reason. Background
//! stages keep rollups, detect anomalies, group alerts into incidents and
//! publish incident updates, which `Incidents.Watch` streams.
//!
//! Modules, in reading order:
//! - `config`: the one configuration tree (flags, env, defaults, validation);
//! - `app`: wiring, start-up and the shutdown order;
//! - `domain`: the vocabulary (tenants, scopes, keys), free of any I/O crate;
//! - `api`: the gRPC edge (auth, conversions, one file per service, health);
//! - `store`: PostgreSQL (pool, migrations, the private cluster, SQL);
//! - `ops`: `/metrics`, `/healthz`, `/readyz`; `telemetry`: logs and metrics set-up;
//! - `rollup`: mergeable histograms, rollup deltas, the rollup task and health rules;
//! - `detect`: detection rules, the leader's detector, incidents' vocabulary, the Watch hub;
//! - `seed`: `pulsyon seed`, generated history through the ingest API;
//! - `redis`: the Redis bridge (the rate budget shared by every process);
//! - `proto`: the generated code and the descriptor set for reflection.

// No panic reachable from input: errors are values (tests may unwrap; clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod detect;
pub mod domain;
pub mod incidents;
pub mod ingest;
pub mod ops;
pub mod proto;
pub mod redis;
pub mod rollup;
pub mod seed;
pub mod stats;
pub mod store;
pub mod telemetry;
