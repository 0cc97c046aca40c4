// SPDX-License-Identifier: GPL-2.0

//! Virtual memory areas.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h)

use crate::{bindings, mm::MmWithUser, types::Opaque};

#[doc(inline)]
pub use bindings::vm_flags_t;

/// A virtual memory area (`struct vm_area_struct`), usable while its address space's mmap read
/// lock or its own per-VMA read lock is held.
///
/// References to a `VmaRef` are handed out by [`MmapReadGuard::vma_lookup`] and
/// [`VmaReadGuard`], and borrow the guard, so that they cannot outlive the lock.
///
/// [`MmapReadGuard::vma_lookup`]: crate::mm::MmapReadGuard::vma_lookup
/// [`VmaReadGuard`]: crate::mm::VmaReadGuard
///
/// # Invariants
///
/// The caller must hold the mmap read lock or the vma read lock.
#[repr(transparent)]
pub struct VmaRef {
    vma: Opaque<bindings::vm_area_struct>,
}

impl VmaRef {
    /// Access a virtual memory area given a raw pointer.
    ///
    /// # Safety
    ///
    /// Callers must ensure that `vma` is valid for the duration of 'a, and that the mmap or vma
    /// read lock (or stronger) is held for at least the duration of 'a.
    #[inline]
    pub unsafe fn from_raw<'a>(vma: *const bindings::vm_area_struct) -> &'a Self {
        // SAFETY: The caller ensures that the invariants are satisfied for the duration of 'a.
        unsafe { &*vma.cast() }
    }

    /// Returns a raw pointer to this area.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::vm_area_struct {
        self.vma.get()
    }

    /// Access the underlying `mm_struct`.
    #[inline]
    pub fn mm(&self) -> &MmWithUser {
        // SAFETY: By the type invariants the VMA is valid, and `vm_mm` does not change.
        let mm = unsafe { (*self.as_ptr()).vm_mm };
        // SAFETY: The VMA's mmap or VMA read lock is held for the lifetime of `self` (type
        // invariant), so its address space has users for that long.
        unsafe { MmWithUser::from_raw(mm) }
    }

    /// Returns the flags associated with the virtual memory area (`VM_READ`, `VM_WRITE`, ...).
    #[inline]
    pub fn flags(&self) -> vm_flags_t {
        // SAFETY: The caller holds the mmap or VMA read lock (invariant): no data race.
        unsafe { (*self.as_ptr()).__bindgen_anon_2.vm_flags }
    }

    /// Returns the (inclusive) start address of the virtual memory area.
    #[inline]
    pub fn start(&self) -> usize {
        // SAFETY: The caller holds the mmap or VMA read lock (invariant): no data race.
        unsafe { (*self.as_ptr()).__bindgen_anon_1.__bindgen_anon_1.vm_start }
    }

    /// Returns the (exclusive) end address of the virtual memory area.
    #[inline]
    pub fn end(&self) -> usize {
        // SAFETY: The caller holds the mmap or VMA read lock (invariant): no data race.
        unsafe { (*self.as_ptr()).__bindgen_anon_1.__bindgen_anon_1.vm_end }
    }

    /// Whether `addr` lies in `[start, end)` (the end is exclusive).
    #[inline]
    pub fn contains(&self, addr: usize) -> bool {
        self.start() <= addr && addr < self.end()
    }
}

/// The `VM_*` flags of a VMA.
pub mod flags {
    use super::vm_flags_t;
    use crate::bindings;

    /// No flags are set.
    pub const NONE: vm_flags_t = bindings::VM_NONE as _;
    /// Mapping allows reads.
    pub const READ: vm_flags_t = bindings::VM_READ as _;
    /// Mapping allows writes.
    pub const WRITE: vm_flags_t = bindings::VM_WRITE as _;
    /// Mapping allows execution.
    pub const EXEC: vm_flags_t = bindings::VM_EXEC as _;
    /// Mapping is shared.
    pub const SHARED: vm_flags_t = bindings::VM_SHARED as _;
    /// `READ` may be set (by `mprotect()`).
    pub const MAYREAD: vm_flags_t = bindings::VM_MAYREAD as _;
    /// `WRITE` may be set: without it, no write fault can happen in the mapping.
    pub const MAYWRITE: vm_flags_t = bindings::VM_MAYWRITE as _;
    /// `EXEC` may be set.
    pub const MAYEXEC: vm_flags_t = bindings::VM_MAYEXEC as _;
    /// `SHARED` may be set: the mapping is of a file or shared memory.
    pub const MAYSHARE: vm_flags_t = bindings::VM_MAYSHARE as _;
    /// The stack grows down into this mapping.
    pub const GROWSDOWN: vm_flags_t = bindings::VM_GROWSDOWN as _;
    /// The mapping is registered with userfaultfd for missing pages.
    pub const UFFD_MISSING: vm_flags_t = bindings::VM_UFFD_MISSING as _;
    /// The mapping is registered with userfaultfd for write protection.
    pub const UFFD_WP: vm_flags_t = bindings::VM_UFFD_WP as _;
    /// Page frames without `struct page` behind them (`remap_pfn_range()`).
    pub const PFNMAP: vm_flags_t = bindings::VM_PFNMAP as _;
    /// The pages are locked in memory (`mlock()`).
    pub const LOCKED: vm_flags_t = bindings::VM_LOCKED as _;
    /// Memory-mapped I/O or similar.
    pub const IO: vm_flags_t = bindings::VM_IO as _;
    /// The mapping cannot be expanded with `mremap()`.
    pub const DONTEXPAND: vm_flags_t = bindings::VM_DONTEXPAND as _;
    /// The mapping is not copied on `fork()`.
    pub const DONTCOPY: vm_flags_t = bindings::VM_DONTCOPY as _;
    /// The mapping is accounted against the commit limit.
    pub const ACCOUNT: vm_flags_t = bindings::VM_ACCOUNT as _;
    /// A huge TLB page mapping (hugetlbfs).
    pub const HUGETLB: vm_flags_t = bindings::VM_HUGETLB as _;
    /// The mapping is left out of core dumps.
    pub const DONTDUMP: vm_flags_t = bindings::VM_DONTDUMP as _;
    /// A mapping of pages with and without `struct page` (`vm_insert_page()`).
    pub const MIXEDMAP: vm_flags_t = bindings::VM_MIXEDMAP as _;
}
