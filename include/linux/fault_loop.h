/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The arch-independent part of the user page-fault loop, in Rust
 * (mm/fault_loop.rs, CONFIG_RUST_FAULT_LOOP).
 *
 * An arch fault handler calls rust_fault_loop() after its own early checks
 * (kernel addresses, faulthandler_disabled(), no mm, ...). The loop tries
 * the per-VMA lock first (user faults), then lock_mm_and_find_vma() (or the
 * arch's own lookup, for archs without CONFIG_LOCK_MM_AND_FIND_VMA), runs
 * the arch's access check, calls handle_mm_fault(), answers pending signals
 * as fault_signal_pending() says, retries VM_FAULT_RETRY with
 * FAULT_FLAG_TRIED without bound, and unlocks.
 * What is left to the arch is said by the result. The arch keeps its own
 * reporting: bad area, SIGBUS, OOM and kernel exception fixup.
 *
 * See Documentation/mm/rust-fault-loop.rst.
 */
#ifndef _LINUX_FAULT_LOOP_H
#define _LINUX_FAULT_LOOP_H

#include <linux/jump_label.h>
#include <linux/mm_types.h>

struct pt_regs;

/**
 * enum fault_loop_result - what is left for the arch after rust_fault_loop()
 * @FAULT_LOOP_DONE: nothing: the fault was handled or completed, or it
 *	returns to user mode to handle a signal.
 * @FAULT_LOOP_BAD_ACCESS: the access check failed and
 *	arch_fault_bad_access() was called, which released the lock; @code is
 *	what it returned (x86 and riscv report in the hook; arm64 continues at
 *	its bad_area label with the si_code and pkey that @code encodes).
 * @FAULT_LOOP_NO_VMA: no VMA at the address; no lock is held
 *	(bad_area_nosemaphore() on x86, SEGV_MAPERR).
 * @FAULT_LOOP_KERNEL_SIGNAL: a kernel-mode fault was interrupted by a
 *	fatal signal; no lock is held (exception fixup or oops).
 * @FAULT_LOOP_ERROR: the fault ended with the VM_FAULT_ERROR bits in @code;
 *	no lock is held (OOM, SIGBUS, SIGSEGV dispatch).
 */
enum fault_loop_result {
	FAULT_LOOP_DONE,
	FAULT_LOOP_BAD_ACCESS,
	FAULT_LOOP_NO_VMA,
	FAULT_LOOP_KERNEL_SIGNAL,
	FAULT_LOOP_ERROR,
};

/**
 * struct fault_loop_ret - the result of rust_fault_loop(), in registers
 * @result: what is left for the arch
 * @code: the VM_FAULT_* bits of FAULT_LOOP_ERROR, or the value of
 *	arch_fault_bad_access() for FAULT_LOOP_BAD_ACCESS; 0 otherwise
 */
struct fault_loop_ret {
	enum fault_loop_result result;
	int code;
};

/*
 * Arch hooks, implemented by each arch that selects ARCH_HAS_RUST_FAULT_LOOP.
 * @hw_error is the arch's own value, passed through from rust_fault_loop():
 * the error code, or whatever the access check needs.
 *
 * arch_fault_access_error(): whether @vma does not allow the access. Called
 * with the mmap or VMA read lock held; does not change it. A write fault
 * (FAULT_FLAG_WRITE in @flags) must be refused without VM_WRITE, as
 * handle_mm_fault() warns about other write faults.
 *
 * arch_fault_bad_access(): releases the lock it is called with (the mmap
 * read lock of @mm, or the VMA read lock of @vma if @mm is NULL), reports
 * the bad access or computes what the arch reports after
 * FAULT_LOOP_BAD_ACCESS, and returns a value for fault_loop_ret.code.
 *
 * arch_fault_lock_mm_and_find_vma(): only for archs without
 * CONFIG_LOCK_MM_AND_FIND_VMA. Like lock_mm_and_find_vma(): returns the VMA
 * that contains @address with the mmap read lock of @mm held, or NULL with
 * no lock held. May sleep.
 */
bool arch_fault_access_error(struct vm_area_struct *vma, unsigned long hw_error,
			     unsigned int flags);
int arch_fault_bad_access(struct pt_regs *regs, unsigned long address,
			  unsigned long hw_error, struct vm_area_struct *vma,
			  struct mm_struct *mm);
struct vm_area_struct *
arch_fault_lock_mm_and_find_vma(struct mm_struct *mm, unsigned long address,
				unsigned int flags);

/**
 * rust_fault_loop() - the user page-fault loop
 * @mm: the address space of the fault: current->mm, not NULL
 * @regs: the registers of the fault, for lock_mm_and_find_vma() and the
 *	perf events of handle_mm_fault(); may be NULL (um), which leaves out
 *	the perf events as handle_mm_fault(..., NULL) does
 * @address: the faulting address
 * @hw_error: the arch's value for its hooks
 * @flags: the FAULT_FLAG_* of the first attempt: FAULT_FLAG_DEFAULT plus
 *	USER, WRITE, INSTRUCTION as the arch decoded them, a legal
 *	combination without VMA_LOCK or RETRY_NOWAIT
 * @user_mode: whether a signal that interrupts the fault is handled by
 *	returning to user mode (user_mode(regs)); false for the kernel's own
 *	accesses to user memory. x86, arm64 and riscv pass their
 *	FAULT_FLAG_USER bit, which they set from user_mode(regs): a value
 *	already in a register, where user_mode(regs) would be a load
 *
 * The arguments are in registers and the result comes back in registers,
 * so that the caller keeps no state on its stack for the call.
 *
 * Context: the fault handler of current, with no mmap or VMA lock held.
 * May sleep.
 *
 * Return: what is left to the arch (&enum fault_loop_result) and its code.
 * No mmap or VMA lock is held on return.
 */
struct fault_loop_ret rust_fault_loop(struct mm_struct *mm, struct pt_regs *regs,
				      unsigned long address,
				      unsigned long hw_error, unsigned int flags,
				      bool user_mode);

#ifdef CONFIG_RUST_FAULT_LOOP
DECLARE_STATIC_KEY_TRUE(rust_fault_loop_key);

/**
 * rust_fault_loop_enabled() - whether the arch calls rust_fault_loop()
 *
 * An arch that selects ARCH_HAS_RUST_FAULT_LOOP keeps its C loop as well
 * and runs it when this is false: with CONFIG_RUST_FAULT_LOOP off, or when
 * the kernel was booted with rust_fault_loop=off. A static branch.
 *
 * Return: true if user page faults go to rust_fault_loop().
 */
static __always_inline bool rust_fault_loop_enabled(void)
{
	return static_branch_likely(&rust_fault_loop_key);
}
#else
static __always_inline bool rust_fault_loop_enabled(void)
{
	return false;
}
#endif

#endif /* _LINUX_FAULT_LOOP_H */
