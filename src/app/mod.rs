//! Wiring: which database, which stages, in which order they start and stop.
//!
//! Only this module knows the deployment mode (embedded cluster or external
//! database) and the roles of the process (`--roles`). Start-up, in steps:
//! bind the listeners (so a taken port fails fast), open the database and
//! migrate, health and the HTTP endpoint, the stages the roles call for, the
//! gRPC server with the roles' services. The shutdown plan follows
//! DESIGN.md: health NOT_SERVING, stop accepting, let in-flight calls finish
//! within the grace period, drain the writer, stop and join every background
//! task, close the pool, stop the private cluster.

mod commands;
mod database;
mod serve;
mod stages;

use crate::config::{Command, DetectCommand, KeyCommand, TenantCommand, UserCommand};

/// How long a dashboard session lasts.
pub const SESSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(12 * 3_600);

/// Name of the tenant created on the first start of the embedded default.
pub const DEFAULT_TENANT: &str = "default";

/// Runs one subcommand to completion.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve::serve(*args).await,
        Command::Roles => commands::roles(),
        Command::Healthcheck(args) => commands::healthcheck(args).await,
        Command::Detect(DetectCommand::Backtest {
            from,
            to,
            tenant,
            json,
            db,
        }) => commands::backtest(from, to, tenant, json, &db).await,
        Command::Migrate(db) => commands::migrate(&db).await,
        Command::Tenant(TenantCommand::Create { name, db }) => {
            commands::create_tenant(name, &db).await
        }
        Command::Key(KeyCommand::Create {
            tenant,
            scopes,
            name,
            db,
        }) => commands::create_key(tenant, scopes.0, name, &db).await,
        Command::User(UserCommand::Create {
            tenant,
            role,
            password_stdin,
            name,
            db,
        }) => commands::create_user(tenant, role, password_stdin, name, &db).await,
    }
}
