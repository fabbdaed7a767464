//! evtxsql: Windows event logs (.evtx) → a columnar store → SQL, with SMB guest-logon rules.
//! `main` only parses arguments, dispatches to one command and owns the exit code.

mod cli;
mod commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    keep_freed_heap();
    let cli = cli::Cli::parse();
    match commands::dispatch(cli) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(commands::EXIT_FATAL)
        }
    }
}

/// Make the C allocator keep freed memory for reuse instead of handing it back to the kernel.
///
/// glibc's `malloc` serves blocks over its mmap threshold (128 KiB at start) with a mapping of
/// their own and returns the top of a heap to the kernel once more than twice that is free, so
/// the decompressed Parquet pages (about 1 MiB each) and the ingest's batch buffers each come
/// from fresh pages: a page fault and the kernel zeroing every 4 KiB of them. Freeing a mapped
/// block raises both thresholds to its size (the "dynamic mmap threshold" of `mallopt(3)`, up to
/// 32 MiB on 64-bit), which is what one allocation freed here does, from safe code: after it,
/// blocks up to 31 MiB come from the heaps and up to 62 MiB of free heap top is kept. Other
/// allocators take it as one allocation and one free.
fn keep_freed_heap() {
    const BLOCK: usize = 31 << 20;
    drop(std::hint::black_box(Vec::<u8>::with_capacity(BLOCK)));
}
