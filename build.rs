//! Link flags for the `evtxsql` binary.
//!
//! The binary is position independent (so ASLR applies), and the loader fixes up every pointer
//! in its static data when a process starts: about 288 000 relative relocations, mostly
//! DataFusion's and its dependencies' tables. Written as RELA entries they take 6.9 MB that the
//! loader reads at every start; packed as RELR (`-z pack-relative-relocs`, GNU ld 2.38+ and
//! lld 15+; glibc 2.36+ loads them) they take 79 KB. `evtxsql query STORE 'SELECT 1'` went
//! 11 -> 8 ms (see the README's benchmarks). Measured with GNU ld 2.40 and glibc 2.36.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
