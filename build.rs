// Protos arrive with the gRPC API; nothing to generate yet.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
