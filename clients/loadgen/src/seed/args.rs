//! `pulsyon-seed`'s flags.

use std::path::PathBuf;

use clap::Parser;

/// `pulsyon-seed`: generated history through a running server's ingest API.
#[derive(Debug, Clone, Parser)]
#[command(name = "pulsyon-seed", version, about)]
pub struct SeedArgs {
    /// gRPC URL of the running server.
    #[arg(long, env = "PULSYON_URL", default_value = "http://127.0.0.1:50051")]
    pub url: String,
    /// API key with the `ingest` scope; when unset, the key file of the
    /// embedded default (`<data-dir>/api-key`).
    #[arg(long, env = "PULSYON_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Where the embedded default keeps its first key.
    #[arg(long, env = "PULSYON_DATA_DIR", default_value = "./.pulsyon")]
    pub data_dir: PathBuf,
    /// Services to generate (1 to 8).
    #[arg(long, default_value_t = 8, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=8))]
    pub services: usize,
    /// Days of history, ending now (fractions allowed; at most the server's retention).
    #[arg(long, default_value_t = 7.0, value_parser = parse_days)]
    pub days: f64,
    /// Average events per second of history, over all services (follows a daily cycle).
    #[arg(long, default_value_t = 20.0, value_parser = parse_rate)]
    pub rate: f64,
    /// Inject the incidents (error spike, latency degradation, outage).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub incidents: bool,
    /// Seed of the traffic shape.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Concurrent ingest streams.
    #[arg(long, default_value_t = 2, value_parser = at_least_one)]
    pub streams: usize,
    /// Events per batch.
    #[arg(long, default_value_t = 1_000, value_parser = at_least_one)]
    pub batch_size: usize,
    /// The fleet: `classic` (the load generator's services, evenly loaded, and
    /// five incidents) or `varied` (busy, quiet, fast, bursty and heavy-tailed
    /// services, and the failures past the happy path; `--services` does not
    /// apply, `--rate` scales the whole fleet, about 14 events/s at 1x).
    #[arg(long, value_enum, default_value_t = Shape::Classic)]
    pub shape: Shape,
}

/// The fleets `pulsyon-seed` can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shape {
    /// The load generator's services and five incidents.
    Classic,
    /// Services of different kinds and the failures past the happy path.
    Varied,
}

/// A whole number of at least 1.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("a whole number, at least 1".into()),
    }
}

/// Days of history: more than 0 and at most 400.
fn parse_days(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(d) if d > 0.0 && d <= 400.0 => Ok(d),
        _ => Err("more than 0 and at most 400".into()),
    }
}

/// Events per second: more than 0.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err("a number more than 0".into()),
    }
}
