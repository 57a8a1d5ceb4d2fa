//! Compiles the gRPC contract with protox (pure Rust, no system `protoc`) and
//! writes the file descriptor set the reflection service serves.

use protox::prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/auditlens/v1/auditlens.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptor_set = protox::compile([proto], ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("auditlens_descriptor.bin"),
        descriptor_set.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptor_set)?;
    Ok(())
}
