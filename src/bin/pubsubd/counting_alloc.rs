//! The binary's global allocator: the system allocator, counting the bytes it has handed out
//! so INFO `used_memory` is what the process has allocated, as Redis's zmalloc counts it, and
//! `trim`, which gives freed memory back to the kernel.
//!
//! This is the only `unsafe` code of pubsubd, and the reason it lives in the binary: the
//! library is `#![forbid(unsafe_code)]`. It forwards every call unchanged to the allocator
//! underneath and adds or subtracts the layout's size. The count is spread over cache-line-padded slots
//! chosen per thread, so threads allocating at once do not contend on one atomic; reading it
//! sums the slots (`allocated`, registered with `pubsubd::memory::set_allocated_source`).
//!
//! Why not jemalloc (tikv-jemallocator + tikv-jemalloc-ctl, which would also give
//! fragmentation figures): it builds jemalloc's C sources at every clean build, which on this
//! project's two-core machines and CI costs minutes, and adds a C toolchain to the container's
//! build stage, for one figure this wrapper gives exactly.
//!
//! With the `mimalloc` feature the allocator underneath is mimalloc. The minimal image's static
//! musl build uses it: musl's own allocator serialises every thread on one lock, and fan-out
//! (one channel, 100 subscribers, 64 B) ran at a third of the glibc build's deliveries/s on it.

#[cfg(feature = "mimalloc")]
use mimalloc::MiMalloc as Inner;
#[cfg(not(feature = "mimalloc"))]
use std::alloc::System as Inner;
use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

const SLOTS: usize = 16;

#[repr(align(64))]
struct Slot(AtomicIsize);

static COUNT: [Slot; SLOTS] = [const { Slot(AtomicIsize::new(0)) }; SLOTS];
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Const-initialised and without a destructor: reading it never allocates.
    static MY_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn add(delta: isize) {
    let slot = MY_SLOT
        .try_with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS;
                s.set(i);
            }
            i
        })
        .unwrap_or(0);
    COUNT[slot].0.fetch_add(delta, Ordering::Relaxed);
}

/// Bytes allocated and not yet freed.
pub fn allocated() -> u64 {
    let total: isize = COUNT.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
    total.max(0) as u64
}

/// Returns the pages of freed memory to the kernel: glibc keeps them otherwise, and the
/// resident size of a server that held many clients would stay at its peak.
pub fn trim() {
    #[cfg(all(target_env = "gnu", not(feature = "mimalloc")))]
    // SAFETY: malloc_trim takes no pointer; it only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The allocator underneath (`System`, or mimalloc), counted.
pub struct Counting;

// SAFETY: every method forwards its arguments unchanged to `Inner`, which upholds the
// `GlobalAlloc` contract; the counting touches only atomics and a const thread-local, and
// never allocates.
unsafe impl GlobalAlloc for Counting {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { Inner.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { Inner.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `Inner` with `layout` (all our allocations are).
        unsafe { Inner.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { Inner.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}
