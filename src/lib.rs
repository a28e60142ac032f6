//! Pulsyon: a telemetry ingestion and incident engine on PostgreSQL.
//!
//! The path of an event: an SDK streams batches to `Ingest.StreamEvents`
//! (`api::ingest`), whose batch goes through the one ingest pipeline
//! (`ingest::admit`): each event is validated, admitted under per-tenant limits
//! into a bounded queue, and a batching writer COPYs accepted events into daily
//! partitions of `api_logs`, answering each batch only after its transaction
//! commits. Rejected events go to `failed_events` with their reason. Background
//! stages keep rollups, detect anomalies, group alerts into incidents and
//! publish incident updates, which `Incidents.Watch` streams.
//!
//! Modules, in reading order (each imports only modules listed before it; see
//! `scripts/check-layers.py`):
//! - `domain`, `stats`: the vocabulary and the statistics, free of any I/O;
//!   `proto`: the generated code and the descriptor set for reflection;
//! - `store`: PostgreSQL (pool, migrations, the private cluster, SQL);
//! - `auth`: API key -> principal, for every door;
//! - `ingest`: the door-neutral pipeline (`admit`), limits, admission, the writer;
//!   `redis`: the Redis bridge (the rate budget shared by every process);
//! - `rollup`: the rollup task and service health verdicts;
//! - `incidents`: the lifecycle, explanations, the hub and the feed;
//! - `detect`: detection rules, the leader's detector, the backtest;
//! - `config`: the one configuration tree (flags, env, defaults, roles, validation);
//!   `diagnostics`: the server's own logs and metrics; `ops`: `/metrics`, `/healthz`, `/readyz`;
//! - `api`: the gRPC doors (one file per service, the contract's conversions,
//!   status mapping, health); `wire`: the buffer's record;
//! - `otlp`: the OTLP doors (gRPC, HTTP, the span mapping), through the same
//!   pipeline and `api`'s status mapping;
//! - `app`: wiring by role, start-up steps and the shutdown plan.

// No panic reachable from input: errors are values (tests may unwrap; clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod detect;
pub mod diagnostics;
pub mod domain;
pub mod edge;
pub mod incidents;
pub mod ingest;
pub mod notify;
pub mod ops;
pub mod otlp;
pub mod proto;
pub mod query;
pub mod redis;
pub mod rollup;
pub mod stats;
pub mod store;
pub mod web;
pub mod wire;
