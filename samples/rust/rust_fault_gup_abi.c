// SPDX-License-Identifier: GPL-2.0
/*
 * The ioctl ABI of rust_fault_gup.h as numbers for the Rust sample: Kbuild
 * compiles this to assembly, as it does asm-offsets.c, and turns the
 * markers into rust_fault_gup_abi.rs, which rust_fault_gup.rs includes and
 * checks its own definitions against, at build time.
 */
#include <linux/kbuild.h>
#include <linux/stddef.h>

#include "rust_fault_gup.h"

int main(void)
{
	DEFINE(FR_GUP_PIN, FR_GUP_PIN);
	DEFINE(FR_GUP_PIN_REMOTE, FR_GUP_PIN_REMOTE);
	DEFINE(FR_GUP_FAULTIN, FR_GUP_FAULTIN);
	DEFINE(FR_GUP_PINS, FR_GUP_PINS);
	DEFINE(FR_GUP_FAULT, FR_GUP_FAULT);
	DEFINE(FR_GUP_WRITE, FR_GUP_WRITE);
	DEFINE(FR_GUP_INTERRUPTIBLE, FR_GUP_INTERRUPTIBLE);
	DEFINE(FR_GUP_GET, FR_GUP_GET);
	DEFINE(FR_GUP_LONGTERM, FR_GUP_LONGTERM);
	DEFINE(FR_GUP_USER, FR_GUP_USER);
	DEFINE(FR_GUP_NORETRY, FR_GUP_NORETRY);
	DEFINE(FR_GUP_MAX_PAGES, FR_GUP_MAX_PAGES);
	DEFINE(FR_GUP_REQ_SIZE, sizeof(struct fr_gup_req));
	OFFSET(FR_GUP_REQ_ADDR, fr_gup_req, addr);
	OFFSET(FR_GUP_REQ_NR_PAGES, fr_gup_req, nr_pages);
	OFFSET(FR_GUP_REQ_FLAGS, fr_gup_req, flags);
	OFFSET(FR_GUP_REQ_PID, fr_gup_req, pid);
	OFFSET(FR_GUP_REQ_CHECKSUM, fr_gup_req, checksum);
	OFFSET(FR_GUP_REQ_DONE, fr_gup_req, done);
	return 0;
}
