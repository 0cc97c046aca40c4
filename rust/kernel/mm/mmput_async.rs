// SPDX-License-Identifier: GPL-2.0

//! An address space whose last user reference may be dropped in atomic context.
//!
//! C header: [`include/linux/sched/mm.h`](srctree/include/linux/sched/mm.h).

use crate::{
    bindings,
    mm::MmWithUser,
    types::{ARef, AlwaysRefCounted},
};
use core::{ops::Deref, ptr::NonNull};

/// An [`MmWithUser`] whose `mmget` refcount is dropped with `mmput_async()`.
///
/// `mmput()` may sleep: the last user reference tears down the address space. `mmput_async()`
/// hands that work to a workqueue, so the destructor of `ARef<MmWithUserAsync>` does not sleep
/// and may run in atomic context (under a spinlock, for example).
///
/// # Invariants
///
/// Values of this type are always refcounted using `mmget`. The value of `mm_users` is non-zero.
///
/// # Examples
///
/// ```
/// use kernel::mm::{MmWithUser, MmWithUserAsync};
/// use kernel::types::ARef;
///
/// fn for_atomic_context(mm: ARef<MmWithUser>) -> ARef<MmWithUserAsync> {
///     MmWithUser::into_mmput_async(mm)
/// }
/// ```
#[repr(transparent)]
pub struct MmWithUserAsync {
    mm: MmWithUser,
}

// SAFETY: `mmput_async` may be called on another thread than where `mmget` was called.
unsafe impl Send for MmWithUserAsync {}
// SAFETY: All methods on `MmWithUserAsync` can be called in parallel from several threads.
unsafe impl Sync for MmWithUserAsync {}

// SAFETY: By the type invariants, this type is always refcounted.
unsafe impl AlwaysRefCounted for MmWithUserAsync {
    #[inline]
    fn inc_ref(&self) {
        // SAFETY: The pointer is valid since `self` is a reference, and `mm_users` is not zero.
        unsafe { bindings::mmget(self.as_raw()) };
    }

    #[inline]
    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller gives up its `mmget` refcount; `mmput_async` does not sleep.
        unsafe { bindings::mmput_async(obj.cast().as_ptr()) };
    }
}

// Make all `MmWithUser` methods available on `MmWithUserAsync`.
impl Deref for MmWithUserAsync {
    type Target = MmWithUser;

    #[inline]
    fn deref(&self) -> &MmWithUser {
        &self.mm
    }
}

impl MmWithUser {
    /// Turns an `mmget` refcount into one that is dropped with `mmput_async()`, whose drop does
    /// not sleep.
    #[inline]
    pub fn into_mmput_async(me: ARef<MmWithUser>) -> ARef<MmWithUserAsync> {
        // INVARIANT: The `mmget` refcount of `me` moves over, so `mm_users` stays non-zero.
        // SAFETY: The `mmget` refcount moves from one `ARef` to the other; `MmWithUserAsync` is
        // a `repr(transparent)` wrapper of `MmWithUser` with the same invariants.
        unsafe { ARef::from_raw(ARef::into_raw(me).cast()) }
    }
}
