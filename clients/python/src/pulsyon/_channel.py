"""Where the server is and how to reach it: one place for both transports."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union
from urllib.parse import urlsplit

import grpc

PemSource = Union[str, bytes, Path, None]

# Keepalive pings find a dead connection (a server killed without a FIN) in
# seconds rather than at the kernel's TCP timeout.
_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


def _pem(source: PemSource) -> Optional[bytes]:
    if source is None:
        return None
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and source.lstrip().startswith("-----BEGIN"):
        return source.encode()
    return Path(source).read_bytes()


@dataclass(frozen=True)
class Target:
    """A parsed server URL with its credentials."""

    address: str
    credentials: Optional[grpc.ChannelCredentials]
    metadata: tuple

    @staticmethod
    def parse(
        url: str,
        api_key: str,
        tls_ca: PemSource = None,
        tls_cert: PemSource = None,
        tls_key: PemSource = None,
    ) -> "Target":
        """`http://host:port` for plaintext, `https://host:port` for TLS.

        `tls_ca` is the PEM of the CA that signed the server's certificate (default:
        the system's roots); `tls_cert` and `tls_key` a client certificate for a
        server that asks for one (mTLS). Each is PEM text or bytes, or a file path.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"invalid url {url!r}: expected http://host:port or https://host:port")
        if not api_key:
            raise ValueError("api_key is empty")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname
        if ":" in host:  # IPv6
            host = f"[{host}]"
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if parts.scheme == "http":
            if tls_ca is not None or tls_cert is not None:
                raise ValueError("TLS options need an https:// url")
            credentials = None
        else:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_pem(tls_ca),
                private_key=_pem(tls_key),
                certificate_chain=_pem(tls_cert),
            )
        return Target(
            address=f"{host}:{port}",
            credentials=credentials,
            metadata=(("authorization", f"Bearer {api_key}"),),
        )

    def channel(self) -> grpc.Channel:
        if self.credentials is None:
            return grpc.insecure_channel(self.address, options=_OPTIONS)
        return grpc.secure_channel(self.address, self.credentials, options=_OPTIONS)

    def aio_channel(self) -> grpc.aio.Channel:
        if self.credentials is None:
            return grpc.aio.insecure_channel(self.address, options=_OPTIONS)
        return grpc.aio.secure_channel(self.address, self.credentials, options=_OPTIONS)
