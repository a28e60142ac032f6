//! The protobuf codec of every `pulsyon.v1` service: prost's encoding, with
//! decoding that answers a client's mistakes as INVALID_ARGUMENT (tonic's own
//! decoder says INTERNAL for undecodable bytes, which blames the server) and
//! refuses a message above [`MAX_MESSAGE_BYTES`] by its size before decoding.
//!
//! It must never panic on any input: every failure is a `Status`.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};

/// Largest message a client may send, in bytes. The transport's own guard
/// (`TRANSPORT_MAX_MESSAGE_BYTES`) sits above it, so a message between the
/// two is read and refused here with a clear INVALID_ARGUMENT.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// tonic's limit: messages above it are refused (OUT_OF_RANGE) unread.
pub const TRANSPORT_MAX_MESSAGE_BYTES: usize = 2 * MAX_MESSAGE_BYTES;

/// Initial encode buffer of a call. tonic allocates it when the call starts
/// and keeps it for the call's life: with its 8 KiB default, an idle Watch
/// subscriber held a page of it. Replies and stream messages are small (a
/// Watch update is under 1 KiB); a larger message grows the buffer as needed.
const ENCODE_BUFFER_BYTES: usize = 1024;
/// Ready stream messages are gathered up to this size before they go out.
const ENCODE_YIELD_BYTES: usize = 32 * 1024;

/// The encode buffer settings of every call (see [`ENCODE_BUFFER_BYTES`]).
pub fn buffer_settings() -> BufferSettings {
    BufferSettings::new(ENCODE_BUFFER_BYTES, ENCODE_YIELD_BYTES)
}

/// prost messages in, prost messages out.
#[derive(Debug, Clone)]
pub struct PulsyonCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for PulsyonCodec<T, U> {
    fn default() -> Self {
        PulsyonCodec(PhantomData)
    }
}

impl<T, U> Codec for PulsyonCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = tonic_prost::ProstEncoder<T>;
    type Decoder = StrictDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::new(buffer_settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        StrictDecoder(PhantomData)
    }
}

/// Decodes one message or says precisely why not.
#[derive(Debug, Clone)]
pub struct StrictDecoder<U>(PhantomData<U>);

impl<U> Default for StrictDecoder<U> {
    fn default() -> Self {
        StrictDecoder(PhantomData)
    }
}

impl<U: Message + Default> Decoder for StrictDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        use prost::bytes::Buf;
        let len = buf.remaining();
        if len > MAX_MESSAGE_BYTES {
            return Err(super::status::malformed_message(format!(
                "message of {len} bytes, at most {MAX_MESSAGE_BYTES}: send smaller batches"
            )));
        }
        U::decode(buf).map(Some).map_err(|err| {
            super::status::malformed_message(format!("malformed protobuf message: {err}"))
        })
    }
}
