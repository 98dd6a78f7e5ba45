//! Checks, before this crate compiles, that the `protoc` of `protoc-bin-vendored` (the
//! one `scripts/protoc` runs for etcd-client's build script) exists on this platform, so
//! that a platform without one fails here with a sentence rather than deep inside a
//! dependency's build.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if let Err(e) = protoc_bin_vendored::protoc_bin_path() {
        println!(
            "cargo:warning={e}: install protoc (e.g. Debian's protobuf-compiler) and put it on \
             PATH, or set PROTOC to it, for etcd-client's build"
        );
    }
}
