// SPDX-License-Identifier: GPL-2.0

//! Get user pages (GUP): take references on, or pin, the pages of a user address range.
//!
//! The C functions with a `locked` argument (`get_user_pages_remote()`,
//! `pin_user_pages_remote()`) are entered with the mmap read lock held and may release it to
//! wait for a fault, then take it again and go on. Once they have released it, they release it
//! again before they return: they return with the lock held (`*locked == 1`) only if they
//! never had to drop it. Here that state is the [`MmapReadGuard`], taken by value and handed
//! back in [`GupResult::lock`] only if the lock is still held.
//!
//! The `*_unlocked` variants take and release the lock of the current task's address space
//! themselves; from a kernel thread, which has no address space, they fail with `EFAULT`.
//!
//! Pages are returned as [`Pages`], which own the references or pins and drop them when
//! dropped. `kernel::page::Page` is not used for them: it frees its page when dropped. User
//! space may write to the pages at any time, so their contents are only copied out
//! ([`Pages::read`]), never lent to Rust code as a reference.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h).

use crate::{
    alloc::{flags::GFP_KERNEL, KVec},
    bindings,
    error::{code::*, to_result, Error, Result},
    mm::{
        fault::{FaultFlag, FaultFlags},
        MmWithUser, MmapReadGuard,
    },
    page::{PAGE_MASK, PAGE_SIZE},
};

#[cfg(CONFIG_RUST_GUP_LOOP)]
use crate::mm::fault::LockedVma;

/// The most pages one call takes, so that the page array stays a modest allocation.
pub const MAX_PAGES: usize = 1 << 16;

/// One GUP flag (the external `FOLL_*` flags that the wrappers accept).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GupFlag {
    /// `FOLL_WRITE`: the pages will be written to.
    Write = bindings::FOLL_WRITE,
    /// `FOLL_FORCE`: get the pages even if the VMA's permissions do not allow the access, within
    /// limits: a read needs `VM_MAYREAD`, a write a private (COW) mapping, where it breaks
    /// COW; never on hugetlb for write.
    Force = bindings::FOLL_FORCE,
    /// `FOLL_LONGTERM`: the pages will be held for an indefinite time. Only for pins: the `get_*`
    /// functions refuse it with `EINVAL`.
    Longterm = bindings::FOLL_LONGTERM,
    /// `FOLL_INTERRUPTIBLE`: a fault may be interrupted by a non-fatal signal (then `EINTR`).
    Interruptible = bindings::FOLL_INTERRUPTIBLE,
}

const GUP_KNOWN: u32 = GupFlag::Write as u32
    | GupFlag::Force as u32
    | GupFlag::Longterm as u32
    | GupFlag::Interruptible as u32;

/// A set of [`GupFlag`]s. Unknown and internal `FOLL_*` bits are refused with `EINVAL`.
///
/// # Invariants
///
/// Only bits of [`GupFlag`] are set.
///
/// # Examples
///
/// ```
/// use kernel::prelude::*;
/// use kernel::mm::gup::{GupFlag, GupFlags};
///
/// let f = GupFlags::empty().with(GupFlag::Write);
/// assert!(f.contains(GupFlag::Write) && !f.contains(GupFlag::Force));
/// assert!(GupFlags::new(kernel::bindings::FOLL_NOWAIT).is_err());
/// assert_eq!(GupFlags::new(f.bits()), Ok(f));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GupFlags(u32);

impl GupFlags {
    /// No flags: read access.
    #[inline]
    pub const fn empty() -> Self {
        // INVARIANT: No bit set.
        GupFlags(0)
    }

    /// Checks `bits` and builds a value from them.
    #[inline]
    pub const fn new(bits: u32) -> Result<Self> {
        if bits & !GUP_KNOWN != 0 {
            return Err(EINVAL);
        }
        // INVARIANT: Just checked.
        Ok(GupFlags(bits))
    }

    /// The same flags plus `flag`.
    #[inline]
    pub const fn with(self, flag: GupFlag) -> Self {
        // INVARIANT: `flag` is a `GupFlag`.
        GupFlags(self.0 | flag as u32)
    }

    /// Whether `flag` is set.
    #[inline]
    pub const fn contains(self, flag: GupFlag) -> bool {
        self.0 & flag as u32 != 0
    }

    /// The raw bits, for C.
    #[inline]
    pub const fn bits(self) -> u32 {
        self.0
    }
}

/// Checks a range of `nr_pages` pages from `start` and returns its (exclusive) end.
///
/// `start` must be page aligned (`EINVAL`), `nr_pages` between 1 and [`MAX_PAGES`] (`EINVAL`),
/// and the range must not wrap around the end of the address space (`EOVERFLOW`).
///
/// # Examples
///
/// ```
/// use kernel::prelude::*;
/// use kernel::mm::gup::{check_range, MAX_PAGES};
/// use kernel::page::PAGE_SIZE;
///
/// assert_eq!(check_range(0x10000, 2), Ok(0x10000 + 2 * PAGE_SIZE));
/// assert_eq!(check_range(0x10001, 1), Err(EINVAL));
/// assert_eq!(check_range(0x10000, 0), Err(EINVAL));
/// assert_eq!(check_range(0x10000, MAX_PAGES + 1), Err(EINVAL));
/// assert_eq!(check_range(usize::MAX & !(PAGE_SIZE - 1), 2), Err(EOVERFLOW));
/// // The last page of the address space ends exactly at the top: that wraps too.
/// assert_eq!(check_range(usize::MAX & !(PAGE_SIZE - 1), 1), Err(EOVERFLOW));
/// ```
pub fn check_range(start: usize, nr_pages: usize) -> Result<usize> {
    if start & !PAGE_MASK != 0 || nr_pages == 0 || nr_pages > MAX_PAGES {
        return Err(EINVAL);
    }
    nr_pages
        .checked_mul(PAGE_SIZE)
        .and_then(|len| start.checked_add(len))
        .ok_or(EOVERFLOW)
}

/// References (`FOLL_GET`) or pins (`FOLL_PIN`) on user pages, dropped when this is dropped.
///
/// Dropping it may sleep only as much as `put_page()` and `unpin_user_pages()` may: it does
/// not sleep for anonymous and page-cache pages, but the last reference of a page frees it.
///
/// # Invariants
///
/// The first `pages.len()` entries of `pages` are pages on which this value owns one reference
/// (if `!pinned`) or one pin (if `pinned`).
pub struct Pages {
    pages: KVec<*mut bindings::page>,
    pinned: bool,
}

// SAFETY: Page references and pins may be dropped on any thread.
unsafe impl Send for Pages {}
// SAFETY: The methods that take `&self` only read the pages.
unsafe impl Sync for Pages {}

impl Pages {
    /// How many pages.
    #[inline]
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Whether there are none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Whether these are pins (`pin_user_pages*`) rather than references.
    #[inline]
    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    /// Copies `dst.len()` bytes of page `i`, from byte `offset` of the page on, into `dst`.
    ///
    /// User space (or a device) may write to the page while it is copied: then `dst` holds
    /// whatever the copy saw, as with `copy_from_user()`. The copy is made by C code, so that
    /// such a write is not a data race in Rust. Does not sleep.
    ///
    /// Errors: `EINVAL` if there is no page `i`, or if the bytes do not all lie in the page
    /// (`offset + dst.len()` must not exceed `PAGE_SIZE`).
    ///
    /// # Examples
    ///
    /// Safe code cannot borrow the contents of a page that user space may write: there is no
    /// method that lends them out.
    ///
    /// ```ignore
    /// // compile_fail: E0599
    /// use kernel::mm::gup::Pages;
    /// fn first_byte(pages: &Pages) -> Option<u8> {
    ///     pages.with_page(0, |bytes: &[u8]| bytes[0])
    /// }
    /// ```
    pub fn read(&self, i: usize, offset: usize, dst: &mut [u8]) -> Result {
        let page = *self.pages.get(i).ok_or(EINVAL)?;
        match offset.checked_add(dst.len()) {
            Some(end) if end <= PAGE_SIZE => {}
            _ => return Err(EINVAL),
        }
        // SAFETY: By the type invariants we hold a reference or pin on `page`, so it stays
        // allocated and can be mapped; `offset + dst.len() <= PAGE_SIZE` was just checked, and
        // `dst` is valid for writes of `dst.len()` bytes. The page is read by C code only.
        unsafe { bindings::memcpy_from_page(dst.as_mut_ptr(), page, offset, dst.len()) };
        Ok(())
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        if self.pinned {
            // SAFETY: By the type invariants we own a pin on each page of the array.
            unsafe { bindings::unpin_user_pages(self.pages.as_mut_ptr(), self.pages.len()) };
        } else {
            for &page in self.pages.iter() {
                // SAFETY: By the type invariants we own a reference on each page.
                unsafe { bindings::put_page(page) };
            }
        }
    }
}

/// The result of a GUP call that may release the mmap read lock.
#[must_use = "the pages and the lock, if still held, are released when this is dropped"]
pub struct GupResult<'a> {
    /// The pages that were taken: at least one, and at most as many as asked for. The errors:
    /// `EINVAL` and `EOVERFLOW` for a bad range (see [`check_range`]), `EINVAL` for
    /// [`GupFlag::Longterm`] without a pin, `ENOMEM`, `EFAULT` for an address that is not
    /// mapped or an access that the mapping does not allow, `EINTR` if a fatal signal (or any
    /// signal with [`GupFlag::Interruptible`]) ended a wait. Others pass through from GUP, for
    /// example `EEXIST` for a mapping of a page frame without a `struct page`, `EHWPOISON`,
    /// and, with [`GupFlag::Longterm`], `EOPNOTSUPP` on a file system DAX mapping or the error
    /// of a failed migration (`EBUSY`, `ENOMEM`, `EAGAIN`).
    ///
    /// Below a stack VMA (up to 64 KiB under a `VM_GROWSDOWN` mapping), GUP fails with
    /// `EFAULT` and, at most once an hour, logs that it no longer grows the stack, with a stack
    /// dump (not a warning).
    pub pages: Result<Pages>,
    /// The lock, if it was held all along. `None` if GUP released it at least once (to wait
    /// for a fault): GUP then releases it before it returns, whether it could take it again
    /// or not, and every VMA looked up before the call may be gone.
    pub lock: Option<MmapReadGuard<'a>>,
}

type RemoteFn = unsafe extern "C" fn(
    *mut bindings::mm_struct,
    usize,
    usize,
    u32,
    *mut *mut bindings::page,
    *mut crate::ffi::c_int,
) -> isize;

fn alloc_page_array(nr_pages: usize) -> Result<KVec<*mut bindings::page>> {
    KVec::with_capacity(nr_pages, GFP_KERNEL).map_err(|_| ENOMEM)
}

/// Wraps the count or error returned by a GUP call, with `n` entries filled in.
///
/// # Safety
///
/// The first `ret` entries of `pages` (if `ret > 0`) must hold references or pins owned by the
/// caller, as `pinned` says.
unsafe fn gup_result(
    mut pages: KVec<*mut bindings::page>,
    ret: isize,
    pinned: bool,
) -> Result<Pages> {
    if ret < 0 {
        return Err(Error::from_errno(ret as i32));
    }
    if ret == 0 {
        // GUP does not return 0 for the calls made here: `__get_user_pages_locked()` turns no
        // page into `-EFAULT` (with a warning) unless `FOLL_NOWAIT` is set, which `GupFlags`
        // refuses, and `pin_user_pages_unlocked()` returns 0 for arguments that
        // `is_valid_gup_args()` refuses (with a warning), which `GupFlags` and `prepare()` rule
        // out. Should that change, no page is a fault.
        return Err(EFAULT);
    }
    // SAFETY: The C function filled in `ret <= capacity` entries.
    unsafe { pages.set_len(ret as usize) };
    // INVARIANT: As the caller guarantees.
    Ok(Pages { pages, pinned })
}

/// Checks the arguments that GUP would warn about, and allocates the page array.
///
/// `FOLL_LONGTERM` without `FOLL_PIN` is a `WARN_ON_ONCE()` in `is_valid_gup_args()`: refused
/// here with `EINVAL`.
fn prepare(
    start: usize,
    nr_pages: usize,
    flags: GupFlags,
    pin: bool,
) -> Result<KVec<*mut bindings::page>> {
    check_range(start, nr_pages)?;
    if !pin && flags.contains(GupFlag::Longterm) {
        return Err(EINVAL);
    }
    alloc_page_array(nr_pages)
}

fn remote<'a>(
    lock: MmapReadGuard<'a>,
    start: usize,
    nr_pages: usize,
    flags: GupFlags,
    pin: bool,
) -> GupResult<'a> {
    let mut pages = match prepare(start, nr_pages, flags, pin) {
        Ok(p) => p,
        Err(e) => {
            return GupResult {
                pages: Err(e),
                lock: Some(lock),
            }
        }
    };
    let f: RemoteFn = if pin {
        bindings::pin_user_pages_remote
    } else {
        bindings::get_user_pages_remote
    };
    // SAFETY: GUP may release the lock, and reports in `locked` whether it did; a guard owns
    // the lock again below only if `locked` says that it is held.
    let mm = unsafe { lock.into_raw() };
    let mut locked: crate::ffi::c_int = 1;
    // SAFETY: `mm` has users and is read-locked, as `locked == 1` tells GUP; the array has room
    // for `nr_pages` entries; the flags are checked (`GupFlags`, `prepare()`).
    let ret = unsafe {
        f(
            mm.as_raw(),
            start,
            nr_pages,
            flags.bits(),
            pages.as_mut_ptr(),
            &mut locked,
        )
    };
    let lock = if locked != 0 {
        // SAFETY: GUP returned with the lock held (`locked != 0`), and we owned it before the
        // call: the guard takes it over.
        Some(unsafe { MmapReadGuard::from_locked(mm) })
    } else {
        None
    };
    GupResult {
        // SAFETY: GUP filled in `ret` entries, with references (`get_`) or pins (`pin_`), which
        // the caller now owns.
        pages: unsafe { gup_result(pages, ret, pin) },
        lock,
    }
}

/// `get_user_pages_remote()` with a `locked` state: takes a reference on each of the
/// `nr_pages` pages from `start` (page aligned; the range ends exclusive at
/// `start + nr_pages * PAGE_SIZE`) of the address space that `lock` read-locks.
///
/// Needs the mmap read lock, moved in. Faults are retried as often as needed (the lock is
/// released while waiting, and then not handed back). May sleep. [`GupFlag::Longterm`] is
/// refused (`EINVAL`): long-term users must pin. Errors: see [`GupResult::pages`].
pub fn get_user_pages_remote(
    lock: MmapReadGuard<'_>,
    start: usize,
    nr_pages: usize,
    flags: GupFlags,
) -> GupResult<'_> {
    remote(lock, start, nr_pages, flags, false)
}

/// `pin_user_pages_remote()` with a `locked` state: pins each of the `nr_pages` pages from
/// `start` (page aligned; the range ends exclusive) of the address space that `lock`
/// read-locks.
///
/// Needs the mmap read lock, moved in. Faults are retried as often as needed (the lock is
/// released while waiting, and then not handed back). May sleep. Errors: see
/// [`GupResult::pages`].
pub fn pin_user_pages_remote(
    lock: MmapReadGuard<'_>,
    start: usize,
    nr_pages: usize,
    flags: GupFlags,
) -> GupResult<'_> {
    remote(lock, start, nr_pages, flags, true)
}

type UnlockedFn = unsafe extern "C" fn(usize, usize, *mut *mut bindings::page, u32) -> isize;

fn unlocked(start: usize, nr_pages: usize, flags: GupFlags, pin: bool) -> Result<Pages> {
    let mut pages = prepare(start, nr_pages, flags, pin)?;
    let f: UnlockedFn = if pin {
        bindings::pin_user_pages_unlocked
    } else {
        bindings::get_user_pages_unlocked
    };
    // The C function works on `current->mm`, which a kernel thread does not have: it would
    // dereference NULL. `with_current()` runs the call only where there is one, and keeps it
    // from changing meanwhile.
    let ret = MmWithUser::with_current(|_| {
        // SAFETY: The current task has an address space, which the function locks itself (the
        // callers of the public functions must not hold that lock, as documented; a held lock
        // would deadlock, not corrupt); the array has room for `nr_pages` entries; the flags
        // are checked (`GupFlags`, `prepare()`).
        unsafe { f(start, nr_pages, pages.as_mut_ptr(), flags.bits()) }
    })
    .ok_or(EFAULT)?;
    // SAFETY: GUP filled in `ret` entries, with references (`get_`) or pins (`pin_`), which the
    // caller now owns.
    unsafe { gup_result(pages, ret, pin) }
}

/// `get_user_pages_unlocked()`: takes a reference on each of the `nr_pages` pages from `start`
/// of the current task's address space.
///
/// It takes and releases the mmap read lock itself: the caller must not hold it. Faults are
/// retried as often as needed. May sleep. Errors as for [`GupResult::pages`], and `EFAULT` in
/// a kernel thread (no address space).
///
/// # Examples
///
/// ```
/// use kernel::prelude::*;
/// use kernel::mm::{gup::{get_user_pages_unlocked, GupFlags}, MmWithUser};
///
/// // In a kernel thread (as KUnit runs this) there is no user address space to look into.
/// if MmWithUser::with_current(|_| ()).is_none() {
///     let r = get_user_pages_unlocked(0x10000, 1, GupFlags::empty());
///     assert_eq!(r.err(), Some(EFAULT));
/// }
/// ```
pub fn get_user_pages_unlocked(start: usize, nr_pages: usize, flags: GupFlags) -> Result<Pages> {
    unlocked(start, nr_pages, flags, false)
}

/// `pin_user_pages_unlocked()`: pins each of the `nr_pages` pages from `start` of the current
/// task's address space.
///
/// It takes and releases the mmap read lock itself: the caller must not hold it. Faults are
/// retried as often as needed. May sleep. Errors as for [`GupResult::pages`], and `EFAULT` in
/// a kernel thread (no address space).
///
/// # Examples
///
/// ```
/// use kernel::prelude::*;
/// use kernel::mm::{gup::{pin_user_pages_unlocked, GupFlag, GupFlags}, MmWithUser};
///
/// if MmWithUser::with_current(|_| ()).is_none() {
///     let flags = GupFlags::empty().with(GupFlag::Longterm);
///     let r = pin_user_pages_unlocked(0x10000, 1, flags);
///     assert_eq!(r.err(), Some(EFAULT));
/// }
/// ```
pub fn pin_user_pages_unlocked(start: usize, nr_pages: usize, flags: GupFlags) -> Result<Pages> {
    unlocked(start, nr_pages, flags, true)
}

/// Whether [`fixup_user_fault`] kept the mmap read lock all along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relock {
    /// The lock was held throughout.
    Held,
    /// The lock was released and taken again: every VMA looked up before may be gone.
    Retaken,
}

/// [`fixup_user_fault`] failed: why, and whether the lock was released on the way.
///
/// It converts into its [`Error`], so that `?` works in a function that returns
/// `Result<T, Error>`; the `relock` is lost then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixupError {
    /// Why the fault could not be resolved.
    pub error: Error,
    /// Whether the lock was held throughout, or released and taken again before the error.
    pub relock: Relock,
}

impl From<FixupError> for Error {
    #[inline]
    fn from(e: FixupError) -> Error {
        e.error
    }
}

/// `fixup_user_fault()`: resolves a fault at `address` of the address space that `guard`
/// read-locks, as an access with `flags` would (e.g. [`FaultFlag::Write`]).
///
/// Faults are retried as often as needed; the lock may be released meanwhile, but it is held
/// again on return, success or not, and the result says whether it was released
/// ([`Relock::Retaken`]). Because the guard is borrowed mutably, no VMA reference from before
/// the call can be used after it. May sleep.
///
/// `flags` may not contain `ALLOW_RETRY`, `RETRY_NOWAIT`, `TRIED` or `VMA_LOCK` (the function
/// manages retries under the mmap lock): `EINVAL`, with the lock held throughout. Other errors:
/// `EFAULT` for an address that is not mapped or an access the mapping does not allow (a write
/// without `VM_WRITE`, otherwise without `VM_READ`), `ENOMEM`, and `EINTR` if a fatal signal is
/// pending, or with [`FaultFlag::Interruptible`] any signal (`fixup_user_fault()` checks for
/// one before each retry). [`FaultFlag::User`] is refused (`EINVAL`): it is for the arch fault
/// handler alone.
///
/// # Examples
///
/// ```
/// use kernel::prelude::*;
/// use kernel::mm::gup::{FixupError, Relock};
///
/// let e = FixupError { error: EINTR, relock: Relock::Retaken };
/// let plain: Error = e.into();
/// assert_eq!(plain, EINTR);
/// ```
pub fn fixup_user_fault(
    guard: &mut MmapReadGuard<'_>,
    address: usize,
    flags: FaultFlags,
) -> core::result::Result<Relock, FixupError> {
    for f in [
        FaultFlag::AllowRetry,
        FaultFlag::RetryNowait,
        FaultFlag::Tried,
        FaultFlag::VmaLock,
        FaultFlag::User,
    ] {
        if flags.contains(f) {
            return Err(FixupError {
                error: EINVAL,
                relock: Relock::Held,
            });
        }
    }
    let mut unlocked = false;
    // SAFETY: We hold the mm's read lock (the guard), which the function needs and holds again
    // when it returns; `unlocked` is valid for writes; the flags are legal (`FaultFlags`)
    // and without those that the function manages.
    let ret = unsafe {
        bindings::fixup_user_fault(guard.mm().as_raw(), address, flags.bits(), &mut unlocked)
    };
    let relock = if unlocked {
        Relock::Retaken
    } else {
        Relock::Held
    };
    match to_result(ret) {
        Ok(()) => Ok(relock),
        Err(error) => Err(FixupError { error, relock }),
    }
}

/// `gup_signal_pending()`: must a GUP retry loop stop before it retries, and fail with
/// `EINTR` if it has done no page?
///
/// Yes if a fatal signal is pending, or, with `FOLL_INTERRUPTIBLE` in `gup_flags`, any signal.
/// Needs no lock; does not sleep.
#[inline]
pub fn gup_signal_pending(gup_flags: u32) -> bool {
    // SAFETY: `get_current()` returns the running task, which is valid.
    let current = unsafe { bindings::get_current() };
    // SAFETY: `current` is the running task.
    if unsafe { bindings::fatal_signal_pending(current) } != 0 {
        return true;
    }
    if gup_flags & bindings::FOLL_INTERRUPTIBLE == 0 {
        return false;
    }
    // SAFETY: `current` is the running task.
    unsafe { bindings::signal_pending(current) != 0 }
}

/// What a step of a GUP retry loop did with the mmap read lock it was given: the outcome of
/// [`GupWalk::walk`], [`GupWalk::walk_tried`] and [`populate_vma_page_range`].
#[cfg(CONFIG_RUST_GUP_LOOP)]
#[must_use = "a `Held` outcome holds the lock until it is dropped"]
pub enum StepOutcome<L> {
    /// The step kept the lock, handed back in `L`, and returned the value: see each step.
    Held(L, isize),
    /// The step released the lock, to let a fault wait (`VM_FAULT_RETRY`) or because one
    /// completed without it (`VM_FAULT_COMPLETED`), after the given number of pages; every VMA
    /// may be gone.
    Released(usize),
}

/// The rest of a GUP request on one address space: the pages that the page walk
/// (`__get_user_pages()`) still has to do, from [`GupWalk::start`] on, and where their entries
/// go. For the retry loop of `__get_user_pages_locked()` (`CONFIG_RUST_GUP_LOOP`), which gets the
/// request from C; for built-in code only (the walk is not exported).
///
/// Each walk moves the request on by the pages it did, whether it kept the lock or not, so
/// that a retry starts at the page that asked for it.
///
/// # Invariants
///
/// `pages` is null, or valid for writes of `nr_pages` entries; `gup_flags` are the `FOLL_*`
/// flags of a GUP entry point as `__get_user_pages_locked()` passes them on (checked by
/// `is_valid_gup_args()` or set by mm code), with `FOLL_GET` or `FOLL_PIN` if and only if
/// `pages` is not null, and with `MMF_HAS_PINNED` set on `mm` for `FOLL_PIN`.
#[cfg(CONFIG_RUST_GUP_LOOP)]
pub struct GupWalk<'a> {
    mm: &'a MmWithUser,
    start: usize,
    nr_pages: usize,
    pages: *mut *mut bindings::page,
    gup_flags: u32,
}

#[cfg(CONFIG_RUST_GUP_LOOP)]
impl<'a> GupWalk<'a> {
    /// A request for `nr_pages` pages of `mm` from `start` (any address: the walk untags it),
    /// with their entries going to `pages`.
    ///
    /// # Safety
    ///
    /// `pages` must be null, or valid for writes of `nr_pages` entries while the value lives;
    /// `gup_flags` must be as `__get_user_pages_locked()` passes them to `__get_user_pages()`
    /// (the flags of a GUP entry point, with `FOLL_GET` or `FOLL_PIN` if and only if `pages` is
    /// not null); for `FOLL_PIN`, `MMF_HAS_PINNED` must be set on `mm`.
    #[inline]
    pub unsafe fn new(
        mm: &'a MmWithUser,
        start: usize,
        nr_pages: usize,
        pages: *mut *mut bindings::page,
        gup_flags: u32,
    ) -> Self {
        // INVARIANT: As the caller guarantees.
        GupWalk {
            mm,
            start,
            nr_pages,
            pages,
            gup_flags,
        }
    }

    /// The first address still to do.
    #[inline]
    pub fn start(&self) -> usize {
        self.start
    }

    /// How many pages are still to do.
    #[inline]
    pub fn remaining(&self) -> usize {
        self.nr_pages
    }

    /// Walks the pages still to do under `lock`, the mmap read lock of the request's address
    /// space (that of another is refused: `EINVAL` in [`StepOutcome::Held`]).
    ///
    /// [`StepOutcome::Held`]: the walk kept the lock, handed back, and returned the pages it did
    /// (possibly fewer than asked for: with `FOLL_NOWAIT`, 0 where a fault would wait) or, if it
    /// did none, the error of the first page. [`StepOutcome::Released`]: the walk released the
    /// lock (only with `FOLL_UNLOCKABLE`), after the pages given, fewer than asked for. May
    /// sleep.
    ///
    /// # Examples
    ///
    /// The lock given to a walk cannot be released again: a walk that kept it hands it back in
    /// its outcome.
    ///
    /// ```ignore
    /// // compile_fail: E0382 CONFIG_RUST_GUP_LOOP
    /// use kernel::mm::{gup::GupWalk, MmapReadGuard};
    /// fn f<'a>(walk: &mut GupWalk<'a>, lock: MmapReadGuard<'a>) {
    ///     let _ = walk.walk(lock);
    ///     drop(lock);
    /// }
    /// ```
    #[inline]
    pub fn walk(&mut self, lock: MmapReadGuard<'a>) -> StepOutcome<MmapReadGuard<'a>> {
        self.step(lock, self.nr_pages, false)
    }

    /// Walks the first page still to do under `lock`, with `FOLL_TRIED`: the retry of a fault
    /// that returned `VM_FAULT_RETRY`. The outcome is as for [`GupWalk::walk`], for one page.
    /// May sleep.
    #[inline]
    pub fn walk_tried(&mut self, lock: MmapReadGuard<'a>) -> StepOutcome<MmapReadGuard<'a>> {
        self.step(lock, self.nr_pages.min(1), true)
    }

    #[inline(always)]
    fn step(
        &mut self,
        lock: MmapReadGuard<'a>,
        nr_pages: usize,
        tried: bool,
    ) -> StepOutcome<MmapReadGuard<'a>> {
        // The lock of another address space would have the walk pin pages of an mm without
        // MMF_HAS_PINNED. (Where the request and the lock come from the same mm, the compiler
        // drops the test.)
        if !core::ptr::eq(lock.mm(), self.mm) {
            return StepOutcome::Held(lock, EINVAL.to_errno() as isize);
        }
        // SAFETY: The walk may release the lock, and says so in `locked`; a guard owns the lock
        // again below only if `locked` says that it is held.
        let mm = unsafe { lock.into_raw() };
        let mut locked: crate::ffi::c_int = 1;
        // SAFETY: `mm` has users and is read-locked, as `locked == 1` tells the walk; `pages` is
        // null or has room for `self.nr_pages >= nr_pages` entries, and the flags are as the
        // walk takes them (type invariants).
        let ret = unsafe {
            bindings::gup_loop_walk(
                mm.as_raw(),
                self.start,
                nr_pages,
                self.gup_flags,
                tried,
                self.pages,
                &mut locked,
            )
        };
        // The walk did `ret` pages if it returned a count: move on by them. It never does more
        // than asked for; `min()` makes that plain to the compiler.
        let done = if ret > 0 {
            (ret as usize).min(nr_pages)
        } else {
            0
        };
        // INVARIANT: `done <= nr_pages <= self.nr_pages`: what is left of the array still has
        // room for what is left of the request.
        self.nr_pages -= done;
        // The walk itself computes these addresses, as C would; they do not overflow, as GUP's
        // entry points check the range, and the wrapping forms keep overflow checks out.
        self.start = self.start.wrapping_add(done.wrapping_mul(PAGE_SIZE));
        if !self.pages.is_null() {
            self.pages = self.pages.wrapping_add(done);
        }
        if locked == 0 {
            return StepOutcome::Released(done);
        }
        // SAFETY: The walk returned with the lock held (`locked != 0`), which we owned before
        // the call: the guard takes it over.
        StepOutcome::Held(unsafe { MmapReadGuard::from_locked(mm) }, ret as isize)
    }
}

/// `populate_vma_page_range()`: faults in the pages of `[start, end)` of the VMA that `lock`
/// holds, as `mlock()` and `MAP_POPULATE` do (reads, or writes that break COW in a private
/// writable mapping; the pages are mlocked if the VMA is `VM_LOCKED`; a `VM_LOCKONFAULT` VMA is
/// left to its faults, and all its pages count as done). For built-in code: the C function is
/// not exported. Needs the mmap read lock, held by `lock`.
///
/// The fault may release the lock to wait ([`StepOutcome::Released`], with the pages done
/// before, fewer than asked for). Otherwise the lock is handed back in
/// [`StepOutcome::Held`], with the pages done or an error: `EFAULT` for a `PROT_NONE` VMA,
/// `ENOMEM`, `EINTR` for a fatal signal, and the other errors of GUP.
///
/// Refused with `EINVAL`, before anything is done and with the lock handed back: the per-VMA
/// lock (the C function needs the mmap lock: it would warn and release a lock not held), a
/// range that is not page aligned or not inside the VMA (a `VM_BUG_ON()` in C), and an empty
/// one. May sleep.
///
/// # Examples
///
/// No VMA can be used after the call, which may have released the lock:
///
/// ```ignore
/// // compile_fail: E0505 CONFIG_RUST_GUP_LOOP
/// use kernel::mm::{fault::LockedVma, gup::populate_vma_page_range};
/// fn f(lock: LockedVma<'_>) -> usize {
///     let vma = lock.vma();
///     let _ = populate_vma_page_range(lock, 0, 4096);
///     vma.end()
/// }
/// ```
#[cfg(CONFIG_RUST_GUP_LOOP)]
#[inline]
pub fn populate_vma_page_range<'a>(
    lock: LockedVma<'a>,
    start: usize,
    end: usize,
) -> StepOutcome<LockedVma<'a>> {
    let vma = lock.vma();
    if lock.is_vma_lock()
        || start & !PAGE_MASK != 0
        || end & !PAGE_MASK != 0
        || start >= end
        || start < vma.start()
        || end > vma.end()
    {
        return StepOutcome::Held(lock, EINVAL.to_errno() as isize);
    }
    // SAFETY: The function releases the lock or keeps it, as `locked` says; a `LockedVma`
    // owns it again below only if it is kept.
    let (vma, mm) = unsafe { lock.into_raw() };
    let mut locked: crate::ffi::c_int = 1;
    // SAFETY: `vma` is valid and its address space's mmap read lock is held (`mm` is not null:
    // not the per-VMA lock, just checked), as `locked == 1` tells the function; the range is
    // page aligned, not empty and inside the VMA (checked).
    let ret = unsafe { bindings::populate_vma_page_range(vma, start, end, &mut locked) };
    if locked == 0 {
        let nr_pages = (end - start) / PAGE_SIZE;
        return StepOutcome::Released((ret.max(0) as usize).min(nr_pages));
    }
    // SAFETY: `mm` is the address space of `vma` (see `into_raw()`), which has users while
    // the caller's `lock` lifetime lasts.
    let mm = unsafe { MmWithUser::from_raw(mm) };
    // SAFETY: The function returned with the lock held, which we owned before the call.
    let guard = unsafe { MmapReadGuard::from_locked(mm) };
    // SAFETY: `vma` was found under this lock, which was held throughout.
    match unsafe { LockedVma::from_guard(guard, vma) } {
        Ok(lock) => StepOutcome::Held(lock, ret as isize),
        // Not reached: `vma` is not null.
        Err(guard) => {
            drop(guard);
            StepOutcome::Released(0)
        }
    }
}
