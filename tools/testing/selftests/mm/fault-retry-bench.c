// SPDX-License-Identifier: GPL-2.0
/*
 * Cost per page fault of four workloads, for comparing two builds of the
 * same kernel (the C user page-fault loop and CONFIG_RUST_FAULT_LOOP):
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
 * Each workload runs ROUNDS rounds of PAGES pages; a round's cost is its
 * CLOCK_MONOTONIC time divided by the faults that getrusage() counted in it.
 * The minimum over the rounds is the result: under QEMU with
 * "-icount shift=0,sleep=off" guest nanoseconds are guest instructions, and
 * the minimum is the round that no timer interrupt hit.
 *
 * Output is KTAP; each result is one line:
 *   ok N <workload> # ns_per_fault=<min> median=<median> faults=<per round>
 *
 * Usage: fault-retry-bench [-r ROUNDS] [-p PAGES]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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

static int bench_uffd_round_trip(struct round *r)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	size_t len = pages * page_size;
	struct uffd_faulter f = { 0 };
	char *src = NULL, *area;
	int uffd, ret = -1;
	pthread_t t;

	uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api)) {
		printf("# userfaultfd: %s\n", strerror(errno));
		goto out_fd;
	}
	area = map_or_die(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1);
	if (!area)
		goto out_fd;
	src = malloc(page_size);
	if (!src)
		goto out_map;
	memset(src, 0x5a, page_size);
	reg.range.start = (unsigned long)area;
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		printf("# UFFDIO_REGISTER: %s\n", strerror(errno));
		goto out_map;
	}
	f.area = area;
	if (pthread_create(&t, NULL, uffd_faulter_thread, &f))
		goto out_map;
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
	ioctl(uffd, UFFDIO_UNREGISTER, &reg.range);
	pthread_join(t, NULL);
	*r = f.r;
	ret = f.ret;
out_map:
	free(src);
	munmap(area, len);
out_fd:
	if (uffd >= 0)
		close(uffd);
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
} workloads[] = {
	{ "anon_write", bench_anon_write },
	{ "shmem_write", bench_shmem_write },
	{ "pagecache_read", bench_pagecache_read },
	{ "uffd_round_trip", bench_uffd_round_trip },
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
	return failed ? 1 : 0;
}
