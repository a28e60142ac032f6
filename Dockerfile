# syntax=docker/dockerfile:1
# Pulsyon's server image: `pulsyon serve` against an external PostgreSQL
# (DATABASE_URL). The embedded cluster of `scripts/serve.sh` is a laptop
# feature and is not in the image (no PostgreSQL binaries here).

# --- build -----------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, as their own layer: the manifests, the protos and
# build.rs (which compiles the protos), with every target stubbed, so that a
# change to the sources rebuilds only the crate itself.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY migrations migrations
COPY clients/rust/Cargo.toml clients/rust/Cargo.toml
COPY clients/loadgen/Cargo.toml clients/loadgen/Cargo.toml
RUN mkdir -p src benches clients/rust/src clients/loadgen/src \
 && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && for b in queries watch otlp; do echo 'fn main() {}' > "benches/$b.rs"; done \
 && touch clients/rust/src/lib.rs clients/loadgen/src/lib.rs \
 && echo 'fn main() {}' > clients/loadgen/src/main.rs \
 && cargo build --release --locked -p pulsyon --bin pulsyon \
 && rm -rf src benches clients/*/src
COPY src src
COPY benches benches
COPY clients/rust/src clients/rust/src
COPY clients/loadgen/src clients/loadgen/src
# The real sources are newer than the stubs' outputs: cargo rebuilds the crate.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked -p pulsyon --bin pulsyon \
 && install -m 0755 target/release/pulsyon /pulsyon

# --- runtime ---------------------------------------------------------------
FROM debian:bookworm-slim
# CA certificates for TLS to PostgreSQL and Redis; nothing else is needed.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin pulsyon
COPY --from=build /pulsyon /usr/local/bin/pulsyon
USER 10001:10001
ENV PULSYON_GRPC_ADDR=0.0.0.0:50051 \
    PULSYON_HTTP_ADDR=0.0.0.0:9464 \
    PULSYON_LOG_FORMAT=json
# gRPC (pulsyon.v1 and OTLP/gRPC) and HTTP (metrics, probes, OTLP/HTTP).
EXPOSE 50051 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["pulsyon", "healthcheck"]
ENTRYPOINT ["pulsyon"]
CMD ["serve"]
