//! The database of a process: the external one (`DATABASE_URL`) or the
//! private cluster, migrated; the default tenant of a first embedded start.

use std::{
    fs::{self, OpenOptions},
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

use anyhow::Context;

use super::DEFAULT_TENANT;
use crate::{
    config::DbArgs,
    domain::ApiKeySecret,
    store::{
        self, Store, StoreError,
        embedded::{Cluster, EmbeddedError},
    },
};

/// Opens the database for a one-shot command (attaching to a running
/// server's private cluster if there is one), runs `f`, and closes it.
pub async fn with_database<F, Fut>(db: &DbArgs, f: F) -> anyhow::Result<()>
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let (store, mut cluster) = open_database(db, true).await?;
    let result = f(store.clone()).await;
    store.close().await;
    if let Some(c) = cluster.as_mut() {
        c.stop().await;
    }
    result
}

/// Connects to `DATABASE_URL`, or starts the private cluster, and migrates.
pub async fn open_database(db: &DbArgs, attach: bool) -> anyhow::Result<(Store, Option<Cluster>)> {
    let (options, cluster) = match &db.database_url {
        Some(url) => (store::options_from_url(url).context("DATABASE_URL")?, None),
        None => {
            let cluster = if attach {
                Cluster::start_or_attach(&db.data_dir, &db.pg_user).await
            } else {
                Cluster::start(&db.data_dir, &db.pg_user).await
            };
            let cluster = cluster.map_err(|e: EmbeddedError| anyhow::anyhow!(e))?;
            (cluster.connect_options(), Some(cluster))
        }
    };
    let opened = async {
        let store = Store::connect_split(
            options,
            db.db_max_connections,
            db.db_read_connections,
            db.db_connect_timeout,
        )
        .await
        .context("connecting to PostgreSQL")?;
        store.migrate().await.context("applying migrations")?;
        anyhow::Ok(store)
    }
    .await;
    match opened {
        Ok(store) => Ok((store, cluster)),
        Err(err) => {
            if let Some(mut c) = cluster {
                c.stop().await;
            }
            Err(err)
        }
    }
}

/// On the first start of the embedded default: a tenant `default` with a key
/// of every scope, saved to `<data-dir>/api-key` (0600) before the commit.
pub async fn ensure_default_tenant(store: &Store, data_dir: &Path) -> anyhow::Result<()> {
    match store.tenant_by_name(DEFAULT_TENANT).await {
        Ok(_) => return Ok(()),
        Err(StoreError::NotFound(_)) => {}
        Err(err) => return Err(err.into()),
    }
    let secret = ApiKeySecret::generate()?;
    let path = data_dir.join(crate::config::KEY_FILE);
    let write = || -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
        writeln!(file, "{}", secret.expose())?;
        file.sync_all()
    };
    store
        .create_tenant_with_key(DEFAULT_TENANT, "initial", &secret, write)
        .await
        .context("creating the default tenant")?;
    tracing::info!(
        path = %path.display(),
        tenant = DEFAULT_TENANT,
        "first start: created tenant `default` and an API key with every scope; the key is in this file"
    );
    Ok(())
}
