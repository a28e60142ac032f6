//! The one-shot subcommands: each opens what it needs, does one thing and
//! closes it.

use anyhow::Context;

use super::database::{open_database, with_database};
use crate::{
    config::{HealthcheckArgs, Roles},
    domain::{ApiKeySecret, Role, Scope},
    store::StoreError,
};

/// `pulsyon roles`: what each role starts.
pub fn roles() -> anyhow::Result<()> {
    for (name, starts) in Roles::TABLE {
        println!("{name:<8} {starts}");
    }
    for (name, stands_for) in Roles::GROUPS {
        println!("{name:<8} = {stands_for}");
    }
    println!(
        "ingest and writer run in one process unless --redis-url joins them (the Redis buffer); `all` is the default"
    );
    Ok(())
}

/// `pulsyon healthcheck`: Ok when the server answers SERVING in time.
pub async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<()> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let mut addr = args.grpc_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let ask = async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: args.service.clone(),
            })
            .await?;
        anyhow::Ok(answer.into_inner().status)
    };
    match tokio::time::timeout(args.timeout, ask).await {
        Ok(Ok(status)) if status == ServingStatus::Serving as i32 => {
            println!("serving");
            Ok(())
        }
        Ok(Ok(status)) => anyhow::bail!(
            "{addr}: {:?}",
            ServingStatus::try_from(status).unwrap_or(ServingStatus::Unknown)
        ),
        Ok(Err(err)) => anyhow::bail!("{addr}: {err}"),
        Err(_) => anyhow::bail!("{addr}: no answer within {:?}", args.timeout),
    }
}

/// `pulsyon detect backtest`: replays the detector over stored rollups.
pub async fn backtest(
    from: time::OffsetDateTime,
    to: Option<time::OffsetDateTime>,
    tenant: Option<String>,
    json: bool,
    db: &crate::config::DbArgs,
) -> anyhow::Result<()> {
    with_database(db, |store| async move {
        let to = to.unwrap_or_else(time::OffsetDateTime::now_utc);
        let tenant = match tenant {
            Some(name) => Some(store.tenant_by_name(&name).await?.id),
            None => None,
        };
        let outcome =
            crate::detect::backtest::replay(&store, tenant, from, to, &Default::default()).await?;
        crate::detect::backtest::print(&outcome, json);
        Ok(())
    })
    .await
}

/// `pulsyon migrate`: applies the migrations and stops.
pub async fn migrate(db: &crate::config::DbArgs) -> anyhow::Result<()> {
    let (store, mut cluster) = open_database(db, false).await?;
    store.close().await;
    if let Some(c) = cluster.as_mut() {
        c.stop().await;
    }
    tracing::info!("migrations applied");
    Ok(())
}

/// `pulsyon tenant create`: a tenant and its first key of every scope.
pub async fn create_tenant(name: String, db: &crate::config::DbArgs) -> anyhow::Result<()> {
    with_database(db, |store| async move {
        let secret = ApiKeySecret::generate()?;
        let (tenant, key) = store
            .create_tenant_with_key(&name, "initial", &secret, || Ok(()))
            .await
            .with_context(|| format!("creating tenant {name:?}"))?;
        print_key(&tenant.name, &key.key_id.to_string(), &Scope::ALL, &secret);
        Ok(())
    })
    .await
}

/// `pulsyon key create`: a key of a tenant with the scopes given.
pub async fn create_key(
    tenant: String,
    scopes: Vec<Scope>,
    name: String,
    db: &crate::config::DbArgs,
) -> anyhow::Result<()> {
    with_database(db, |store| async move {
        let tenant = match store.tenant_by_name(&tenant).await {
            Err(StoreError::NotFound(_)) => anyhow::bail!("no tenant named {tenant:?}"),
            other => other?,
        };
        let secret = ApiKeySecret::generate()?;
        let key = store.create_key(&tenant, &name, &scopes, &secret).await?;
        print_key(&tenant.name, &key.key_id.to_string(), &scopes, &secret);
        Ok(())
    })
    .await
}

/// `pulsyon user create`: a dashboard user; the password from standard
/// input, or generated and printed once.
pub async fn create_user(
    tenant: String,
    role: Role,
    password_stdin: bool,
    name: String,
    db: &crate::config::DbArgs,
) -> anyhow::Result<()> {
    let (password, generated) = if password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        (line.trim_end_matches(['\r', '\n']).to_owned(), false)
    } else {
        (crate::auth::generate_password()?, true)
    };
    let hash = crate::auth::hash_password(&password)?;
    with_database(db, |store| async move {
        let tenant = match store.tenant_by_name(&tenant).await {
            Err(StoreError::NotFound(_)) => anyhow::bail!("no tenant named {tenant:?}"),
            other => other?,
        };
        let user = match store.create_user(tenant.id, &name, role, &hash).await {
            Err(StoreError::Conflict(_)) => {
                anyhow::bail!("tenant {:?} already has a user named {name:?}", tenant.name)
            }
            other => other?,
        };
        eprintln!(
            "user {:?} of tenant {:?} created (role {}, id {})",
            user.name,
            tenant.name,
            user.role.as_str(),
            user.user_id
        );
        if generated {
            eprintln!("its password is shown only once:");
            println!("{password}");
        }
        Ok(())
    })
    .await
}

/// Prints a new key: the secret alone on stdout (for scripts), the rest on stderr.
fn print_key(tenant: &str, key_id: &str, scopes: &[Scope], secret: &ApiKeySecret) {
    let scopes: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    eprintln!(
        "new API key for tenant {tenant} (id {key_id}, scopes {}); it is shown only once:",
        scopes.join(",")
    );
    println!("{}", secret.expose());
}
