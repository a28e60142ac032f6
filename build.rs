//! Generates the gRPC code and the descriptor set that server reflection serves.
//!
//! protox parses the protos in Rust, so building needs no system `protoc`; the
//! descriptor set keeps source info, so `grpcurl describe` shows the comments.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/pulsyon/v1/event.proto",
    "proto/pulsyon/v1/ingest.proto",
    "proto/pulsyon/v1/query.proto",
    "proto/pulsyon/v1/incidents.proto",
    "proto/pulsyon/v1/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // New migration files must rebuild the binary that embeds them (sqlx::migrate!).
    println!("cargo:rerun-if-changed=migrations");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("pulsyon_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // Ordered maps: attributes arrive sorted (as stored) and decode without hashing.
        .btree_map(".")
        // Decoding errors are the client's (INVALID_ARGUMENT), never a panic or INTERNAL.
        .codec_path("crate::api::codec::PulsyonCodec")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
