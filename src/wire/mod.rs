//! The buffer's record (`record`, proto/pulsyon/internal): the one protobuf
//! form of domain types outside the doors. The buffer (src/redis) is given it
//! as an `ingest::RecordCodec` and knows no wire format; its events use the
//! contract's conversions (`api::convert`).

pub mod record;
