// SPDX-License-Identifier: GPL-2.0

//! Memory management: address spaces and their locks.
//!
//! This module follows the design (names and invariants) of the upstream Rust mm abstractions
//! that later kernels have, so that it can be rebased onto them:
//!
//! - [`Mm`] is an address space kept alive by an `mmgrab` refcount, [`MmWithUser`] one whose
//!   users count (`mm_users`) is non-zero, kept by an `mmget` refcount.
//! - [`MmapReadGuard`] owns the mmap read lock, [`VmaReadGuard`] the per-VMA read lock of one
//!   VMA. Both are `!Send`: the lock must be released by the thread that took it.
//! - [`virt::VmaRef`] is a VMA that may be used while one of those locks is held.
//! - [`MmWithUserAsync`] is an [`MmWithUser`] whose last reference may be dropped in atomic
//!   context (`mmput_async`).
//!
//! On top of them, [`fault`] wraps `handle_mm_fault()` and [`gup`] the get/pin_user_pages
//! family. Both encode in their types when the C side drops a lock: a call that may release the
//! lock takes the guard by value and gives it back only if the lock is still held.
//!
//! C headers: [`include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`include/linux/mmap_lock.h`](srctree/include/linux/mmap_lock.h),
//! [`include/linux/sched/mm.h`](srctree/include/linux/sched/mm.h).

use crate::{
    bindings,
    error::{code::*, from_err_ptr, to_result, Result},
    task::Task,
    types::{ARef, AlwaysRefCounted, Opaque},
};
use core::{marker::PhantomData, ops::Deref, ptr::NonNull};

pub mod fault;
pub mod gup;
mod mmput_async;
pub mod virt;

pub use mmput_async::MmWithUserAsync;
use virt::VmaRef;

/// An address space (`struct mm_struct`) kept alive by an `mmgrab` refcount.
///
/// An [`Mm`] may have no users left (its `mm_users` may be zero), in which case its page tables
/// and VMAs are gone. Use [`Mm::mmget_not_zero`] to get an [`MmWithUser`], on which the address
/// space can be locked and used.
///
/// The `ARef<Mm>` smart pointer holds an `mmgrab` refcount. Its destructor may sleep.
///
/// # Invariants
///
/// Values of this type are always refcounted using `mmgrab`.
#[repr(transparent)]
pub struct Mm {
    mm: Opaque<bindings::mm_struct>,
}

// SAFETY: It is safe to call `mmdrop` on another thread than where `mmgrab` was called.
unsafe impl Send for Mm {}
// SAFETY: All methods on `Mm` can be called in parallel from several threads.
unsafe impl Sync for Mm {}

// SAFETY: By the type invariants, this type is always refcounted.
unsafe impl AlwaysRefCounted for Mm {
    fn inc_ref(&self) {
        // SAFETY: The pointer is valid since `self` is a reference.
        unsafe { bindings::mmgrab(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller is giving up their refcount.
        unsafe { bindings::mmdrop(obj.cast().as_ptr()) };
    }
}

/// An address space whose `mm_users` is non-zero, kept alive by an `mmget` refcount.
///
/// The address space of a task is of this type for as long as the task runs: its page tables
/// and VMAs exist, and it can be locked with [`MmWithUser::mmap_read_lock`] or searched with
/// [`MmWithUser::lock_vma_under_rcu`].
///
/// The `ARef<MmWithUser>` smart pointer holds an `mmget` refcount. Its destructor may sleep
/// (the last `mmput` tears down the address space).
///
/// # Invariants
///
/// Values of this type are always refcounted using `mmget`. The value of `mm_users` is non-zero.
#[repr(transparent)]
pub struct MmWithUser {
    mm: Mm,
}

// SAFETY: It is safe to call `mmput` on another thread than where `mmget` was called.
unsafe impl Send for MmWithUser {}
// SAFETY: All methods on `MmWithUser` can be called in parallel from several threads.
unsafe impl Sync for MmWithUser {}

// SAFETY: By the type invariants, this type is always refcounted.
unsafe impl AlwaysRefCounted for MmWithUser {
    fn inc_ref(&self) {
        // SAFETY: The pointer is valid since `self` is a reference.
        unsafe { bindings::mmget(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller is giving up their refcount.
        unsafe { bindings::mmput(obj.cast().as_ptr()) };
    }
}

// Make all `Mm` methods available on `MmWithUser`.
impl Deref for MmWithUser {
    type Target = Mm;

    #[inline]
    fn deref(&self) -> &Mm {
        &self.mm
    }
}

impl Mm {
    /// Returns a raw pointer to the inner `mm_struct`.
    #[inline]
    pub fn as_raw(&self) -> *mut bindings::mm_struct {
        self.mm.get()
    }

    /// Obtain a reference from a raw pointer.
    ///
    /// # Safety
    ///
    /// The caller must ensure that `ptr` points at an `mm_struct`, and that it is not
    /// deallocated during the lifetime `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::mm_struct) -> &'a Mm {
        // SAFETY: The caller promises validity for 'a; `Mm` is a `repr(transparent)` wrapper of
        // `mm_struct`.
        unsafe { &*ptr.cast() }
    }

    /// Calls `mmget_not_zero` and returns a handle if it succeeds.
    #[inline]
    pub fn mmget_not_zero(&self) -> Option<ARef<MmWithUser>> {
        // SAFETY: The pointer is valid since `self` is a reference.
        let success = unsafe { bindings::mmget_not_zero(self.as_raw()) };

        if success {
            let ptr = NonNull::from(self).cast::<MmWithUser>();
            // INVARIANT: The `mmget` refcount just taken keeps `mm_users` non-zero while the
            // `ARef` holds it.
            // SAFETY: We just created an `mmget` refcount, which the `ARef` takes over, and the
            // `mm_users` count is therefore non-zero; `MmWithUser` is a `repr(transparent)`
            // wrapper of `Mm`.
            Some(unsafe { ARef::from_raw(ptr) })
        } else {
            None
        }
    }
}

impl MmWithUser {
    /// Obtain a reference from a raw pointer.
    ///
    /// # Safety
    ///
    /// The caller must ensure that `ptr` points at an `mm_struct`, and that `mm_users` remains
    /// non-zero for the duration of the lifetime `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *const bindings::mm_struct) -> &'a MmWithUser {
        // SAFETY: The caller promises validity and users for 'a; `MmWithUser` is a
        // `repr(transparent)` wrapper of `mm_struct`.
        unsafe { &*ptr.cast() }
    }

    /// Takes over an `mmget` refcount that the caller owns.
    ///
    /// # Safety
    ///
    /// `ptr` must point at an `mm_struct` on which the caller owns an `mmget` refcount (as
    /// returned by `get_task_mm` for example), which is transferred to the returned value.
    #[inline]
    pub unsafe fn from_raw_mmget(ptr: NonNull<bindings::mm_struct>) -> ARef<MmWithUser> {
        // SAFETY: The caller transfers an `mmget` refcount; the layouts are compatible.
        unsafe { ARef::from_raw(ptr.cast()) }
    }

    /// Calls `f` with the address space of the current task, or returns `None` if the task has
    /// none (a kernel thread).
    ///
    /// The reference cannot escape `f`: the current task keeps its address space alive while
    /// it runs, but not beyond.
    #[inline]
    pub fn with_current<R>(f: impl FnOnce(&MmWithUser) -> R) -> Option<R> {
        // SAFETY: Getting the current task has no requirement.
        let current = unsafe { bindings::get_current() };
        // SAFETY: `current` is the running task, which is valid, and only the task itself
        // writes its `mm` field.
        let mm = unsafe { (*current).mm };
        if mm.is_null() {
            return None;
        }
        // SAFETY: The task's address space has users while the task uses it, and only the task
        // itself changes its `mm` (exec, `kthread_unuse_mm()`), which it does not do while `f`
        // runs: the safe `f` has no way to. The reference cannot escape `f`.
        Some(f(unsafe { MmWithUser::from_raw(mm) }))
    }

    /// `mm_access()`: the address space of `task`, if the current task may access it in
    /// `mode` (a ptrace access check, as `/proc/<pid>/mem` and `process_vm_readv()` do).
    ///
    /// Errors: `ESRCH` if the task has no address space (a kernel thread, or it has exited),
    /// `EACCES` if the access is not allowed, `EINTR` if a fatal signal arrives while waiting
    /// for an exec of the task to finish. May sleep.
    ///
    /// The address space of the current task itself is always returned.
    ///
    /// Not inlined: the C function is not exported, and a module reaches it through this
    /// function of the kernel crate.
    pub fn access(task: &Task, mode: PtraceMode) -> Result<ARef<MmWithUser>> {
        // SAFETY: `task` is valid (it is a reference); every `PtraceMode` has exactly one of the
        // `*_CREDS` bits, as `__ptrace_may_access()` requires.
        let mm = unsafe { bindings::mm_access(task.0.get(), mode as u32) };
        // `mm_access()` returns an `ERR_PTR` (`-ESRCH` for a task without an address space)
        // or an address space on which it took an `mmget` refcount; NULL is refused too.
        let mm = NonNull::new(from_err_ptr(mm)?).ok_or(ESRCH)?;
        // SAFETY: The `mmget` refcount that `mm_access()` took goes to the `ARef`.
        Ok(unsafe { MmWithUser::from_raw_mmget(mm) })
    }

    /// Lock the mmap read lock. May sleep.
    #[inline]
    pub fn mmap_read_lock(&self) -> MmapReadGuard<'_> {
        // SAFETY: The pointer is valid since self is a reference.
        unsafe { bindings::mmap_read_lock(self.as_raw()) };

        // INVARIANT: We just acquired the read lock.
        MmapReadGuard {
            mm: self,
            _not_send: PhantomData,
        }
    }

    /// Lock the mmap read lock, or fail with `EINTR` if a fatal signal arrives while waiting.
    /// May sleep.
    #[inline]
    pub fn mmap_read_lock_killable(&self) -> Result<MmapReadGuard<'_>> {
        // SAFETY: The pointer is valid since self is a reference.
        to_result(unsafe { bindings::mmap_read_lock_killable(self.as_raw()) })?;

        // INVARIANT: We just acquired the read lock.
        Ok(MmapReadGuard {
            mm: self,
            _not_send: PhantomData,
        })
    }

    /// Try to lock the mmap read lock. Does not sleep.
    #[inline]
    pub fn mmap_read_trylock(&self) -> Option<MmapReadGuard<'_>> {
        // SAFETY: The pointer is valid since self is a reference.
        let success = unsafe { bindings::mmap_read_trylock(self.as_raw()) };

        if success {
            // INVARIANT: We just acquired the read lock.
            Some(MmapReadGuard {
                mm: self,
                _not_send: PhantomData,
            })
        } else {
            None
        }
    }

    /// Try to take the read lock of the VMA that contains `vma_addr`.
    ///
    /// Besides the mmap lock, which covers the whole address space, each VMA has a lock of its
    /// own (with `CONFIG_PER_VMA_LOCK`). Holding a VMA's read lock keeps that VMA alive and
    /// unchanged, as the mmap read lock would, without blocking changes elsewhere in the
    /// address space.
    ///
    /// This is an optimistic trylock: it may fail under contention (a writer holds the VMA or
    /// the mmap lock), and it fails if no VMA contains `vma_addr`. Then fall back to taking the
    /// mmap read lock. Without per-VMA locks it always returns `None`. Does not sleep.
    ///
    /// Not inlined: `lock_vma_under_rcu()` is not exported, and a module reaches it through
    /// this function of the kernel crate. Built-in code on a hot path (the fault loop) calls the
    /// C function and hands its lock to [`fault::LockedVma::from_raw_vma_locked`].
    pub fn lock_vma_under_rcu(&self, vma_addr: usize) -> Option<VmaReadGuard<'_>> {
        #[cfg(CONFIG_PER_VMA_LOCK)]
        {
            // SAFETY: The mm has users (type invariant); any address is accepted. A VMA that is
            // returned comes with its read lock held.
            let vma = unsafe { bindings::lock_vma_under_rcu(self.as_raw(), vma_addr) };

            if let Some(vma) = NonNull::new(vma.cast::<VmaRef>()) {
                // SAFETY: The guard takes over the read lock of `vma`, a VMA of this address
                // space, which it was returned with.
                return Some(unsafe { VmaReadGuard::from_locked(vma) });
            }
        }

        // Silence warnings about unused variables.
        #[cfg(not(CONFIG_PER_VMA_LOCK))]
        let _ = vma_addr;

        None
    }
}

/// The access that [`MmWithUser::access`] checks for (`PTRACE_MODE_*`): read or attach, with
/// the caller's filesystem or real credentials.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PtraceMode {
    /// `PTRACE_MODE_READ_FSCREDS`: read, filesystem credentials (`/proc/<pid>/` files).
    ReadFsCreds = bindings::PTRACE_MODE_READ_FSCREDS,
    /// `PTRACE_MODE_READ_REALCREDS`: read, real credentials.
    ReadRealCreds = bindings::PTRACE_MODE_READ_REALCREDS,
    /// `PTRACE_MODE_ATTACH_FSCREDS`: attach, filesystem credentials (`/proc/<pid>/mem`).
    AttachFsCreds = bindings::PTRACE_MODE_ATTACH_FSCREDS,
    /// `PTRACE_MODE_ATTACH_REALCREDS`: attach, real credentials (`process_vm_readv()`).
    AttachRealCreds = bindings::PTRACE_MODE_ATTACH_REALCREDS,
}

/// A guard for the mmap read lock.
///
/// Dropping it releases the lock; that does not sleep. [`fault`] and [`gup`] functions that may
/// release the lock take the guard by value and hand it back only when the lock is still held.
///
/// # Invariants
///
/// This `MmapReadGuard` guard owns the mmap read lock.
pub struct MmapReadGuard<'a> {
    mm: &'a MmWithUser,
    // `mmap_read_lock` and `mmap_read_unlock` must be called on the same thread
    _not_send: PhantomData<*mut ()>,
}

impl<'a> MmapReadGuard<'a> {
    /// The address space whose lock this guard owns.
    #[inline]
    pub fn mm(&self) -> &'a MmWithUser {
        self.mm
    }

    /// Look up the VMA that contains `vma_addr`, if any.
    ///
    /// The returned reference borrows the guard, so it cannot outlive the lock.
    #[inline]
    pub fn vma_lookup(&self, vma_addr: usize) -> Option<&VmaRef> {
        // SAFETY: The mm is valid (we hold a reference); any `vma_addr` is fine.
        let vma = unsafe { bindings::vma_lookup(self.mm.as_raw(), vma_addr) };

        if vma.is_null() {
            None
        } else {
            // SAFETY: A VMA was found, and it is valid while the mmap read lock is held; the
            // reference borrows the guard, so the borrow checker keeps it within the lock.
            unsafe { Some(VmaRef::from_raw(vma)) }
        }
    }

    /// Gives up the guard without releasing the lock, for a C function that releases it, or
    /// to hand the lock back to the C code that owned it before [`MmapReadGuard::from_locked`].
    ///
    /// # Safety
    ///
    /// The caller must make sure that the lock is released (or its ownership taken over)
    /// by someone else.
    #[inline]
    pub unsafe fn into_raw(self) -> &'a MmWithUser {
        let mm = self.mm;
        core::mem::forget(self);
        mm
    }

    /// Creates a guard for a lock that the caller owns.
    ///
    /// # Safety
    ///
    /// The caller must own the mmap read lock of `mm` (for example a C function returned with
    /// it held, or called Rust code with it held and hands it over for the call) and transfers
    /// that ownership to the guard.
    #[inline]
    pub unsafe fn from_locked(mm: &'a MmWithUser) -> Self {
        // INVARIANT: The caller transfers the ownership of the read lock.
        MmapReadGuard {
            mm,
            _not_send: PhantomData,
        }
    }
}

impl Drop for MmapReadGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: We hold the read lock by the type invariants.
        unsafe { bindings::mmap_read_unlock(self.mm.as_raw()) };
    }
}

/// A guard for the per-VMA read lock of one VMA.
///
/// Dropping it releases the lock; that does not sleep.
///
/// # Invariants
///
/// This `VmaReadGuard` guard owns the VMA read lock of `vma`, a VMA of an address space that
/// has users for `'a`. The VMA is valid while the guard lives (not for all of `'a`: a function
/// that releases the lock may free it), so it is kept as a pointer.
pub struct VmaReadGuard<'a> {
    vma: NonNull<VmaRef>,
    _mm: PhantomData<&'a MmWithUser>,
    // `vma_end_read` must be called on the same thread as where the lock was taken
    _not_send: PhantomData<*mut ()>,
}

impl<'a> VmaReadGuard<'a> {
    /// Gives up the guard without releasing the lock, for a C function that releases it.
    ///
    /// # Safety
    ///
    /// The caller must make sure that the lock is released by someone else.
    #[inline]
    pub(crate) unsafe fn into_raw(self) -> NonNull<VmaRef> {
        let vma = self.vma;
        core::mem::forget(self);
        vma
    }

    /// Re-creates a guard for a VMA read lock that the caller owns.
    ///
    /// # Safety
    ///
    /// The caller must own the VMA read lock of `vma`, a VMA of an address space that has users
    /// for `'a`, and transfers the lock to the guard.
    #[inline]
    pub(crate) unsafe fn from_locked(vma: NonNull<VmaRef>) -> Self {
        // INVARIANT: The caller transfers the ownership of the read lock.
        VmaReadGuard {
            vma,
            _mm: PhantomData,
            _not_send: PhantomData,
        }
    }
}

// Make all `VmaRef` methods available on `VmaReadGuard`.
impl Deref for VmaReadGuard<'_> {
    type Target = VmaRef;

    #[inline]
    fn deref(&self) -> &VmaRef {
        // SAFETY: By the type invariants the VMA is valid while the guard lives, and the
        // reference borrows the guard.
        unsafe { self.vma.as_ref() }
    }
}

impl Drop for VmaReadGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: We hold the read lock by the type invariants.
        unsafe { bindings::vma_end_read(self.vma.as_ref().as_ptr()) };
    }
}
