/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The ioctls of /dev/fault_gup, the Rust GUP sample
 * (samples/rust/rust_fault_gup.rs, which documents them), for the programs
 * that use it: the fault-retry selftests. The sample checks at build time
 * that its Rust definitions match these (rust_fault_gup_abi.c).
 *
 * All fields are 64-bit: a 32-bit process uses the same layout.
 */
#ifndef _SAMPLES_RUST_FAULT_GUP_H
#define _SAMPLES_RUST_FAULT_GUP_H

#include <linux/ioctl.h>
#include <linux/types.h>

struct fr_gup_req {
	__u64 addr;
	__u64 nr_pages;
	__u64 flags;
	__s64 pid;
	__u64 checksum;
	__u64 done;
};

#define FR_GUP_MAGIC		'f'
#define FR_GUP_PIN		_IOWR(FR_GUP_MAGIC, 1, struct fr_gup_req)
#define FR_GUP_PIN_REMOTE	_IOWR(FR_GUP_MAGIC, 2, struct fr_gup_req)
#define FR_GUP_FAULTIN		_IOWR(FR_GUP_MAGIC, 3, struct fr_gup_req)
#define FR_GUP_PINS		_IOR(FR_GUP_MAGIC, 4, __s64)
#define FR_GUP_FAULT		_IOWR(FR_GUP_MAGIC, 5, struct fr_gup_req)

/* struct fr_gup_req.flags */
#define FR_GUP_WRITE		1
#define FR_GUP_INTERRUPTIBLE	2
#define FR_GUP_GET		4
#define FR_GUP_LONGTERM		8
#define FR_GUP_USER		16
#define FR_GUP_NORETRY		32

/* The most pages one request may name. */
#define FR_GUP_MAX_PAGES	65536

#define FR_GUP_DEV		"/dev/fault_gup"

#endif /* _SAMPLES_RUST_FAULT_GUP_H */
