//! Generates the gRPC code and the descriptor set that server reflection serves.
//!
//! protox parses the protos in Rust, so building needs no system `protoc`; the
//! descriptor set keeps source info, so `grpcurl describe` shows the comments.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/pulsyon/v1/event.proto",
    "proto/pulsyon/v1/objective.proto",
    "proto/pulsyon/v1/ingest.proto",
    "proto/pulsyon/v1/query.proto",
    "proto/pulsyon/v1/incidents.proto",
    "proto/pulsyon/v1/admin.proto",
];

const INTERNAL_PROTOS: &[&str] = &["proto/pulsyon/internal/v1/buffer.proto"];

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
    // Pulsyon's internal records (never served, so outside the descriptor set
    // that reflection lists), in a directory of their own: they refer to
    // pulsyon.v1's types rather than generate them again.
    let internal = out_dir.join("internal");
    fs::create_dir_all(&internal)?;
    tonic_prost_build::configure()
        .btree_map(".")
        .extern_path(".pulsyon.v1", "crate::proto::v1")
        .build_client(false)
        .build_server(false)
        .out_dir(&internal)
        .compile_fds(protox::compile(INTERNAL_PROTOS, ["proto"])?)?;
    Ok(())
}
