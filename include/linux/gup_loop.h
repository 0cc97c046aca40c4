/* SPDX-License-Identifier: GPL-2.0 */
/*
 * GUP's retry loops in Rust (mm/gup_loop.rs, CONFIG_RUST_GUP_LOOP).
 *
 * mm/gup.c hands three loops to Rust when rust_gup_loop_enabled() says so:
 * the retry loop of __get_user_pages_locked(), which every GUP entry point
 * with a page walk reaches but populate_vma_page_range();
 * fixup_user_fault()'s; and __mm_populate()'s, which mlock() and
 * MAP_POPULATE use. Each step of a loop stays in C: the page walk
 * (__get_user_pages()), the VMA lookup and permission check of
 * fixup_user_fault(), and populate_vma_page_range().
 *
 * See Documentation/mm/rust-fault-loop.rst.
 */
#ifndef _LINUX_GUP_LOOP_H
#define _LINUX_GUP_LOOP_H

#include <linux/fault_loop.h>
#include <linux/types.h>

struct mm_struct;
struct page;
struct vm_area_struct;

/**
 * rust_gup_locked() - __get_user_pages_locked() after its nr_pages check
 * @mm: the address space, with users
 * @start: the first address (the walk untags it)
 * @nr_pages: how many pages, at least one
 * @pages: NULL, or room for @nr_pages entries
 * @locked: 1 if the caller holds the mmap read lock, which it hands over
 *	for the call, 0 if the call takes and releases it; on return, whether
 *	the caller holds it (only if it did before and it was never released)
 * @gup_flags: the FOLL_* flags as __get_user_pages() takes them, FOLL_GET
 *	added for @pages without FOLL_PIN
 *
 * The caller has set MMF_HAS_PINNED for FOLL_PIN.
 *
 * Context: may sleep.
 * Return: the pages done, or an error if none was done; 0 only with
 * FOLL_NOWAIT or without FOLL_UNLOCKABLE, as __get_user_pages() returns it.
 */
long rust_gup_locked(struct mm_struct *mm, unsigned long start,
		     unsigned long nr_pages, struct page **pages, int *locked,
		     unsigned int gup_flags);

/**
 * rust_fixup_user_fault() - fixup_user_fault() after its flags are set
 * @mm: the address space, its mmap read lock held
 * @address: the untagged address
 * @fault_flags: the FAULT_FLAG_* of the fault, ALLOW_RETRY and KILLABLE
 *	added if @unlocked is not NULL; an illegal combination, USER,
 *	VMA_LOCK or RETRY_NOWAIT fails with -EINVAL
 * @unlocked: NULL, or set to true if the lock was released and taken again
 *
 * Context: may sleep. The mmap read lock is held on return.
 * Return: 0 or a negative errno, as fixup_user_fault().
 */
int rust_fixup_user_fault(struct mm_struct *mm, unsigned long address,
			  unsigned int fault_flags, bool *unlocked);

/**
 * rust_mm_populate() - __mm_populate() of [@start, @end)
 * @mm: current->mm
 * @start: page aligned
 * @end: page aligned, exclusive
 * @ignore_errors: go on with the next VMA after an error
 *
 * Context: may sleep; no mmap lock held.
 * Return: 0 or a negative errno, as __mm_populate().
 */
int rust_mm_populate(struct mm_struct *mm, unsigned long start,
		     unsigned long end, bool ignore_errors);

#ifdef CONFIG_RUST_GUP_LOOP
/*
 * The steps, in mm/gup.c, for mm/gup_loop.rs only: they skip the checks of
 * GUP's entry points. gup_loop_walk() is __get_user_pages() (with
 * FOLL_TRIED added if @tried); gup_loop_fault_vma() is the VMA that
 * contains @address if it permits the fault (gup_vma_lookup() and
 * vma_permits_fault()), else NULL; both need the mmap read lock of @mm.
 */
long gup_loop_walk(struct mm_struct *mm, unsigned long start,
		   unsigned long nr_pages, unsigned int gup_flags, bool tried,
		   struct page **pages, int *locked);
struct vm_area_struct *gup_loop_fault_vma(struct mm_struct *mm,
					  unsigned long address,
					  unsigned int fault_flags);
/* Also declared in mm/internal.h. */
long populate_vma_page_range(struct vm_area_struct *vma, unsigned long start,
			     unsigned long end, int *locked);
#endif

/**
 * rust_gup_loop_enabled() - whether mm/gup.c runs the Rust loops
 *
 * The same static branch as rust_fault_loop_enabled(): rust_fault_loop=off
 * selects the C loops of both the fault handlers and GUP.
 *
 * Return: true with CONFIG_RUST_GUP_LOOP unless booted with
 * rust_fault_loop=off.
 */
static __always_inline bool rust_gup_loop_enabled(void)
{
	return IS_ENABLED(CONFIG_RUST_GUP_LOOP) && rust_fault_loop_enabled();
}

#endif /* _LINUX_GUP_LOOP_H */
