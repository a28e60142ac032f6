//! The one-shot commands' flags: `healthcheck`, and where the database is
//! (every command that opens it).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Args;

use super::parse_duration;

/// `pulsyon healthcheck`
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// The server's gRPC address (an unspecified address, such as 0.0.0.0,
    /// means this host's loopback). Plaintext only.
    #[arg(long, env = "PULSYON_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,

    /// The service to ask about; empty for the whole server.
    #[arg(long, default_value = "")]
    pub service: String,

    /// How long to wait for the answer.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Where the database is: an external server, or the private cluster under the data dir.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// PostgreSQL URL (postgres://...). When unset, Pulsyon runs a private
    /// PostgreSQL cluster under <data-dir>/pg.
    #[arg(long, env = "DATABASE_URL", value_parser = parse_database_url)]
    pub database_url: Option<String>,

    /// Directory for the private PostgreSQL cluster and the first API key.
    #[arg(long, env = "PULSYON_DATA_DIR", default_value = "./.pulsyon", value_parser = parse_dir)]
    pub data_dir: PathBuf,

    /// System user that runs the private cluster when Pulsyon runs as root
    /// (PostgreSQL refuses to run as root).
    #[arg(long, env = "PULSYON_PG_USER", default_value = "postgres")]
    pub pg_user: String,

    /// How long to keep trying to reach the database at start-up.
    #[arg(long, env = "PULSYON_DB_CONNECT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub db_connect_timeout: Duration,

    /// Most connections of the system pool (writer, rollups, detector, keys).
    #[arg(long, env = "PULSYON_DB_MAX_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_max_connections: u32,

    /// Most connections of the request pool (Query, Incidents, Admin), apart
    /// from the system pool so that queries cannot starve ingest.
    #[arg(long, env = "PULSYON_DB_READ_CONNECTIONS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub db_read_connections: u32,
}

/// A whole number of at least 1.
pub(super) fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("a whole number, at least 1".into()),
    }
}

/// A PostgreSQL URL.
fn parse_database_url(url: &str) -> Result<String, String> {
    match url.starts_with("postgres://") || url.starts_with("postgresql://") {
        true => Ok(url.to_owned()),
        false => Err("expected postgres://user@host:port/database".into()),
    }
}

/// A directory path, not empty.
fn parse_dir(path: &str) -> Result<PathBuf, String> {
    match path.is_empty() {
        true => Err("empty path".into()),
        false => Ok(PathBuf::from(path)),
    }
}
