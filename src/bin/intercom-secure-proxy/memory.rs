//! The allocator, and giving memory back after a burst. Here, in the binary: a library
//! must not choose its users' allocator (and keeps `#![deny(unsafe_code)]`).
//!
//! mimalloc: its per-thread heaps suit one runtime per worker thread, and it returns freed
//! pages in batches. With glibc's allocator, arena trims `madvise`d pages away on every
//! burst of frees, and each of those flushed the TLB of the other CPUs: it cost 15% of the
//! 34 KB page's throughput in `bench/` (bench/RESULTS.md has the figures). Built without
//! transparent huge pages (`no_thp`): with them, each worker's first touch of its heap
//! took a 2 MiB page, 10 MiB more at rest for nothing measurable.
//!
//! A burst of requests (1,000 clients at once) opens as many upstream connections, each with
//! a read buffer of tens of KiB. When the burst is over, most of that is freed, but the
//! allocator (mimalloc) returns a thread's freed pages to the system only
//! when that thread allocates again: a worker that goes idle after a burst would sit at its
//! peak. So each worker collects its own heap every [`COLLECT_EVERY`]. The benchmark
//! measured it (bench/RESULTS.md); nginx frees its buffers per request and shows no peak.

use std::time::Duration;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How often a worker hands its free pages back. A collection walks only that thread's
/// heap, on the thread itself (mimalloc heaps are per thread).
const COLLECT_EVERY: Duration = Duration::from_secs(2);

/// Collects this thread's heap every [`COLLECT_EVERY`] until dropped; spawned on each
/// worker's own (single-threaded) runtime.
pub async fn collect_periodically() {
    let mut ticks = tokio::time::interval(COLLECT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        collect();
    }
}

#[allow(unsafe_code)]
fn collect() {
    // SAFETY: mi_collect takes no pointers; it only frees and purges the calling thread's
    // own empty pages. Without mimalloc as the global allocator it finds nothing to do.
    unsafe { libmimalloc_sys::mi_collect(false) }
}
