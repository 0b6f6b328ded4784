//! Compiles the decision point's protos with protox (pure Rust), so building needs no `protoc`.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/warden/pdp/v1/decision.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out.join("pdp_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // No `connect` helper: it needs tonic's transport, which only `RemotePolicy` uses.
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
