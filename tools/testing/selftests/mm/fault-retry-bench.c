// SPDX-License-Identifier: GPL-2.0
/*
 * Cost per page fault of four workloads, and per page of five GUP
 * workloads, for comparing two builds of the same kernel (the C loops and
 * the Rust ones: CONFIG_RUST_FAULT_LOOP, and GUP's retry loops where they
 * run in Rust too):
 *
 *  anon_write       write fault on fresh anonymous memory
 *  shmem_write      write fault on a shared mapping of a tmpfs (memfd) file
 *                   whose pages are already allocated
 *  pagecache_read   read fault on a private mapping of a ramfs file whose
 *                   pages are in the page cache (fault-around is set to one
 *                   page when debugfs allows it, so that each page is one
 *                   fault)
 *  uffd_round_trip  a read fault on userfaultfd memory: the fault, the
 *                   monitor reading the message, UFFDIO_COPY, and the
 *                   resumed access
 *
 * The GUP workloads, on private anonymous memory:
 *
 *  gup_get_faulted    GUP_BASIC_TEST of upstream's gup_test
 *                     (/sys/kernel/debug/gup_test, CONFIG_GUP_TEST):
 *                     get_user_pages() with FOLL_WRITE, one page per call,
 *                     under the mmap lock that gup_test holds, on pages
 *                     written before the round: one page walk per call
 *  gup_pin_faulted    the same with PIN_BASIC_TEST (pin_user_pages())
 *  gup_get_unfaulted  GUP_FAST_BENCHMARK (get_user_pages_fast()) with
 *                     FOLL_WRITE, one page per call, on pages emptied with
 *                     MADV_DONTNEED before the round: GUP-fast finds no
 *                     page and falls back to __get_user_pages_locked(),
 *                     which takes the mmap lock and faults the page in
 *  gup_pin_unfaulted  the same with PIN_FAST_BENCHMARK
 *  gup_uffd_retry     madvise(MADV_POPULATE_WRITE) of userfaultfd memory,
 *                     which a monitor thread resolves page by page with
 *                     UFFDIO_COPY: every page is one wait in
 *                     handle_userfault() and one retry of
 *                     __get_user_pages_locked()
 *
 * gup_test makes one GUP call per page (nr_pages_per_call = 1), so that
 * the cost per page is that of a GUP call: the part that the C and the
 * Rust loop differ in is per call, not per page. The whole ioctl is
 * timed (gup_test's own microsecond figures are too coarse), so the cost
 * also has gup_test's part, the same in both builds: the syscall, its page
 * array, and putting or unpinning the pages after the calls. Without
 * gup_test (no debugfs file) these four are reported as skipped.
 *
 * Each workload runs ROUNDS rounds of PAGES pages. The cost of a round of
 * the first four is its CLOCK_MONOTONIC time divided by the faults that
 * getrusage() counted in it; of a GUP workload, the time of its calls
 * (the ioctls; the madvise()) divided by PAGES: GUP's faults are not all
 * counted (a page that a retry finds present was not a fault), so pages
 * are. The minimum over the rounds is the result: under QEMU with
 * "-icount shift=0,sleep=off" guest nanoseconds are guest instructions, and
 * the minimum is the round that no timer interrupt hit.
 *
 * Output is KTAP; each result is one line:
 *   ok N <workload> # ns_per_fault=<min> median=<median> faults=<per round>
 * where, for the GUP workloads, ns_per_fault is per page and faults= is the
 * pages of a round; a skipped workload is "ok N <workload> # SKIP <why>".
 *
 * Usage: fault-retry-bench [-r ROUNDS] [-p PAGES]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/userfaultfd.h>

#include "../kselftest.h"

/* The ioctls of upstream's gup_test (mm/gup_test.c, CONFIG_GUP_TEST). */
#include "../../../../mm/gup_test.h"
#define GUP_TEST_FILE "/sys/kernel/debug/gup_test"
#define GUP_FOLL_WRITE 0x01	/* FOLL_WRITE */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define MAX_ROUNDS 64
#define FAULT_AROUND "/sys/kernel/debug/fault_around_bytes"
#define RAMFS_DIR "/tmp/fault-retry-bench-ramfs"

static long page_size;
static int rounds = 15;
static size_t pages = 512;

struct round {
	double ns;
	long faults;
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static long thread_faults(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_THREAD, &ru))
		return -1;
	return ru.ru_minflt + ru.ru_majflt;
}

static void *map_or_die(size_t len, int prot, int flags, int fd)
{
	void *p = mmap(NULL, len, prot, flags, fd, 0);

	if (p == MAP_FAILED) {
		printf("# mmap: %s\n", strerror(errno));
		return NULL;
	}
	madvise(p, len, MADV_NOHUGEPAGE);
	return p;
}

/* Touches every page of @p, writing or reading; times it and counts faults. */
static int touch_round(volatile char *p, int write, struct round *r)
{
	long f0, f1;
	double t0, t1;
	char sum = 0;

	f0 = thread_faults();
	t0 = now_ns();
	for (size_t i = 0; i < pages; i++) {
		if (write)
			p[i * page_size] = 1;
		else
			sum += p[i * page_size];
	}
	t1 = now_ns();
	f1 = thread_faults();
	(void)sum;
	r->faults = f1 - f0;
	r->ns = r->faults > 0 ? (t1 - t0) / r->faults : 0;
	return r->faults > 0 ? 0 : -1;
}

static int bench_anon_write(struct round *r)
{
	size_t len = pages * page_size;
	char *p = map_or_die(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	int ret;

	if (!p)
		return -1;
	ret = touch_round(p, 1, r);
	munmap(p, len);
	return ret;
}

static int shmem_fd = -1;

static int bench_shmem_write(struct round *r)
{
	size_t len = pages * page_size;
	char *p;
	int ret;

	if (shmem_fd < 0) {
		shmem_fd = memfd_create("fault-retry-bench", MFD_CLOEXEC);
		if (shmem_fd < 0 || fallocate(shmem_fd, 0, 0, len)) {
			printf("# memfd: %s\n", strerror(errno));
			return -1;
		}
	}
	p = map_or_die(len, PROT_READ | PROT_WRITE, MAP_SHARED, shmem_fd);
	if (!p)
		return -1;
	ret = touch_round(p, 1, r);
	munmap(p, len);
	return ret;
}

static int file_fd = -1;

static int bench_pagecache_read(struct round *r)
{
	size_t len = pages * page_size;
	char *p;
	int ret;

	if (file_fd < 0) {
		char *buf = malloc(len);

		mkdir(RAMFS_DIR, 0700);
		if (!buf || mount("ramfs", RAMFS_DIR, "ramfs", 0, NULL)) {
			printf("# ramfs: %s\n", strerror(errno));
			free(buf);
			return -1;
		}
		file_fd = open(RAMFS_DIR "/file", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		memset(buf, 0x5a, len);
		if (file_fd < 0 || write(file_fd, buf, len) != (ssize_t)len) {
			printf("# ramfs file: %s\n", strerror(errno));
			free(buf);
			return -1;
		}
		free(buf);
	}
	p = map_or_die(len, PROT_READ, MAP_PRIVATE, file_fd);
	if (!p)
		return -1;
	ret = touch_round(p, 0, r);
	munmap(p, len);
	return ret;
}

struct uffd_faulter {
	volatile char *area;
	struct round r;
	int ret;
};

static void *uffd_faulter_thread(void *arg)
{
	struct uffd_faulter *f = arg;

	f->ret = touch_round(f->area, 0, &f->r);
	return NULL;
}

/* PAGES pages of fresh anonymous memory registered with a userfaultfd. */
struct uffd_area {
	int uffd;
	char *area;
	char *src;	/* a page of 0x5a bytes, to copy in */
	struct uffdio_range range;
};

static void uffd_area_free(struct uffd_area *u)
{
	free(u->src);
	if (u->area)
		munmap(u->area, pages * page_size);
	if (u->uffd >= 0)
		close(u->uffd);
}

/* Sets up @u with a userfaultfd opened with @flags: 0, or -1 with nothing left. */
static int uffd_area_setup(struct uffd_area *u, int flags)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };

	*u = (struct uffd_area){ .uffd = syscall(SYS_userfaultfd, flags) };
	if (u->uffd < 0 || ioctl(u->uffd, UFFDIO_API, &api)) {
		printf("# userfaultfd: %s\n", strerror(errno));
		goto fail;
	}
	u->area = map_or_die(pages * page_size, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1);
	u->src = malloc(page_size);
	if (!u->area || !u->src)
		goto fail;
	memset(u->src, 0x5a, page_size);
	reg.range.start = (unsigned long)u->area;
	reg.range.len = pages * page_size;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(u->uffd, UFFDIO_REGISTER, &reg)) {
		printf("# UFFDIO_REGISTER: %s\n", strerror(errno));
		goto fail;
	}
	u->range = reg.range;
	return 0;
fail:
	uffd_area_free(u);
	return -1;
}

static int bench_uffd_round_trip(struct round *r)
{
	struct uffd_faulter f = { 0 };
	struct uffd_area u;
	int uffd, ret = -1;
	char *src;
	pthread_t t;

	if (uffd_area_setup(&u, O_CLOEXEC))
		return -1;
	uffd = u.uffd;
	src = u.src;
	f.area = u.area;
	if (pthread_create(&t, NULL, uffd_faulter_thread, &f))
		goto out;
	for (size_t i = 0; i < pages; i++) {
		struct pollfd pfd = { .fd = uffd, .events = POLLIN };
		struct uffdio_copy copy = { 0 };
		struct uffd_msg msg;

		if (poll(&pfd, 1, 5000) != 1 || read(uffd, &msg, sizeof(msg)) != sizeof(msg) ||
		    msg.event != UFFD_EVENT_PAGEFAULT) {
			printf("# no fault message for page %zu\n", i);
			break;
		}
		copy.dst = msg.arg.pagefault.address & ~(page_size - 1);
		copy.src = (unsigned long)src;
		copy.len = page_size;
		if (ioctl(uffd, UFFDIO_COPY, &copy)) {
			printf("# UFFDIO_COPY: %s\n", strerror(errno));
			break;
		}
	}
	/* On a failure above, unregistering wakes the faulter. */
	ioctl(uffd, UFFDIO_UNREGISTER, &u.range);
	pthread_join(t, NULL);
	*r = f.r;
	ret = f.ret;
out:
	uffd_area_free(&u);
	return ret;
}

/* ---- GUP ---- */

static int gup_fd = -1;		/* /sys/kernel/debug/gup_test */
static int gup_open_err;	/* errno of its open() */
static char *gup_area;		/* PAGES pages, shared by the gup_test workloads */

/*
 * One round of gup_test's @cmd (FOLL_WRITE, one page per call) over the
 * PAGES pages of gup_area: on pages written before (@faulted) or emptied
 * with MADV_DONTNEED before. Times the ioctl alone.
 */
static int gup_round(struct round *r, unsigned long cmd, int faulted)
{
	size_t len = pages * page_size;
	struct gup_test gup = { 0 };
	double t0, t1;

	if (!gup_area) {
		gup_area = map_or_die(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
		if (!gup_area)
			return -1;
	}
	if (faulted) {
		for (size_t i = 0; i < pages; i++)
			((volatile char *)gup_area)[i * page_size] = 1;
	} else if (madvise(gup_area, len, MADV_DONTNEED)) {
		printf("# MADV_DONTNEED: %s\n", strerror(errno));
		return -1;
	}
	gup.addr = (uintptr_t)gup_area;
	gup.size = len;
	gup.nr_pages_per_call = 1;
	gup.gup_flags = GUP_FOLL_WRITE;
	t0 = now_ns();
	if (ioctl(gup_fd, cmd, &gup)) {
		printf("# %s: %s\n", GUP_TEST_FILE, strerror(errno));
		return -1;
	}
	t1 = now_ns();
	r->faults = pages;
	r->ns = (t1 - t0) / pages;
	return 0;
}

static int bench_gup_get_faulted(struct round *r)
{
	return gup_round(r, GUP_BASIC_TEST, 1);
}

static int bench_gup_pin_faulted(struct round *r)
{
	return gup_round(r, PIN_BASIC_TEST, 1);
}

static int bench_gup_get_unfaulted(struct round *r)
{
	return gup_round(r, GUP_FAST_BENCHMARK, 0);
}

static int bench_gup_pin_unfaulted(struct round *r)
{
	return gup_round(r, PIN_FAST_BENCHMARK, 0);
}

struct populater {
	char *area;
	double ns;
	int ret, err;
};

static void *populater_thread(void *arg)
{
	struct populater *p = arg;
	double t0 = now_ns();

	p->ret = madvise(p->area, pages * page_size, MADV_POPULATE_WRITE);
	p->err = errno;
	p->ns = now_ns() - t0;
	return NULL;
}

/*
 * MADV_POPULATE_WRITE of PAGES pages of fresh userfaultfd memory in a
 * thread, timed there; this thread resolves each fault with UFFDIO_COPY.
 */
static int bench_gup_uffd_retry(struct round *r)
{
	struct populater p = { 0 };
	struct uffd_area u;
	size_t copied = 0;
	int uffd, ret = -1;
	char *src;
	pthread_t t;

	/* Non-blocking: the wait is poll()'s, bounded. */
	if (uffd_area_setup(&u, O_CLOEXEC | O_NONBLOCK))
		return -1;
	uffd = u.uffd;
	src = u.src;
	p.area = u.area;
	if (pthread_create(&t, NULL, populater_thread, &p))
		goto out;
	while (copied < pages) {
		struct pollfd pfd = { .fd = uffd, .events = POLLIN };
		struct uffdio_copy copy = { 0 };
		struct uffd_msg msg;

		if (poll(&pfd, 1, 5000) != 1) {
			printf("# no fault message for page %zu\n", copied);
			break;
		}
		if (read(uffd, &msg, sizeof(msg)) != sizeof(msg)) {
			if (errno == EAGAIN)
				continue;
			printf("# read: %s\n", strerror(errno));
			break;
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		copy.dst = msg.arg.pagefault.address & ~(page_size - 1);
		copy.src = (unsigned long)src;
		copy.len = page_size;
		if (ioctl(uffd, UFFDIO_COPY, &copy)) {
			printf("# UFFDIO_COPY: %s\n", strerror(errno));
			break;
		}
		copied++;
	}
	/* On a failure above, unregistering wakes the populater. */
	ioctl(uffd, UFFDIO_UNREGISTER, &u.range);
	pthread_join(t, NULL);
	if (p.ret)
		printf("# MADV_POPULATE_WRITE: %s\n", strerror(p.err));
	if (!p.ret && copied == pages) {
		r->faults = pages;
		r->ns = p.ns / pages;
		ret = 0;
	}
out:
	uffd_area_free(&u);
	return ret;
}

static int cmp_round(const void *a, const void *b)
{
	double x = ((const struct round *)a)->ns, y = ((const struct round *)b)->ns;

	return (x > y) - (x < y);
}

static const struct workload {
	const char *name;
	int (*run)(struct round *r);
	int dev;		/* needs gup_test */
} workloads[] = {
	{ "anon_write", bench_anon_write },
	{ "shmem_write", bench_shmem_write },
	{ "pagecache_read", bench_pagecache_read },
	{ "uffd_round_trip", bench_uffd_round_trip },
	{ "gup_get_faulted", bench_gup_get_faulted, 1 },
	{ "gup_pin_faulted", bench_gup_pin_faulted, 1 },
	{ "gup_get_unfaulted", bench_gup_get_unfaulted, 1 },
	{ "gup_pin_unfaulted", bench_gup_pin_unfaulted, 1 },
	{ "gup_uffd_retry", bench_gup_uffd_retry },
};

/* Sets fault_around_bytes; returns the old value, or -errno. */
static long set_fault_around(long bytes)
{
	char buf[32];
	long old;
	ssize_t n;
	int fd;

	fd = open(FAULT_AROUND, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0) {
		old = n < 0 ? -errno : -EIO;
		close(fd);
		return old;
	}
	close(fd);
	buf[n] = '\0';
	old = strtol(buf, NULL, 10);
	/* debugfs attributes cannot seek: write through a new open. */
	fd = open(FAULT_AROUND, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%ld", bytes);
	if (write(fd, buf, n) != n)
		old = -errno;
	close(fd);
	return old;
}

int main(int argc, char **argv)
{
	int opt, failed = 0, n = ARRAY_SIZE(workloads);
	long fault_around;

	while ((opt = getopt(argc, argv, "r:p:")) != -1) {
		switch (opt) {
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'p':
			pages = strtoul(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr, "usage: %s [-r ROUNDS] [-p PAGES]\n", argv[0]);
			return 2;
		}
	}
	if (rounds < 1 || rounds > MAX_ROUNDS || pages < 1 || pages > 65536) {
		fprintf(stderr, "rounds must be 1..%d and pages 1..65536\n", MAX_ROUNDS);
		return 2;
	}
	page_size = sysconf(_SC_PAGESIZE);
	setvbuf(stdout, NULL, _IOLBF, 0);
	gup_fd = open(GUP_TEST_FILE, O_RDWR | O_CLOEXEC);
	gup_open_err = errno;

	printf("TAP version 13\n1..%d\n", n);
	fault_around = set_fault_around(page_size);
	if (fault_around < 0)
		printf("# %d rounds of %zu pages; fault_around_bytes unchanged: %s\n",
		       rounds, pages, strerror(-fault_around));
	else
		printf("# %d rounds of %zu pages; fault_around_bytes set to one page\n",
		       rounds, pages);
	for (int w = 0; w < n; w++) {
		struct round r[MAX_ROUNDS];
		int i;

		if (workloads[w].dev && gup_fd < 0) {
			printf("ok %d %s # SKIP no %s: %s\n", w + 1, workloads[w].name,
			       GUP_TEST_FILE, strerror(gup_open_err));
			continue;
		}
		for (i = 0; i < rounds; i++)
			if (workloads[w].run(&r[i]))
				break;
		if (i < rounds) {
			printf("not ok %d %s # round %d failed\n", w + 1, workloads[w].name, i);
			failed++;
			continue;
		}
		qsort(r, rounds, sizeof(r[0]), cmp_round);
		printf("ok %d %s # ns_per_fault=%.1f median=%.1f faults=%ld\n", w + 1,
		       workloads[w].name, r[0].ns, r[rounds / 2].ns, r[0].faults);
	}
	if (fault_around >= 0)
		set_fault_around(fault_around);
	if (file_fd >= 0) {
		close(file_fd);
		umount(RAMFS_DIR);
	}
	if (gup_area)
		munmap(gup_area, pages * page_size);
	if (gup_fd >= 0)
		close(gup_fd);
	return failed ? 1 : 0;
}
