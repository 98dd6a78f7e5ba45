//! tests/sdk_typescript.rs (Cloudflare's official TypeScript SDK), unchanged, against a
//! server whose state is in etcd: the test binary's name starts with `etcd_api_`, so
//! tests/api_support starts the server with `--store <a 3-member cluster of this
//! process> --etcd-prefix <its own>`.

#[path = "sdk_typescript.rs"]
mod sdk_typescript;
