//! Users of the dashboard, black-box: created with the CLI (password from
//! standard input or generated and printed once) and through Admin (create,
//! list, disable), stored only as Argon2id hashes, and confined to their
//! tenant.

mod common;

use std::{
    io::Write,
    process::{Command, Stdio},
};

use common::{BIN, Server, ServerOpts, TestDb, authed, create_key, create_tenant, header, http};
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
            "for '--role <ROLE>'",
        ),
        (
            vec!["--tenant", "acme", "--role", "viewer", "Dave Smith"],
            "",
            "use 1 to 64 of a-z",
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_logs_in_sees_their_session_logs_out_and_failures_are_throttled() {
    let db = TestDb::new().await;
    let admin_key = create_tenant(&db.url, "acme");
    let ingest_key = create_key(&db.url, "acme", "ingest");
    for (name, role) in [("alice", "responder"), ("vic", "viewer")] {
        let (ok, _, stderr) = user_create(
            &db.url,
            &["--tenant", "acme", "--role", role, "--password-stdin", name],
            "correct horse battery\n",
        );
        assert!(ok, "{stderr}");
    }
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &["--detector", "false"],
        ..Default::default()
    });
    let addr = server.http.as_str();
    let json = [("content-type", "application/json")];
    let login = |tenant: &str, user: &str, password: &str| {
        serde_json::json!({"tenant": tenant, "user": user, "password": password}).to_string()
    };
    let path = "/api/v1/session";

    // A login sets an HttpOnly, SameSite=Strict cookie; the session says who.
    let (status, headers, body) = http(
        addr,
        "POST",
        path,
        &json,
        &login("acme", "alice", "correct horse battery"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cookie = header(&headers, "set-cookie").unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let token = cookie.split(';').next().unwrap().to_owned();
    let me: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (
            me["tenant"].as_str(),
            me["actor"].as_str(),
            me["role"].as_str()
        ),
        (Some("acme"), Some("alice"), Some("responder"))
    );
    let (status, _, body) = http(addr, "GET", path, &[("cookie", &token)], "").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"alice\""), "{body}");

    // Logout ends it.
    let (status, headers, _) = http(addr, "DELETE", path, &[("cookie", &token)], "").await;
    assert_eq!(status, 204);
    assert!(
        header(&headers, "set-cookie")
            .unwrap()
            .contains("Max-Age=0")
    );
    // Asked without a live session, the door says so (and no page logs a refusal).
    for cookie in [vec![("cookie", token.as_str())], vec![]] {
        let (status, _, body) = http(addr, "GET", path, &cookie, "").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap()["logged_in"],
            false
        );
    }

    // Wrong password, unknown user and unknown tenant: the same refusal.
    let mut refusals = Vec::new();
    for (tenant, user) in [("acme", "vic"), ("acme", "nobody"), ("nowhere", "vic")] {
        let (status, _, body) = http(
            addr,
            "POST",
            path,
            &json,
            &login(tenant, user, "wrong password!!"),
        )
        .await;
        assert_eq!(status, 401, "{body}");
        refusals.push(body);
    }
    assert!(refusals.iter().all(|b| *b == refusals[0]), "{refusals:?}");
    // Past five failures the user's logins are throttled, the right password too.
    for _ in 0..4 {
        http(
            addr,
            "POST",
            path,
            &json,
            &login("acme", "vic", "wrong password!!"),
        )
        .await;
    }
    let (status, headers, _) = http(
        addr,
        "POST",
        path,
        &json,
        &login("acme", "vic", "correct horse battery"),
    )
    .await;
    assert_eq!(status, 429);
    assert!(header(&headers, "retry-after").is_some());
    // Another user is not affected.
    let (status, _, _) = http(
        addr,
        "POST",
        path,
        &json,
        &login("acme", "alice", "correct horse battery"),
    )
    .await;
    assert_eq!(status, 200);

    // API keys: an admin key logs in as admin; an ingest-only key cannot read.
    let key_login = |key: &str| serde_json::json!({"api_key": key}).to_string();
    let (status, _, body) = http(addr, "POST", path, &json, &key_login(&admin_key)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"admin\""), "{body}");
    let (status, _, _) = http(addr, "POST", path, &json, &key_login(&ingest_key)).await;
    assert_eq!(status, 403);
    let (status, _, _) = http(addr, "POST", path, &json, &key_login("pls_nope")).await;
    assert_eq!(status, 401);

    // Bad requests.
    let (status, _, _) = http(addr, "POST", path, &[], &key_login(&admin_key)).await;
    assert_eq!(status, 415);
    let (status, _, _) = http(addr, "POST", path, &json, "{\"user\": 1}").await;
    assert_eq!(status, 400);
    let (status, _, _) = http(addr, "PUT", path, &json, "").await;
    assert_eq!(status, 405);

    // Disabling a user ends their sessions.
    let (_, headers, _) = http(
        addr,
        "POST",
        path,
        &json,
        &login("acme", "alice", "correct horse battery"),
    )
    .await;
    let token = header(&headers, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut admin = AdminClient::new(server.channel().await);
    admin
        .disable_user(authed(
            pb::DisableUserRequest {
                name: "alice".into(),
            },
            &admin_key,
        ))
        .await
        .unwrap();
    let (_, _, body) = http(addr, "GET", path, &[("cookie", &token)], "").await;
    assert!(body.contains("\"logged_in\":false"), "{body}");
    let (status, _, _) = http(
        addr,
        "POST",
        path,
        &json,
        &login("acme", "alice", "correct horse battery"),
    )
    .await;
    assert_eq!(status, 401, "a disabled user cannot log in");

    let logs = server.logs();
    assert!(
        !logs.contains("correct horse battery"),
        "no password in the logs"
    );
    assert!(
        !logs.contains(token.split('=').nth(1).unwrap()),
        "no session token in the logs"
    );
}
