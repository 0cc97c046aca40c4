// SPDX-License-Identifier: GPL-2.0

//! GUP's retry loops (`CONFIG_RUST_GUP_LOOP`).
//!
//! `mm/gup.c` calls these in place of its own loops; the C interface is
//! `include/linux/gup_loop.h`. Each step stays in C: the page walk (`__get_user_pages()`),
//! the VMA lookup and permission check of `fixup_user_fault()`, `populate_vma_page_range()`.
//!
//! - [`rust_gup_locked`], the loop of `__get_user_pages_locked()`, which every GUP entry point
//!   with a page walk reaches (all but `populate_vma_page_range()`, below): the
//!   `get`/`pin_user_pages*()` functions, the fallback of GUP-fast,
//!   `MADV_POPULATE_(READ|WRITE)`, `process_vm_readv()`/`writev()`, `/proc/<pid>/mem`, core
//!   dumps. With `FOLL_UNLOCKABLE`, a walk that released the mmap lock for a fault is followed
//!   by the retry of the page that asked for it, with `FOLL_TRIED`, without bound, unless a
//!   fatal signal (or any signal with `FOLL_INTERRUPTIBLE`) is pending or the lock cannot be
//!   taken again; then the rest of the pages.
//! - [`rust_fixup_user_fault`]: look up the VMA, check the signals, `handle_mm_fault()`, and
//!   after `VM_FAULT_RETRY` take the lock again and retry with `FAULT_FLAG_TRIED`.
//! - [`rust_mm_populate`], the loop of `__mm_populate()` (`mlock()`, `MAP_POPULATE`): one VMA
//!   after the other, the lock taken again where populating a VMA released it.
//!
//! The lock rules are types, as in the fault loop: a step takes the mmap read lock by value
//! and hands it back only while it is held ([`StepOutcome`]), so no lock is released twice,
//! no VMA is used after a step released the lock (a VMA is reached only through the lock that
//! holds it), and the caller's lock goes back to the caller only while held.

use kernel::{
    bindings,
    error::code::{EAGAIN, EFAULT, EINTR, EINVAL},
    ffi::c_int,
    mm::{
        fault::{FaultFlag, FaultFlags, FaultOutcome, LockedVma},
        gup::{gup_signal_pending, populate_vma_page_range, GupWalk, StepOutcome},
        virt::flags::{IO, PFNMAP},
        MmWithUser, MmapReadGuard,
    },
    page::PAGE_SIZE,
};

/// A negative errno as `long`.
#[inline(always)]
fn errno(e: kernel::error::Error) -> isize {
    e.to_errno() as isize
}

/// The result of a loop that did `done` pages and then stopped for `ret`: the pages, if any.
#[inline(always)]
fn done_or(done: usize, ret: isize) -> isize {
    if done != 0 {
        done as isize
    } else {
        ret
    }
}

/// The loop of `__get_user_pages_locked()`. See `include/linux/gup_loop.h`.
///
/// # Safety
///
/// `mm` must have users; `locked` must be valid for reads and writes, and `*locked` non-zero
/// only if the caller holds the mmap read lock of `mm`, which it hands over for the call;
/// `pages` must be null or valid for writes of `nr_pages` entries; `gup_flags` must be as
/// `__get_user_pages_locked()` passes them on (`FOLL_GET` or `FOLL_PIN` if and only if `pages`
/// is not null), and `MMF_HAS_PINNED` set on `mm` for `FOLL_PIN`. May sleep.
#[no_mangle]
pub unsafe extern "C" fn rust_gup_locked(
    mm: *mut bindings::mm_struct,
    start: usize,
    nr_pages: usize,
    pages: *mut *mut bindings::page,
    locked: *mut c_int,
    gup_flags: u32,
) -> isize {
    // SAFETY: The caller guarantees that `mm` has users for the call.
    let mm = unsafe { MmWithUser::from_raw(mm) };
    // SAFETY: The caller guarantees that `locked` is valid for reads.
    let caller_holds = unsafe { *locked } != 0;
    let lock = if caller_holds {
        // SAFETY: `*locked != 0`: the caller holds the lock and hands it over; it gets it back
        // below only if it is still held and was never released.
        unsafe { MmapReadGuard::from_locked(mm) }
    } else {
        match mm.mmap_read_lock_killable() {
            Ok(guard) => guard,
            Err(_) => return errno(EAGAIN),
        }
    };
    // SAFETY: As the caller guarantees for `pages` and `gup_flags`, and MMF_HAS_PINNED.
    let mut walk = unsafe { GupWalk::new(mm, start, nr_pages, pages, gup_flags) };
    // The first walk does all there is to do, unless a fault releases the lock to wait.
    let (ret, hand_back) = match walk.walk(lock) {
        // Done, an error, or a fault that could not wait (FOLL_NOWAIT). Without
        // FOLL_UNLOCKABLE nothing releases the lock, so this is the only outcome.
        StepOutcome::Held(guard, ret) => {
            if caller_holds {
                // SAFETY: The caller held the lock when it called, and it is still held,
                // never released: it goes back to the caller, as `*locked == 1` says below.
                let _ = unsafe { guard.into_raw() };
            } else {
                drop(guard);
            }
            (ret, caller_holds)
        }
        StepOutcome::Released(done) => {
            // Once released, the lock is released before the return, whoever took it
            // first: `*locked == 0` below.
            let (ret, guard) = retry_loop(mm, walk, done, gup_flags);
            drop(guard);
            (ret, false)
        }
    };
    // SAFETY: The caller guarantees that `locked` is valid for writes.
    unsafe { *locked = c_int::from(hand_back) };
    ret
}

/// The retries of [`rust_gup_locked`], after a walk released the lock with `done` pages done:
/// the page that asked for it is walked again with `FOLL_TRIED`, as often as it takes, then the
/// rest of the pages; a pending signal, or a lock that cannot be taken again, ends the call.
/// Returns the result and the lock, if it is held again.
///
/// Out of line: only a fault that waited gets here. The request moves in, so that the hot path
/// keeps it in registers and computes where it goes on only on the way here.
#[inline(never)]
fn retry_loop<'a>(
    mm: &'a MmWithUser,
    mut walk: GupWalk<'a>,
    mut done: usize,
    gup_flags: u32,
) -> (isize, Option<MmapReadGuard<'a>>) {
    loop {
        let guard = loop {
            if gup_signal_pending(gup_flags) {
                return (done_or(done, errno(EINTR)), None);
            }
            let guard = match mm.mmap_read_lock_killable() {
                Ok(guard) => guard,
                Err(e) => return (done_or(done, errno(e)), None),
            };
            match walk.walk_tried(guard) {
                // Released again: the fault waited again.
                StepOutcome::Released(n) => done = done.wrapping_add(n),
                StepOutcome::Held(guard, 1) => {
                    done = done.wrapping_add(1);
                    if walk.remaining() == 0 {
                        return (done as isize, Some(guard));
                    }
                    break guard;
                }
                StepOutcome::Held(guard, ret) => return (done_or(done, ret), Some(guard)),
            }
        };
        // The rest of the pages, under the lock taken again.
        match walk.walk(guard) {
            StepOutcome::Held(guard, ret) => {
                if ret > 0 {
                    done = done.wrapping_add(ret as usize);
                }
                return (done_or(done, ret), Some(guard));
            }
            StepOutcome::Released(n) => done = done.wrapping_add(n),
        }
    }
}

/// The loop of `fixup_user_fault()`. See `include/linux/gup_loop.h`.
///
/// # Safety
///
/// `mm` must be valid for the call, and the caller must hold its mmap read lock, which it
/// hands over for the call and holds again on return; `unlocked` must be null or valid for
/// writes. May sleep.
///
/// The callers of `fixup_user_fault()` keep `mm`'s users, but one (`kernel/trace/`'s user
/// events) keeps only its `mmgrab()` reference: while the lock is released, the last user may
/// go. What the loop does with `mm` (its lock, the VMA lookup, a fault on a VMA found under
/// the lock) is valid with that reference too.
#[no_mangle]
pub unsafe extern "C" fn rust_fixup_user_fault(
    mm: *mut bindings::mm_struct,
    address: usize,
    fault_flags: u32,
    unlocked: *mut bool,
) -> c_int {
    // SAFETY: The caller guarantees that `mm` is valid for the call; it had users when the
    // caller found it, and the loop uses only what stays valid without them (see above).
    let mm = unsafe { MmWithUser::from_raw(mm) };
    // SAFETY: The caller holds the lock and hands it over; it gets it back below.
    let guard = unsafe { MmapReadGuard::from_locked(mm) };
    // The flags come from any caller of an exported function: an illegal combination, or the
    // flags that only the fault handler (USER, VMA_LOCK) or this loop (RETRY_NOWAIT would make
    // it take the lock it holds) may set, is refused.
    let flags = match FaultFlags::new(fault_flags) {
        Ok(flags)
            if !flags.contains(FaultFlag::User)
                && !flags.contains(FaultFlag::VmaLock)
                && !flags.contains(FaultFlag::RetryNowait) =>
        {
            flags
        }
        _ => {
            // SAFETY: The lock is held (`guard`), and the caller owns it again on return.
            let _ = unsafe { guard.into_raw() };
            return EINVAL.to_errno();
        }
    };
    let (ret, guard, retaken) = fixup_loop(mm, guard, address, flags);
    if retaken && !unlocked.is_null() {
        // SAFETY: `unlocked` is not null, so valid for writes (the caller's guarantee).
        unsafe { *unlocked = true };
    }
    // SAFETY: The lock is held (`guard`), and the caller owns it again on return.
    let _ = unsafe { guard.into_raw() };
    ret
}

/// The retries of [`rust_fixup_user_fault`]: returns its result, the lock, held, and whether it
/// was released and taken again.
#[inline(always)]
fn fixup_loop<'a>(
    mm: &'a MmWithUser,
    mut guard: MmapReadGuard<'a>,
    address: usize,
    mut flags: FaultFlags,
) -> (c_int, MmapReadGuard<'a>, bool) {
    let mut retaken = false;
    loop {
        // SAFETY: `guard` holds the mmap read lock of `mm`, which the lookup needs.
        let vma = unsafe { bindings::gup_loop_fault_vma(mm.as_raw(), address, flags.bits()) };
        // SAFETY: `vma` is null or was just found under `guard`.
        let lock = match unsafe { LockedVma::from_guard(guard, vma) } {
            Ok(lock) => lock,
            Err(guard) => return (EFAULT.to_errno(), guard, retaken),
        };
        if (flags.contains(FaultFlag::Killable) && fatal_signal_pending())
            || (flags.contains(FaultFlag::Interruptible) && signal_pending())
        {
            return (EINTR.to_errno(), mmap_guard(mm, lock), retaken);
        }
        // SAFETY: The VMA was looked up by `address`, and permits the access
        // (`vma_permits_fault()`: a write needs VM_WRITE, and so has VM_MAYWRITE); the flags
        // have no VMA_LOCK and no USER (refused in `rust_fixup_user_fault()`).
        match unsafe { lock.handle_mm_fault_unchecked(address, flags, None) } {
            // VM_FAULT_RETRY or VM_FAULT_COMPLETED: the lock is gone. Take it again, as the
            // caller holds it on return.
            FaultOutcome::Released(result) => {
                guard = mm.mmap_read_lock();
                retaken = true;
                if result.is_completed() {
                    return (0, guard, retaken);
                }
                flags = flags.tried();
            }
            FaultOutcome::Locked(lock, result) => {
                let ret = if result.is_error() {
                    // An error without an errno (VM_FAULT_FALLBACK alone) does not come back
                    // from handle_mm_fault(); C would BUG().
                    result.to_errno().unwrap_or(EFAULT).to_errno()
                } else {
                    0
                };
                return (ret, mmap_guard(mm, lock), retaken);
            }
        }
    }
}

/// The mmap read lock of a [`LockedVma`] found under it, kept. (Were it the per-VMA lock, that
/// would be released and the mmap read lock taken.)
#[inline(always)]
fn mmap_guard<'a>(mm: &'a MmWithUser, lock: LockedVma<'a>) -> MmapReadGuard<'a> {
    match lock.into_mmap_guard() {
        Some(guard) => guard,
        None => mm.mmap_read_lock(),
    }
}

#[inline(always)]
fn fatal_signal_pending() -> bool {
    // SAFETY: `get_current()` returns the running task, which is valid.
    let current = unsafe { bindings::get_current() };
    // SAFETY: `current` is the running task.
    unsafe { bindings::fatal_signal_pending(current) != 0 }
}

#[inline(always)]
fn signal_pending() -> bool {
    // SAFETY: `get_current()` returns the running task, which is valid.
    let current = unsafe { bindings::get_current() };
    // SAFETY: `current` is the running task.
    unsafe { bindings::signal_pending(current) != 0 }
}

/// The loop of `__mm_populate()`. See `include/linux/gup_loop.h`.
///
/// # Safety
///
/// `mm` must be the address space of the current task, with users; `start` and `end` page
/// aligned; the caller must hold no mmap lock. May sleep.
#[no_mangle]
pub unsafe extern "C" fn rust_mm_populate(
    mm: *mut bindings::mm_struct,
    start: usize,
    end: usize,
    ignore_errors: bool,
) -> c_int {
    // SAFETY: The caller guarantees that `mm` has users for the call.
    let mm = unsafe { MmWithUser::from_raw(mm) };
    // The lock, with the VMA last found under it; `None` once a step released it.
    let mut held: Option<LockedVma<'_>> = None;
    let mut nstart = start;
    let mut ret: isize = 0;
    while nstart < end {
        let found = match held.take() {
            None => LockedVma::find_intersection(mm.mmap_read_lock(), nstart, end),
            Some(lock) if nstart >= lock.vma().end() => {
                let from = lock.vma().end();
                LockedVma::find_intersection(mmap_guard(mm, lock), from, end)
            }
            Some(lock) => Ok(lock),
        };
        // No VMA left in the range: done (the guard, dropped, releases the lock).
        let Ok(lock) = found else { break };
        let vma = lock.vma();
        let nend = end.min(vma.end());
        if vma.flags() & (IO | PFNMAP) != 0 {
            held = Some(lock);
            nstart = nend;
            continue;
        }
        nstart = nstart.max(vma.start());
        let n = match populate_vma_page_range(lock, nstart, nend) {
            StepOutcome::Held(lock, n) => {
                held = Some(lock);
                n
            }
            // Released to let a fault wait: the next round takes the lock again.
            StepOutcome::Released(n) => n as isize,
        };
        if n < 0 {
            if ignore_errors {
                // On with the next VMA.
                ret = 0;
                nstart = nend;
                continue;
            }
            ret = n;
            break;
        }
        nstart = nstart.wrapping_add((n as usize).wrapping_mul(PAGE_SIZE));
        ret = 0;
    }
    drop(held);
    ret as c_int
}
