//! `pulsyon`: parse the configuration (exit 64 on a bad one), set up logging, run.

// No panic reachable from input: errors are values (tests may unwrap; clippy.toml).
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;

/// Ingest allocates and frees many small strings across threads (decoded on
/// one, freed by the writer on another), where mimalloc is much cheaper than
/// the system allocator (docs/perf/ingest.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use pulsyon::config::{Cli, EXIT_CONFIG};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            // --help and --version
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            // Clap's first paragraph: the flag and the problem, with the
            // missing flags or the possible values (not the usage text).
            let rendered = err.render().to_string();
            let problem: Vec<&str> = rendered
                .lines()
                .take_while(|line| !line.trim().is_empty())
                .collect();
            match problem.is_empty() {
                true => eprintln!("error: invalid arguments"),
                false => eprintln!("{}", problem.join("\n")),
            }
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    if let Err(message) = cli.validate() {
        eprintln!("error: {message}");
        return ExitCode::from(EXIT_CONFIG as u8);
    }
    pulsyon::diagnostics::init_tracing(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(pulsyon::app::run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "pulsyon failed");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
