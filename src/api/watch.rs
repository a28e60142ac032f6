//! The route of `pulsyon.v1.Incidents/Watch`: the same RPC as the generated
//! service, served with a codec that sends an update the hub encoded once.
//!
//! One update goes to every subscriber (10,000 in docs/perf/watch.md). With
//! the generated route each subscriber cloned the rendered message and
//! encoded it again: a fifth of the server's fan-out time. Here the hub
//! keeps each update as protobuf bytes, and a subscriber's frame is a
//! reference to them; messages of one stream alone (snapshot, replay,
//! heartbeats) are encoded as usual. The bytes on the wire are the same
//! `WatchResponse` either way (a test decodes both).
//!
//! Every other method of `Incidents` goes to the generated service; this
//! module must never answer anything but Watch itself.

use std::{
    convert::Infallible,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use prost::{
    Message,
    bytes::{BufMut, Bytes},
};
use tokio_stream::Stream;
use tonic::{
    Request, Response, Status,
    body::Body,
    codec::{BufferSettings, Codec, EncodeBuf, Encoder},
    codegen::{BoxFuture, Service, http},
    server::{Grpc, NamedService, ServerStreamingService},
};

use super::{
    TRANSPORT_MAX_MESSAGE_BYTES,
    codec::{StrictDecoder, buffer_settings},
    incidents::IncidentsService,
};
use crate::proto::v1::{self as pb, incidents_server::IncidentsServer};

/// The path the route takes over.
const WATCH_PATH: &str = "/pulsyon.v1.Incidents/Watch";

/// One message of a Watch stream.
#[derive(Debug, Clone)]
pub enum WatchFrame {
    /// A `WatchResponse` as the hub encoded it, once for every subscriber.
    Encoded(Bytes),
    /// A message of this stream alone (boxed: a frame moves through several
    /// layers, and an encoded one should not carry a message's size).
    Message(Box<pb::WatchResponse>),
}

impl WatchFrame {
    /// The frame as a message: an encoded one is decoded.
    pub fn into_message(self) -> Result<pb::WatchResponse, Status> {
        match self {
            WatchFrame::Message(message) => Ok(*message),
            WatchFrame::Encoded(bytes) => pb::WatchResponse::decode(bytes)
                .map_err(|err| super::status::internal("reading an incident update back", err)),
        }
    }
}

/// A Watch stream of frames.
pub type FrameStream = Pin<Box<dyn Stream<Item = Result<WatchFrame, Status>> + Send>>;

/// The codec of the Watch route: frames out, a strictly decoded request in.
#[derive(Debug, Clone, Default)]
pub struct FrameCodec;

impl Codec for FrameCodec {
    type Encode = WatchFrame;
    type Decode = pb::WatchRequest;
    type Encoder = FrameEncoder;
    type Decoder = StrictDecoder<pb::WatchRequest>;

    fn encoder(&mut self) -> FrameEncoder {
        FrameEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder::default()
    }
}

/// Copies an encoded frame; encodes a message.
#[derive(Debug, Clone, Default)]
pub struct FrameEncoder;

impl Encoder for FrameEncoder {
    type Item = WatchFrame;
    type Error = Status;

    fn encode(&mut self, item: WatchFrame, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        write_frame(item, dst)
    }

    fn buffer_settings(&self) -> BufferSettings {
        buffer_settings()
    }
}

/// Writes `frame`'s protobuf bytes to `dst`.
fn write_frame(frame: WatchFrame, dst: &mut impl BufMut) -> Result<(), Status> {
    match frame {
        WatchFrame::Encoded(bytes) => {
            dst.put_slice(&bytes);
            Ok(())
        }
        WatchFrame::Message(message) => message
            .encode(dst)
            .map_err(|err| super::status::internal("encoding a watch message", err)),
    }
}

/// Opens a Watch stream for one call.
struct WatchMethod(Arc<IncidentsService>);

impl ServerStreamingService<pb::WatchRequest> for WatchMethod {
    type Response = WatchFrame;
    type ResponseStream = FrameStream;
    type Future = BoxFuture<Response<FrameStream>, Status>;

    fn call(&mut self, request: Request<pb::WatchRequest>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { service.open_watch(request).await })
    }
}

/// The `Incidents` service with Watch served by this module.
#[derive(Debug, Clone)]
pub struct IncidentsRoutes {
    /// Every other method.
    generated: IncidentsServer<IncidentsService>,
    /// Watch.
    service: Arc<IncidentsService>,
}

impl IncidentsRoutes {
    /// Routes for `service`.
    pub fn new(service: IncidentsService) -> IncidentsRoutes {
        IncidentsRoutes {
            generated: IncidentsServer::new(service.clone())
                .max_decoding_message_size(TRANSPORT_MAX_MESSAGE_BYTES),
            service: Arc::new(service),
        }
    }
}

impl NamedService for IncidentsRoutes {
    const NAME: &'static str = <IncidentsServer<IncidentsService> as NamedService>::NAME;
}

impl Service<http::Request<Body>> for IncidentsRoutes {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != WATCH_PATH {
            return self.generated.call(request);
        }
        let method = WatchMethod(self.service.clone());
        Box::pin(async move {
            let mut grpc = Grpc::new(FrameCodec)
                .apply_max_message_size_config(Some(TRANSPORT_MAX_MESSAGE_BYTES), None);
            Ok(grpc.server_streaming(method, request).await)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::v1::watch_response::Payload;

    fn update() -> pb::WatchResponse {
        pb::WatchResponse {
            payload: Some(Payload::Update(pb::IncidentUpdate {
                seq: 42,
                kind: pb::UpdateKind::Opened as i32,
                incident: Some(pb::Incident {
                    incident_id: "7".into(),
                    service: "checkout".into(),
                    title: "error rate 30.0% (baseline 1.0%)".into(),
                    ..Default::default()
                }),
                actor: "detector".into(),
                ..Default::default()
            })),
        }
    }

    fn encode(frame: WatchFrame) -> Vec<u8> {
        let mut buf = Vec::new();
        write_frame(frame, &mut buf).unwrap();
        buf
    }

    #[test]
    fn an_encoded_frame_is_the_message_on_the_wire() {
        let message = update();
        let encoded = Bytes::from(message.encode_to_vec());
        let wire = encode(WatchFrame::Encoded(encoded.clone()));
        assert_eq!(wire, encode(WatchFrame::Message(Box::new(message.clone()))));
        assert_eq!(pb::WatchResponse::decode(&wire[..]).unwrap(), message);
        assert_eq!(
            WatchFrame::Encoded(encoded).into_message().unwrap(),
            message
        );
    }

    #[test]
    fn undecodable_bytes_are_an_error_not_a_panic() {
        let err = WatchFrame::Encoded(Bytes::from_static(&[0xff, 0xff, 0xff]))
            .into_message()
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Internal);
    }
}
