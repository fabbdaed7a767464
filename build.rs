//! Link flags for the `evtxsql` binary.
//!
//! The binary is linked as a position-dependent executable (`-no-pie`): its code and static
//! data sit at the addresses the linker chose, so the loader has nothing to relocate when a
//! process starts. As a position-independent executable the loader fixed up about 288 000
//! pointers in 4.9 MB of static data (mostly DataFusion's and its dependencies' tables), each
//! page of it copied on write: `evtxsql --version` took 1 384 page faults and 4.1 ms, and
//! `evtxsql query STORE 'SELECT 1'` 7.0 ms; linked without PIE, 757 faults and 4.1 ms for the
//! query (see the README's benchmarks). Short queries are where that start-up cost is most of
//! the time, and a responder runs many of them.
//!
//! The trade-off: the executable's own image (its code, not the heap, stack or shared
//! libraries) is not placed at a random address (ASLR). The project's code forbids `unsafe`.
//! A build that wants the image randomized sets `EVTXSQL_PIE=1`: then it is linked as a PIE,
//! with its relative relocations packed (`-z pack-relative-relocs`, GNU ld 2.38+ and lld 15+;
//! glibc 2.36+ loads them: 6.9 MB of RELA entries become 79 KB).
//!
//! `EVTXSQL_TEXT_ORDER=FILE` (a list of symbol names, one per line, as `benches/text_order.sh`
//! writes it) has the linker lay out those functions first and together
//! (`--symbol-ordering-file`, lld's option: the linker rustc uses on x86_64 Linux since 1.90).
//! A short query runs code from all over DataFusion, arrow, parquet and sqlparser: in a binary
//! laid out by crate it touched about 1 000 of the 64 KiB windows of its 133 MB of code, each a
//! page fault; with the functions it runs packed together, a few hundred. Symbol names carry a
//! hash of the compiler, the profile and the dependencies' versions, so the file is made for
//! the build it orders; names it does not find are skipped without a warning.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=EVTXSQL_PIE");
    println!("cargo:rerun-if-env-changed=EVTXSQL_TEXT_ORDER");
    if let Some(order) = std::env::var_os("EVTXSQL_TEXT_ORDER").filter(|v| !v.is_empty()) {
        let path = std::path::absolute(&order).unwrap_or_else(|_| order.clone().into());
        if !path.is_file() {
            panic!(
                "EVTXSQL_TEXT_ORDER names {}, which is not a file (make one with benches/text_order.sh)",
                path.display()
            );
        }
        println!("cargo:rerun-if-changed={}", path.display());
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            path.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os != "linux" || env != "gnu" {
        return;
    }
    let pie = std::env::var("EVTXSQL_PIE").is_ok_and(|v| v == "1");
    if pie {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    } else {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
