//! The generated protobuf and gRPC code of `pulsyon.v1`: the only `include_proto!` site.
//!
//! Nothing here holds logic; `api/convert.rs` maps these types to the domain.

#![allow(
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs
)]

/// Messages and services of package `pulsyon.v1`.
pub mod v1 {
    tonic::include_proto!("pulsyon.v1");
}

/// Pulsyon's internal records (`proto/pulsyon/internal/`): what one process
/// writes for another, never served.
pub mod internal {
    include!(concat!(env!("OUT_DIR"), "/internal/pulsyon.internal.v1.rs"));
}

/// The encoded `FileDescriptorSet` of every Pulsyon proto (with comments), served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pulsyon_descriptor.bin"));
