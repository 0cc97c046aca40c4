// SPDX-License-Identifier: GPL-2.0

//! The arch-independent part of the user page-fault loop (`CONFIG_RUST_FAULT_LOOP`).
//!
//! The C interface, and what stays in the arch, is in `include/linux/fault_loop.h`. The steps
//! are those of the C loops of 6.12 (x86's `do_user_addr_fault()`):
//!
//! 1. for a user fault, the per-VMA lock first (`lock_vma_under_rcu()`);
//! 2. otherwise, or if that asked for a retry, `lock_mm_and_find_vma()` (or the arch's own
//!    lookup without `CONFIG_LOCK_MM_AND_FIND_VMA`: um);
//! 3. the arch's access check;
//! 4. `handle_mm_fault()`;
//! 5. on `VM_FAULT_RETRY`, `fault_signal_pending()`: return to user mode for any signal, to the
//!    exception fixup for a fatal one in kernel mode (a kernel-mode fault does not wait
//!    interruptibly, so other signals do not make it spin);
//! 6. `VM_FAULT_COMPLETED`: done, the lock is already released;
//! 7. `VM_FAULT_RETRY`: again with `FAULT_FLAG_TRIED`, without bound;
//! 8. unlock;
//! 9. hand any `VM_FAULT_ERROR` to the arch.
//!
//! The lock rules are those of [`kernel::mm::fault`]: the guard moves into
//! `handle_mm_fault()` and comes back only while it is held, so a released lock is never
//! released again and the VMA is never touched after a retry.

use kernel::{
    bindings,
    mm::{
        fault::{
            fault_signal_pending, FaultFlag, FaultFlags, FaultOutcome, LockedVma, PtRegs,
            VmFaultResult,
        },
        MmWithUser,
    },
};

type LoopResult = bindings::fault_loop_result;

const DONE: LoopResult = bindings::fault_loop_result_FAULT_LOOP_DONE;
const BAD_ACCESS: LoopResult = bindings::fault_loop_result_FAULT_LOOP_BAD_ACCESS;
const NO_VMA: LoopResult = bindings::fault_loop_result_FAULT_LOOP_NO_VMA;
const KERNEL_SIGNAL: LoopResult = bindings::fault_loop_result_FAULT_LOOP_KERNEL_SIGNAL;
const ERROR: LoopResult = bindings::fault_loop_result_FAULT_LOOP_ERROR;

/// The result for the arch: `code` is 0 unless the result says otherwise.
#[inline(always)]
fn ret(result: LoopResult, code: i32) -> bindings::fault_loop_ret {
    bindings::fault_loop_ret { result, code }
}

/// One user page fault, as the arch describes it.
#[derive(Clone, Copy)]
struct Fault<'a> {
    regs: Option<&'a PtRegs>,
    address: usize,
    hw_error: usize,
    user_mode: bool,
}

/// The per-VMA lock events that the loop counts (`count_vm_vma_lock_event()`); they exist
/// only with `CONFIG_PER_VMA_LOCK_STATS`.
#[cfg(CONFIG_PER_VMA_LOCK)]
#[derive(Clone, Copy)]
enum VmaLockEvent {
    Success,
    Retry,
}

#[cfg(CONFIG_PER_VMA_LOCK)]
#[inline(always)]
fn count_vma_lock_event(event: VmaLockEvent) {
    #[cfg(CONFIG_PER_VMA_LOCK_STATS)]
    {
        let item = match event {
            VmaLockEvent::Success => bindings::vm_event_item_VMA_LOCK_SUCCESS,
            VmaLockEvent::Retry => bindings::vm_event_item_VMA_LOCK_RETRY,
        };
        // SAFETY: Counting an event has no requirement.
        unsafe { bindings::count_vm_vma_lock_event(item) };
    }
    #[cfg(not(CONFIG_PER_VMA_LOCK_STATS))]
    let _ = event;
}

/// Step 3: runs the access check of the arch. If the access is bad, reports it, which
/// releases the lock, and returns what the arch hook returned.
#[inline(always)]
fn check_access<'a>(
    f: &Fault<'_>,
    flags: FaultFlags,
    lock: LockedVma<'a>,
) -> Result<LockedVma<'a>, i32> {
    // SAFETY: The VMA is valid and locked by `lock`; the hook only reads it.
    if !unsafe { bindings::arch_fault_access_error(lock.vma().as_ptr(), f.hw_error, flags.bits()) }
    {
        return Ok(lock);
    }
    // SAFETY: The lock goes to the arch hook just below, which releases it.
    let (vma, mm) = unsafe { lock.into_raw() };
    let regs = f.regs.map_or(core::ptr::null_mut(), |r| r.as_ptr());
    // SAFETY: The arch hook takes over the lock (the mmap read lock of `mm`, or the VMA's lock
    // if `mm` is null) and releases it; `vma` is valid while it is held; `regs` is null or the
    // registers of this fault.
    Err(unsafe { bindings::arch_fault_bad_access(regs, f.address, f.hw_error, vma, mm) })
}

/// Step 2: the mmap read lock and the VMA that contains the address.
#[inline(always)]
fn lock_mm_and_find_vma<'a>(
    f: &Fault<'_>,
    mm: &'a MmWithUser,
    flags: FaultFlags,
) -> Option<LockedVma<'a>> {
    // The C function directly, not the kernel crate's wrapper, which is not inlined.
    #[cfg(CONFIG_LOCK_MM_AND_FIND_VMA)]
    {
        let _ = flags;
        let regs = f.regs.map_or(core::ptr::null_mut(), |r| r.as_ptr());
        // SAFETY: This is the fault handler of the current task, `mm` its address space (the
        // contract of `rust_fault_loop()`), and `regs` null or the fault's registers.
        let vma = unsafe { bindings::lock_mm_and_find_vma(mm.as_raw(), f.address, regs) };
        // SAFETY: `lock_mm_and_find_vma()` returns null, or a VMA of `mm` with its mmap read
        // lock held, which it hands over.
        unsafe { LockedVma::from_raw_mmap_locked(mm, vma) }
    }
    #[cfg(not(CONFIG_LOCK_MM_AND_FIND_VMA))]
    {
        // SAFETY: This is the fault handler of the current task and `mm` its address space;
        // the hook may be called with any address and the fault's flags.
        let vma = unsafe {
            bindings::arch_fault_lock_mm_and_find_vma(mm.as_raw(), f.address, flags.bits())
        };
        // SAFETY: The arch hook returns null, or a VMA of `mm` with its mmap read lock held,
        // which it hands over.
        unsafe { LockedVma::from_raw_mmap_locked(mm, vma) }
    }
}

/// Step 9: an error goes to the arch.
#[inline(always)]
fn finish(result: VmFaultResult) -> bindings::fault_loop_ret {
    if result.is_error() {
        ret(ERROR, result.bits() as i32)
    } else {
        ret(DONE, 0)
    }
}

/// A fault that a pending signal ends: back to user mode, or to the exception fixup.
#[inline(always)]
fn interrupted(f: &Fault<'_>) -> bindings::fault_loop_ret {
    ret(if f.user_mode { DONE } else { KERNEL_SIGNAL }, 0)
}

/// The user page-fault loop. See `include/linux/fault_loop.h`.
///
/// # Safety
///
/// `mm` must be the `mm` of the current task, not null; `regs` must be null or the registers
/// of the fault; `flags` must be legal, without `FAULT_FLAG_VMA_LOCK` or
/// `FAULT_FLAG_RETRY_NOWAIT`; the caller must be in the fault handler of the current task, with
/// no mmap or VMA lock held.
#[no_mangle]
pub unsafe extern "C" fn rust_fault_loop(
    mm: *mut bindings::mm_struct,
    regs: *mut bindings::pt_regs,
    address: usize,
    hw_error: usize,
    flags: u32,
    user_mode: bool,
) -> bindings::fault_loop_ret {
    let f = Fault {
        // SAFETY: The caller guarantees `regs` is null or the registers of this fault.
        regs: (!regs.is_null()).then(|| unsafe { PtRegs::from_raw(regs) }),
        address,
        hw_error,
        user_mode,
    };
    // SAFETY: The caller guarantees a legal combination.
    let mut flags = unsafe { FaultFlags::from_raw_unchecked(flags) };
    // SAFETY: The caller guarantees `mm` is current's, with users during this fault.
    let mm = unsafe { MmWithUser::from_raw(mm) };

    if let Some(result) = vma_lock_fault(&f, mm, &mut flags) {
        return result;
    }
    mmap_loop(f, mm, flags)
}

/// Step 1: a user fault under the per-VMA lock. Returns `None` to go on under the mmap
/// lock, with `FAULT_FLAG_TRIED` added to `flags` after a major retry.
#[cfg(CONFIG_PER_VMA_LOCK)]
#[inline(always)]
fn vma_lock_fault(
    f: &Fault<'_>,
    mm: &MmWithUser,
    flags: &mut FaultFlags,
) -> Option<bindings::fault_loop_ret> {
    if !flags.contains(FaultFlag::User) {
        return None;
    }
    // SAFETY: `mm` has users (the contract of `rust_fault_loop()`); any address is accepted.
    let vma = unsafe { bindings::lock_vma_under_rcu(mm.as_raw(), f.address) };
    // SAFETY: A VMA that `lock_vma_under_rcu()` returns comes with its read lock, which is
    // handed over here; its address space, `mm`, has users during the fault.
    let lock = unsafe { LockedVma::from_raw_vma_locked(vma) }?;
    let lock = match check_access(f, *flags, lock) {
        Ok(lock) => lock,
        Err(code) => {
            count_vma_lock_event(VmaLockEvent::Success);
            return Some(ret(BAD_ACCESS, code));
        }
    };
    // SAFETY: The VMA was found by the address; the caller's flags have no VMA_LOCK or
    // RETRY_NOWAIT; the arch's access check passed, so a write fault has VM_WRITE (and so
    // VM_MAYWRITE: the kernel never sets one without the other); this is the arch fault
    // handler, which handles VM_FAULT_OOM (FAULT_FLAG_USER).
    let result = match unsafe { lock.handle_mm_fault_unchecked(f.address, *flags, f.regs) } {
        FaultOutcome::Locked(lock, result) => {
            lock.unlock();
            result
        }
        FaultOutcome::Released(result) => result,
    };
    if !result.is_retry() {
        count_vma_lock_event(VmaLockEvent::Success);
        return Some(finish(result));
    }
    count_vma_lock_event(VmaLockEvent::Retry);
    if result.is_major() {
        *flags = flags.tried();
    }
    if fault_signal_pending(result, f.user_mode) {
        return Some(interrupted(f));
    }
    None
}

/// Without per-VMA locks (um, LoongArch, or `!CONFIG_SMP`), every fault takes the mmap lock.
#[cfg(not(CONFIG_PER_VMA_LOCK))]
#[inline(always)]
fn vma_lock_fault(
    _f: &Fault<'_>,
    _mm: &MmWithUser,
    _flags: &mut FaultFlags,
) -> Option<bindings::fault_loop_ret> {
    None
}

/// Steps 2 to 9, under the mmap read lock. With per-VMA locks, out of line: only the first
/// attempt of a kernel fault, a VMA lock miss, or a retry gets here. Without them every fault
/// does, and it is inlined.
#[cfg_attr(CONFIG_PER_VMA_LOCK, inline(never))]
#[cfg_attr(not(CONFIG_PER_VMA_LOCK), inline(always))]
fn mmap_loop(f: Fault<'_>, mm: &MmWithUser, mut flags: FaultFlags) -> bindings::fault_loop_ret {
    let f = &f;
    // Only a fault that returns to user mode for a signal may wait interruptibly: a
    // kernel-mode fault is retried until it is resolved or a fatal signal arrives, and an
    // interruptible wait would return at once, again and again, while a signal is pending.
    // (handle_mm_fault() does the same for faults with regs; um has none.) Not needed
    // before: the per-VMA lock path takes only user faults.
    if !f.user_mode {
        flags = flags.without(FaultFlag::Interruptible).unwrap_or(flags);
    }
    loop {
        let Some(lock) = lock_mm_and_find_vma(f, mm, flags) else {
            return ret(NO_VMA, 0);
        };
        let lock = match check_access(f, flags, lock) {
            Ok(lock) => lock,
            Err(code) => return ret(BAD_ACCESS, code),
        };
        // SAFETY: The VMA was looked up by the address; the flags have no VMA_LOCK; the arch's
        // access check passed, so a write fault has VM_WRITE (and so VM_MAYWRITE); this is the
        // arch fault handler, which handles VM_FAULT_OOM (FAULT_FLAG_USER).
        match unsafe { lock.handle_mm_fault_unchecked(f.address, flags, f.regs) } {
            FaultOutcome::Released(result) => {
                if fault_signal_pending(result, f.user_mode) {
                    return interrupted(f);
                }
                if result.is_completed() {
                    return ret(DONE, 0);
                }
                // VM_FAULT_RETRY: the lock is gone; again, without bound.
                flags = flags.tried();
            }
            FaultOutcome::Locked(lock, result) => {
                lock.unlock();
                return finish(result);
            }
        }
    }
}
