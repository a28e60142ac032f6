//! `pulsyon.v1.Ingest`: the SDKs' door. Authenticated with the `ingest` scope.
//!
//! Each batch is validated event by event (a bad event is refused on its own
//! and kept as a dead letter), admitted into the writer's bounded queue, and
//! answered only after its transaction commits. A stream holds at most
//! `max_in_flight` unanswered batches: past that the server stops reading it,
//! and HTTP/2 flow control slows the client. A batch that cannot get queue
//! space in time ends the stream with RESOURCE_EXHAUSTED and a retry delay.
//! A stream ends with UNAUTHENTICATED within the key-cache TTL of its key's
//! revocation, and with UNAVAILABLE after `idle_timeout` without a batch.
//!
//! The route is this module's own ([`IngestRoutes`]): requests are decoded
//! with each event kept as its bytes ([`WireBatch`]) and each event decoded
//! on its own, so that an event the generated decoder would refuse (a string
//! that is not UTF-8) is one rejected event, not a failed stream.
//! This module never acknowledges a batch that is not committed.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use prost::{Message, bytes::Bytes};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{
    Code, Request, Response, Status, Streaming,
    body::Body,
    codegen::{BoxFuture, Service, http},
    server::{Grpc, NamedService, StreamingService, UnaryService},
};

use super::{
    TRANSPORT_MAX_MESSAGE_BYTES,
    auth::Authenticator,
    codec::PulsyonCodec,
    convert,
    status::{self, invalid},
};
use crate::{
    domain::{Principal, RejectReason, Scope},
    ingest::admit::{Arriving, Incoming, Payload, Pipeline},
    proto::v1 as pb,
};

/// `StreamEventsRequest` and `PublishEventsRequest` as they arrive (both
/// hold the batch at field 1): the same wire format as the contract's.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WireRequest {
    /// The batch.
    #[prost(message, optional, tag = "1")]
    pub batch: Option<WireBatch>,
}

/// `EventBatch` with each event as its encoded bytes (an embedded message
/// and a bytes field are the same on the wire).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WireBatch {
    /// `EventBatch.producer_id`.
    #[prost(string, tag = "1")]
    pub producer_id: String,
    /// `EventBatch.seq`.
    #[prost(uint64, tag = "2")]
    pub seq: u64,
    /// `EventBatch.events`, each still encoded.
    #[prost(bytes = "bytes", repeated, tag = "3")]
    pub events: Vec<Bytes>,
}

/// The Ingest service.
#[derive(Debug, Clone)]
pub struct IngestService {
    /// Checks the caller's key.
    pub auth: Arc<Authenticator>,
    /// The ingest pipeline (validation, limits, admission).
    pub pipeline: Pipeline,
    /// Most unanswered batches per stream.
    pub max_in_flight: usize,
    /// A stream that sends no batch for this long is ended (UNAVAILABLE).
    pub idle_timeout: Duration,
    /// Cancelled when shutdown begins: streams stop reading, answer what is
    /// in flight, then end with UNAVAILABLE.
    pub shutdown: CancellationToken,
}

/// Why an event's bytes do not decode: a string that is not UTF-8 is
/// INVALID_TEXT, anything else MALFORMED_EVENT.
fn undecodable(err: &prost::DecodeError) -> (RejectReason, String) {
    let text = err.to_string();
    if text.contains("UTF-8") {
        (
            RejectReason::InvalidText,
            "event: a string field is not valid UTF-8".to_owned(),
        )
    } else {
        (
            RejectReason::MalformedEvent,
            format!("event: not a valid pulsyon.v1.Event ({text})"),
        )
    }
}

/// The pipeline's batch from the wire's: each event decoded on its own.
fn incoming(batch: Option<WireBatch>) -> Result<Incoming, Status> {
    let batch = batch.ok_or_else(|| invalid("batch", "missing"))?;
    let events = batch
        .events
        .into_iter()
        .map(|payload| match pb::Event::decode(payload.clone()) {
            Ok(event) => Arriving::Decoded {
                raw: convert::raw_event(event, payload.len()),
                payload: Payload::Received(payload),
            },
            Err(err) => {
                let (reason, message) = undecodable(&err);
                Arriving::Undecodable {
                    reason,
                    message,
                    payload,
                }
            }
        })
        .collect();
    Ok(Incoming {
        producer_id: batch.producer_id,
        seq: batch.seq,
        events,
    })
}

/// Admits one batch; the returned future yields its ack.
async fn admit(
    pipeline: &Pipeline,
    caller: &Principal,
    batch: Option<WireBatch>,
) -> Result<impl Future<Output = Result<pb::BatchAck, Status>> + use<>, Status> {
    let pending = pipeline
        .admit(caller, incoming(batch)?)
        .await
        .map_err(status::from_refused)?;
    Ok(async move {
        pending
            .wait()
            .await
            .map(|ack| convert::ack_to_pb(&ack))
            .map_err(status::from_ack_error)
    })
}

/// The stream of a StreamEvents call.
type AckStream = Pin<Box<dyn Stream<Item = Result<pb::StreamEventsResponse, Status>> + Send>>;

impl IngestService {
    /// `Ingest.StreamEvents`.
    pub async fn stream_events(
        &self,
        request: Request<Streaming<WireRequest>>,
    ) -> Result<Response<AckStream>, Status> {
        let (caller, key) = self.auth.authorize_stream(&request, Scope::Ingest).await?;
        let slot = self
            .pipeline
            .open_stream(&caller)
            .await
            .map_err(status::from_refused)?;
        let mut inbound = request.into_inner();
        let (out, out_rx) = mpsc::channel(self.max_in_flight + 1);
        let service = self.clone();
        tokio::spawn(async move {
            // The stream's slot is held until it ends.
            let _slot = slot;
            let in_flight = Arc::new(Semaphore::new(service.max_in_flight));
            // Cancelled when an ack fails, so the reader stops at once.
            let failed = CancellationToken::new();
            // Ends with UNAUTHENTICATED once the key stops working.
            let revoked = service.auth.revoked_status(key);
            tokio::pin!(revoked);
            let end: Option<Status> = loop {
                let permit = tokio::select! {
                    p = in_flight.clone().acquire_owned() => match p {
                        Ok(permit) => permit,
                        Err(_) => break None, // never closed; ends the stream cleanly if it were
                    },
                    _ = service.shutdown.cancelled() => break Some(status::ingest_shutting_down()),
                    _ = failed.cancelled() => break None,
                    status = &mut revoked => break Some(status),
                };
                let message = tokio::select! {
                    m = tokio::time::timeout(service.idle_timeout, inbound.message()) => match m {
                        Ok(m) => m,
                        Err(_) => {
                            metrics::counter!("pulsyon_streams_ended_total", "reason" => "idle")
                                .increment(1);
                            break Some(status::ingest_idle(service.idle_timeout));
                        }
                    },
                    _ = service.shutdown.cancelled() => break Some(status::ingest_shutting_down()),
                    _ = failed.cancelled() => break None,
                    status = &mut revoked => break Some(status),
                };
                let request = match message {
                    Ok(Some(request)) => request,
                    Ok(None) => break None,
                    // A message the codec refused: tell the client why.
                    Err(status) if status.code() == Code::InvalidArgument => break Some(status),
                    Err(status) => {
                        tracing::debug!(error = %status, "ingest stream ended by the client side");
                        break None;
                    }
                };
                let pending = match admit(&service.pipeline, &caller, request.batch).await {
                    Ok(pending) => pending,
                    Err(status) => break Some(status),
                };
                let out = out.clone();
                let failed = failed.clone();
                tokio::spawn(async move {
                    let message = pending
                        .await
                        .map(|ack| pb::StreamEventsResponse { ack: Some(ack) });
                    if message.is_err() {
                        failed.cancel();
                    }
                    let _ = out.send(message).await;
                    drop(permit);
                });
            };
            // Answer everything in flight before the stream ends.
            let _ = in_flight.acquire_many(service.max_in_flight as u32).await;
            if let Some(status) = end {
                let _ = out.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    /// `Ingest.PublishEvents`.
    pub async fn publish_events(
        &self,
        request: Request<WireRequest>,
    ) -> Result<Response<pb::PublishEventsResponse>, Status> {
        let caller = self.auth.authorize(&request, Scope::Ingest).await?;
        let ack = admit(&self.pipeline, &caller, request.into_inner().batch)
            .await?
            .await?;
        Ok(Response::new(pb::PublishEventsResponse { ack: Some(ack) }))
    }
}

const STREAM_EVENTS_PATH: &str = "/pulsyon.v1.Ingest/StreamEvents";
const PUBLISH_EVENTS_PATH: &str = "/pulsyon.v1.Ingest/PublishEvents";

/// The `Ingest` service's routes.
#[derive(Debug, Clone)]
pub struct IngestRoutes(Arc<IngestService>);

impl IngestRoutes {
    /// Routes for `service`.
    pub fn new(service: IngestService) -> IngestRoutes {
        IngestRoutes(Arc::new(service))
    }
}

impl NamedService for IngestRoutes {
    const NAME: &'static str = "pulsyon.v1.Ingest";
}

struct StreamMethod(Arc<IngestService>);

impl StreamingService<WireRequest> for StreamMethod {
    type Response = pb::StreamEventsResponse;
    type ResponseStream = AckStream;
    type Future = BoxFuture<Response<AckStream>, Status>;

    fn call(&mut self, request: Request<Streaming<WireRequest>>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { service.stream_events(request).await })
    }
}

struct PublishMethod(Arc<IngestService>);

impl UnaryService<WireRequest> for PublishMethod {
    type Response = pb::PublishEventsResponse;
    type Future = BoxFuture<Response<pb::PublishEventsResponse>, Status>;

    fn call(&mut self, request: Request<WireRequest>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { service.publish_events(request).await })
    }
}

impl Service<http::Request<Body>> for IngestRoutes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let service = self.0.clone();
        match request.uri().path() {
            STREAM_EVENTS_PATH => Box::pin(async move {
                let mut grpc =
                    Grpc::new(PulsyonCodec::<pb::StreamEventsResponse, WireRequest>::default())
                        .apply_max_message_size_config(Some(TRANSPORT_MAX_MESSAGE_BYTES), None);
                Ok(grpc.streaming(StreamMethod(service), request).await)
            }),
            PUBLISH_EVENTS_PATH => Box::pin(async move {
                let mut grpc =
                    Grpc::new(PulsyonCodec::<pb::PublishEventsResponse, WireRequest>::default())
                        .apply_max_message_size_config(Some(TRANSPORT_MAX_MESSAGE_BYTES), None);
                Ok(grpc.unary(PublishMethod(service), request).await)
            }),
            other => {
                let status = status::no_such_method(other, "pulsyon.v1.Ingest");
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

/// Fuzzing of the network-facing layer: bytes -> decode (the codec's prost
/// decoding) -> convert -> validate -> prepare. Seeds are the committed
/// corpus under `fuzz/corpus/publish_events/`, mutated by proptest; a short
/// run is part of every `cargo test` (PROPTEST_CASES raises it).
#[cfg(test)]
mod fuzz {
    use std::path::PathBuf;

    use proptest::prelude::*;

    use super::*;
    use crate::ingest::{admit, validate};

    fn corpus_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/publish_events")
    }

    fn corpus() -> Vec<Vec<u8>> {
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(corpus_dir())
            .expect("the committed corpus")
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        seeds.sort();
        assert!(seeds.len() >= 5, "the corpus is committed");
        seeds
    }

    fn principal() -> Principal {
        Principal {
            tenant_id: crate::domain::TenantId(1),
            tenant_name: "fuzz".into(),
            key_id: uuid::Uuid::nil(),
            scopes: vec![Scope::Ingest],
            limits: Default::default(),
        }
    }

    /// What the server does with a PublishEvents body: never a panic; either
    /// INVALID_ARGUMENT or a batch whose events are each accepted or rejected.
    fn exercise(bytes: &[u8]) {
        let request = match WireRequest::decode(bytes) {
            Ok(r) => r,
            Err(_) => return, // the codec answers INVALID_ARGUMENT
        };
        let sent: Option<Vec<Bytes>> = request.batch.as_ref().map(|b| b.events.clone());
        let checked = incoming(request.batch).and_then(|batch| {
            admit::check(&principal(), batch, &validate::EventBounds::default())
                .map_err(status::from_refused)
        });
        match checked {
            Ok(p) => {
                let sent = sent.expect("a prepared batch was sent");
                let n = p.batch.events.len() + p.batch.rejected.len();
                assert_eq!(n, sent.len(), "every event accepted or rejected");
                assert_eq!(p.rejections.len(), p.batch.rejected.len());
                for d in &p.batch.rejected {
                    // A dead letter keeps the event's bytes as sent.
                    assert_eq!(d.payload, sent[d.index as usize].as_ref());
                }
            }
            Err(status) => assert_eq!(status.code(), Code::InvalidArgument, "{status:?}"),
        }
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Flip(usize, u8),
        Truncate(usize),
        Insert(usize, Vec<u8>),
        Splice(usize, usize),
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
            any::<usize>().prop_map(Mutation::Truncate),
            (
                any::<usize>(),
                proptest::collection::vec(any::<u8>(), 1..16)
            )
                .prop_map(|(i, v)| Mutation::Insert(i, v)),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Splice(a, b)),
        ]
    }

    fn mutate(mut bytes: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
        for m in ms {
            let len = bytes.len().max(1);
            match m {
                Mutation::Flip(i, b) => {
                    if !bytes.is_empty() {
                        bytes[i % len] ^= b;
                    }
                }
                Mutation::Truncate(i) => bytes.truncate(i % len),
                Mutation::Insert(i, v) => {
                    let at = i % (bytes.len() + 1);
                    bytes.splice(at..at, v.iter().copied());
                }
                Mutation::Splice(a, b) => {
                    // Repeat a slice of itself (duplicated fields, nested lengths).
                    let (a, b) = (a % len, b % len);
                    let (lo, hi) = (a.min(b), a.max(b));
                    if hi <= bytes.len() {
                        let piece = bytes[lo..hi].to_vec();
                        bytes.extend(piece);
                    }
                }
            }
        }
        bytes
    }

    proptest! {
        // 512 cases per property in every test run; PROPTEST_CASES for a longer one.
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
            ..ProptestConfig::default()
        })]

        #[test]
        fn mutated_corpus_never_panics(seed in any::<prop::sample::Index>(),
                                       ms in proptest::collection::vec(mutation(), 1..8)) {
            let seeds = corpus();
            let bytes = mutate(seeds[seed.index(seeds.len())].clone(), &ms);
            exercise(&bytes);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            exercise(&bytes);
        }

        #[test]
        fn arbitrary_events_are_accepted_or_rejected_with_a_reason(
            id in prop_oneof![Just(String::new()), "[0-9a-f-]{0,40}", Just(uuid::Uuid::now_v7().to_string())],
            service in "\\PC{0,140}",
            endpoint in "\\PC{0,20}",
            status in any::<u32>(),
            latency in any::<f64>(),
            secs in any::<i64>(),
            nanos in any::<i32>(),
            attrs in proptest::collection::btree_map("\\PC{0,200}", "\\PC{0,40}", 0..80),
        ) {
            let event = pb::Event {
                event_id: id,
                time: Some(prost_types::Timestamp { seconds: secs, nanos }),
                service,
                endpoint,
                status_code: status,
                latency_ms: latency,
                attributes: attrs,
                ..Default::default()
            };
            let bytes = pb::PublishEventsRequest {
                batch: Some(pb::EventBatch { producer_id: "p".into(), seq: 1, events: vec![event] }),
            }
            .encode_to_vec();
            exercise(&bytes);
        }
    }

    /// Writes the seed corpus (run by hand when the contract grows:
    /// `cargo test --lib write_seed_corpus -- --ignored`).
    #[test]
    #[ignore]
    fn write_seed_corpus() {
        let dir = corpus_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let now = prost_types::Timestamp::from(std::time::SystemTime::now());
        let good = pb::Event {
            event_id: "01932c07-a8f4-7b9e-8a1f-3c2b1d0e9f8a".into(),
            time: Some(now),
            service: "checkout".into(),
            endpoint: "/api/v1/orders/{id}".into(),
            method: "GET".into(),
            status_code: 200,
            latency_ms: 12.5,
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            attributes: [("tier".to_string(), "gold".to_string())].into(),
            ..Default::default()
        };
        let seeds: Vec<(&str, Vec<pb::Event>)> = vec![
            ("one-good", vec![good.clone()]),
            ("empty-batch", vec![]),
            (
                "bad-fields",
                vec![
                    pb::Event {
                        event_id: "not-a-uuid".into(),
                        ..good.clone()
                    },
                    pb::Event {
                        status_code: 42,
                        ..good.clone()
                    },
                    pb::Event {
                        latency_ms: f64::NAN,
                        ..good.clone()
                    },
                    pb::Event {
                        service: String::new(),
                        ..good.clone()
                    },
                    pb::Event {
                        time: None,
                        ..good.clone()
                    },
                ],
            ),
            (
                "long-texts",
                vec![pb::Event {
                    service: "s".repeat(300),
                    endpoint: "/\u{0}".into(),
                    ..good.clone()
                }],
            ),
            (
                "many-attributes",
                vec![pb::Event {
                    attributes: (0..100).map(|i| (format!("k{i}"), "v".repeat(i))).collect(),
                    ..good.clone()
                }],
            ),
            ("many-events", vec![good.clone(); 20]),
        ];
        for (name, events) in seeds {
            let bytes = pb::PublishEventsRequest {
                batch: Some(pb::EventBatch {
                    producer_id: "fuzz".into(),
                    seq: 7,
                    events,
                }),
            }
            .encode_to_vec();
            std::fs::write(dir.join(format!("{name}.bin")), bytes).unwrap();
        }
        std::fs::write(
            dir.join("no-batch.bin"),
            pb::PublishEventsRequest::default().encode_to_vec(),
        )
        .unwrap();
    }
}
