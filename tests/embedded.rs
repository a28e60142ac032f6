//! The embedded default: with no DATABASE_URL the server runs a private
//! PostgreSQL cluster under its data dir, and the next start reuses it.

mod common;

use std::{fs, os::unix::fs::PermissionsExt, time::Duration};

use common::{Server, ServerOpts, authed, cli};
use pulsyon::proto::v1::{self as pb, admin_client::AdminClient};
use tonic::Code;

/// A fresh data dir under a temporary directory the cluster's user can enter.
fn data_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    fs::set_permissions(root.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = root.path().join("data");
    (root, data_dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_cluster_is_created_then_reused() {
    let (_root, data_dir) = data_dir();

    // First start: an empty data dir becomes a cluster, a `default` tenant and a key file.
    let mut first = Server::start(ServerOpts {
        data_dir: Some(&data_dir),
        ..Default::default()
    });
    assert!(data_dir.join("pg/PG_VERSION").is_file());
    let key_file = data_dir.join("api-key");
    let mode = fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key file is private");
    let key = fs::read_to_string(&key_file).unwrap().trim().to_owned();
    assert!(
        first.logs().contains(&key_file.display().to_string()),
        "the log says where the key is"
    );
    assert!(
        !first.logs().contains(&key[12..]),
        "the key itself is never logged"
    );

    let mut admin = AdminClient::new(first.channel().await);
    let created = admin
        .create_tenant(authed(
            pb::CreateTenantRequest {
                name: "kept".into(),
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.tenant.unwrap().name, "kept");

    // A one-shot command next to the running server attaches to its cluster.
    let (status, stdout, stderr) = cli(&[
        "key",
        "create",
        "--tenant",
        "kept",
        "--scopes",
        "read",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    assert!(status.success(), "{stderr}");
    let cli_key = stdout.trim().to_owned();

    first.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(
        first
            .wait_exit(Duration::from_secs(60))
            .expect("first server exits")
            .success()
    );
    assert!(
        !data_dir.join("pg/postmaster.pid").exists(),
        "shutdown stopped the private cluster"
    );

    // Second start: the same cluster, with everything the first run wrote.
    let second = Server::start(ServerOpts {
        data_dir: Some(&data_dir),
        ..Default::default()
    });
    assert!(
        !second
            .logs()
            .contains("creating the private postgresql cluster"),
        "{}",
        second.logs()
    );
    let mut admin = AdminClient::new(second.channel().await);
    let again = admin
        .create_tenant(authed(
            pb::CreateTenantRequest {
                name: "kept".into(),
            },
            &key,
        ))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");
    let keys = admin
        .list_api_keys(authed(pb::ListApiKeysRequest::default(), &created.secret))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        keys.api_keys.len(),
        2,
        "the tenant's first key and the one the CLI made"
    );
    assert!(keys.api_keys.iter().any(|k| cli_key.starts_with(&k.prefix)));
    assert_eq!(
        fs::read_to_string(&key_file).unwrap().trim(),
        key,
        "the key file is kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let (_root, data_dir) = data_dir();
    let _first = Server::start(ServerOpts {
        data_dir: Some(&data_dir),
        ..Default::default()
    });
    let (status, _, stderr) = cli(&[
        "serve",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-addr",
        "127.0.0.1:0",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another pulsyon process is using the data dir"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_leaves_nothing_in_the_way_of_the_next_start() {
    let (_root, data_dir) = data_dir();
    let mut first = Server::start(ServerOpts {
        data_dir: Some(&data_dir),
        ..Default::default()
    });
    let key = fs::read_to_string(data_dir.join("api-key"))
        .unwrap()
        .trim()
        .to_owned();
    first.signal(nix::sys::signal::Signal::SIGKILL);
    first.wait_exit(Duration::from_secs(10)).expect("killed");

    let second = Server::start(ServerOpts {
        data_dir: Some(&data_dir),
        ..Default::default()
    });
    let keys = AdminClient::new(second.channel().await)
        .list_api_keys(authed(pb::ListApiKeysRequest::default(), &key))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys.api_keys.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_the_clusters_user_cannot_enter_still_works() {
    if !nix::unistd::geteuid().is_root() {
        return; // only root hands the cluster to another user
    }
    // As a clone under /root: a parent directory of mode 0700.
    let private = tempfile::tempdir().unwrap();
    fs::set_permissions(private.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let data_dir = private.path().join("checkout/.pulsyon");
    let server = Server::start(ServerOpts {
        data_dir: Some(&data_dir),
        ..Default::default()
    });
    let cluster_dir =
        fs::read_to_string(data_dir.join("cluster-dir")).expect("the cluster's place is recorded");
    let cluster_dir = std::path::PathBuf::from(cluster_dir.trim());
    assert!(
        cluster_dir.starts_with("/var/lib/pulsyon/clusters"),
        "{}",
        cluster_dir.display()
    );
    assert!(cluster_dir.join("pg/PG_VERSION").is_file());
    assert!(server.logs().contains("cluster dir"), "the log says where");
    let key = fs::read_to_string(data_dir.join("api-key")).unwrap();
    let mut admin = AdminClient::new(server.channel().await);
    admin
        .list_api_keys(authed(pb::ListApiKeysRequest::default(), key.trim()))
        .await
        .expect("the server answers");
    // A one-shot command finds the same cluster.
    let (status, stdout, stderr) = cli(&[
        "key",
        "create",
        "--tenant",
        "default",
        "--scopes",
        "read",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.starts_with("pls_"));
    drop(server);
    // Stopped with its server; nothing of it stays behind.
    let _ = fs::remove_dir_all(&cluster_dir);
}
