//! Measured heap memory: [`Tracking`], a global allocator that forwards to the system allocator
//! and counts the bytes live and their peak. A binary opts in with
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: attnsvm_nn::memory::Tracking = attnsvm_nn::memory::Tracking;
//! ```
//!
//! (the `attnsvm` CLI does); [`measure`] then reports the peak of the bytes allocated by a closure
//! above what was live when it started. Without the allocator, [`installed`] is `false` and the
//! measurements are `None`. The counters are process-wide: measure with nothing else running.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static USED: AtomicBool = AtomicBool::new(false);

/// The counting allocator (see the module docs).
pub struct Tracking;

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call forwards to `System` with the caller's arguments; the counters are atomics
// and never allocate.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            USED.store(true, Ordering::Relaxed);
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            USED.store(true, Ordering::Relaxed);
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

/// Whether [`Tracking`] is this process's allocator (it has counted an allocation).
pub fn installed() -> bool {
    drop(std::hint::black_box(Box::new(0u64)));
    USED.load(Ordering::Relaxed)
}

/// Run `f` and return its value with the peak of the heap bytes it added to what was live when it
/// started (`None` without [`Tracking`]).
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Option<usize>) {
    let on = installed();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    let peak = PEAK.load(Ordering::Relaxed);
    (out, on.then(|| peak.saturating_sub(base)))
}

/// Keep freed memory in the process (glibc): serve blocks up to 32 MiB (glibc's largest
/// setting) from the heap rather than fresh `mmap`s, and never trim the heap. A training step
/// frees and reallocates the same tensors many times; by default glibc returns large blocks to
/// the kernel, so every step pays page faults and TLB shootdowns for them again. Called once by
/// [`crate::cpu`]; a no-op elsewhere.
pub fn keep_freed_memory() {
    #[cfg(target_env = "gnu")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: mallopt only sets allocator parameters; glibc serializes it with allocation.
        ONCE.call_once(|| unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        });
    }
}
