//! A global allocator that tracks the bytes in use (requested sizes, without the allocator's own overhead), for
//! the tests that measure memory. A test binary installs it with
//! `#[global_allocator] static GLOBAL: BytesInUse = BytesInUse;`.

#![allow(unsafe_code)] // a global allocator cannot be written without it

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

/// The system allocator, counting.
pub struct BytesInUse;

static IN_USE: AtomicIsize = AtomicIsize::new(0);

/// Bytes allocated and not yet freed, by every thread, since the program started.
pub fn in_use() -> isize {
    IN_USE.load(Relaxed)
}

unsafe impl GlobalAlloc for BytesInUse {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        IN_USE.fetch_add(layout.size() as isize, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size() as isize, Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        IN_USE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
