//! Put copies cut from recycled chunks.
//!
//! A put's buffers are copied once out of JS memory and live until their
//! WAL entry is written (WAL-only) or their MemTable generation is flushed,
//! then die on another thread. Allocated one by one, the copies of the next
//! puts kept landing on memory the allocator had just returned to the
//! kernel: a 20-row put spent more time in page faults and page zeroing
//! than in copying, and now and then stalled for hundreds of microseconds
//! while a fresh huge page was cleared. Here copies are cut from chunks
//! that come back to the pool, still mapped, once nothing points into
//! them.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use arrow_buffer::Buffer;

/// Bytes per chunk.
pub const CHUNK_BYTES: usize = 4 << 20;
/// Larger copies get an allocation of their own, so a chunk's unused tail
/// stays under an eighth of it.
pub const MAX_POOLED: usize = CHUNK_BYTES / 8;
/// Copies start at multiples of this, like arrow-rs's own buffers.
const ALIGN: usize = 64;
/// Free chunks the process-wide pool keeps; more are released.
const SHARED_KEEP_BYTES: usize = 64 << 20;

fn chunk_layout() -> Layout {
    // Constant size and alignment, both valid.
    Layout::from_size_align(CHUNK_BYTES, ALIGN).expect("valid chunk layout")
}

/// The memory of one chunk, owned.
struct Memory(NonNull<u8>);

// SAFETY: `Memory` owns its allocation like a `Box<[u8]>`; see `Chunk` for
// how writes into a shared chunk are kept apart from reads.
unsafe impl Send for Memory {}
unsafe impl Sync for Memory {}

impl Memory {
    fn new() -> Self {
        let layout = chunk_layout();
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc(layout) };
        Self(NonNull::new(ptr).unwrap_or_else(|| handle_alloc_error(layout)))
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.0.as_ptr(), chunk_layout()) }
    }
}

/// A chunk copies are being cut from. Every buffer cut from it holds it;
/// when the last one goes, its memory returns to the pool.
///
/// Bytes are written only below the pool's cursor's next position and
/// before the buffer that covers them exists, and a chunk is reused only
/// once no buffer covers any of it: no byte is written while it is read.
struct Chunk {
    memory: Option<Memory>,
    home: Weak<Shared>,
}

impl Chunk {
    fn base(&self) -> *mut u8 {
        match &self.memory {
            Some(memory) => memory.0.as_ptr(),
            None => unreachable!("a chunk's memory is taken only when it is dropped"),
        }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let (Some(memory), Some(home)) = (self.memory.take(), self.home.upgrade()) {
            home.give_back(memory);
        }
    }
}

struct Shared {
    state: Mutex<State>,
    keep_chunks: usize,
}

#[derive(Default)]
struct State {
    /// The chunk being cut and the offset of its first free byte.
    current: Option<(Arc<Chunk>, usize)>,
    free: Vec<Memory>,
    chunks_made: u64,
    chunks_reused: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every unlock, so a panic elsewhere
        // while it was held does not make it unusable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn give_back(&self, memory: Memory) {
        let mut state = self.lock();
        if state.free.len() < self.keep_chunks {
            state.free.push(memory);
        }
    }
}

/// How often the pool had to allocate a chunk and how often it reused one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyPoolStats {
    pub chunks_made: u64,
    pub chunks_reused: u64,
    pub chunks_free: usize,
}

/// Copies byte slices into 64-byte-aligned Arrow buffers cut from
/// recycled chunks.
pub struct CopyPool {
    shared: Arc<Shared>,
}

impl CopyPool {
    /// A pool that keeps up to `keep_bytes` of free chunks for reuse.
    pub fn new(keep_bytes: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                keep_chunks: keep_bytes / CHUNK_BYTES,
            }),
        }
    }

    /// The pool every writer of this process copies puts with, so free
    /// chunks are kept once for all of them.
    pub fn shared() -> &'static CopyPool {
        static POOL: LazyLock<CopyPool> = LazyLock::new(|| CopyPool::new(SHARED_KEEP_BYTES));
        &POOL
    }

    /// `bytes` in a buffer of its own length.
    pub fn copy(&self, bytes: &[u8]) -> Buffer {
        let len = bytes.len();
        if len == 0 || len > MAX_POOLED {
            return Buffer::from_slice_ref(bytes);
        }
        let (chunk, offset) = self.reserve(len);
        // SAFETY: `reserve` gave this call `offset..offset + len` of the
        // chunk alone, in bounds; nothing covers it until the buffer below,
        // which keeps the chunk (and so the memory) alive while it exists.
        unsafe {
            let dst = chunk.base().add(offset);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, len);
            Buffer::from_custom_allocation(NonNull::new_unchecked(dst), len, chunk)
        }
    }

    /// `len` bytes of a chunk no one else will be given.
    fn reserve(&self, len: usize) -> (Arc<Chunk>, usize) {
        let mut retired = None;
        let mut state = self.shared.lock();
        let fits = matches!(&state.current, Some((_, used)) if used + len <= CHUNK_BYTES);
        if !fits {
            let memory = match state.free.pop() {
                Some(memory) => {
                    state.chunks_reused += 1;
                    memory
                }
                None => {
                    state.chunks_made += 1;
                    Memory::new()
                }
            };
            let chunk = Arc::new(Chunk {
                memory: Some(memory),
                home: Arc::downgrade(&self.shared),
            });
            retired = state.current.replace((chunk, 0));
        }
        let Some((chunk, used)) = state.current.as_mut() else {
            unreachable!("a chunk was just made current")
        };
        let offset = *used;
        *used = (offset + len).next_multiple_of(ALIGN);
        let chunk = Arc::clone(chunk);
        drop(state);
        // Dropping the retired chunk may hand it back, which takes the lock.
        drop(retired);
        (chunk, offset)
    }

    pub fn stats(&self) -> CopyPoolStats {
        let state = self.shared.lock();
        CopyPoolStats {
            chunks_made: state.chunks_made,
            chunks_reused: state.chunks_reused,
            chunks_free: state.free.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn copies_hold_the_bytes_given_and_are_aligned() {
        let pool = CopyPool::new(CHUNK_BYTES);
        let sources: Vec<Vec<u8>> = (0..200).map(|i| pattern(1 + i * 37, i as u8)).collect();
        let copies: Vec<Buffer> = sources.iter().map(|s| pool.copy(s)).collect();
        for (source, copy) in sources.iter().zip(&copies) {
            assert_eq!(copy.as_slice(), source.as_slice());
            assert_eq!(copy.as_ptr() as usize % ALIGN, 0);
        }
    }

    #[test]
    fn a_chunk_comes_back_once_every_copy_cut_from_it_is_dropped() {
        let pool = CopyPool::new(4 * CHUNK_BYTES);
        let piece = pattern(MAX_POOLED, 1);
        // Nine copies of an eighth of a chunk: the ninth starts chunk two,
        // which retires chunk one while eight copies still hold it.
        let mut copies: Vec<Buffer> = (0..9).map(|_| pool.copy(&piece)).collect();
        assert_eq!(pool.stats().chunks_made, 2);
        assert_eq!(pool.stats().chunks_free, 0);
        copies.drain(..7);
        assert_eq!(
            pool.stats().chunks_free,
            0,
            "one copy still holds chunk one"
        );
        copies.remove(0);
        assert_eq!(pool.stats().chunks_free, 1);
        // Fill chunk two; the next copy reuses chunk one instead of making one.
        copies.extend((0..8).map(|_| pool.copy(&piece)));
        let stats = pool.stats();
        assert_eq!((stats.chunks_made, stats.chunks_reused), (2, 1));
        for copy in &copies {
            assert_eq!(copy.as_slice(), piece.as_slice());
        }
    }

    #[test]
    fn reused_memory_never_overwrites_a_live_copy() {
        let pool = CopyPool::new(2 * CHUNK_BYTES);
        let mut live: Vec<(Buffer, Vec<u8>)> = Vec::new();
        for round in 0..2_000u32 {
            let source = pattern(1 + (round as usize * 7919) % 40_000, round as u8);
            live.push((pool.copy(&source), source));
            // Keep a sliding window, so chunks keep being freed and reused.
            if live.len() > 300 {
                live.drain(..150);
            }
        }
        assert!(pool.stats().chunks_reused > 0, "{:?}", pool.stats());
        for (copy, source) in &live {
            assert_eq!(copy.as_slice(), source.as_slice());
        }
    }

    #[test]
    fn free_chunks_beyond_the_limit_are_released() {
        let pool = CopyPool::new(CHUNK_BYTES);
        let piece = pattern(MAX_POOLED, 2);
        let copies: Vec<Buffer> = (0..8 * 3 + 1).map(|_| pool.copy(&piece)).collect();
        drop(copies);
        // Three full chunks were retired; the pool keeps one.
        assert_eq!(pool.stats().chunks_free, 1);
    }

    #[test]
    fn large_and_empty_copies_bypass_the_chunks() {
        let pool = CopyPool::new(CHUNK_BYTES);
        let large = pattern(MAX_POOLED + 1, 3);
        assert_eq!(pool.copy(&large).as_slice(), large.as_slice());
        assert!(pool.copy(&[]).is_empty());
        assert_eq!(pool.stats().chunks_made, 0);
    }

    #[test]
    fn copies_outlive_their_pool() {
        let pool = CopyPool::new(CHUNK_BYTES);
        let source = pattern(1000, 4);
        let copy = pool.copy(&source);
        drop(pool);
        assert_eq!(copy.as_slice(), source.as_slice());
    }

    #[test]
    fn copies_dropped_on_other_threads_return_their_chunks() {
        let pool = CopyPool::new(8 * CHUNK_BYTES);
        let piece = pattern(MAX_POOLED, 5);
        let mut copies: Vec<Buffer> = (0..8 * 4).map(|_| pool.copy(&piece)).collect();
        // One more starts chunk five, retiring chunk four.
        let current = pool.copy(&piece);
        std::thread::scope(|s| {
            while !copies.is_empty() {
                let rest = copies.split_off(8);
                let chunk = std::mem::replace(&mut copies, rest);
                s.spawn(move || drop(chunk));
            }
        });
        assert_eq!(pool.stats().chunks_free, 4);
        assert_eq!(current.as_slice(), piece.as_slice());
    }
}
