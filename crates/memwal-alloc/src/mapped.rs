//! A global-allocator wrapper that gives large allocations their own pages.
//!
//! A writer's memory is dominated by large, short-lived buffers: Arrow
//! arrays of each put (kept until their generation is flushed), WAL entries
//! and Parquet files being encoded. General-purpose allocators keep freed
//! memory of that size mapped for reuse, per thread or per arena, so the
//! resident set of a long ingest grows to several times what is alive
//! (`crates/memwal-alloc/examples/sustained_heap.rs` measured 670 MiB resident for 205 MiB live
//! with glibc's malloc). Mapping each large allocation on its own and
//! unmapping it on free makes resident memory follow live memory; the cost
//! is a system call per large allocation, small next to filling a buffer of
//! that size. Small allocations go to the wrapped allocator.

use std::alloc::{GlobalAlloc, Layout};

/// Allocations of at least this many bytes get their own mapping.
pub const DIRECT_MAP_THRESHOLD: usize = 256 * 1024;

/// Routes allocations of [`DIRECT_MAP_THRESHOLD`] bytes or more to anonymous
/// `mmap`s (unix only) and everything else to `inner`.
pub struct LargeAllocsMapped<A> {
    inner: A,
}

impl<A> LargeAllocsMapped<A> {
    pub const fn new(inner: A) -> Self {
        Self { inner }
    }
}

#[cfg(unix)]
mod pages {
    use std::sync::OnceLock;

    fn page_size() -> usize {
        static PAGE: OnceLock<usize> = OnceLock::new();
        // SAFETY: sysconf has no preconditions.
        *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            n if n > 0 => n as usize,
            _ => 4096,
        })
    }

    /// Whether an allocation of this layout is served by its own mapping.
    /// A pure function of the layout, so `dealloc` and `realloc` classify a
    /// pointer exactly as `alloc` did.
    pub fn is_direct(size: usize, align: usize) -> bool {
        size >= super::DIRECT_MAP_THRESHOLD && align <= page_size()
    }

    fn mapped_len(size: usize) -> usize {
        let page = page_size();
        size.div_ceil(page) * page
    }

    /// Zeroed, page-aligned memory (cached or fresh), or null.
    pub unsafe fn map(size: usize) -> *mut u8 {
        // SAFETY: as `reuse` and `fresh` document.
        unsafe {
            let cached = reuse(size, true);
            if cached.is_null() {
                fresh(size)
            } else {
                cached
            }
        }
    }

    /// A new zeroed, page-aligned mapping, or null.
    pub unsafe fn fresh(size: usize) -> *mut u8 {
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choice touches no existing memory.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped_len(size),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }

    /// # Safety
    /// `ptr` came from [`map`] (or [`remap`]) with this `size`.
    pub unsafe fn unmap(ptr: *mut u8, size: usize) {
        let len = mapped_len(size);
        if cache::put(ptr, len) {
            return;
        }
        // SAFETY: the caller passes a mapping this module created, whole.
        unsafe { libc::munmap(ptr.cast(), len) };
    }

    /// A few freed mappings kept for reuse. Fresh pages cost a page fault
    /// each (with zeroing and cgroup accounting), which dominated flushes
    /// when every large buffer was mapped anew; a bounded cache keeps the
    /// steady churn of same-sized buffers off that path while resident
    /// memory stays within live memory plus `CAP`.
    mod cache {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

        const SLOTS: usize = 64;
        /// Bytes the cache may hold.
        const CAP: usize = 64 << 20;

        static LOCK: AtomicBool = AtomicBool::new(false);
        static PTRS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
        static LENS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
        static HELD: AtomicUsize = AtomicUsize::new(0);

        /// A spin lock: the allocator cannot block or allocate, and the
        /// critical sections below scan 64 slots at most.
        fn locked<T>(f: impl FnOnce() -> T) -> T {
            while LOCK
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                std::hint::spin_loop();
            }
            let out = f();
            LOCK.store(false, Ordering::Release);
            out
        }

        /// Keep a freed mapping if there is room; false = caller unmaps it.
        pub fn put(ptr: *mut u8, len: usize) -> bool {
            if len > CAP / 8 {
                return false;
            }
            locked(|| {
                if HELD.load(Ordering::Relaxed) + len > CAP {
                    return false;
                }
                for i in 0..SLOTS {
                    if PTRS[i].load(Ordering::Relaxed) == 0 {
                        PTRS[i].store(ptr as usize, Ordering::Relaxed);
                        LENS[i].store(len, Ordering::Relaxed);
                        HELD.fetch_add(len, Ordering::Relaxed);
                        return true;
                    }
                }
                false
            })
        }

        /// A cached mapping of at least `len` bytes and at most twice that,
        /// with its length; the smallest such one.
        pub fn take(len: usize) -> Option<(*mut u8, usize)> {
            locked(|| {
                let mut best: Option<usize> = None;
                for i in 0..SLOTS {
                    let have = LENS[i].load(Ordering::Relaxed);
                    if PTRS[i].load(Ordering::Relaxed) != 0
                        && have >= len
                        && have <= 2 * len
                        && best.is_none_or(|b| have < LENS[b].load(Ordering::Relaxed))
                    {
                        best = Some(i);
                    }
                }
                best.map(|i| {
                    let ptr = PTRS[i].swap(0, Ordering::Relaxed) as *mut u8;
                    let have = LENS[i].load(Ordering::Relaxed);
                    HELD.fetch_sub(have, Ordering::Relaxed);
                    (ptr, have)
                })
            })
        }
    }

    /// Memory for `size` bytes from the cache (zeroed if asked), trimmed to
    /// exactly `mapped_len(size)`, or null if the cache has none.
    pub unsafe fn reuse(size: usize, zeroed: bool) -> *mut u8 {
        let len = mapped_len(size);
        let Some((ptr, have)) = cache::take(len) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `ptr..ptr+have` is one whole cached mapping; its tail past
        // `len` is page-aligned and released, the rest handed out.
        unsafe {
            if have > len {
                libc::munmap(ptr.add(len).cast(), have - len);
            }
            if zeroed {
                std::ptr::write_bytes(ptr, 0, size);
            }
        }
        ptr
    }

    /// Resize a mapping, moving it if needed; null on failure (the old
    /// mapping is then untouched).
    ///
    /// # Safety
    /// `ptr` came from [`map`] (or [`remap`]) with `old_size`.
    #[cfg(target_os = "linux")]
    pub unsafe fn remap(ptr: *mut u8, old_size: usize, new_size: usize) -> *mut u8 {
        let (old_len, new_len) = (mapped_len(old_size), mapped_len(new_size));
        if old_len == new_len {
            return ptr;
        }
        // SAFETY: the caller passes a whole mapping this module created.
        let p = unsafe { libc::mremap(ptr.cast(), old_len, new_len, libc::MREMAP_MAYMOVE) };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }

    /// Resize by mapping anew and copying, where `mremap` does not exist.
    ///
    /// # Safety
    /// `ptr` came from [`map`] (or [`remap`]) with `old_size`.
    #[cfg(not(target_os = "linux"))]
    pub unsafe fn remap(ptr: *mut u8, old_size: usize, new_size: usize) -> *mut u8 {
        if mapped_len(old_size) == mapped_len(new_size) {
            return ptr;
        }
        // SAFETY: both regions are valid for the copied length and distinct.
        unsafe {
            let p = map(new_size);
            if !p.is_null() {
                std::ptr::copy_nonoverlapping(ptr, p, old_size.min(new_size));
                unmap(ptr, old_size);
            }
            p
        }
    }
}

#[cfg(not(unix))]
mod pages {
    pub fn is_direct(_size: usize, _align: usize) -> bool {
        false
    }
    pub unsafe fn map(_size: usize) -> *mut u8 {
        unreachable!("no direct mappings on this platform")
    }
    pub unsafe fn reuse(_size: usize, _zeroed: bool) -> *mut u8 {
        unreachable!("no direct mappings on this platform")
    }
    pub unsafe fn fresh(_size: usize) -> *mut u8 {
        unreachable!("no direct mappings on this platform")
    }
    pub unsafe fn unmap(_ptr: *mut u8, _size: usize) {
        unreachable!("no direct mappings on this platform")
    }
    pub unsafe fn remap(_ptr: *mut u8, _old: usize, _new: usize) -> *mut u8 {
        unreachable!("no direct mappings on this platform")
    }
}

// SAFETY: every pointer is freed by the same side that allocated it, because
// `pages::is_direct` depends only on the layout, which GlobalAlloc's contract
// makes identical at allocation and deallocation.
unsafe impl<A: GlobalAlloc> GlobalAlloc for LargeAllocsMapped<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if pages::is_direct(layout.size(), layout.align()) {
            // SAFETY: cached or fresh, the mapping is ours alone.
            unsafe {
                let p = pages::reuse(layout.size(), false);
                if p.is_null() {
                    pages::fresh(layout.size())
                } else {
                    p
                }
            }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { self.inner.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if pages::is_direct(layout.size(), layout.align()) {
            // SAFETY: anonymous mappings are zero-filled.
            unsafe { pages::map(layout.size()) }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { self.inner.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if pages::is_direct(layout.size(), layout.align()) {
            // SAFETY: this layout was mapped directly by `alloc`.
            unsafe { pages::unmap(ptr, layout.size()) }
        } else {
            // SAFETY: this layout was served by `inner`.
            unsafe { self.inner.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let align = layout.align();
        let was_direct = pages::is_direct(layout.size(), align);
        let is_direct = pages::is_direct(new_size, align);
        // SAFETY: each branch frees `ptr` on the side that allocated it, only
        // after its contents moved, and copies no more than both sizes allow.
        unsafe {
            match (was_direct, is_direct) {
                (false, false) => self.inner.realloc(ptr, layout, new_size),
                (true, true) => pages::remap(ptr, layout.size(), new_size),
                (was, _) => {
                    let new_layout = Layout::from_size_align_unchecked(new_size, align);
                    let p = self.alloc(new_layout);
                    if !p.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                        if was {
                            pages::unmap(ptr, layout.size());
                        } else {
                            self.inner.dealloc(ptr, layout);
                        }
                    }
                    p
                }
            }
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::alloc::System;

    const SMALL: usize = 1024;
    const LARGE: usize = DIRECT_MAP_THRESHOLD + 12_345;

    fn fill(p: *mut u8, len: usize) {
        for i in 0..len {
            unsafe { p.add(i).write((i % 251) as u8) };
        }
    }

    fn check(p: *const u8, len: usize) {
        for i in 0..len {
            assert_eq!(unsafe { p.add(i).read() }, (i % 251) as u8, "byte {i}");
        }
    }

    #[test]
    fn large_allocations_are_page_aligned_zeroed_and_writable() {
        let a = LargeAllocsMapped::new(System);
        let layout = Layout::from_size_align(LARGE, 64).unwrap();
        unsafe {
            let p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % 4096, 0);
            assert!((0..LARGE).all(|i| p.add(i).read() == 0));
            fill(p, LARGE);
            check(p, LARGE);
            a.dealloc(p, layout);
        }
    }

    #[test]
    fn realloc_keeps_contents_across_the_threshold_both_ways() {
        let a = LargeAllocsMapped::new(System);
        let mut layout = Layout::from_size_align(SMALL, 8).unwrap();
        unsafe {
            let mut p = a.alloc(layout);
            fill(p, SMALL);
            // small -> large -> larger -> small
            for size in [LARGE, 4 * LARGE, SMALL / 2] {
                let kept = layout.size().min(size);
                p = a.realloc(p, layout, size);
                assert!(!p.is_null());
                check(p, kept);
                layout = Layout::from_size_align(size, 8).unwrap();
                fill(p, size);
            }
            a.dealloc(p, layout);
        }
    }

    #[test]
    fn reused_mappings_are_zeroed_when_asked_and_keep_working() {
        let a = LargeAllocsMapped::new(System);
        let layout = Layout::from_size_align(LARGE, 64).unwrap();
        unsafe {
            for round in 0..20 {
                let dirty = a.alloc(layout);
                std::ptr::write_bytes(dirty, 0xAB, LARGE);
                a.dealloc(dirty, layout);
                let clean = a.alloc_zeroed(layout);
                assert!(
                    (0..LARGE).all(|i| clean.add(i).read() == 0),
                    "round {round}"
                );
                // A smaller request may get a larger cached mapping, trimmed.
                let small = Layout::from_size_align(DIRECT_MAP_THRESHOLD, 64).unwrap();
                let p = a.realloc(clean, layout, small.size());
                fill(p, small.size());
                check(p, small.size());
                a.dealloc(p, small);
            }
        }
    }

    #[test]
    fn alignment_above_a_page_goes_to_the_inner_allocator() {
        let a = LargeAllocsMapped::new(System);
        let layout = Layout::from_size_align(LARGE, 1 << 16).unwrap();
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % (1 << 16), 0);
            fill(p, LARGE);
            check(p, LARGE);
            a.dealloc(p, layout);
        }
    }

    #[test]
    fn freed_large_allocations_leave_the_resident_set() {
        fn resident_pages() -> usize {
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
            statm.split_whitespace().nth(1).unwrap().parse().unwrap()
        }
        if !std::path::Path::new("/proc/self/statm").exists() {
            return; // not Linux: the other tests cover correctness
        }
        let a = LargeAllocsMapped::new(System);
        let size = 64 << 20;
        let layout = Layout::from_size_align(size, 64).unwrap();
        unsafe {
            let p = a.alloc(layout);
            std::ptr::write_bytes(p, 1, size);
            let touched = resident_pages();
            a.dealloc(p, layout);
            let after = resident_pages();
            // Other tests run in parallel threads; 64 MiB is far above their noise.
            assert!(
                touched.saturating_sub(after) >= (48 << 20) / 4096,
                "resident pages {touched} -> {after} after freeing 64 MiB"
            );
        }
    }
}
