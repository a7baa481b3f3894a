//! Compiles `proto/scalper.proto` into the gRPC control-plane types. It is the build script of
//! `crates/control` (whose manifest points here), so the proto file is found at the top of the
//! repository, two levels above that crate.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate, so no manual install is needed.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY: build scripts are single-threaded at this point.
        unsafe { std::env::set_var("PROTOC", protoc) };
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest
        .ancestors()
        .map(|d| d.join("proto"))
        .find(|d| d.join("scalper.proto").is_file())
        .ok_or("proto/scalper.proto not found above the crate")?;
    let file = proto_dir.join("scalper.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("scalper_descriptor.bin"))
        .compile_protos(&[&file], &[&proto_dir])?;
    Ok(())
}
