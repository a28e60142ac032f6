//! The protobuf forms of domain types: the public contract's messages
//! (`convert`) and the buffer's record (`record`, proto/pulsyon/internal).
//! With the doors (`api`), the one module that knows prost; the buffer
//! (src/redis) is given the record as an `ingest::RecordCodec` and knows no
//! wire format.

pub mod convert;
pub mod record;
