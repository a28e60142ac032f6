"""TLS and mutual TLS, as the server offers them (certificates made with openssl)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import pulsyon


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue(cwd: Path, name: str, extensions: str) -> None:
    """A P-256 key and a certificate for it signed by ca.pem."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=cwd)
    (cwd / f"{name}.ext").write_text(extensions)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext", cwd=cwd)


@pytest.fixture
def certs(tmp_path):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=pulsyon test CA",
            cwd=tmp_path)
    issue(tmp_path, "server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    issue(tmp_path, "client", "extendedKeyUsage=clientAuth\n")
    return tmp_path


def test_the_client_sends_over_mutual_tls_and_is_refused_without_its_certificate(make_env, certs):
    env = make_env([
        "--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
        "--tls-client-ca", str(certs / "ca.pem"),
    ])
    assert env.url.startswith("https://")
    client = pulsyon.Client(env.url, env.key, tls_ca=certs / "ca.pem",
                            tls_cert=certs / "client.pem", tls_key=(certs / "client.key").read_bytes())
    for i in range(500):
        client.send(service="tls", endpoint="/x", method="GET", status_code=200, latency_ms=1.0)
    assert client.close(30), client.stats()
    assert client.stats().acked == 500
    assert env.count("service = 'tls'") == (500, 500)

    anonymous = pulsyon.Client(env.url, env.key, tls_ca=certs / "ca.pem", max_backoff=0.2)
    anonymous.send(service="tls", endpoint="/x", method="GET", status_code=200, latency_ms=1.0)
    assert not anonymous.close(2), "a server that asks for a client certificate refuses the stream"
    assert anonymous.stats().dropped == 1
    assert env.count("service = 'tls'") == (500, 500)
