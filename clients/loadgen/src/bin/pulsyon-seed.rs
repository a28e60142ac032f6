//! `pulsyon-seed`: sends generated history (with incidents at known times)
//! through a running server's ingest API. Exits 64 on a bad flag, 1 when
//! the seeding fails.

use std::process::ExitCode;

use clap::Parser;
use pulsyon_loadgen::seed::{self, SeedArgs};

fn main() -> ExitCode {
    let args = match SeedArgs::try_parse() {
        Ok(args) => args,
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let rendered = err.render().to_string();
            let problem: Vec<&str> = rendered
                .lines()
                .take_while(|line| !line.trim().is_empty())
                .collect();
            eprintln!("{}", problem.join("\n"));
            return ExitCode::from(64);
        }
    };
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
    match runtime.block_on(seed::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
