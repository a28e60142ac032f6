//! Users of the dashboard, black-box: created with the CLI (password from
//! standard input or generated and printed once) and through Admin (create,
//! list, disable), stored only as Argon2id hashes, and confined to their
//! tenant.

mod common;

use std::{
    io::Write,
    process::{Command, Stdio},
};

use common::{BIN, Server, ServerOpts, TestDb, authed, create_key, create_tenant};
use pulsyon::proto::v1::{self as pb, admin_client::AdminClient};
use tonic::Code;

/// Runs `pulsyon user create` with `stdin` as its standard input.
fn user_create(db: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .args(["user", "create", "--database-url", db])
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pulsyon");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn password_hash(db: &str, name: &str) -> String {
    let pool = common::pool(db).await;
    sqlx::query_scalar("SELECT password_hash FROM users WHERE name = $1")
        .bind(name)
        .fetch_one(&pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_users_with_a_given_or_generated_password_stored_only_as_a_hash() {
    let db = TestDb::new().await;
    create_tenant(&db.url, "acme");

    let (ok, stdout, stderr) = user_create(
        &db.url,
        &[
            "--tenant",
            "acme",
            "--role",
            "responder",
            "--password-stdin",
            "alice",
        ],
        "correct horse battery\n",
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.is_empty(),
        "a given password is not printed: {stdout}"
    );
    assert!(stderr.contains("role responder"), "{stderr}");
    let hash = password_hash(&db.url, "alice").await;
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(pulsyon::auth::verify_password(
        "correct horse battery",
        &hash
    ));
    assert!(!pulsyon::auth::verify_password(
        "correct horse batterz",
        &hash
    ));

    let (ok, stdout, stderr) = user_create(
        &db.url,
        &["--tenant", "acme", "--role", "viewer", "bob"],
        "",
    );
    assert!(ok, "{stderr}");
    let generated = stdout.trim();
    assert_eq!(generated.len(), 20, "{stdout}");
    assert!(stderr.contains("shown only once"), "{stderr}");
    assert!(pulsyon::auth::verify_password(
        generated,
        &password_hash(&db.url, "bob").await
    ));

    // Refusals, each with one clear line and nothing stored.
    for (args, stdin, why) in [
        (
            vec![
                "--tenant",
                "acme",
                "--role",
                "viewer",
                "--password-stdin",
                "carol",
            ],
            "short\n",
            "12 to 256 characters",
        ),
        (
            vec!["--tenant", "acme", "--role", "viewer", "alice"],
            "",
            "already has a user named",
        ),
        (
            vec!["--tenant", "acme", "--role", "owner", "dave"],
            "",
            "invalid --role",
        ),
        (
            vec!["--tenant", "acme", "--role", "viewer", "Dave Smith"],
            "",
            "invalid user name",
        ),
        (
            vec!["--tenant", "nobody", "--role", "viewer", "erin"],
            "",
            "no tenant named",
        ),
    ] {
        let (ok, _, stderr) = user_create(&db.url, &args, stdin);
        assert!(!ok, "{args:?} was accepted");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    }
    let pool = common::pool(&db.url).await;
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM users ORDER BY name")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(names, ["alice", "bob"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_creates_lists_and_disables_users_of_its_own_tenant_only() {
    let db = TestDb::new().await;
    let acme = create_tenant(&db.url, "acme");
    let globex = create_tenant(&db.url, "globex");
    let reader = create_key(&db.url, "acme", "read");
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false"],
        ..Default::default()
    });
    let mut admin = AdminClient::new(server.channel().await);
    let create = |name: &str, role: pb::UserRole, password: &str| pb::CreateUserRequest {
        name: name.into(),
        role: role as i32,
        password: password.into(),
    };

    let made = admin
        .create_user(authed(create("ann", pb::UserRole::Responder, ""), &acme))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(made.generated_password.len(), 20);
    let ann = made.user.unwrap();
    assert_eq!(
        (ann.name.as_str(), ann.role, ann.disabled_at),
        ("ann", pb::UserRole::Responder as i32, None)
    );
    let given = admin
        .create_user(authed(
            create(
                "ben@acme.example",
                pb::UserRole::Viewer,
                "a long enough password",
            ),
            &acme,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(given.generated_password.is_empty());
    admin
        .create_user(authed(create("ann", pb::UserRole::Admin, ""), &globex))
        .await
        .expect("names are per tenant");

    let listed = admin
        .list_users(authed(pb::ListUsersRequest {}, &acme))
        .await
        .unwrap()
        .into_inner()
        .users;
    let names: Vec<&str> = listed.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["ann", "ben@acme.example"]);

    // Refusals.
    for (request, code, field) in [
        (
            create("ann", pb::UserRole::Viewer, ""),
            Code::AlreadyExists,
            "user",
        ),
        (
            create("Ann", pb::UserRole::Viewer, ""),
            Code::InvalidArgument,
            "name",
        ),
        (
            create("cid", pb::UserRole::Unspecified, ""),
            Code::InvalidArgument,
            "role",
        ),
        (
            create("cid", pb::UserRole::Viewer, "short"),
            Code::InvalidArgument,
            "password",
        ),
    ] {
        let err = admin
            .create_user(authed(request.clone(), &acme))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{request:?}: {err:?}");
        assert!(
            err.message().contains(field),
            "{request:?}: {}",
            err.message()
        );
    }
    let err = admin
        .list_users(authed(pb::ListUsersRequest {}, &reader))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // Disable: once, within the tenant.
    let disable = |name: &str| pb::DisableUserRequest { name: name.into() };
    let err = admin
        .disable_user(authed(disable("ben@acme.example"), &globex))
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::NotFound,
        "another tenant's user is not there"
    );
    let off = admin
        .disable_user(authed(disable("ben@acme.example"), &acme))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    let again = admin
        .disable_user(authed(disable("ben@acme.example"), &acme))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert!(off.disabled_at.is_some());
    assert_eq!(off.disabled_at, again.disabled_at, "disabled once");
    let theirs = admin
        .list_users(authed(pb::ListUsersRequest {}, &globex))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].disabled_at, None);
    assert!(
        !server.logs().contains("a long enough password"),
        "a password is never logged"
    );
}
