/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The arch-independent part of the user page-fault loop, in Rust
 * (mm/fault_loop.rs, CONFIG_RUST_FAULT_LOOP).
 *
 * An arch fault handler fills in a struct fault_loop after its own early
 * checks (kernel addresses, faulthandler_disabled(), no mm, ...) and calls
 * rust_fault_loop(). The loop tries the per-VMA lock first (user faults), then
 * lock_mm_and_find_vma(), runs the arch's access check, calls
 * handle_mm_fault(), answers pending signals as fault_signal_pending() says,
 * retries VM_FAULT_RETRY with FAULT_FLAG_TRIED without bound, and unlocks.
 * What is left to the arch is said by the result. The arch keeps its own
 * reporting: bad area, SIGBUS, OOM and kernel exception fixup.
 *
 * See Documentation/mm/rust-fault-loop.rst.
 */
#ifndef _LINUX_FAULT_LOOP_H
#define _LINUX_FAULT_LOOP_H

#include <linux/mm_types.h>

struct pt_regs;

/**
 * struct fault_loop - one user page fault
 * @regs: the registers of the faulting context
 * @address: the faulting address
 * @hw_error: the arch's error code, handed back to the arch hooks
 * @flags: the FAULT_FLAG_* of the first attempt (FAULT_FLAG_DEFAULT plus
 *	USER, WRITE, INSTRUCTION as the arch decoded them)
 * @user_mode: whether the fault came from user mode (user_mode(regs))
 */
struct fault_loop {
	struct pt_regs *regs;
	unsigned long address;
	unsigned long hw_error;
	unsigned int flags;
	bool user_mode;
};

/**
 * enum fault_loop_result - what is left for the arch after rust_fault_loop()
 * @FAULT_LOOP_DONE: nothing: the fault was handled or completed, or it
 *	returns to user mode to handle a signal.
 * @FAULT_LOOP_REPORTED: nothing: arch_fault_bad_access() reported the fault.
 * @FAULT_LOOP_NO_VMA: no VMA at the address; no lock is held
 *	(bad_area_nosemaphore() on x86).
 * @FAULT_LOOP_KERNEL_SIGNAL: a kernel-mode fault was interrupted by a
 *	pending signal; no lock is held (exception fixup or oops).
 * @FAULT_LOOP_ERROR: the fault ended with VM_FAULT_ERROR bits, stored in
 *	*@fault; no lock is held (OOM, SIGBUS, SIGSEGV dispatch).
 */
enum fault_loop_result {
	FAULT_LOOP_DONE,
	FAULT_LOOP_REPORTED,
	FAULT_LOOP_NO_VMA,
	FAULT_LOOP_KERNEL_SIGNAL,
	FAULT_LOOP_ERROR,
};

/*
 * Arch hooks, implemented by each arch that selects ARCH_HAS_RUST_FAULT_LOOP.
 *
 * arch_fault_access_error(): whether @vma does not allow the access of @fl.
 * Called with the mmap or VMA read lock held; does not change it.
 *
 * arch_fault_bad_access(): reports a bad access to @vma and releases the
 * lock it is called with: the mmap read lock of @mm, or the VMA read lock of
 * @vma if @mm is NULL.
 */
bool arch_fault_access_error(struct fault_loop *fl, struct vm_area_struct *vma);
void arch_fault_bad_access(struct fault_loop *fl, struct vm_area_struct *vma,
			   struct mm_struct *mm);

/* Needs current->mm != NULL. May sleep. */
enum fault_loop_result rust_fault_loop(struct fault_loop *fl, vm_fault_t *fault);

#endif /* _LINUX_FAULT_LOOP_H */
