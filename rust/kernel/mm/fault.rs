// SPDX-License-Identifier: GPL-2.0

//! Page faults: fault flags, fault results and `handle_mm_fault`.
//!
//! `handle_mm_fault()` is entered with a lock that keeps the VMA alive: the mmap read lock or
//! the VMA's own read lock (then with `FAULT_FLAG_VMA_LOCK`). When it returns
//! `VM_FAULT_RETRY` (without `FAULT_FLAG_RETRY_NOWAIT`) or `VM_FAULT_COMPLETED`, it has
//! released that lock and the VMA may already be gone. Here the lock is a guard that
//! [`LockedVma::handle_mm_fault`] takes by value; the outcome gives it back only if the lock is
//! still held. Releasing the lock twice or touching the VMA after a retry does not compile, and
//! every outcome that holds the lock releases it when dropped: leaking it takes an explicit
//! `core::mem::forget` or the unsafe [`LockedVma::into_raw`].
//!
//! The safe functions refuse what `handle_mm_fault()` would warn about (`sanitize_fault_flags()`):
//! an access that the VMA does not allow, and illegal flag combinations.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h),
//! [`include/linux/mm_types.h`](srctree/include/linux/mm_types.h).

use crate::{
    bindings,
    error::{code::*, Error, Result},
    mm::{
        virt::{self, VmaRef},
        MmWithUser, MmapReadGuard, VmaReadGuard,
    },
    types::Opaque,
};
use core::ptr::NonNull;

/// One fault flag (`enum fault_flag`) that a caller of `handle_mm_fault()` may set.
///
/// `FAULT_FLAG_MKWRITE` and `FAULT_FLAG_ORIG_PTE_VALID` are internal to the fault handler and
/// not offered.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultFlag {
    /// Fault was a write fault.
    Write = bindings::fault_flag_FAULT_FLAG_WRITE,
    /// Allow to retry the fault if blocked.
    AllowRetry = bindings::fault_flag_FAULT_FLAG_ALLOW_RETRY,
    /// Don't drop the lock and wait when retrying.
    RetryNowait = bindings::fault_flag_FAULT_FLAG_RETRY_NOWAIT,
    /// The fault task is in a SIGKILL killable region.
    Killable = bindings::fault_flag_FAULT_FLAG_KILLABLE,
    /// The fault has been tried once.
    Tried = bindings::fault_flag_FAULT_FLAG_TRIED,
    /// The fault originated in userspace.
    User = bindings::fault_flag_FAULT_FLAG_USER,
    /// The fault is not for the current task/mm.
    Remote = bindings::fault_flag_FAULT_FLAG_REMOTE,
    /// The fault was during an instruction fetch.
    Instruction = bindings::fault_flag_FAULT_FLAG_INSTRUCTION,
    /// The fault can be interrupted by non-fatal signals.
    Interruptible = bindings::fault_flag_FAULT_FLAG_INTERRUPTIBLE,
    /// The fault is an unsharing request to break COW in a COW mapping.
    Unshare = bindings::fault_flag_FAULT_FLAG_UNSHARE,
    /// The fault is handled under the VMA lock instead of the mmap lock.
    VmaLock = bindings::fault_flag_FAULT_FLAG_VMA_LOCK,
}

const FLAG_WRITE: u32 = FaultFlag::Write as u32;
const FLAG_ALLOW_RETRY: u32 = FaultFlag::AllowRetry as u32;
const FLAG_RETRY_NOWAIT: u32 = FaultFlag::RetryNowait as u32;
const FLAG_TRIED: u32 = FaultFlag::Tried as u32;
const FLAG_UNSHARE: u32 = FaultFlag::Unshare as u32;
const FLAG_VMA_LOCK: u32 = FaultFlag::VmaLock as u32;
const FLAGS_KNOWN: u32 = FLAG_WRITE
    | FLAG_ALLOW_RETRY
    | FLAG_RETRY_NOWAIT
    | FaultFlag::Killable as u32
    | FLAG_TRIED
    | FaultFlag::User as u32
    | FaultFlag::Remote as u32
    | FaultFlag::Instruction as u32
    | FaultFlag::Interruptible as u32
    | FLAG_UNSHARE
    | FLAG_VMA_LOCK;

/// A legal set of fault flags.
///
/// Every value is checked when it is built: unknown bits, `TRIED` without `ALLOW_RETRY`,
/// `RETRY_NOWAIT` without `ALLOW_RETRY`, `WRITE` with `UNSHARE`, and `VMA_LOCK` with
/// `RETRY_NOWAIT` are rejected with `EINVAL`.
///
/// # Invariants
///
/// The bits are a legal combination, as [`FaultFlags::new`] checks.
///
/// # Examples
///
/// ```
/// use kernel::prelude::*;
/// use kernel::bindings;
/// use kernel::mm::fault::{FaultFlag, FaultFlags};
///
/// let f = FaultFlags::DEFAULT;
/// assert!(f.contains(FaultFlag::AllowRetry));
/// assert!(f.contains(FaultFlag::Killable));
/// assert!(f.contains(FaultFlag::Interruptible));
/// assert!(f.is_first_try());
///
/// let user_write = f.with(FaultFlag::User)?.with(FaultFlag::Write)?;
/// let again = user_write.tried();
/// assert!(again.contains(FaultFlag::Tried));
/// assert!(!again.is_first_try());
///
/// // Illegal combinations are refused when the value is built.
/// assert_eq!(FaultFlags::empty().with(FaultFlag::Tried), Err(EINVAL));
/// assert_eq!(FaultFlags::empty().with(FaultFlag::RetryNowait), Err(EINVAL));
/// assert_eq!(user_write.with(FaultFlag::Unshare), Err(EINVAL));
/// let nowait = f.with(FaultFlag::RetryNowait)?;
/// assert_eq!(nowait.with(FaultFlag::VmaLock), Err(EINVAL));
/// assert!(FaultFlags::new(1 << 31).is_err());
/// // Internal to the fault handler: not an input.
/// assert_eq!(FaultFlags::new(bindings::fault_flag_FAULT_FLAG_MKWRITE), Err(EINVAL));
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultFlags(u32);

impl FaultFlags {
    /// `FAULT_FLAG_DEFAULT`: retry allowed, killable and interruptible.
    // INVARIANT: `ALLOW_RETRY` without `TRIED`, `RETRY_NOWAIT`, `WRITE`, `UNSHARE` or `VMA_LOCK`
    // breaks no rule of `FaultFlags::new`.
    pub const DEFAULT: FaultFlags =
        FaultFlags(FLAG_ALLOW_RETRY | FaultFlag::Killable as u32 | FaultFlag::Interruptible as u32);

    /// No flags: a fault that may not be retried.
    #[inline]
    pub const fn empty() -> Self {
        // INVARIANT: No flag is a legal combination.
        FaultFlags(0)
    }

    /// Checks `bits` and builds a value from them.
    #[inline]
    pub const fn new(bits: u32) -> Result<Self> {
        if bits & !FLAGS_KNOWN != 0
            || (bits & FLAG_TRIED != 0 && bits & FLAG_ALLOW_RETRY == 0)
            || (bits & FLAG_RETRY_NOWAIT != 0 && bits & FLAG_ALLOW_RETRY == 0)
            || (bits & FLAG_WRITE != 0 && bits & FLAG_UNSHARE != 0)
            || (bits & FLAG_VMA_LOCK != 0 && bits & FLAG_RETRY_NOWAIT != 0)
        {
            return Err(EINVAL);
        }
        // INVARIANT: Just checked.
        Ok(FaultFlags(bits))
    }

    /// Builds a value from `bits` without checking them, for bits that C code guarantees.
    ///
    /// # Safety
    ///
    /// `bits` must be a combination that [`FaultFlags::new`] accepts.
    #[inline]
    pub const unsafe fn from_raw_unchecked(bits: u32) -> Self {
        // INVARIANT: The caller guarantees a legal combination.
        FaultFlags(bits)
    }

    /// The same flags plus `flag`, if that is legal.
    #[inline]
    pub const fn with(self, flag: FaultFlag) -> Result<Self> {
        Self::new(self.0 | flag as u32)
    }

    /// The same flags without `flag`, if that is legal.
    #[inline]
    pub const fn without(self, flag: FaultFlag) -> Result<Self> {
        Self::new(self.0 & !(flag as u32))
    }

    /// Whether `flag` is set.
    #[inline]
    pub const fn contains(self, flag: FaultFlag) -> bool {
        self.0 & flag as u32 != 0
    }

    /// The raw bits, for C.
    #[inline]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// `fault_flag_allow_retry_first()`: retry is allowed and this is the first attempt.
    #[inline]
    pub const fn is_first_try(self) -> bool {
        self.0 & FLAG_ALLOW_RETRY != 0 && self.0 & FLAG_TRIED == 0
    }

    /// The flags for the next attempt of a fault that returned `VM_FAULT_RETRY`: the same plus
    /// `TRIED`.
    ///
    /// Without `ALLOW_RETRY`, `TRIED` would be illegal, so the flags stay as they are. (Under
    /// the VMA lock a fault may return `VM_FAULT_RETRY` without `ALLOW_RETRY`, to be retried
    /// under the mmap lock.)
    #[inline]
    pub const fn tried(self) -> Self {
        if self.0 & FLAG_ALLOW_RETRY != 0 {
            // INVARIANT: TRIED is legal with ALLOW_RETRY, and affects no other rule.
            FaultFlags(self.0 | FLAG_TRIED)
        } else {
            self
        }
    }
}

/// Which error a fault ended with, as the arch fault handlers sort them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultError {
    /// `VM_FAULT_OOM`: out of memory.
    Oom,
    /// `VM_FAULT_SIGBUS`: bad access, deliver `SIGBUS`.
    Sigbus,
    /// `VM_FAULT_HWPOISON`: hit a poisoned small page.
    HwPoison,
    /// `VM_FAULT_HWPOISON_LARGE`: hit a poisoned large page.
    HwPoisonLarge,
    /// `VM_FAULT_SIGSEGV`: bad access, deliver `SIGSEGV`.
    Sigsegv,
    /// `VM_FAULT_FALLBACK`: a huge page fault fell back; not expected from `handle_mm_fault`.
    Fallback,
}

const VM_FAULT_OOM: u32 = bindings::vm_fault_reason_VM_FAULT_OOM;
const VM_FAULT_SIGBUS: u32 = bindings::vm_fault_reason_VM_FAULT_SIGBUS;
const VM_FAULT_MAJOR: u32 = bindings::vm_fault_reason_VM_FAULT_MAJOR;
const VM_FAULT_HWPOISON: u32 = bindings::vm_fault_reason_VM_FAULT_HWPOISON;
const VM_FAULT_HWPOISON_LARGE: u32 = bindings::vm_fault_reason_VM_FAULT_HWPOISON_LARGE;
const VM_FAULT_SIGSEGV: u32 = bindings::vm_fault_reason_VM_FAULT_SIGSEGV;
const VM_FAULT_RETRY: u32 = bindings::vm_fault_reason_VM_FAULT_RETRY;
const VM_FAULT_FALLBACK: u32 = bindings::vm_fault_reason_VM_FAULT_FALLBACK;
const VM_FAULT_COMPLETED: u32 = bindings::vm_fault_reason_VM_FAULT_COMPLETED;
/// `VM_FAULT_ERROR` of `include/linux/mm_types.h`.
const VM_FAULT_ERROR: u32 = VM_FAULT_OOM
    | VM_FAULT_SIGBUS
    | VM_FAULT_SIGSEGV
    | VM_FAULT_HWPOISON
    | VM_FAULT_HWPOISON_LARGE
    | VM_FAULT_FALLBACK;

/// The result of a page fault (`vm_fault_t`).
///
/// # Examples
///
/// ```
/// use kernel::prelude::*;
/// use kernel::bindings;
/// use kernel::mm::fault::{FaultError, VmFaultResult};
///
/// let retry = VmFaultResult::from_raw(bindings::vm_fault_reason_VM_FAULT_RETRY);
/// assert!(retry.is_retry() && !retry.is_error() && retry.releases_lock(false));
/// assert!(!retry.releases_lock(true)); // RETRY_NOWAIT keeps the lock.
///
/// let done = VmFaultResult::from_raw(bindings::vm_fault_reason_VM_FAULT_COMPLETED);
/// assert!(done.is_completed() && done.releases_lock(false) && done.releases_lock(true));
///
/// let oom = VmFaultResult::from_raw(
///     bindings::vm_fault_reason_VM_FAULT_OOM | bindings::vm_fault_reason_VM_FAULT_SIGBUS,
/// );
/// assert_eq!(oom.error(), Some(FaultError::Oom)); // OOM is handled first.
/// assert_eq!(oom.to_errno(), Some(ENOMEM));
///
/// let segv = VmFaultResult::from_raw(bindings::vm_fault_reason_VM_FAULT_SIGSEGV);
/// assert_eq!(segv.error(), Some(FaultError::Sigsegv));
/// assert_eq!(segv.to_errno(), Some(EFAULT));
///
/// let major = VmFaultResult::from_raw(bindings::vm_fault_reason_VM_FAULT_MAJOR);
/// assert!(major.is_major() && major.error().is_none() && major.to_errno().is_none());
///
/// // As vm_fault_to_errno(): a fallback is an error bit, but no errno; poison is EFAULT.
/// let fallback = VmFaultResult::from_raw(bindings::vm_fault_reason_VM_FAULT_FALLBACK);
/// assert_eq!(fallback.error(), Some(FaultError::Fallback));
/// assert_eq!(fallback.to_errno(), None);
/// let poison = VmFaultResult::from_raw(bindings::vm_fault_reason_VM_FAULT_HWPOISON);
/// assert_eq!(poison.to_errno(), Some(EFAULT));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VmFaultResult(u32);

impl VmFaultResult {
    /// Wraps a `vm_fault_t` from C.
    #[inline]
    pub const fn from_raw(raw: bindings::vm_fault_t) -> Self {
        VmFaultResult(raw)
    }

    /// The raw `vm_fault_t`.
    #[inline]
    pub const fn bits(self) -> bindings::vm_fault_t {
        self.0
    }

    /// `VM_FAULT_RETRY`: the fault blocked and must be retried.
    #[inline]
    pub const fn is_retry(self) -> bool {
        self.0 & VM_FAULT_RETRY != 0
    }

    /// `VM_FAULT_COMPLETED`: the fault completed and the lock was released meanwhile.
    #[inline]
    pub const fn is_completed(self) -> bool {
        self.0 & VM_FAULT_COMPLETED != 0
    }

    /// `VM_FAULT_MAJOR`: the fault needed I/O.
    #[inline]
    pub const fn is_major(self) -> bool {
        self.0 & VM_FAULT_MAJOR != 0
    }

    /// Any of `VM_FAULT_ERROR`.
    #[inline]
    pub const fn is_error(self) -> bool {
        self.0 & VM_FAULT_ERROR != 0
    }

    /// Whether `handle_mm_fault()` released the fault lock: on `VM_FAULT_COMPLETED`, and on
    /// `VM_FAULT_RETRY` unless the fault had `FAULT_FLAG_RETRY_NOWAIT`.
    #[inline]
    pub const fn releases_lock(self, retry_nowait: bool) -> bool {
        self.is_completed() || (self.is_retry() && !retry_nowait)
    }

    /// The error, in the order the arch handlers test them: OOM, then SIGBUS and hardware
    /// poison, then SIGSEGV.
    #[inline]
    pub const fn error(self) -> Option<FaultError> {
        let e = self.0 & VM_FAULT_ERROR;
        if e == 0 {
            None
        } else if e & VM_FAULT_OOM != 0 {
            Some(FaultError::Oom)
        } else if e & VM_FAULT_SIGBUS != 0 {
            Some(FaultError::Sigbus)
        } else if e & VM_FAULT_HWPOISON != 0 {
            Some(FaultError::HwPoison)
        } else if e & VM_FAULT_HWPOISON_LARGE != 0 {
            Some(FaultError::HwPoisonLarge)
        } else if e & VM_FAULT_SIGSEGV != 0 {
            Some(FaultError::Sigsegv)
        } else {
            Some(FaultError::Fallback)
        }
    }

    /// The errno of an error, as `vm_fault_to_errno()` gives it for GUP without
    /// `FOLL_HWPOISON`: `ENOMEM` for OOM, `EFAULT` for SIGBUS, SIGSEGV and hardware poison,
    /// none for `VM_FAULT_FALLBACK` alone (it is not a failure of the access).
    #[inline]
    pub fn to_errno(self) -> Option<Error> {
        match self.error() {
            None | Some(FaultError::Fallback) => None,
            Some(FaultError::Oom) => Some(ENOMEM),
            Some(_) => Some(EFAULT),
        }
    }
}

/// The registers of the faulting context (`struct pt_regs`), for the fault accounting of
/// `handle_mm_fault()` (perf events).
///
/// # Invariants
///
/// A `&PtRegs` points at valid registers for its lifetime.
#[repr(transparent)]
pub struct PtRegs(Opaque<bindings::pt_regs>);

impl PtRegs {
    /// Wraps the registers of an exception.
    ///
    /// # Safety
    ///
    /// `ptr` must point at valid registers for the duration of `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::pt_regs) -> &'a PtRegs {
        // SAFETY: The caller guarantees validity for 'a; the layout is transparent.
        unsafe { &*ptr.cast() }
    }

    /// The raw pointer, for C.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::pt_regs {
        self.0.get()
    }
}

/// A VMA together with the read lock that keeps it alive: the mmap read lock or the VMA's own
/// read lock.
///
/// Dropping it releases the lock; that does not sleep.
///
/// # Invariants
///
/// It owns the mmap read lock of the VMA's address space, or the VMA's read lock, and the VMA
/// is valid while it lives.
pub struct LockedVma<'a>(Lock<'a>);

/// # Invariants
///
/// In `Mmap`, `vma` is a VMA of the address space whose mmap read lock `guard` owns.
enum Lock<'a> {
    Mmap {
        guard: MmapReadGuard<'a>,
        vma: NonNull<VmaRef>,
    },
    Vma(VmaReadGuard<'a>),
}

/// The outcome of [`LockedVma::handle_mm_fault`].
#[must_use = "a `Locked` outcome holds the lock until it is dropped"]
pub enum FaultOutcome<'a> {
    /// The lock is still held and handed back: the fault was handled (possibly with an error),
    /// or it returned `VM_FAULT_RETRY` with `FAULT_FLAG_RETRY_NOWAIT`.
    Locked(LockedVma<'a>, VmFaultResult),
    /// `VM_FAULT_RETRY` or `VM_FAULT_COMPLETED`: `handle_mm_fault()` released the lock, and
    /// the VMA may be gone.
    Released(VmFaultResult),
}

/// A fault that [`LockedVma::handle_mm_fault`] refused to start; the lock is handed back.
#[must_use = "the lock is held until this is dropped"]
pub struct Refused<'a> {
    /// Why: `EFAULT` for an address outside the VMA or an access that the VMA does not allow,
    /// `EINVAL` for flags that the call does not take (see [`LockedVma::handle_mm_fault`]).
    pub error: Error,
    /// The lock, still held.
    pub lock: LockedVma<'a>,
}

impl MmWithUser {
    /// `lock_mm_and_find_vma()`: takes the mmap read lock (killable; for a kernel-mode fault
    /// only if the faulting instruction has an exception table entry) and finds the VMA that
    /// contains `addr`, expanding a stack VMA if `addr` is just below it. May sleep.
    ///
    /// Returns `None`, with no lock held, if there is no VMA for `addr` or the lock could not
    /// be taken.
    ///
    /// Not inlined: the C function is not exported, and a module reaches it through this
    /// function of the kernel crate. Built-in code on a hot path (the fault loop) calls the C
    /// function and hands its lock to [`LockedVma::from_raw_mmap_locked`].
    ///
    /// # Safety
    ///
    /// Only the page fault handler of the task that owns the address space may call this:
    /// `self` must be the current task's address space, and `regs`, if given, the registers
    /// of the fault being handled. Expanding the stack is the fault handler's privilege; GUP
    /// and other address spaces' users may not (6.5 took it away from GUP).
    ///
    /// # Examples
    ///
    /// Safe code cannot call it:
    ///
    /// ```ignore
    /// // compile_fail: E0133 CONFIG_LOCK_MM_AND_FIND_VMA
    /// use kernel::mm::{MmWithUser, fault::LockedVma};
    /// fn grow<'a>(mm: &'a MmWithUser, addr: usize) -> Option<LockedVma<'a>> {
    ///     mm.lock_mm_and_find_vma(addr, None)
    /// }
    /// ```
    #[cfg(CONFIG_LOCK_MM_AND_FIND_VMA)]
    pub unsafe fn lock_mm_and_find_vma(
        &self,
        addr: usize,
        regs: Option<&PtRegs>,
    ) -> Option<LockedVma<'_>> {
        let regs = regs.map_or(core::ptr::null_mut(), |r| r.as_ptr());
        // SAFETY: The mm has users (type invariant); `regs` is null or the registers of the
        // current fault, and `self` the current task's address space (the caller's promise).
        let vma = unsafe { bindings::lock_mm_and_find_vma(self.as_raw(), addr, regs) };
        let vma = NonNull::new(vma.cast::<VmaRef>())?;
        // SAFETY: `lock_mm_and_find_vma()` returned a VMA, so it holds the mmap read lock,
        // which the guard takes over.
        let guard = unsafe { MmapReadGuard::from_locked(self) };
        // INVARIANT: `vma` was found under that lock.
        Some(LockedVma(Lock::Mmap { guard, vma }))
    }
}

impl<'a> LockedVma<'a> {
    /// Takes over the mmap read lock of `mm` and the VMA `vma` found under it, from C code
    /// that looked the VMA up (an arch's own `lock_mm_and_find_vma()`).
    ///
    /// Returns `None` if `vma` is null; then no lock may be held.
    ///
    /// # Safety
    ///
    /// If `vma` is not null, the caller holds the mmap read lock of `mm`, hands it over, and
    /// `vma` is a VMA of `mm` found under that lock.
    #[inline]
    pub unsafe fn from_raw_mmap_locked(
        mm: &'a MmWithUser,
        vma: *mut bindings::vm_area_struct,
    ) -> Option<Self> {
        let vma = NonNull::new(vma.cast::<VmaRef>())?;
        // SAFETY: The caller hands over the mmap read lock of `mm`.
        let guard = unsafe { MmapReadGuard::from_locked(mm) };
        // INVARIANT: The caller guarantees `vma` was found under that lock.
        Some(LockedVma(Lock::Mmap { guard, vma }))
    }

    /// Takes over the read lock of the VMA `vma`, from C code that took it
    /// (`lock_vma_under_rcu()` called directly, on a hot path that cannot afford the call
    /// through [`MmWithUser::lock_vma_under_rcu`]).
    ///
    /// Returns `None` if `vma` is null; then no lock may be held.
    ///
    /// # Safety
    ///
    /// If `vma` is not null, the caller holds its VMA read lock and hands it over, and the
    /// VMA's address space has users for `'a`.
    #[inline]
    pub unsafe fn from_raw_vma_locked(vma: *mut bindings::vm_area_struct) -> Option<Self> {
        let vma = NonNull::new(vma.cast::<VmaRef>())?;
        // SAFETY: The caller hands over the read lock of `vma`, whose address space has users
        // for `'a`.
        let guard = unsafe { VmaReadGuard::from_locked(vma) };
        Some(Self::from_vma_guard(guard))
    }

    /// Looks up the VMA that contains `addr` under the mmap read lock `guard`.
    ///
    /// On failure the guard is handed back, still locked.
    #[inline]
    pub fn lookup(
        guard: MmapReadGuard<'a>,
        addr: usize,
    ) -> core::result::Result<Self, MmapReadGuard<'a>> {
        match guard.vma_lookup(addr).map(NonNull::from) {
            // INVARIANT: `vma` was found under `guard`.
            Some(vma) => Ok(LockedVma(Lock::Mmap { guard, vma })),
            None => Err(guard),
        }
    }

    /// Looks up the first VMA that intersects `[start, end)` (`find_vma_intersection()`) under
    /// the mmap read lock `guard`. An empty or inverted range finds nothing.
    ///
    /// On failure the guard is handed back, still locked.
    #[inline]
    pub fn find_intersection(
        guard: MmapReadGuard<'a>,
        start: usize,
        end: usize,
    ) -> core::result::Result<Self, MmapReadGuard<'a>> {
        // The C function would take `end == 0` for the top of the address space.
        if start >= end {
            return Err(guard);
        }
        // SAFETY: The address space has users and `guard` holds its mmap read lock, which the
        // lookup needs; the range is not empty.
        let vma = unsafe { bindings::find_vma_intersection(guard.mm().as_raw(), start, end) };
        // SAFETY: `vma` is null or was just found under `guard`.
        unsafe { Self::from_guard(guard, vma) }
    }

    /// Takes the VMA `vma`, found by C code under the mmap read lock `guard`.
    ///
    /// If `vma` is null, the guard is handed back, still locked.
    ///
    /// # Safety
    ///
    /// If `vma` is not null, it is a VMA of the address space of `guard`, looked up under the
    /// lock that `guard` holds.
    #[inline]
    pub unsafe fn from_guard(
        guard: MmapReadGuard<'a>,
        vma: *mut bindings::vm_area_struct,
    ) -> core::result::Result<Self, MmapReadGuard<'a>> {
        match NonNull::new(vma.cast::<VmaRef>()) {
            // INVARIANT: The caller guarantees that `vma` was found under `guard`.
            Some(vma) => Ok(LockedVma(Lock::Mmap { guard, vma })),
            None => Err(guard),
        }
    }

    /// Gives up the VMA and keeps the mmap read lock, to look up another VMA under it.
    ///
    /// For the per-VMA lock there is no mmap read lock to keep: it is released and `None`
    /// returned. Does not sleep.
    #[inline]
    pub fn into_mmap_guard(self) -> Option<MmapReadGuard<'a>> {
        match self.0 {
            Lock::Mmap { guard, .. } => Some(guard),
            Lock::Vma(guard) => {
                drop(guard);
                None
            }
        }
    }

    /// Takes a per-VMA read lock, as returned by [`MmWithUser::lock_vma_under_rcu`].
    #[inline]
    pub fn from_vma_guard(guard: VmaReadGuard<'a>) -> Self {
        // INVARIANT: The guard owns the VMA's read lock, which keeps the VMA valid while it is
        // held.
        LockedVma(Lock::Vma(guard))
    }

    /// The VMA.
    #[inline]
    pub fn vma(&self) -> &VmaRef {
        match &self.0 {
            // SAFETY: By the type invariants the VMA is valid while the guard is held, and the
            // returned reference borrows `self`, which owns the guard.
            Lock::Mmap { vma, .. } => unsafe { vma.as_ref() },
            Lock::Vma(guard) => guard,
        }
    }

    /// The address space.
    #[inline]
    pub fn mm(&self) -> &MmWithUser {
        self.vma().mm()
    }

    /// Whether this is the per-VMA lock.
    #[inline]
    pub fn is_vma_lock(&self) -> bool {
        matches!(self.0, Lock::Vma(_))
    }

    /// Gives up the guard, for C code that releases the lock: returns the VMA and, for the
    /// mmap read lock, its address space (null for the VMA read lock).
    ///
    /// # Safety
    ///
    /// The lock stays held: the caller must release it (`mmap_read_unlock()` of the address
    /// space, or `vma_end_read()` of the VMA if the address space is null), or hand it to C
    /// code that does.
    ///
    /// # Examples
    ///
    /// Safe code cannot leak the lock this way:
    ///
    /// ```ignore
    /// // compile_fail: E0133
    /// use kernel::mm::fault::LockedVma;
    /// fn leak(lock: LockedVma<'_>) {
    ///     let _ = lock.into_raw();
    /// }
    /// ```
    #[inline]
    pub unsafe fn into_raw(self) -> (*mut bindings::vm_area_struct, *mut bindings::mm_struct) {
        let vma = self.vma().as_ptr();
        match self.0 {
            Lock::Mmap { guard, .. } => {
                // SAFETY: The caller takes over the lock, as its contract says.
                let mm = unsafe { guard.into_raw() };
                (vma, mm.as_raw())
            }
            Lock::Vma(guard) => {
                // SAFETY: The caller takes over the lock, as its contract says.
                let _ = unsafe { guard.into_raw() };
                (vma, core::ptr::null_mut())
            }
        }
    }

    /// Handles a page fault at `address` of the VMA (`handle_mm_fault()`). May sleep.
    ///
    /// Needs the mmap or VMA read lock: `self` holds it.
    /// `FAULT_FLAG_VMA_LOCK` is added for the per-VMA lock and must not be in `flags`
    /// otherwise; with the per-VMA lock, `flags` must not have `FAULT_FLAG_RETRY_NOWAIT`.
    /// `regs`, when given, are used for perf fault events.
    ///
    /// The lock is given back in [`FaultOutcome::Locked`] when `handle_mm_fault()` kept it,
    /// and not at all when it released it ([`FaultOutcome::Released`]). Refused before anything
    /// is done, with the lock handed back in [`Refused`], is what `handle_mm_fault()` would
    /// warn about or is not meant for this call:
    ///
    /// - an address outside the VMA, or an access that the VMA does not allow, as
    ///   `vma_permits_fault()` checks for `fixup_user_fault()` (a write without `VM_WRITE` and
    ///   `VM_MAYWRITE`, otherwise without `VM_READ`): `EFAULT`;
    /// - flags that do not go with the lock (`VMA_LOCK`, or `RETRY_NOWAIT` with the VMA lock):
    ///   `EINVAL`;
    /// - `FAULT_FLAG_USER`, which is for the arch fault handler alone (it accounts the fault
    ///   to the task and expects `pagefault_out_of_memory()` after `VM_FAULT_OOM`): `EINVAL`;
    /// - a fault without `ALLOW_RETRY` on a VMA registered with userfaultfd, which could not
    ///   wait for user space (`handle_userfault()` warns and fails it): `EINVAL`.
    ///
    /// # Examples
    ///
    /// The VMA cannot be used once the fault released the lock:
    ///
    /// ```ignore
    /// // compile_fail: E0382
    /// use kernel::mm::fault::{FaultFlags, FaultOutcome, LockedVma};
    /// fn f(lock: LockedVma<'_>, addr: usize) -> usize {
    ///     match lock.handle_mm_fault(addr, FaultFlags::DEFAULT, None) {
    ///         // `lock` was moved into handle_mm_fault(): the VMA is out of reach.
    ///         Ok(FaultOutcome::Released(_)) => lock.vma().start(),
    ///         _ => 0,
    ///     }
    /// }
    /// ```
    ///
    /// A reference to the VMA cannot be held across the call:
    ///
    /// ```ignore
    /// // compile_fail: E0505
    /// use kernel::mm::fault::{FaultFlags, LockedVma};
    /// fn f(lock: LockedVma<'_>, addr: usize) -> usize {
    ///     let vma = lock.vma();
    ///     let _ = lock.handle_mm_fault(addr, FaultFlags::DEFAULT, None);
    ///     vma.start()
    /// }
    /// ```
    ///
    /// The lock cannot be released twice: a released outcome has no guard to drop, and the
    /// guard given to the call is gone:
    ///
    /// ```ignore
    /// // compile_fail: E0382
    /// use kernel::mm::{MmWithUser, fault::{FaultFlags, LockedVma}};
    /// fn f(mm: &MmWithUser, addr: usize) {
    ///     let guard = mm.mmap_read_lock();
    ///     if let Ok(lock) = LockedVma::lookup(guard, addr) {
    ///         let _ = lock.handle_mm_fault(addr, FaultFlags::DEFAULT, None);
    ///     }
    ///     drop(guard);
    /// }
    /// ```
    #[inline]
    pub fn handle_mm_fault(
        self,
        address: usize,
        flags: FaultFlags,
        regs: Option<&PtRegs>,
    ) -> core::result::Result<FaultOutcome<'a>, Refused<'a>> {
        let vm_flags = self.vma().flags();
        let need = if flags.contains(FaultFlag::Write) {
            virt::flags::WRITE | virt::flags::MAYWRITE
        } else {
            virt::flags::READ
        };
        if !self.vma().contains(address) || vm_flags & need != need {
            return Err(Refused {
                error: EFAULT,
                lock: self,
            });
        }
        // SAFETY: The VMA is valid and locked (`self`); the helper only reads its flags.
        let uffd_armed = unsafe { bindings::userfaultfd_armed(self.vma().as_ptr()) };
        let error = if flags.contains(FaultFlag::User)
            || (!flags.contains(FaultFlag::AllowRetry) && uffd_armed)
        {
            Some(EINVAL)
        } else {
            match (&self.0, flags.contains(FaultFlag::VmaLock)) {
                (Lock::Mmap { .. }, false) => None,
                (Lock::Vma(_), false) => flags.with(FaultFlag::VmaLock).err(),
                (_, true) => Some(EINVAL),
            }
        };
        if let Some(error) = error {
            return Err(Refused { error, lock: self });
        }
        // SAFETY: Just checked: `address` is inside the VMA, which allows the access (so a
        // write has `VM_WRITE` and `VM_MAYWRITE`); the flags have no `VMA_LOCK`, nor, with the
        // VMA lock, `RETRY_NOWAIT` (`with()` refused that).
        Ok(unsafe { self.handle_mm_fault_unchecked(address, flags, regs) })
    }

    /// [`LockedVma::handle_mm_fault`] without its checks, for a fault loop that knows they hold
    /// (the VMA was looked up by `address`; the flags come from the arch, which checked the
    /// access). May sleep.
    ///
    /// # Safety
    ///
    /// `address` must be inside the VMA; `flags` must not have `FAULT_FLAG_VMA_LOCK`, nor,
    /// with the per-VMA lock, `FAULT_FLAG_RETRY_NOWAIT`; with `FAULT_FLAG_WRITE` the VMA must
    /// have `VM_MAYWRITE`, and `VM_WRITE` unless it is a COW mapping (`VM_SHARED` clear), as
    /// `sanitize_fault_flags()` otherwise warns; with `FAULT_FLAG_USER` the caller must be the
    /// arch fault handler of a fault from user mode, which handles `VM_FAULT_OOM` with
    /// `pagefault_out_of_memory()`.
    #[inline]
    pub unsafe fn handle_mm_fault_unchecked(
        self,
        address: usize,
        flags: FaultFlags,
        regs: Option<&PtRegs>,
    ) -> FaultOutcome<'a> {
        // With the VMA lock, the caller guarantees that there is no RETRY_NOWAIT: the compiler
        // can drop the test.
        let (flags, nowait) = match self.0 {
            Lock::Mmap { .. } => (flags, flags.contains(FaultFlag::RetryNowait)),
            // INVARIANT: The caller guarantees that VMA_LOCK is legal with `flags`.
            Lock::Vma(_) => (FaultFlags(flags.0 | FaultFlag::VmaLock as u32), false),
        };
        let regs = regs.map_or(core::ptr::null_mut(), |r| r.as_ptr());
        let vma_ptr = self.vma().as_ptr();

        // The C function may release the lock: hold it as raw parts until we know.
        let raw = match self.0 {
            Lock::Mmap { guard, vma } => {
                // SAFETY: `handle_mm_fault()` releases the lock or keeps it, as its result
                // says; below, a new guard takes it over only if it is kept.
                RawLock::Mmap(unsafe { guard.into_raw() }, vma)
            }
            // SAFETY: As for the mmap lock: a new guard takes the lock over only if it is kept.
            Lock::Vma(guard) => RawLock::Vma(unsafe { guard.into_raw() }),
        };

        // SAFETY: `vma_ptr` is valid and locked as `flags` say (mmap read lock, or VMA lock with
        // `VMA_LOCK`); `address` is inside it; `regs` is null or valid; the flags and the access
        // are as `sanitize_fault_flags()` wants them (the caller's promise).
        let result = VmFaultResult::from_raw(unsafe {
            bindings::handle_mm_fault(vma_ptr, address, flags.bits(), regs)
        });

        if result.releases_lock(nowait) {
            return FaultOutcome::Released(result);
        }
        let lock = match raw {
            RawLock::Mmap(mm, vma) => {
                // SAFETY: `handle_mm_fault()` kept the lock, which we owned before the call.
                let guard = unsafe { MmapReadGuard::from_locked(mm) };
                // INVARIANT: `vma` is still the VMA found under that lock.
                Lock::Mmap { guard, vma }
            }
            // SAFETY: `handle_mm_fault()` kept the VMA lock, which we owned before the call.
            RawLock::Vma(vma) => Lock::Vma(unsafe { VmaReadGuard::from_locked(vma) }),
        };
        FaultOutcome::Locked(LockedVma(lock), result)
    }

    /// Releases the lock: the same as dropping it, in a form that the compiler inlines. Does
    /// not sleep.
    #[inline]
    pub fn unlock(self) {
        match self.0 {
            Lock::Mmap { guard, .. } => drop(guard),
            Lock::Vma(guard) => drop(guard),
        }
    }
}

/// A lock while `handle_mm_fault()` may release it: no guard, so nothing unlocks it on drop.
enum RawLock<'a> {
    Mmap(&'a MmWithUser, NonNull<VmaRef>),
    Vma(NonNull<VmaRef>),
}

/// `fault_signal_pending()`: after a fault returned `VM_FAULT_RETRY`, must the fault loop stop
/// and return (to user mode, or to the exception fixup) instead of retrying?
///
/// Yes if a fatal signal is pending, or, for a fault from user mode, any signal. Needs no lock;
/// does not sleep.
#[inline]
pub fn fault_signal_pending(result: VmFaultResult, user_mode: bool) -> bool {
    if !result.is_retry() {
        return false;
    }
    // SAFETY: `get_current()` returns the running task, which is valid.
    let current = unsafe { bindings::get_current() };
    // SAFETY: `current` is the running task.
    if unsafe { bindings::fatal_signal_pending(current) } != 0 {
        return true;
    }
    // SAFETY: `current` is the running task.
    user_mode && unsafe { bindings::signal_pending(current) } != 0
}
