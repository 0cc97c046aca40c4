// SPDX-License-Identifier: GPL-2.0

//! The arch-independent part of the user page-fault loop (`CONFIG_RUST_FAULT_LOOP`).
//!
//! The C interface, and what stays in the arch, is in `include/linux/fault_loop.h`. The steps
//! are those of the C loops of 6.12 (x86's `do_user_addr_fault()`):
//!
//! 1. for a user fault, the per-VMA lock first (`lock_vma_under_rcu()`);
//! 2. otherwise, or if that asked for a retry, `lock_mm_and_find_vma()`;
//! 3. the arch's access check;
//! 4. `handle_mm_fault()`;
//! 5. on `VM_FAULT_RETRY`, `fault_signal_pending()`: return to user mode for any signal, to the
//!    exception fixup for a fatal one in kernel mode;
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
        fault::{fault_signal_pending, FaultFlag, FaultFlags, FaultOutcome, LockedVma, PtRegs},
        MmWithUser,
    },
};

type LoopResult = bindings::fault_loop_result;

const DONE: LoopResult = bindings::fault_loop_result_FAULT_LOOP_DONE;
const REPORTED: LoopResult = bindings::fault_loop_result_FAULT_LOOP_REPORTED;
const NO_VMA: LoopResult = bindings::fault_loop_result_FAULT_LOOP_NO_VMA;
const KERNEL_SIGNAL: LoopResult = bindings::fault_loop_result_FAULT_LOOP_KERNEL_SIGNAL;
const ERROR: LoopResult = bindings::fault_loop_result_FAULT_LOOP_ERROR;

/// The per-VMA lock events that the loop counts (`count_vm_vma_lock_event()`); they exist
/// only with `CONFIG_PER_VMA_LOCK_STATS`.
#[derive(Clone, Copy)]
enum VmaLockEvent {
    Success,
    Retry,
}

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

/// Runs the access check of the arch; if the access is bad, reports it (which releases the
/// lock) and returns `true`.
#[inline(always)]
fn bad_access<'a>(fl: &mut bindings::fault_loop, lock: LockedVma<'a>) -> Result<LockedVma<'a>, ()> {
    // SAFETY: `fl` is the caller's; the VMA is valid and locked by `lock`.
    if !unsafe { bindings::arch_fault_access_error(fl, lock.vma().as_ptr()) } {
        return Ok(lock);
    }
    let (vma, mm) = lock.into_raw();
    // SAFETY: The arch hook takes over the lock (mmap read lock of `mm`, VMA lock if null).
    unsafe { bindings::arch_fault_bad_access(fl, vma, mm) };
    Err(())
}

/// The user page-fault loop. See `include/linux/fault_loop.h`.
///
/// # Safety
///
/// `fl` and `fault` must be valid; `fl->regs` must be the registers of the fault; the caller
/// must be in the fault handler of the current task, whose `mm` is not null, with no mmap or
/// VMA lock held.
#[no_mangle]
pub unsafe extern "C" fn rust_fault_loop(
    fl: *mut bindings::fault_loop,
    fault: *mut bindings::vm_fault_t,
) -> LoopResult {
    // SAFETY: The caller guarantees `fl` is valid and ours for the call.
    let fl = unsafe { &mut *fl };
    let address = fl.address;
    let user_mode = fl.user_mode;
    // SAFETY: The caller guarantees `regs` are the registers of this fault.
    let regs = unsafe { PtRegs::from_raw(fl.regs) };
    let Ok(mut flags) = FaultFlags::new(fl.flags) else {
        return NO_VMA;
    };
    // SAFETY: The caller guarantees current has an mm, with users while it runs this fault.
    let mm = unsafe { MmWithUser::from_raw((*bindings::get_current()).mm) };

    if flags.contains(FaultFlag::User) {
        if let Some(guard) = mm.lock_vma_under_rcu(address) {
            let lock = match bad_access(fl, LockedVma::from_vma_guard(guard)) {
                Ok(lock) => lock,
                Err(()) => {
                    count_vma_lock_event(VmaLockEvent::Success);
                    return REPORTED;
                }
            };
            let result = match lock.handle_mm_fault(address, flags, Some(regs)) {
                Ok(FaultOutcome::Locked(lock, result)) => {
                    drop(lock);
                    result
                }
                Ok(FaultOutcome::Released(result)) => result,
                // The address is in the VMA and the flags go with the VMA lock: the refusal
                // cannot happen; take the mmap lock path.
                Err(refused) => {
                    drop(refused);
                    return mmap_loop(fl, mm, regs, flags, fault);
                }
            };
            if !result.is_retry() {
                count_vma_lock_event(VmaLockEvent::Success);
                return finish(result, fault);
            }
            count_vma_lock_event(VmaLockEvent::Retry);
            if result.is_major() {
                flags = flags.tried();
            }
            if fault_signal_pending(result, user_mode) {
                return if user_mode { DONE } else { KERNEL_SIGNAL };
            }
        }
    }
    mmap_loop(fl, mm, regs, flags, fault)
}

/// Steps 2 to 9, under the mmap read lock.
#[inline(always)]
fn mmap_loop(
    fl: &mut bindings::fault_loop,
    mm: &MmWithUser,
    regs: &PtRegs,
    mut flags: FaultFlags,
    fault: *mut bindings::vm_fault_t,
) -> LoopResult {
    let address = fl.address;
    let user_mode = fl.user_mode;
    loop {
        let Some(lock) = mm.lock_mm_and_find_vma(address, Some(regs)) else {
            return NO_VMA;
        };
        let Ok(lock) = bad_access(fl, lock) else {
            return REPORTED;
        };
        match lock.handle_mm_fault(address, flags, Some(regs)) {
            Ok(FaultOutcome::Released(result)) => {
                if fault_signal_pending(result, user_mode) {
                    return if user_mode { DONE } else { KERNEL_SIGNAL };
                }
                if result.is_completed() {
                    return DONE;
                }
                // VM_FAULT_RETRY: the lock is gone; again, without bound.
                flags = flags.tried();
            }
            Ok(FaultOutcome::Locked(lock, result)) => {
                drop(lock);
                return finish(result, fault);
            }
            Err(refused) => {
                // Cannot happen: `lock_mm_and_find_vma()` found a VMA that contains the
                // address, and the flags were built for the mmap lock.
                drop(refused);
                return NO_VMA;
            }
        }
    }
}

#[inline(always)]
fn finish(
    result: kernel::mm::fault::VmFaultResult,
    fault: *mut bindings::vm_fault_t,
) -> LoopResult {
    if !result.is_error() {
        return DONE;
    }
    // SAFETY: The caller of `rust_fault_loop` guarantees `fault` is valid.
    unsafe { *fault = result.bits() };
    ERROR
}
