//! Generates the protobuf message types used by the push doors at build time.
//!
//! `protox` parses the `.proto` files in pure Rust, so no `protoc` binary is
//! needed on a fresh machine; `prost-build` turns the descriptors into Rust
//! in `OUT_DIR` (one file per protobuf package, included by the decoders).

fn main() {
    let protos = [
        ("src/ingest/remote_write/proto", "remote_v1.proto"),
        ("src/ingest/remote_write/proto", "remote_v2.proto"),
        ("src/ingest/pushgateway/proto", "client_model.proto"),
        ("src/ingest/otlp/proto", "metrics.proto"),
    ];
    for (dir, file) in protos {
        println!("cargo:rerun-if-changed={dir}/{file}");
        let fds = match protox::compile([file], [dir]) {
            Ok(fds) => fds,
            Err(e) => panic!("cannot parse {dir}/{file}: {e}"),
        };
        if let Err(e) = prost_build::Config::new().compile_fds(fds) {
            panic!("cannot generate Rust for {dir}/{file}: {e}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
