//! Compiles `proto/scalper.proto` into the gRPC control-plane types.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate, so no manual install is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY: build scripts are single-threaded at this point.
        unsafe { std::env::set_var("PROTOC", protoc) };
    }
    println!("cargo:rerun-if-changed=proto/scalper.proto");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("scalper_descriptor.bin"))
        .compile_protos(&["proto/scalper.proto"], &["proto"])?;
    Ok(())
}
