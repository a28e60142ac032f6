//! TLS and mutual TLS on the gRPC port, with certificates made for the test.

mod common;

use std::{fs, path::Path};

use common::{Server, ServerOpts, TestDb};
use pulsyon::proto::v1::{self as pb, incidents_client::IncidentsClient};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A CA, a server certificate for localhost and a client certificate, as PEM files in `dir`.
fn make_certs(dir: &Path) -> (String, Identity) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "pulsyon test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let server_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["client".to_owned()]).unwrap();
    client_params
        .distinguished_name
        .push(DnType::CommonName, "sdk client");
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

    fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
    fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    (
        ca_cert.pem(),
        Identity::from_pem(client_cert.pem(), client_key.serialize_pem()),
    )
}

async fn check(addr: &str, tls: Option<ClientTlsConfig>) -> Result<i32, String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Channel::from_shared(format!("{scheme}://{addr}")).unwrap();
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
    }
    let channel = endpoint.connect().await.map_err(|e| e.to_string())?;
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map(|r| r.into_inner().status)
        .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_mutual_tls_admit_only_the_right_clients() {
    let db = TestDb::new().await;
    let certs = tempfile::tempdir().unwrap();
    let (ca, client) = make_certs(certs.path());
    let path = |name: &str| certs.path().join(name).to_str().unwrap().to_owned();
    let (cert, key, ca_file) = (path("server.pem"), path("server.key"), path("ca.pem"));
    let trust = || {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&ca))
            .domain_name("localhost")
    };

    // TLS: a client that trusts the CA is served; a plaintext one is not.
    let tls_args = ["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
    let tls = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &tls_args,
        ..Default::default()
    });
    let mut served = Err(String::new());
    for _ in 0..100 {
        served = check(&tls.grpc, Some(trust())).await;
        if served == Ok(ServingStatus::Serving as i32) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(served, Ok(ServingStatus::Serving as i32));
    assert!(check(&tls.grpc, None).await.is_err(), "plaintext refused");

    // A stream over TLS: Watch starts with a heartbeat.
    let api_key = common::create_tenant(&db.url, "acme");
    let channel = Channel::from_shared(format!("https://{}", tls.grpc))
        .unwrap()
        .tls_config(trust())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut watch = IncidentsClient::new(channel)
        .watch(common::authed(pb::WatchRequest::default(), &api_key))
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert!(
        matches!(
            first.payload,
            Some(pb::watch_response::Payload::Heartbeat(_))
        ),
        "{first:?}"
    );

    // Mutual TLS: only a client with a certificate from the CA.
    let mtls_args = [
        "--tls-cert",
        cert.as_str(),
        "--tls-key",
        key.as_str(),
        "--tls-client-ca",
        ca_file.as_str(),
    ];
    let mtls = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &mtls_args,
        ..Default::default()
    });
    let mut served = Err(String::new());
    for _ in 0..100 {
        served = check(&mtls.grpc, Some(trust().identity(client.clone()))).await;
        if served == Ok(ServingStatus::Serving as i32) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(served, Ok(ServingStatus::Serving as i32));
    assert!(
        check(&mtls.grpc, Some(trust())).await.is_err(),
        "no client certificate: refused"
    );
}

/// A TLS connection to `addr` trusting `ca`, offering `alpn`.
async fn tls_connect(
    addr: &str,
    ca: &str,
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio_rustls::rustls::{
        ClientConfig, RootCertStore,
        pki_types::{CertificateDer, ServerName, pem::PemObject},
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_port_over_tls_speaks_h2_and_http_1_1_and_its_session_cookie_is_secure() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::new().await;
    let certs = tempfile::tempdir().unwrap();
    let (ca, _) = make_certs(certs.path());
    let path = |name: &str| certs.path().join(name).to_str().unwrap().to_owned();
    let (cert, key) = (path("server.pem"), path("server.key"));
    let args = [
        "--http-tls-cert",
        cert.as_str(),
        "--http-tls-key",
        key.as_str(),
    ];
    let server = Server::start(ServerOpts {
        database_url: Some(&db.url),
        extra_args: &args,
        ..Default::default()
    });
    let api_key = common::create_tenant(&db.url, "acme");

    // HTTP/2 by ALPN: two requests on one connection.
    let tls = tls_connect(&server.http, &ca, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (client, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    for _ in 0..2 {
        let request = hyper::Request::get("https://localhost/healthz")
            .body(())
            .unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let mut text = Vec::new();
        while let Some(chunk) = body.data().await {
            text.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(text, b"ok\n");
    }

    // HTTP/1.1 by ALPN: a login's cookie is Secure.
    let mut tls = tls_connect(&server.http, &ca, &[b"http/1.1"]).await;
    let body = serde_json::json!({ "api_key": api_key }).to_string();
    tls.write_all(
        format!(
            "POST /api/v1/session HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    let cookie = answer
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .expect("a session cookie");
    assert!(cookie.contains("; secure"), "{cookie}");

    // Plaintext on the TLS port gets no answer.
    let mut plain = tokio::net::TcpStream::connect(&server.http).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let _ = plain.read_to_end(&mut bytes).await;
    assert!(!bytes.starts_with(b"HTTP/1.1 200"), "{bytes:?}");
}
