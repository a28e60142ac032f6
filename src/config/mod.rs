//! The configuration tree: command-line flags, their `PULSYON_*` (or
//! `DATABASE_URL`) environment equivalents, defaults, and `validate()`.
//!
//! Parsing never touches the network or the disk beyond reading flags, so a bad
//! setting is reported (exit code 64) before anything is bound or started.
//! What one flag alone can get wrong clap says (value parsers, ranges,
//! `requires`, `ValueEnum`s); [`Cli::validate`] keeps the rules between flags.
//!
//! - `mod.rs`: the subcommands and the parsers of durations and instants;
//! - `commands.rs`: the one-shot commands' flags (healthcheck, database);
//! - `serve.rs`: `pulsyon serve`, its flag groups as each stage's config, and
//!   the rules between its flags;
//! - `flags.rs`: serve's flag groups (network, ingest, limits, rollups,
//!   incidents, Redis);
//! - `roles.rs`: `--roles`.

mod commands;
mod flags;
mod roles;
mod serve;

use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

pub use commands::{DbArgs, HealthcheckArgs};
pub use flags::{
    AckAfter, BufferMode, IncidentArgs, IngestArgs, LimitArgs, NetArgs, NotifyArgs, RedisArgs,
    RollupArgs,
};
pub use roles::Roles;
pub use serve::ServeArgs;

/// File (under the data dir) holding the first key of the tenant the
/// embedded default creates; `seed` reads it when no key is given.
pub const KEY_FILE: &str = "api-key";

/// Bytes in a MiB (the byte-rate flags are in MiB).
const MIB: u64 = 1 << 20;

/// Exit code for bad configuration (`EX_USAGE` of sysexits.h).
pub const EXIT_CONFIG: i32 = 64;

/// Pulsyon: telemetry ingestion and incident engine.
#[derive(Debug, Parser)]
#[command(name = "pulsyon", version, about, propagate_version = true)]
pub struct Cli {
    /// Log line format on stderr.
    #[arg(long, env = "PULSYON_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log shippers.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (every role in one process by default; see `--roles`).
    Serve(Box<ServeArgs>),
    /// Print each role `--roles` takes and what it starts.
    Roles,
    /// Ask a running server's gRPC health service; exit 0 when it is
    /// SERVING, 1 otherwise (a container's health check: no grpcurl needed).
    Healthcheck(HealthcheckArgs),
    /// Apply the database migrations and exit.
    Migrate(DbArgs),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage users (people who log in to the dashboard).
    #[command(subcommand)]
    User(UserCommand),
    /// Detection tools.
    #[command(subcommand)]
    Detect(DetectCommand),
}

/// `pulsyon detect ...`
#[derive(Debug, Subcommand)]
pub enum DetectCommand {
    /// Replay the detector over stored rollups, writing nothing, and list the
    /// incidents it would have opened.
    Backtest {
        /// Start: an RFC 3339 time, or a duration before now (`7d`, `36h`).
        #[arg(long, value_parser = parse_instant)]
        from: time::OffsetDateTime,
        /// End: an RFC 3339 time, or a duration before now; default now.
        #[arg(long, value_parser = parse_instant)]
        to: Option<time::OffsetDateTime>,
        /// Only this tenant (by name); default every tenant.
        #[arg(long)]
        tenant: Option<String>,
        /// One JSON object per incident instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// An instant: RFC 3339, or a duration before now.
pub fn parse_instant(value: &str) -> Result<time::OffsetDateTime, String> {
    if let Ok(t) =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
    {
        return Ok(t);
    }
    let ago = parse_duration(value)
        .map_err(|_| format!("{value:?} is neither an RFC 3339 time nor a duration like 7d"))?;
    Ok(time::OffsetDateTime::now_utc() - ago)
}

/// `pulsyon tenant ...`
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant and print its first API key (every scope).
    Create {
        /// Tenant name: 1 to 63 of a-z, 0-9, '-' and '_'.
        #[arg(value_parser = parse_tenant_name)]
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `pulsyon key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an API key for a tenant and print it (shown only once).
    Create {
        /// The tenant the key belongs to.
        #[arg(long)]
        tenant: String,
        /// Comma-separated scopes: ingest, read, admin.
        #[arg(long, default_value = "ingest,read", value_parser = parse_scopes)]
        scopes: ScopeList,
        /// A label for the key.
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

/// `pulsyon user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user of a tenant. The password is read from standard input
    /// (one line) with --password-stdin, else generated and printed once.
    Create {
        /// The tenant the user belongs to.
        #[arg(long)]
        tenant: String,
        /// viewer (reads), responder (also acknowledges and resolves
        /// incidents) or admin (also keys, users, limits and rules).
        #[arg(long, value_parser = parse_role)]
        role: crate::domain::Role,
        /// Read the password (12 to 256 characters) from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Login name: 1 to 64 of a-z, 0-9, '.', '_', '-' and '@'.
        #[arg(value_parser = parse_user_name)]
        name: String,
        #[command(flatten)]
        db: DbArgs,
    },
}

impl Cli {
    /// Checks what clap cannot: the rules between settings. The error names
    /// the setting at fault.
    pub fn validate(&self) -> Result<(), String> {
        match &self.command {
            Command::Serve(serve) => serve.validate(),
            Command::Detect(DetectCommand::Backtest { from, to, .. }) => {
                let to = to.unwrap_or_else(time::OffsetDateTime::now_utc);
                if *from >= to {
                    return Err("invalid --from: must be before --to".into());
                }
                if to - *from > time::Duration::days(8) {
                    return Err("invalid --from: at most 8 days before --to (minute rollups are kept 8 days)".into());
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// A tenant's name.
fn parse_tenant_name(name: &str) -> Result<String, String> {
    match crate::domain::valid_tenant_name(name) {
        true => Ok(name.to_owned()),
        false => {
            Err("use 1 to 63 of a-z, 0-9, '-' and '_', starting with a letter or digit".into())
        }
    }
}

/// A user's login name.
fn parse_user_name(name: &str) -> Result<String, String> {
    match crate::domain::valid_user_name(name) {
        true => Ok(name.to_owned()),
        false => Err(
            "use 1 to 64 of a-z, 0-9, '.', '_', '-' and '@', starting with a letter or digit"
                .into(),
        ),
    }
}

/// A user's role.
fn parse_role(role: &str) -> Result<crate::domain::Role, String> {
    crate::domain::Role::parse(role).ok_or_else(|| "viewer, responder or admin".into())
}

/// Key scopes, given as a comma-separated list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeList(pub Vec<crate::domain::Scope>);

fn parse_scopes(list: &str) -> Result<ScopeList, String> {
    crate::domain::Scope::parse_list(list).map(ScopeList)
}

/// A duration of more than 0.
fn positive_duration(text: &str) -> Result<Duration, String> {
    at_least(text, Duration::from_millis(1), "more than 0")
}

/// A duration of at least a day.
fn at_least_a_day(text: &str) -> Result<Duration, String> {
    at_least(text, Duration::from_secs(86_400), "at least 1d")
}

/// A duration of at least a week.
fn at_least_a_week(text: &str) -> Result<Duration, String> {
    at_least(text, Duration::from_secs(7 * 86_400), "at least 7d")
}

/// A duration of at least two seconds.
fn at_least_2s(text: &str) -> Result<Duration, String> {
    at_least(text, Duration::from_secs(2), "at least 2s")
}

fn at_least(text: &str, min: Duration, rule: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    match d >= min {
        true => Ok(d),
        false => Err(format!("must be {rule}")),
    }
}

/// Parses a duration such as `250ms`, `10s`, `5m`, `1h` or `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (use ms, s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit {unit:?} (use ms, s, m, h or d)"
            ));
        }
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        for bad in ["", "10", "s", "1.5s", "10x", "-1s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_names_the_bad_setting() {
        // One flag's own errors are clap's, naming the flag.
        for args in [
            &["serve", "--database-url", "mysql://x"][..],
            &["serve", "--buffer-shards", "0"],
            &["serve", "--buffer", "disk"],
            &["serve", "--retention", "1h"],
            &["serve", "--detect-interval", "0s"],
            &["serve", "--writer-workers", "0"],
            &["serve", "--tls-cert", "c.pem"],
            &["serve", "--redis-url", "http://x"],
            &["key", "create", "--tenant", "t", "--scopes", "all"],
            &["user", "create", "--tenant", "t", "--role", "owner", "dave"],
            &["tenant", "create", "Bad Name"],
        ] {
            let err = Cli::try_parse_from(std::iter::once("pulsyon").chain(args.iter().copied()))
                .unwrap_err()
                .render()
                .to_string();
            let flag = args
                .iter()
                .rev()
                .find(|a| a.starts_with("--"))
                .unwrap_or(&"<NAME>");
            let flag = if args[0] == "tenant" { "<NAME>" } else { flag };
            assert!(err.contains(flag), "{args:?}: {err}");
        }

        let cli = Cli::try_parse_from([
            "pulsyon",
            "serve",
            "--grpc-addr",
            "127.0.0.1:7000",
            "--http-addr",
            "127.0.0.1:7000",
        ])
        .unwrap();
        assert!(cli.validate().unwrap_err().contains("--http-addr"));

        let cli = Cli::try_parse_from([
            "pulsyon",
            "serve",
            "--rollup-retention",
            "10d",
            "--retention",
            "30d",
        ])
        .unwrap();
        assert!(cli.validate().unwrap_err().contains("--rollup-retention"));
    }
}
