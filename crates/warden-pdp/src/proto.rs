//! The decision point's protos (`warden.pdp.v1`), with the tonic client and server.
#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/warden.pdp.v1.rs"));

/// The encoded file descriptor set, for gRPC reflection and Warden's reflective maps.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pdp_descriptor.bin"));
