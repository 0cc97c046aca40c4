// SPDX-License-Identifier: GPL-2.0
/*
 * Conformance tests for page-fault retry. They check the two claims of the
 * series "mm: some enhancements to the page fault mechanism":
 *  (a) a fault that waits reacts to every user signal, not only SIGKILL:
 *      handlers, SIGSTOP/SIGCONT, a debugger attaching;
 *  (b) VM_FAULT_RETRY may repeat any number of times, in the user
 *      page-fault path and in GUP.
 * Userfaultfd is the instrument: it makes a fault wait for as long as the
 * test wants, and tells the test each time the fault (re)arrives.
 *
 * Every wait is bounded. Stops and kills hit separate processes, which pass
 * their userfaultfd to the monitor over a unix socket.
 *
 * Documentation/mm/fault-retry-tests.rst lists the cases, the claim each one
 * checks and the kernel path it exercises.
 */
#define _GNU_SOURCE
/* 32-bit arches: /proc/PID/mem at addresses above 2 GiB. */
#define _FILE_OFFSET_BITS 64
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <linux/perf_event.h>
#include <linux/userfaultfd.h>

#include "../kselftest_harness.h"

/* The ioctls of the Rust GUP sample, /dev/fault_gup (samples/rust/rust_fault_gup.rs). */
#include "../../../../samples/rust/rust_fault_gup.h"

/* How long a monitor waits for something the kernel should do promptly. */
#define WAIT_MS 5000
/* How many times a fault is woken without being resolved. */
#define NR_WAKES 16

/* Since Linux 5.14; the same number on every arch. */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static long page_size;

/* ---- userfaultfd ---- */

/*
 * A userfaultfd with the API handshake done for @features, or -errno
 * (-EINVAL: the kernel lacks one of them). Non-blocking: poll() on a
 * blocking userfaultfd always reports EPOLLERR.
 */
static int uffd_open_features(uint64_t features)
{
	struct uffdio_api api = { .api = UFFD_API, .features = features };
	int fd;

	fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == EPERM)
		fd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, UFFDIO_API, &api)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static int uffd_open(void)
{
	return uffd_open_features(0);
}

/* Registers [@addr, @addr + @len) with @mode (UFFDIO_REGISTER_MODE_*). */
static int uffd_register(int uffd, void *addr, size_t len, uint64_t mode)
{
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)addr, .len = len },
		.mode = mode,
	};

	return ioctl(uffd, UFFDIO_REGISTER, &reg) ? -errno : 0;
}

static int uffd_register_missing(int uffd, void *addr, size_t len)
{
	return uffd_register(uffd, addr, len, UFFDIO_REGISTER_MODE_MISSING);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * One message (any event) within @timeout_ms: 0, -ETIMEDOUT or -errno. A
 * fault may be woken between poll() and read(): then read() says EAGAIN and
 * we wait again.
 */
static int uffd_read_event(int uffd, struct uffd_msg *msg, int timeout_ms)
{
	double end = now_s() + timeout_ms / 1000.0;
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };
	ssize_t r;
	int ret, left;

	do {
		left = (int)((end - now_s()) * 1000);
		ret = poll(&pfd, 1, left > 0 ? left : 0);
		if (ret < 0)
			return -errno;
		if (ret == 0)
			return -ETIMEDOUT;
		r = read(uffd, msg, sizeof(*msg));
		if (r < 0 && errno != EAGAIN)
			return -errno;
	} while (r < 0);
	return r == sizeof(*msg) ? 0 : -EPROTO;
}

/* One fault message within @timeout_ms: 0, -ETIMEDOUT, -EPROTO or -errno. */
static int uffd_read_msg(int uffd, struct uffd_msg *msg, int timeout_ms)
{
	int ret = uffd_read_event(uffd, msg, timeout_ms);

	if (!ret && msg->event != UFFD_EVENT_PAGEFAULT)
		return -EPROTO;
	return ret;
}

static unsigned long msg_page(const struct uffd_msg *msg)
{
	return msg->arg.pagefault.address & ~(page_size - 1);
}

/* Resolves the missing pages at @dst with @len bytes from @src. */
static int uffd_copy(int uffd, unsigned long dst, const void *src, size_t len)
{
	struct uffdio_copy copy = {
		.dst = dst,
		.src = (unsigned long)src,
		.len = len,
	};

	return ioctl(uffd, UFFDIO_COPY, &copy) ? -errno : 0;
}

/* Wakes the faults waiting on [@start, @start + @len) without resolving. */
static int uffd_wake(int uffd, unsigned long start, size_t len)
{
	struct uffdio_range range = { .start = start, .len = len };

	return ioctl(uffd, UFFDIO_WAKE, &range) ? -errno : 0;
}

/* The bytes every case expects in the resolved pages. */
static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 7 + 3);
}

static void fill_pattern(unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(i);
}

static int check_pattern(const volatile unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pattern(i))
			return -1;
	return 0;
}

/* ---- threads, processes, time ---- */

static int join_within(pthread_t t, int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return -pthread_timedjoin_np(t, NULL, &ts);
}

/* Waits up to @ms for @pid to change state: 0, or -ETIMEDOUT. */
static int wait_within(pid_t pid, int *status, int options, int ms)
{
	double end = now_s() + ms / 1000.0;

	do {
		pid_t r = waitpid(pid, status, options | WNOHANG);

		if (r == pid)
			return 0;
		if (r < 0)
			return -errno;
		usleep(1000);
	} while (now_s() < end);
	return -ETIMEDOUT;
}

/* The state letter of /proc/@pid/stat ('S', 'T', ...), or 0. */
static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* Passes @fd and @addr over a unix socket. */
static int send_fd(int sock, int fd, unsigned long addr)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &addr, .iov_len = sizeof(addr) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &mh, 0) == sizeof(addr) ? 0 : -1;
}

static int recv_fd(int sock, unsigned long *addr)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = addr, .iov_len = sizeof(*addr) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	struct cmsghdr *c;
	int fd;

	if (poll(&pfd, 1, WAIT_MS) != 1 || recvmsg(sock, &mh, 0) != sizeof(*addr))
		return -1;
	c = CMSG_FIRSTHDR(&mh);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/*
 * A child process that owns one page of registered, missing memory and
 * hands its userfaultfd and the page's address to the parent.
 * TOUCH: it then reads the page (a user-mode fault) and exits 0 if it saw
 * the pattern, 2 if not. IDLE: it waits until the parent closes the socket,
 * so that others can fault on its memory through GUP. PIN: it pins the page
 * through the Rust sample; FAULTIN and FAULT fault it in for write through
 * the sample (fixup_user_fault(), the sample's own fault loop). PIPE_WRITE
 * and PIPE_READ: kernel-mode faults, with a SIGUSR1 handler (SA_RESTART)
 * installed: write() copies the page into a pipe (copy_from_user()), read()
 * copies the pattern from a pipe into the page (copy_to_user()); either
 * exits 0 if the bytes arrived. POPULATE and MLOCK: GUP's own loops, on the
 * page, without a user-mode access to it: madvise(MADV_POPULATE_WRITE)
 * (__get_user_pages_locked()) and mlock() (__mm_populate()); either exits
 * 0 if the call succeeded and the page then has the pattern.
 */
enum child_mode {
	CHILD_TOUCH, CHILD_IDLE, CHILD_PIN, CHILD_FAULTIN, CHILD_FAULT,
	CHILD_PIPE_WRITE, CHILD_PIPE_READ, CHILD_POPULATE, CHILD_MLOCK,
};

static int gup_dev_pin_check(void *addr);
static int gup_dev_fault_check(void *addr, unsigned long cmd);
static int pipe_copy_check(volatile unsigned char *p, enum child_mode mode);

struct child {
	pid_t pid;
	int sock;
	int uffd;
	unsigned long addr;
};

static void __attribute__((noreturn)) child_main(int sock, enum child_mode mode)
{
	volatile unsigned char *p;
	int uffd;
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	uffd = uffd_open();
	p = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (uffd < 0 || p == MAP_FAILED || uffd_register_missing(uffd, (void *)p, page_size))
		_exit(3);
	if (send_fd(sock, uffd, (unsigned long)p))
		_exit(3);
	/* Only the parent holds the userfaultfd now: if it dies, we go on. */
	close(uffd);
	if (mode == CHILD_IDLE) {
		while (read(sock, &c, 1) > 0)
			;
		_exit(0);
	}
	if (mode == CHILD_PIN)
		_exit(gup_dev_pin_check((void *)p) ? 2 : 0);
	if (mode == CHILD_FAULTIN || mode == CHILD_FAULT)
		_exit(gup_dev_fault_check((void *)p, mode == CHILD_FAULT ? FR_GUP_FAULT
								  : FR_GUP_FAULTIN) ? 2 : 0);
	if (mode == CHILD_PIPE_WRITE || mode == CHILD_PIPE_READ)
		_exit(pipe_copy_check(p, mode));
	if (mode == CHILD_POPULATE && madvise((void *)p, page_size, MADV_POPULATE_WRITE))
		_exit(4);
	if (mode == CHILD_MLOCK && mlock((void *)p, page_size))
		_exit(4);
	_exit(check_pattern(p, page_size) ? 2 : 0);
}

/* No child yet: what stop_child() leaves alone. */
static void child_init(struct child *ch)
{
	ch->pid = -1;
	ch->sock = -1;
	ch->uffd = -1;
}

/* 0 or -1; on success @ch describes the child. */
static int start_child(struct child *ch, enum child_mode mode)
{
	int sv[2];

	child_init(ch);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	ch->pid = fork();
	if (ch->pid < 0)
		return -1;
	if (ch->pid == 0) {
		close(sv[0]);
		child_main(sv[1], mode);
	}
	close(sv[1]);
	ch->sock = sv[0];
	ch->uffd = recv_fd(ch->sock, &ch->addr);
	return ch->uffd < 0 ? -1 : 0;
}

static void stop_child(struct child *ch)
{
	int status;

	if (ch->pid > 0) {
		kill(ch->pid, SIGKILL);
		waitpid(ch->pid, &status, __WALL);
		ch->pid = -1;
	}
	if (ch->uffd >= 0)
		close(ch->uffd);
	if (ch->sock >= 0)
		close(ch->sock);
	ch->uffd = -1;
	ch->sock = -1;
}

/* ---- signals ---- */

static int sig_pipe[2] = { -1, -1 };
static atomic_int nr_sigusr1;

static void sigusr1_handler(int sig)
{
	char c = 's';

	atomic_fetch_add(&nr_sigusr1, 1);
	if (sig_pipe[1] >= 0 && write(sig_pipe[1], &c, 1) != 1)
		abort();
}

static int install_sigusr1(int flags)
{
	struct sigaction sa = { .sa_handler = sigusr1_handler, .sa_flags = flags };

	sigemptyset(&sa.sa_mask);
	return sigaction(SIGUSR1, &sa, NULL);
}

static __thread sigjmp_buf sigbus_env;
static atomic_int nr_sigbus;

static void sigbus_handler(int sig)
{
	atomic_fetch_add(&nr_sigbus, 1);
	siglongjmp(sigbus_env, 1);
}

/* ---- in-process fixture: registered, missing memory ---- */

struct reader {
	const volatile unsigned char *addr;
	size_t len;
	unsigned char *copy;
	int sigbus;
};

/* Reads the memory, one user-mode fault per page; notes a SIGBUS. */
static void *reader_thread(void *arg)
{
	struct reader *r = arg;

	if (sigsetjmp(sigbus_env, 1)) {
		r->sigbus = 1;
		return NULL;
	}
	for (size_t i = 0; i < r->len; i++)
		r->copy[i] = r->addr[i];
	return NULL;
}

/* Registered, missing memory, with the pattern to resolve it with. */
struct uffd_mem {
	int uffd;
	unsigned char *area;
	size_t len;
	unsigned char *src;
	unsigned char *copy;
};

static void uffd_mem_setup(struct __test_metadata *_metadata,
			   struct uffd_mem *self, size_t pages)
{
	struct sigaction sa = { .sa_handler = sigbus_handler, .sa_flags = SA_NODEFER };
	int ret;

	page_size = sysconf(_SC_PAGESIZE);
	self->len = pages * page_size;
	self->area = MAP_FAILED;
	self->uffd = uffd_open();
	if (self->uffd == -ENOSYS)
		SKIP(return, "userfaultfd is not configured in this kernel");
	ASSERT_LE(0, self->uffd) TH_LOG("userfaultfd: %s", strerror(-self->uffd));
	self->area = mmap(NULL, self->len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->area);
	ret = uffd_register_missing(self->uffd, self->area, self->len);
	ASSERT_EQ(0, ret) TH_LOG("UFFDIO_REGISTER: %s", strerror(-ret));
	self->src = malloc(self->len);
	self->copy = calloc(1, self->len);
	ASSERT_NE(NULL, self->src);
	ASSERT_NE(NULL, self->copy);
	fill_pattern(self->src, self->len);
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGBUS, &sa, NULL));
	ASSERT_EQ(0, pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK));
	atomic_store(&nr_sigusr1, 0);
	atomic_store(&nr_sigbus, 0);
}

static void uffd_mem_teardown(struct uffd_mem *self)
{
	if (self->uffd >= 0)
		close(self->uffd);
	if (self->area != MAP_FAILED)
		munmap(self->area, self->len);
	free(self->src);
	free(self->copy);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = -1;
	sig_pipe[1] = -1;
}

/* One page of registered, missing memory. */
FIXTURE(uffd)
{
	struct uffd_mem m;
};

FIXTURE_SETUP(uffd)
{
	uffd_mem_setup(_metadata, &self->m, 1);
}

FIXTURE_TEARDOWN(uffd)
{
	uffd_mem_teardown(&self->m);
}

/* Reads the next fault message and checks that it is for @page. */
#define EXPECT_FAULT_AT(uffd, page, msgp) do { \
	int __ret = uffd_read_msg(uffd, msgp, WAIT_MS); \
	ASSERT_EQ(0, __ret) TH_LOG("no fault message: %s", strerror(-__ret)); \
	ASSERT_EQ((unsigned long)(page), msg_page(msgp)); \
} while (0)

/*
 * Claim (b): a fault waiting at @page is woken NR_WAKES times without a
 * resolution, and each wake makes it retry: a new message each time, and
 * one more after the last wake (NR_WAKES + 1 in all). Every message has the
 * flags @want. The fault is left waiting.
 */
#define EXPECT_RETRIES(uffd, page, want) do { \
	struct uffd_msg __msg; \
	for (int __i = 0; __i < NR_WAKES; __i++) { \
		EXPECT_FAULT_AT(uffd, page, &__msg); \
		ASSERT_EQ((uint64_t)(want), __msg.arg.pagefault.flags & (want)); \
		ASSERT_EQ(0, uffd_wake(uffd, page, page_size)); \
	} \
	EXPECT_FAULT_AT(uffd, page, &__msg); \
} while (0)

/*
 * The CPU time that clock @clk (of a thread or a process) advances in one
 * second of wall time, logged.
 */
static double cpu_in_one_second(struct __test_metadata *_metadata, clockid_t clk)
{
	struct timespec c0, c1;
	double w0, cpu;

	if (clock_gettime(clk, &c0))
		return 1;
	w0 = now_s();
	usleep(1000 * 1000);
	if (clock_gettime(clk, &c1))
		return 1;
	cpu = (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9;
	TH_LOG("the blocked task used %.3f s of CPU in %.3f s", cpu, now_s() - w0);
	return cpu;
}

/* The same for thread @t of this process, or for process @pid. */
static double thread_cpu_in_one_second(struct __test_metadata *_metadata, pthread_t t)
{
	clockid_t clk;

	return pthread_getcpuclockid(t, &clk) ? 1 : cpu_in_one_second(_metadata, clk);
}

static double proc_cpu_in_one_second(struct __test_metadata *_metadata, pid_t pid)
{
	clockid_t clk;

	return clock_getcpuclockid(pid, &clk) ? 1 : cpu_in_one_second(_metadata, clk);
}

/*
 * The basic round trip: a thread faults on a registered page, the monitor
 * reads the message and resolves it with UFFDIO_COPY, the thread sees the
 * data.
 */
TEST_F(uffd, copy_resolves_fault)
{
	struct reader r = { self->m.area, self->m.len, self->m.copy };
	struct uffd_msg msg;
	pthread_t t;

	ASSERT_EQ(0, pthread_create(&t, NULL, reader_thread, &r));
	EXPECT_FAULT_AT(self->m.uffd, self->m.area, &msg);
	ASSERT_EQ(0, msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
	ASSERT_EQ(0, uffd_copy(self->m.uffd, (unsigned long)self->m.area, self->m.src,
			       self->m.len));
	ASSERT_EQ(0, join_within(t, WAIT_MS));
	ASSERT_EQ(0, r.sigbus);
	ASSERT_EQ(0, memcmp(self->m.copy, self->m.src, self->m.len));
}

/*
 * Claim (b), user faults: every UFFDIO_WAKE without a resolution makes the
 * fault return VM_FAULT_RETRY, and the arch loop retries it once more,
 * without bound: NR_WAKES wakes give NR_WAKES + 1 messages and no SIGBUS.
 * (Before 5.7 the second attempt, without ALLOW_RETRY, got SIGBUS.)
 */
TEST_F(uffd, retry_many)
{
	struct reader r = { self->m.area, self->m.len, self->m.copy };
	pthread_t t;

	ASSERT_EQ(0, pthread_create(&t, NULL, reader_thread, &r));
	EXPECT_RETRIES(self->m.uffd, (unsigned long)self->m.area, 0);
	ASSERT_EQ(0, atomic_load(&nr_sigbus));
	ASSERT_EQ(0, uffd_copy(self->m.uffd, (unsigned long)self->m.area, self->m.src,
			       self->m.len));
	ASSERT_EQ(0, join_within(t, WAIT_MS));
	ASSERT_EQ(0, r.sigbus);
	ASSERT_EQ(0, memcmp(self->m.copy, self->m.src, self->m.len));
}

/*
 * Claim (b), GUP without a lock held by the caller: a shared FUTEX_WAKE on
 * missing memory faults the futex word in through get_user_pages_fast(),
 * whose slow path runs __get_user_pages_locked() with FOLL_UNLOCKABLE and
 * retries without bound.
 */
static void *futex_wake_thread(void *arg)
{
	long ret = syscall(SYS_futex, arg, FUTEX_WAKE, 1, NULL, NULL, 0);

	return (void *)ret;
}

TEST_F(uffd, gup_fast_fallback_retry_many)
{
	void *ret = (void *)-1L;
	pthread_t t;

	ASSERT_EQ(0, pthread_create(&t, NULL, futex_wake_thread, self->m.area));
	/* FOLL_WRITE: the fault came from the futex, not a user read. */
	EXPECT_RETRIES(self->m.uffd, (unsigned long)self->m.area, UFFD_PAGEFAULT_FLAG_WRITE);
	ASSERT_EQ(0, uffd_copy(self->m.uffd, (unsigned long)self->m.area, self->m.src,
			       self->m.len));
	ASSERT_EQ(0, -pthread_timedjoin_np(t, &ret, &(struct timespec){ time(NULL) + 5, 0 }));
	ASSERT_EQ(0, (long)ret);
	ASSERT_EQ(0, memcmp(self->m.area, self->m.src, self->m.len));
}

/*
 * Kernel-mode faults: write() to a pipe from missing memory faults inside
 * copy_from_user(). With a handled, non-fatal signal pending the fault must
 * keep sleeping until it is resolved, not spin. Measured as the writer's CPU
 * time over one second of wall time. Stock 6.12 spins: FAULT_FLAG_DEFAULT has
 * FAULT_FLAG_INTERRUPTIBLE, so handle_userfault() returns VM_FAULT_RETRY at
 * once, and fault_signal_pending() only stops kernel-mode faults for fatal
 * signals, so the arch loop retries at once, again and again.
 */
struct pipe_writer {
	int fd;
	const void *buf;
	size_t len;
	ssize_t ret;
};

static void *pipe_writer_thread(void *arg)
{
	struct pipe_writer *w = arg;

	w->ret = write(w->fd, w->buf, w->len);
	return NULL;
}

TEST_F(uffd, kernel_mode_signal_sleeps)
{
	struct pipe_writer w = { .buf = self->m.area, .len = self->m.len };
	struct uffd_msg msg;
	int pfd[2];
	pthread_t t;
	double cpu;

	ASSERT_EQ(0, install_sigusr1(SA_RESTART));
	ASSERT_EQ(0, pipe(pfd));
	w.fd = pfd[1];
	ASSERT_EQ(0, pthread_create(&t, NULL, pipe_writer_thread, &w));
	EXPECT_FAULT_AT(self->m.uffd, self->m.area, &msg);
	ASSERT_EQ(0, pthread_kill(t, SIGUSR1));
	cpu = thread_cpu_in_one_second(_metadata, t);
	/* Resolve first, so that a spinning writer is released either way. */
	ASSERT_EQ(0, uffd_copy(self->m.uffd, (unsigned long)self->m.area, self->m.src,
			       self->m.len));
	ASSERT_EQ(0, join_within(t, WAIT_MS));
	EXPECT_LT(cpu, 0.1);
	ASSERT_EQ((ssize_t)self->m.len, w.ret);
	ASSERT_EQ((ssize_t)self->m.len, read(pfd[0], self->m.copy, self->m.len));
	ASSERT_EQ(0, memcmp(self->m.copy, self->m.src, self->m.len));
	close(pfd[0]);
	close(pfd[1]);
}

/*
 * Claim (a), handlers: a thread blocked in a user-mode fault runs its
 * SIGUSR1 handler before the fault is resolved (the handler writes to a
 * pipe that the monitor reads before resolving), then faults again (a new
 * message), and completes once resolved. With and without SA_RESTART.
 */
static void handler_runs_during_fault(struct __test_metadata *_metadata,
				      FIXTURE_DATA(uffd) *self, int sa_flags)
{
	struct reader r = { self->m.area, self->m.len, self->m.copy };
	struct pollfd pfd = { .fd = sig_pipe[0], .events = POLLIN };
	struct uffd_msg msg;
	pthread_t t;
	char c;

	ASSERT_EQ(0, install_sigusr1(sa_flags));
	ASSERT_EQ(0, pthread_create(&t, NULL, reader_thread, &r));
	EXPECT_FAULT_AT(self->m.uffd, self->m.area, &msg);
	ASSERT_EQ(0, pthread_kill(t, SIGUSR1));
	/* The handler ran while the page is still missing. */
	ASSERT_EQ(1, poll(&pfd, 1, WAIT_MS)) TH_LOG("the handler did not run");
	ASSERT_EQ(1, read(sig_pipe[0], &c, 1));
	/* Back from the handler, the access faults and waits again. */
	EXPECT_FAULT_AT(self->m.uffd, self->m.area, &msg);
	ASSERT_EQ(0, uffd_copy(self->m.uffd, (unsigned long)self->m.area, self->m.src,
			       self->m.len));
	ASSERT_EQ(0, join_within(t, WAIT_MS));
	ASSERT_EQ(0, r.sigbus);
	ASSERT_EQ(1, atomic_load(&nr_sigusr1));
	ASSERT_EQ(0, memcmp(self->m.copy, self->m.src, self->m.len));
}

TEST_F(uffd, signal_handler_runs_during_fault)
{
	handler_runs_during_fault(_metadata, self, SA_RESTART);
}

TEST_F(uffd, signal_handler_runs_during_fault_no_sa_restart)
{
	handler_runs_during_fault(_metadata, self, 0);
}

/*
 * UFFDIO_UNREGISTER wakes the faults that wait on the range, so that they
 * do not hang (they retry and find the range unregistered). A fault that
 * runs under the per-VMA lock is not kept out by the mmap write lock of
 * the unregistration: if it queued itself after the wake, it slept for
 * good. Each round, a thread reads the page while the monitor unregisters
 * it, without reading the message: the read must end within WAIT_MS.
 */
#define UNREGISTER_ROUNDS 200

struct page_reader {
	const volatile unsigned char *p;
	atomic_int started, done;
};

static void *page_reader_thread(void *arg)
{
	struct page_reader *r = arg;

	atomic_store(&r->started, 1);
	(void)*r->p;
	atomic_store(&r->done, 1);
	return NULL;
}

TEST_F(uffd, unregister_wakes_fault)
{
	struct uffdio_range range = { .len = page_size };
	int i, queued = 0;

	for (i = 0; i < UNREGISTER_ROUNDS; i++) {
		struct page_reader r = { self->m.area };
		struct uffd_msg msg;
		pthread_t t;

		ASSERT_EQ(0, madvise(self->m.area, page_size, MADV_DONTNEED));
		ASSERT_EQ(0, uffd_register_missing(self->m.uffd, self->m.area, page_size));
		ASSERT_EQ(0, pthread_create(&t, NULL, page_reader_thread, &r));
		while (!atomic_load(&r.started))
			;
		/* Vary where the fault is when the unregistration comes. */
		for (volatile int spin = 0; spin < (i % 16) * 64; spin++)
			;
		range.start = (unsigned long)self->m.area;
		ASSERT_EQ(0, ioctl(self->m.uffd, UFFDIO_UNREGISTER, &range));
		ASSERT_EQ(0, join_within(t, WAIT_MS))
			TH_LOG("round %d: the fault still waits after UFFDIO_UNREGISTER", i);
		ASSERT_EQ(1, atomic_load(&r.done));
		/* A message the fault queued before it was woken is stale: drop it. */
		while (uffd_read_msg(self->m.uffd, &msg, 0) == 0)
			queued++;
	}
	TH_LOG("%d rounds, %d stale fault messages", i, queued);
}

/* ---- what the arch's fault loop answers: signals, their codes and addresses ---- */

/* The signal that try_access() caught in this thread. */
struct caught {
	int signo;
	int code;
	unsigned long addr;
};

static __thread struct caught caught;
static __thread sigjmp_buf caught_env;

static void catch_handler(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	caught.signo = sig;
	caught.code = si->si_code;
	caught.addr = (unsigned long)si->si_addr;
	siglongjmp(caught_env, 1);
}

/* Makes try_access() catch the signals a bad access can raise. */
static int catch_faults(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE };
	struct sigaction sa = { .sa_sigaction = catch_handler,
				.sa_flags = SA_SIGINFO | SA_NODEFER };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		if (sigaction(sigs[i], &sa, NULL))
			return -errno;
	return 0;
}

enum access { ACCESS_READ, ACCESS_WRITE, ACCESS_EXEC };

/*
 * Reads or writes the word at @p, or calls @p: 0 if that completed, or the
 * signal it raised (details in caught). catch_faults() first.
 */
static int try_access(void *p, enum access how)
{
	memset(&caught, 0, sizeof(caught));
	if (sigsetjmp(caught_env, 1))
		return caught.signo;
	if (how == ACCESS_READ)
		(void)*(volatile long *)p;
	else if (how == ACCESS_WRITE)
		*(volatile long *)p = 1;
	else
		((void (*)(void))p)();
	return 0;
}

/* The si_addr of a fault at @addr: s390 reports the page, not the byte. */
static unsigned long fault_addr(unsigned long addr)
{
#ifdef __s390__
	return addr & ~(page_size - 1);
#else
	return addr;
#endif
}

/* The access raised @sig with si_code @code at @addr. */
#define EXPECT_CAUGHT(ret_, sig_, code_, at_) do { \
	ASSERT_EQ(sig_, ret_) TH_LOG("signal %d, code %d, at %#lx", caught.signo, \
				    caught.code, caught.addr); \
	EXPECT_EQ(code_, caught.code); \
	EXPECT_EQ(fault_addr((unsigned long)(at_)), caught.addr); \
} while (0)

/* A mapping of @pages pages with @prot; MAP_FAILED on error. */
static unsigned char *map_anon(size_t pages, int prot)
{
	return mmap(NULL, pages * page_size, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

FIXTURE(sig)
{
	unsigned char *p;
	size_t len;
};

FIXTURE_SETUP(sig)
{
	page_size = sysconf(_SC_PAGESIZE);
	self->p = MAP_FAILED;
	ASSERT_EQ(0, catch_faults());
}

FIXTURE_TEARDOWN(sig)
{
	if (self->p != MAP_FAILED)
		munmap(self->p, self->len);
}

/* A read where nothing is mapped: SIGSEGV, SEGV_MAPERR, at the address read. */
TEST_F(sig, maperr)
{
	unsigned char *p = map_anon(1, PROT_READ);

	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, munmap(p, page_size));
	EXPECT_CAUGHT(try_access(p + 8, ACCESS_READ), SIGSEGV, SEGV_MAPERR, p + 8);
}

/* A write to a read-only mapping: SEGV_ACCERR, after the read fault that maps it. */
TEST_F(sig, accerr_write_read_only)
{
	self->len = page_size;
	self->p = map_anon(1, PROT_READ);
	ASSERT_NE(MAP_FAILED, self->p);
	EXPECT_CAUGHT(try_access(self->p + 8, ACCESS_WRITE), SIGSEGV, SEGV_ACCERR, self->p + 8);
	ASSERT_EQ(0, try_access(self->p + 8, ACCESS_READ));
	EXPECT_CAUGHT(try_access(self->p + 8, ACCESS_WRITE), SIGSEGV, SEGV_ACCERR, self->p + 8);
}

/* Any access to PROT_NONE: SEGV_ACCERR. */
TEST_F(sig, accerr_prot_none)
{
	self->len = page_size;
	self->p = map_anon(1, PROT_NONE);
	ASSERT_NE(MAP_FAILED, self->p);
	EXPECT_CAUGHT(try_access(self->p + 8, ACCESS_READ), SIGSEGV, SEGV_ACCERR, self->p + 8);
	EXPECT_CAUGHT(try_access(self->p + 8, ACCESS_WRITE), SIGSEGV, SEGV_ACCERR, self->p + 8);
}

/*
 * Executing a page without PROT_EXEC: SEGV_ACCERR at the page. A CPU that
 * cannot refuse an instruction fetch per page (i386 without PAE, for one)
 * runs into the PROT_NONE page after it, or raises something else: the
 * case then skips, and only the arches listed in workbench/xskip/ may.
 * FR_NO_EXEC_FETCH=skip in the environment skips it without trying, for an
 * emulator that does not survive the fetch (QEMU 10.0's LoongArch raises
 * the exception again and again without ever reaching the guest's handler,
 * and the CPU hangs).
 */
TEST_F(sig, accerr_exec_no_exec)
{
	const char *knob = getenv("FR_NO_EXEC_FETCH");
	int ret;

	if (knob && !strcmp(knob, "skip"))
		SKIP(return, "FR_NO_EXEC_FETCH=skip: this machine hangs on a fetch from a no-execute page");
	self->len = 2 * page_size;
	self->p = map_anon(2, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->p);
	ASSERT_EQ(0, mprotect(self->p + page_size, page_size, PROT_NONE));
	self->p[0] = 0;		/* present: the fault is about execution only */
	ret = try_access(self->p, ACCESS_EXEC);
	if (ret != SIGSEGV || caught.code != SEGV_ACCERR ||
	    caught.addr != fault_addr((unsigned long)self->p))
		SKIP(return, "no per-page no-execute here: executing %p gave signal %d, code %d, at %#lx",
		     self->p, ret, caught.code, caught.addr);
}

/*
 * Stack growth: a frame 1 MiB deep touches memory beyond the stack's VMA,
 * which the fault loop grows (lock_mm_and_find_vma() expands it). The
 * [stack] VMA of /proc/self/maps then covers the frame.
 */
#define STACK_FRAME (1 << 20)

/* [stack] of /proc/self/maps: 0, or -1 if there is none. */
static int stack_vma(unsigned long *start, unsigned long *end)
{
	char line[256];
	FILE *f = fopen("/proc/self/maps", "r");
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", start, end) == 2)
			ret = 0;
	fclose(f);
	return ret;
}

static unsigned long __attribute__((noinline)) deep_frame(unsigned long *lo, unsigned long *hi)
{
	volatile unsigned char frame[STACK_FRAME];

	frame[0] = 1;
	frame[STACK_FRAME - 1] = 1;
	*lo = (unsigned long)&frame[0];
	*hi = (unsigned long)&frame[STACK_FRAME - 1];
	return frame[0] + frame[STACK_FRAME - 1];
}

TEST_F(sig, stack_grows)
{
	unsigned long start0, end0, start, end, lo, hi;

	/* A failed growth must kill the case, not land in try_access(). */
	signal(SIGSEGV, SIG_DFL);
	ASSERT_EQ(0, stack_vma(&start0, &end0)) TH_LOG("no [stack] in /proc/self/maps");
	ASSERT_EQ(2, deep_frame(&lo, &hi));
	ASSERT_EQ(0, stack_vma(&start, &end));
	TH_LOG("[stack] %#lx-%#lx, then %#lx-%#lx; frame %#lx-%#lx", start0, end0,
	       start, end, lo, hi);
	ASSERT_GT(end - start, end0 - start0);
	ASSERT_LE(start, lo);
	ASSERT_GT(end, hi);
}

/*
 * A kernel-mode fault on a bad user address ends in the exception fixup:
 * write() from and read() into unmapped or read-only memory fail with
 * EFAULT, and the pipe keeps its data.
 */
TEST_F(sig, kernel_efault)
{
	unsigned char buf[16] = { 0 }, *hole = map_anon(1, PROT_READ);
	int pfd[2];

	self->len = page_size;
	self->p = map_anon(1, PROT_READ);
	ASSERT_NE(MAP_FAILED, self->p);
	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole, page_size));
	ASSERT_EQ(0, pipe(pfd));
	errno = 0;
	EXPECT_EQ(-1, write(pfd[1], hole, sizeof(buf)));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ((ssize_t)sizeof(buf), write(pfd[1], buf, sizeof(buf)));
	errno = 0;
	EXPECT_EQ(-1, read(pfd[0], hole, sizeof(buf)));
	EXPECT_EQ(EFAULT, errno);
	errno = 0;
	EXPECT_EQ(-1, read(pfd[0], self->p, sizeof(buf)));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ((ssize_t)sizeof(buf), read(pfd[0], buf, sizeof(buf)));
	close(pfd[0]);
	close(pfd[1]);
}

/*
 * UFFD_FEATURE_SIGBUS: a fault on registered, missing memory raises SIGBUS
 * (BUS_ADRERR, at the address) at once, and no message is queued.
 */
TEST_F(sig, uffd_sigbus)
{
	struct uffd_msg msg;
	int uffd = uffd_open_features(UFFD_FEATURE_SIGBUS);

	if (uffd == -ENOSYS)
		SKIP(return, "userfaultfd is not configured in this kernel");
	ASSERT_LE(0, uffd) TH_LOG("userfaultfd: %s", strerror(-uffd));
	self->len = page_size;
	self->p = map_anon(1, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->p);
	ASSERT_EQ(0, uffd_register_missing(uffd, self->p, page_size));
	EXPECT_CAUGHT(try_access(self->p + 8, ACCESS_READ), SIGBUS, BUS_ADRERR, self->p + 8);
	EXPECT_CAUGHT(try_access(self->p + 8, ACCESS_WRITE), SIGBUS, BUS_ADRERR, self->p + 8);
	EXPECT_EQ(-ETIMEDOUT, uffd_read_msg(uffd, &msg, 100));
	close(uffd);
}

/*
 * A read of a page poisoned with UFFDIO_POISON: the fault returns
 * VM_FAULT_HWPOISON, which the arch reports as SIGBUS at the address read
 * (BUS_MCEERR_AR where it reports memory failures so, BUS_ADRERR
 * elsewhere), and a write the same. No message is queued: the poison
 * resolves the fault.
 */
TEST_F(sig, uffd_poison)
{
	struct uffdio_poison poison = { .mode = 0 };
	struct uffd_msg msg;
	int uffd = uffd_open_features(UFFD_FEATURE_POISON);
	int ret;

	if (uffd == -ENOSYS)
		SKIP(return, "userfaultfd is not configured in this kernel");
	ASSERT_LE(0, uffd) TH_LOG("userfaultfd: %s", strerror(-uffd));
	self->len = page_size;
	self->p = map_anon(1, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, self->p);
	ASSERT_EQ(0, uffd_register_missing(uffd, self->p, page_size));
	poison.range.start = (unsigned long)self->p;
	poison.range.len = page_size;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_POISON, &poison)) TH_LOG("UFFDIO_POISON: %s",
								 strerror(errno));
	ASSERT_EQ(page_size, poison.updated);
	for (enum access how = ACCESS_READ; how <= ACCESS_WRITE; how++) {
		ret = try_access(self->p + 8, how);
		ASSERT_EQ(SIGBUS, ret) TH_LOG("%s: signal %d, code %d, at %#lx",
					      how == ACCESS_READ ? "read" : "write",
					      caught.signo, caught.code, caught.addr);
		EXPECT_TRUE(caught.code == BUS_ADRERR || caught.code == BUS_MCEERR_AR)
			TH_LOG("si_code %d", caught.code);
		EXPECT_EQ(fault_addr((unsigned long)(self->p + 8)), caught.addr);
	}
	EXPECT_EQ(-ETIMEDOUT, uffd_read_msg(uffd, &msg, 100));
	close(uffd);
}

/*
 * A fault waits on userfaultfd while the monitor changes the mapping, then
 * is woken: its retry must look the VMA up again and answer for what is
 * there now: SEGV_MAPERR once the range is unmapped or moved away,
 * SEGV_ACCERR once it is PROT_NONE. (A retry that kept the old VMA would
 * use freed memory: the -rust-debug boots run this under KASAN.)
 */
enum vma_op { OP_MUNMAP, OP_MREMAP, OP_MPROTECT };

struct accessor {
	void *addr;
	enum access how;
	int ret;
	struct caught c;
};

static void *accessor_thread(void *arg)
{
	struct accessor *a = arg;

	a->ret = try_access(a->addr, a->how);
	a->c = caught;
	return NULL;
}

static void retry_finds_the_change(struct __test_metadata *_metadata,
				   FIXTURE_DATA(uffd) *self, enum vma_op op, int code)
{
	unsigned char *old = self->m.area, *dst;
	struct accessor a = { old + 8, ACCESS_READ };
	struct uffd_msg msg;
	pthread_t t;

	ASSERT_EQ(0, catch_faults());
	ASSERT_EQ(0, pthread_create(&t, NULL, accessor_thread, &a));
	EXPECT_FAULT_AT(self->m.uffd, old, &msg);
	switch (op) {
	case OP_MUNMAP:
		ASSERT_EQ(0, munmap(old, self->m.len));
		self->m.area = MAP_FAILED;
		break;
	case OP_MREMAP:
		dst = map_anon(1, PROT_NONE);
		ASSERT_NE(MAP_FAILED, dst);
		ASSERT_EQ(dst, mremap(old, self->m.len, self->m.len,
				      MREMAP_MAYMOVE | MREMAP_FIXED, dst));
		self->m.area = dst;
		break;
	case OP_MPROTECT:
		ASSERT_EQ(0, mprotect(old, self->m.len, PROT_NONE));
		break;
	}
	ASSERT_EQ(0, uffd_wake(self->m.uffd, (unsigned long)old, page_size));
	ASSERT_EQ(0, join_within(t, WAIT_MS)) TH_LOG("the fault did not end after the wake");
	caught = a.c;
	EXPECT_CAUGHT(a.ret, SIGSEGV, code, old + 8);
}

TEST_F(uffd, retry_after_munmap)
{
	retry_finds_the_change(_metadata, self, OP_MUNMAP, SEGV_MAPERR);
}

TEST_F(uffd, retry_after_mremap)
{
	retry_finds_the_change(_metadata, self, OP_MREMAP, SEGV_MAPERR);
}

TEST_F(uffd, retry_after_mprotect)
{
	retry_finds_the_change(_metadata, self, OP_MPROTECT, SEGV_ACCERR);
}

/* ---- memory types: anonymous, shmem (memfd), hugetlb (memfd) ---- */

enum mem_type { MEM_ANON, MEM_SHMEM, MEM_HUGETLB };

/*
 * @units units (pages, or huge pages for hugetlb) of one memory type,
 * mapped at area (and, for shmem and hugetlb, at alias too: the same
 * memory, not registered).
 */
struct typed_mem {
	enum mem_type type;
	size_t unit, len;
	int fd;
	unsigned char *area, *alias, *src;
	long hugepages0;	/* vm.nr_hugepages to restore, or -1 */
};

/* vm.nr_hugepages: read it, or write @set if >= 0; -1 on error. */
static long hugepages_sysctl(long set)
{
	const char *path = "/proc/sys/vm/nr_hugepages";
	char buf[32];
	long v = -1;
	FILE *f = fopen(path, set < 0 ? "r" : "w");

	if (!f)
		return -1;
	if (set < 0 && fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 10);
	else if (set >= 0 && fprintf(f, "%ld\n", set) > 0)
		v = set;
	if (fclose(f))
		v = -1;
	return v;
}

/* The default huge page size in bytes (Hugepagesize of /proc/meminfo), or 0. */
static size_t huge_page_size(void)
{
	char line[128];
	size_t kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Hugepagesize: %zu kB", &kb) == 1)
			break;
	fclose(f);
	return kb * 1024;
}

static void typed_mem_setup(struct __test_metadata *_metadata, struct typed_mem *tm,
			    enum mem_type type, size_t units)
{
	int prot = PROT_READ | PROT_WRITE;

	page_size = sysconf(_SC_PAGESIZE);
	tm->type = type;
	tm->fd = -1;
	tm->area = MAP_FAILED;
	tm->alias = MAP_FAILED;
	tm->src = NULL;
	tm->hugepages0 = -1;
	tm->unit = page_size;
	if (type == MEM_HUGETLB) {
		tm->unit = huge_page_size();
		if (!tm->unit)
			SKIP(return, "no hugetlbfs in this kernel (no Hugepagesize in /proc/meminfo)");
		tm->hugepages0 = hugepages_sysctl(-1);
		ASSERT_LE(0, tm->hugepages0);
		ASSERT_EQ((long)(tm->hugepages0 + units),
			  hugepages_sysctl(tm->hugepages0 + units));
		ASSERT_EQ((long)(tm->hugepages0 + units), hugepages_sysctl(-1))
			TH_LOG("cannot reserve %zu huge pages of %zu kB", units, tm->unit >> 10);
	}
	tm->len = units * tm->unit;
	if (type == MEM_ANON) {
		tm->area = mmap(NULL, tm->len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(MAP_FAILED, tm->area);
	} else {
		tm->fd = memfd_create("fault-retry", MFD_CLOEXEC |
				      (type == MEM_HUGETLB ? MFD_HUGETLB : 0));
		ASSERT_LE(0, tm->fd) TH_LOG("memfd_create: %s", strerror(errno));
		ASSERT_EQ(0, ftruncate(tm->fd, tm->len));
		tm->area = mmap(NULL, tm->len, prot, MAP_SHARED, tm->fd, 0);
		ASSERT_NE(MAP_FAILED, tm->area);
		tm->alias = mmap(NULL, tm->len, prot, MAP_SHARED, tm->fd, 0);
		ASSERT_NE(MAP_FAILED, tm->alias);
	}
	tm->src = malloc(tm->len);
	ASSERT_NE(NULL, tm->src);
	fill_pattern(tm->src, tm->len);
}

static void typed_mem_teardown(struct typed_mem *tm)
{
	if (tm->area != MAP_FAILED)
		munmap(tm->area, tm->len);
	if (tm->alias != MAP_FAILED)
		munmap(tm->alias, tm->len);
	if (tm->fd >= 0)
		close(tm->fd);
	free(tm->src);
	if (tm->hugepages0 >= 0)
		hugepages_sysctl(tm->hugepages0);
}

/* The userfaultfd features that mode @mode needs on memory of type @type. */
static uint64_t uffd_features(enum mem_type type, uint64_t mode)
{
	if (mode == UFFDIO_REGISTER_MODE_WP)
		return UFFD_FEATURE_PAGEFAULT_FLAG_WP |
		       (type == MEM_ANON ? 0 : UFFD_FEATURE_WP_HUGETLBFS_SHMEM);
	if (mode == UFFDIO_REGISTER_MODE_MINOR)
		return type == MEM_SHMEM ? UFFD_FEATURE_MINOR_SHMEM : UFFD_FEATURE_MINOR_HUGETLBFS;
	return type == MEM_SHMEM ? UFFD_FEATURE_MISSING_SHMEM :
	       type == MEM_HUGETLB ? UFFD_FEATURE_MISSING_HUGETLBFS : 0;
}

static const char *const mode_name[] = {
	[UFFDIO_REGISTER_MODE_MISSING] = "MISSING",
	[UFFDIO_REGISTER_MODE_WP] = "WP",
	[UFFDIO_REGISTER_MODE_MINOR] = "MINOR",
};

/* A userfaultfd with what @mode needs on @type, registered on the area. */
#define UFFD_TYPED_OPEN(tm, mode, uffdp) do { \
	int __r; \
	*(uffdp) = uffd_open_features(uffd_features((tm)->type, mode)); \
	if (*(uffdp) == -ENOSYS) \
		SKIP(return, "userfaultfd is not configured in this kernel"); \
	if (*(uffdp) == -EINVAL) \
		SKIP(return, "no userfaultfd %s mode for this memory type on this arch", \
		     mode_name[mode]); \
	ASSERT_LE(0, *(uffdp)) TH_LOG("userfaultfd: %s", strerror(-*(uffdp))); \
	__r = uffd_register(*(uffdp), (tm)->area, (tm)->len, mode); \
	ASSERT_EQ(0, __r) TH_LOG("UFFDIO_REGISTER: %s", strerror(-__r)); \
} while (0)

/* One unit of memory of the type of the variant, self->tm. */
FIXTURE(mem)
{
	struct typed_mem tm;
	int uffd;
};

FIXTURE_VARIANT(mem)
{
	enum mem_type type;
};

FIXTURE_VARIANT_ADD(mem, anon)
{
	.type = MEM_ANON,
};

FIXTURE_VARIANT_ADD(mem, shmem)
{
	.type = MEM_SHMEM,
};

FIXTURE_VARIANT_ADD(mem, hugetlb)
{
	.type = MEM_HUGETLB,
};

FIXTURE_SETUP(mem)
{
	self->uffd = -1;
	typed_mem_setup(_metadata, &self->tm, variant->type, 1);
}

FIXTURE_TEARDOWN(mem)
{
	if (self->uffd >= 0)
		close(self->uffd);
	typed_mem_teardown(&self->tm);
}

/*
 * MISSING: a read waits, survives NR_WAKES wakes (each a retry), and sees
 * the data of UFFDIO_COPY.
 */
TEST_F(mem, missing_retry_many)
{
	unsigned char *copy = calloc(1, self->tm.len);
	struct reader r = { self->tm.area, self->tm.len, copy };
	pthread_t t;

	ASSERT_NE(NULL, copy);
	UFFD_TYPED_OPEN(&self->tm, UFFDIO_REGISTER_MODE_MISSING, &self->uffd);
	ASSERT_EQ(0, pthread_create(&t, NULL, reader_thread, &r));
	EXPECT_RETRIES(self->uffd, (unsigned long)self->tm.area, 0);
	ASSERT_EQ(0, uffd_copy(self->uffd, (unsigned long)self->tm.area, self->tm.src,
			       self->tm.len));
	ASSERT_EQ(0, join_within(t, WAIT_MS));
	ASSERT_EQ(0, r.sigbus);
	ASSERT_EQ(0, memcmp(copy, self->tm.src, self->tm.len));
	free(copy);
}

/*
 * MINOR (shmem and hugetlb): the page is in the page cache (written through
 * the alias) but not mapped here: a read waits with
 * UFFD_PAGEFAULT_FLAG_MINOR, and UFFDIO_CONTINUE maps it. Anonymous memory
 * has no page cache: registering it in MINOR mode fails with EINVAL.
 */
TEST_F(mem, minor_continue)
{
	unsigned char *copy = calloc(1, self->tm.len);
	struct reader r = { self->tm.area, self->tm.len, copy };
	struct uffdio_continue cont = {
		.range = { .start = (unsigned long)self->tm.area, .len = self->tm.len },
	};
	struct uffd_msg msg;
	pthread_t t;

	ASSERT_NE(NULL, copy);
	if (self->tm.type == MEM_ANON) {
		self->uffd = uffd_open();
		ASSERT_LE(0, self->uffd);
		ASSERT_EQ(-EINVAL, uffd_register(self->uffd, self->tm.area, self->tm.len,
						 UFFDIO_REGISTER_MODE_MINOR));
		free(copy);
		return;
	}
	memcpy(self->tm.alias, self->tm.src, self->tm.len);
	UFFD_TYPED_OPEN(&self->tm, UFFDIO_REGISTER_MODE_MINOR, &self->uffd);
	ASSERT_EQ(0, pthread_create(&t, NULL, reader_thread, &r));
	EXPECT_FAULT_AT(self->uffd, self->tm.area, &msg);
	ASSERT_NE(0, msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_MINOR);
	ASSERT_EQ(0, ioctl(self->uffd, UFFDIO_CONTINUE, &cont))
		TH_LOG("UFFDIO_CONTINUE: %s", strerror(errno));
	ASSERT_EQ(0, join_within(t, WAIT_MS));
	ASSERT_EQ(0, r.sigbus);
	ASSERT_EQ(0, memcmp(copy, self->tm.src, self->tm.len));
	free(copy);
}

static int uffd_writeprotect(int uffd, void *addr, size_t len, int protect)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = (unsigned long)addr, .len = len },
		.mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) ? -errno : 0;
}

struct writer {
	volatile unsigned char *addr;
	atomic_int done;
};

static void *writer_thread(void *arg)
{
	struct writer *w = arg;

	*(volatile long *)w->addr = 0x5a;
	atomic_store(&w->done, 1);
	return NULL;
}

/*
 * WP: a write to a present, write-protected page waits with
 * UFFD_PAGEFAULT_FLAG_WP, retries after each wake (still protected), and
 * completes once UFFDIO_WRITEPROTECT lifts the protection.
 */
TEST_F(mem, wp_retry_many)
{
	struct writer w = { self->tm.area };
	pthread_t t;
	int ret;

	memcpy(self->tm.area, self->tm.src, self->tm.len);
	UFFD_TYPED_OPEN(&self->tm, UFFDIO_REGISTER_MODE_WP, &self->uffd);
	ret = uffd_writeprotect(self->uffd, self->tm.area, self->tm.len, 1);
	ASSERT_EQ(0, ret) TH_LOG("UFFDIO_WRITEPROTECT: %s", strerror(-ret));
	ASSERT_EQ(0, pthread_create(&t, NULL, writer_thread, &w));
	EXPECT_RETRIES(self->uffd, (unsigned long)self->tm.area,
		       UFFD_PAGEFAULT_FLAG_WP | UFFD_PAGEFAULT_FLAG_WRITE);
	ASSERT_EQ(0, atomic_load(&w.done));
	ASSERT_EQ(0, uffd_writeprotect(self->uffd, self->tm.area, self->tm.len, 0));
	ASSERT_EQ(0, join_within(t, WAIT_MS));
	ASSERT_EQ(0x5a, *(volatile long *)self->tm.area);
	ASSERT_EQ(0, memcmp(self->tm.area + sizeof(long), self->tm.src + sizeof(long),
			    self->tm.len - sizeof(long)));
}

/* ---- fork while a fault waits ---- */

struct forker {
	volatile unsigned char *area;
	pid_t pid;
};

/* Forks; the child exits 0 if it sees the pattern in the page, 1 if zeros. */
static void *forker_thread(void *arg)
{
	struct forker *f = arg;

	f->pid = fork();
	if (f->pid == 0) {
		int zeros = 1;

		for (long i = 0; i < page_size; i++)
			zeros &= f->area[i] == 0;
		_exit(check_pattern(f->area, page_size) == 0 ? 0 : zeros ? 1 : 2);
	}
	return NULL;
}

/*
 * A thread waits in a fault while another forks: the fork does not break
 * the waiting fault, which reports no other page and completes once
 * resolved (it may report its own page again if it retried); the child
 * sees what its registration says. Without UFFD_FEATURE_EVENT_FORK the
 * child's copy of the range is not registered: it reads zeros. With it,
 * the child's range waits on a userfaultfd of its own.
 */
static void fault_survives_fork(struct __test_metadata *_metadata,
				FIXTURE_DATA(uffd) *self, int event_fork)
{
	struct reader r = { self->m.area, self->m.len, self->m.copy };
	struct forker f = { self->m.area, -1 };
	int child_uffd = -1, status, ret;
	struct uffd_msg msg;
	pthread_t t, ft;

	if (event_fork) {
		close(self->m.uffd);
		self->m.uffd = uffd_open_features(UFFD_FEATURE_EVENT_FORK);
		ASSERT_LE(0, self->m.uffd);
		ASSERT_EQ(0, uffd_register_missing(self->m.uffd, self->m.area, self->m.len));
	}
	ASSERT_EQ(0, pthread_create(&t, NULL, reader_thread, &r));
	EXPECT_FAULT_AT(self->m.uffd, self->m.area, &msg);
	ASSERT_EQ(0, pthread_create(&ft, NULL, forker_thread, &f));
	if (event_fork) {
		/* fork() waits until the monitor has read this. */
		ASSERT_EQ(0, uffd_read_event(self->m.uffd, &msg, WAIT_MS));
		ASSERT_EQ(UFFD_EVENT_FORK, msg.event);
		child_uffd = msg.arg.fork.ufd;
	}
	ASSERT_EQ(0, join_within(ft, WAIT_MS)) TH_LOG("fork() did not return");
	ASSERT_LT(0, f.pid);
	if (event_fork) {
		EXPECT_FAULT_AT(child_uffd, self->m.area, &msg);
		ASSERT_EQ(0, uffd_copy(child_uffd, (unsigned long)self->m.area, self->m.src,
				       self->m.len));
	}
	ASSERT_EQ(0, wait_within(f.pid, &status, 0, WAIT_MS));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(event_fork ? 0 : 1, WEXITSTATUS(status));
	/*
	 * The parent's fault still waits, and only for its own resolution.
	 * A fault that was woken and retried reports its page again (seen
	 * about once in 25 runs on mips and um, whose loops hold the mmap
	 * lock); a few such reports are allowed, nothing else is.
	 */
	for (int dup = 0; (ret = uffd_read_msg(self->m.uffd, &msg, 100)) == 0; dup++) {
		ASSERT_EQ((unsigned long)self->m.area, msg_page(&msg))
			TH_LOG("a fault at %#llx, not at the waiting one",
			       (unsigned long long)msg.arg.pagefault.address);
		ASSERT_LT(dup, 3) TH_LOG("the waiting fault keeps retrying");
	}
	ASSERT_EQ(-ETIMEDOUT, ret);
	ASSERT_EQ(0, uffd_copy(self->m.uffd, (unsigned long)self->m.area, self->m.src,
			       self->m.len));
	ASSERT_EQ(0, join_within(t, WAIT_MS));
	ASSERT_EQ(0, r.sigbus);
	ASSERT_EQ(0, memcmp(self->m.copy, self->m.src, self->m.len));
	if (child_uffd >= 0)
		close(child_uffd);
}

TEST_F(uffd, fork_while_waiting)
{
	fault_survives_fork(_metadata, self, 0);
}

TEST_F(uffd, fork_while_waiting_event_fork)
{
	fault_survives_fork(_metadata, self, 1);
}

/* ---- cases with separate processes ---- */

FIXTURE(proc)
{
	struct child target;
	unsigned char *src;
};

FIXTURE_SETUP(proc)
{
	page_size = sysconf(_SC_PAGESIZE);
	child_init(&self->target);
	self->src = malloc(page_size);
	ASSERT_NE(NULL, self->src);
	fill_pattern(self->src, page_size);
}

FIXTURE_TEARDOWN(proc)
{
	stop_child(&self->target);
	free(self->src);
}

#define START_CHILD(ch, mode) do { \
	int __u = uffd_open(); \
	if (__u == -ENOSYS) \
		SKIP(return, "userfaultfd is not configured in this kernel"); \
	if (__u >= 0) \
		close(__u); \
	ASSERT_EQ(0, start_child(ch, mode)) TH_LOG("cannot start the child"); \
} while (0)

/* The child's exit within WAIT_MS, with status 0 (it saw the right bytes). */
#define EXPECT_CHILD_OK(ch) do { \
	int __st; \
	ASSERT_EQ(0, wait_within((ch)->pid, &__st, __WALL, WAIT_MS)) \
		TH_LOG("the child did not finish after the resolution"); \
	(ch)->pid = -1; \
	ASSERT_TRUE(WIFEXITED(__st)) TH_LOG("child status %#x", __st); \
	ASSERT_EQ(0, WEXITSTATUS(__st)); \
} while (0)

/*
 * Claim (a), job control: a process blocked in a user-mode fault stops on
 * SIGSTOP (state T within a second), faults again after SIGCONT, and
 * completes once resolved.
 */
TEST_F(proc, sigstop_sigcont)
{
	struct child *ch = &self->target;
	struct uffd_msg msg;
	double end;
	char st = 0;

	START_CHILD(ch, CHILD_TOUCH);
	EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
	ASSERT_EQ(0, kill(ch->pid, SIGSTOP));
	for (end = now_s() + 1; now_s() < end; usleep(1000)) {
		st = proc_state(ch->pid);
		if (st == 'T')
			break;
	}
	ASSERT_EQ('T', st) TH_LOG("state %c one second after SIGSTOP", st ? st : '?');
	ASSERT_EQ(0, kill(ch->pid, SIGCONT));
	EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
	ASSERT_EQ(0, uffd_copy(ch->uffd, ch->addr, self->src, page_size));
	EXPECT_CHILD_OK(ch);
}

/*
 * Claim (a), debuggers: PTRACE_SEIZE + PTRACE_INTERRUPT stop a process
 * blocked in a user-mode fault; its registers can be read; after
 * PTRACE_DETACH it faults again and completes once resolved.
 */
TEST_F(proc, ptrace_interrupt)
{
	struct child *ch = &self->target;
	unsigned char regs[4096];
	struct iovec iov = { .iov_base = regs, .iov_len = sizeof(regs) };
	struct uffd_msg msg;
	int status;

	START_CHILD(ch, CHILD_TOUCH);
	EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
	ASSERT_EQ(0, ptrace(PTRACE_SEIZE, ch->pid, 0, 0));
	ASSERT_EQ(0, ptrace(PTRACE_INTERRUPT, ch->pid, 0, 0));
	ASSERT_EQ(0, wait_within(ch->pid, &status, __WALL, WAIT_MS))
		TH_LOG("PTRACE_INTERRUPT did not stop the faulting process");
	ASSERT_TRUE(WIFSTOPPED(status));
	ASSERT_EQ(PTRACE_EVENT_STOP, status >> 16);
	if (ptrace(PTRACE_GETREGSET, ch->pid, (void *)NT_PRSTATUS, &iov) == 0) {
		ASSERT_LT(0, iov.iov_len);
	} else {
		/* No regsets (um): read the first word of struct user. */
		errno = 0;
		ptrace(PTRACE_PEEKUSER, ch->pid, 0, 0);
		ASSERT_EQ(0, errno) TH_LOG("cannot read the registers: %s", strerror(errno));
	}
	ASSERT_EQ(0, ptrace(PTRACE_DETACH, ch->pid, 0, 0));
	EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
	ASSERT_EQ(0, uffd_copy(ch->uffd, ch->addr, self->src, page_size));
	EXPECT_CHILD_OK(ch);
}

#define EXPECT_KILLED_PROMPTLY(pid) do { \
	int __st; \
	ASSERT_EQ(0, kill(pid, SIGKILL)); \
	ASSERT_EQ(0, wait_within(pid, &__st, __WALL, 2000)) \
		TH_LOG("SIGKILL did not end the blocked process within 2 s"); \
	ASSERT_TRUE(WIFSIGNALED(__st)); \
	ASSERT_EQ(SIGKILL, WTERMSIG(__st)); \
} while (0)

/* ---- kernel-mode faults: sleep, not spin, while a non-fatal signal is pending ---- */

static void noop_handler(int sig)
{
	(void)sig;
}

/* The kernel-mode fault of a PIPE_* child; the exit status of the child. */
static int pipe_copy_check(volatile unsigned char *p, enum child_mode mode)
{
	struct sigaction sa = { .sa_handler = noop_handler, .sa_flags = SA_RESTART };
	unsigned char *buf = malloc(page_size);
	int pfd[2];

	sigemptyset(&sa.sa_mask);
	if (!buf || sigaction(SIGUSR1, &sa, NULL) || pipe(pfd))
		return 3;
	if (mode == CHILD_PIPE_WRITE) {
		/* Blocks in copy_from_user() until the page is resolved. */
		if (write(pfd[1], (void *)p, page_size) != page_size ||
		    read(pfd[0], buf, page_size) != page_size)
			return 4;
		return check_pattern(buf, page_size) ? 2 : 0;
	}
	fill_pattern(buf, page_size);
	if (write(pfd[1], buf, page_size) != page_size)
		return 4;
	/* Blocks in copy_to_user() until the page is resolved. */
	if (read(pfd[0], (void *)p, page_size) != page_size)
		return 4;
	return check_pattern(p, page_size) ? 2 : 0;
}

/*
 * A kernel-mode fault on userfaultfd memory, in another process: its
 * write() or read() waits in handle_userfault() for the page.
 */
FIXTURE(kernel_mode)
{
	struct child target;
	unsigned char *src;
};

FIXTURE_VARIANT(kernel_mode)
{
	enum child_mode mode;
};

FIXTURE_VARIANT_ADD(kernel_mode, write)
{
	.mode = CHILD_PIPE_WRITE,
};

FIXTURE_VARIANT_ADD(kernel_mode, read)
{
	.mode = CHILD_PIPE_READ,
};

FIXTURE_SETUP(kernel_mode)
{
	page_size = sysconf(_SC_PAGESIZE);
	child_init(&self->target);
	self->src = malloc(page_size);
	ASSERT_NE(NULL, self->src);
	fill_pattern(self->src, page_size);
}

FIXTURE_TEARDOWN(kernel_mode)
{
	stop_child(&self->target);
	free(self->src);
}

/*
 * A handled SIGUSR1 does not make the fault spin: it sleeps (under 10% of
 * one CPU over a second) until the page is resolved, then the copy
 * completes. (Before the fix: 100%, retrying at once.)
 */
TEST_F(kernel_mode, signal_sleeps)
{
	struct child *ch = &self->target;
	struct uffd_msg msg;

	START_CHILD(ch, variant->mode);
	EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
	ASSERT_EQ(0, kill(ch->pid, SIGUSR1));
	EXPECT_LT(proc_cpu_in_one_second(_metadata, ch->pid), 0.1);
	ASSERT_EQ(0, uffd_copy(ch->uffd, ch->addr, self->src, page_size));
	EXPECT_CHILD_OK(ch);
}

/*
 * SIGSTOP: the fault keeps sleeping (it cannot stop inside the kernel), the
 * process stops once the copy is done and it returns to user mode, and
 * continues after SIGCONT with the right bytes.
 */
TEST_F(kernel_mode, sigstop)
{
	struct child *ch = &self->target;
	struct uffd_msg msg;
	double end;
	char st = 0;

	START_CHILD(ch, variant->mode);
	EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
	ASSERT_EQ(0, kill(ch->pid, SIGSTOP));
	EXPECT_LT(proc_cpu_in_one_second(_metadata, ch->pid), 0.1);
	ASSERT_EQ(0, uffd_copy(ch->uffd, ch->addr, self->src, page_size));
	for (end = now_s() + 2; now_s() < end; usleep(1000)) {
		st = proc_state(ch->pid);
		if (st == 'T')
			break;
	}
	ASSERT_EQ('T', st) TH_LOG("state %c after the resolution", st ? st : '?');
	ASSERT_EQ(0, kill(ch->pid, SIGCONT));
	EXPECT_CHILD_OK(ch);
}

/* Reads @len bytes at @addr of process @pid: pin_user_pages_remote(). */
static ssize_t remote_read(pid_t pid, unsigned long addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)addr, .iov_len = len };

	return process_vm_readv(pid, &local, 1, &remote, 1, 0);
}

struct remote_reader {
	pid_t pid;
	unsigned long addr;
	unsigned char *buf;
	ssize_t ret;
	int err;
};

static void *remote_reader_thread(void *arg)
{
	struct remote_reader *r = arg;

	r->ret = remote_read(r->pid, r->addr, r->buf, page_size);
	r->err = errno;
	return NULL;
}

/*
 * Claim (b), GUP with the caller's lock: process_vm_readv() of missing
 * memory is pin_user_pages_remote() with a "locked" pointer, so each wake
 * without resolution retries the fault: NR_WAKES + 1 messages, then the
 * right data after UFFDIO_COPY.
 */
TEST_F(proc, gup_remote_retry_many)
{
	struct child *ch = &self->target;
	struct remote_reader r = { .ret = -1 };
	pthread_t t;

	START_CHILD(ch, CHILD_IDLE);
	r.pid = ch->pid;
	r.addr = ch->addr;
	r.buf = calloc(1, page_size);
	ASSERT_NE(NULL, r.buf);
	ASSERT_EQ(0, pthread_create(&t, NULL, remote_reader_thread, &r));
	EXPECT_RETRIES(ch->uffd, ch->addr, 0);
	ASSERT_EQ(0, uffd_copy(ch->uffd, ch->addr, self->src, page_size));
	ASSERT_EQ(0, join_within(t, WAIT_MS));
	ASSERT_EQ(page_size, r.ret) TH_LOG("process_vm_readv: %s", strerror(r.err));
	ASSERT_EQ(0, memcmp(r.buf, self->src, page_size));
	free(r.buf);
}

/*
 * GUP without retry: /proc/PID/mem goes through access_remote_vm() and
 * get_user_pages_remote() without a "locked" pointer, so the fault has no
 * FAULT_FLAG_ALLOW_RETRY and handle_userfault() cannot wait: it returns
 * VM_FAULT_SIGBUS before queueing a message, and the read fails with EIO at
 * once. This asserts the 6.12 behaviour.
 */
TEST_F(proc, gup_remote_no_retry)
{
	struct child *ch = &self->target;
	unsigned char *buf = malloc(page_size);
	struct uffd_msg msg;
	char path[64];
	double t0, dt;
	ssize_t r;
	int fd, err;

	ASSERT_NE(NULL, buf);
	START_CHILD(ch, CHILD_IDLE);
	snprintf(path, sizeof(path), "/proc/%d/mem", ch->pid);
	fd = open(path, O_RDONLY);
	ASSERT_LE(0, fd);
	/*
	 * lseek() and read(), not pread(): /proc/PID/mem takes offsets
	 * above the signed range (sparc64's user addresses are), but
	 * pread() refuses a negative offset. Such an lseek() succeeds, but
	 * its return value is not the offset with every C library (sparc64's
	 * glibc): check errno instead.
	 */
	errno = 0;
	lseek(fd, ch->addr, SEEK_SET);
	ASSERT_EQ(0, errno) TH_LOG("lseek: %s", strerror(errno));
	t0 = now_s();
	r = read(fd, buf, page_size);
	err = errno;
	dt = now_s() - t0;
	close(fd);
	ASSERT_EQ(-1, r);
	ASSERT_EQ(EIO, err) TH_LOG("read: %s", strerror(err));
	ASSERT_GT(1.0, dt);
	ASSERT_EQ(-ETIMEDOUT, uffd_read_msg(ch->uffd, &msg, 200))
		TH_LOG("a fault message was queued");
	free(buf);
}

/* ---- GUP's own retry loops, on many pages, with no user-mode fault ---- */

/*
 * Syscalls whose only access to the memory is through GUP: the faults
 * that wait are those of GUP's loops, not of the program's own accesses.
 *  - madvise(MADV_POPULATE_WRITE): faultin_page_range(), that is
 *    __get_user_pages_locked() with FOLL_UNLOCKABLE and FOLL_WRITE, and
 *    without FOLL_INTERRUPTIBLE;
 *  - mlock(): __mm_populate(), whose loop takes the mmap lock again and
 *    calls populate_vma_page_range() (__get_user_pages() with
 *    FOLL_UNLOCKABLE, and FOLL_WRITE on a private writable mapping) from
 *    where the retry left off;
 *  - process_vm_writev(): pin_user_pages_remote() with a "locked" pointer
 *    and FOLL_WRITE, so __get_user_pages_locked() with FOLL_UNLOCKABLE.
 */
enum gup_syscall { GUP_POPULATE_WRITE, GUP_MLOCK, GUP_VM_WRITEV };

struct gup_syscall_call {
	enum gup_syscall what;
	void *addr;
	size_t len;
	const void *buf;	/* GUP_VM_WRITEV: what to write */
	long ret;
	int err;
	atomic_int done;
};

static void *gup_syscall_thread(void *arg)
{
	struct gup_syscall_call *c = arg;
	struct iovec local = { .iov_base = (void *)c->buf, .iov_len = c->len };
	struct iovec remote = { .iov_base = c->addr, .iov_len = c->len };

	errno = 0;
	switch (c->what) {
	case GUP_POPULATE_WRITE:
		c->ret = madvise(c->addr, c->len, MADV_POPULATE_WRITE);
		break;
	case GUP_MLOCK:
		c->ret = mlock(c->addr, c->len);
		break;
	case GUP_VM_WRITEV:
		c->ret = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
		break;
	}
	c->err = errno;
	atomic_store(&c->done, 1);
	return NULL;
}

/* Whether madvise() knows MADV_POPULATE_WRITE (Linux 5.14). */
static int have_populate_write(void)
{
	void *p = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	int ret;

	if (p == MAP_FAILED)
		return 1;	/* let the case fail on its own */
	ret = madvise(p, page_size, MADV_POPULATE_WRITE) == 0 || errno != EINVAL;
	munmap(p, page_size);
	return ret;
}

/* VmLck of /proc/self/status in kB, or -1. */
static long vm_locked_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

#define GUP_LOOP_PAGES 16

/* GUP_LOOP_PAGES pages of registered, missing memory. */
FIXTURE(gup_loop)
{
	struct uffd_mem m;
};

FIXTURE_SETUP(gup_loop)
{
	uffd_mem_setup(_metadata, &self->m, GUP_LOOP_PAGES);
}

FIXTURE_TEARDOWN(gup_loop)
{
	uffd_mem_teardown(&self->m);
}

/*
 * Runs @c in a thread and answers its faults: each page must be reported
 * once, in order, for write, and is then resolved with UFFDIO_COPY from
 * @fill (the same offset in it). Every resolution but the last is followed
 * by the fault of the next page: the call retried the page and went on, in
 * GUP_LOOP_PAGES rounds of the loop. With @sigusr1, a SIGUSR1 is sent to
 * the thread at the first page and again at the middle one, and its
 * handler must not have run while a page is missing (the thread has not
 * left the syscall). The call must then return within WAIT_MS, and no
 * other fault message is queued.
 */
static void resolve_each_page(struct __test_metadata *_metadata, struct uffd_mem *m,
			      struct gup_syscall_call *c, const unsigned char *fill,
			      int sigusr1)
{
	struct uffd_msg msg;
	pthread_t t;
	char ch;
	int ret;

	ASSERT_EQ(0, pthread_create(&t, NULL, gup_syscall_thread, c));
	for (size_t i = 0; i < GUP_LOOP_PAGES; i++) {
		unsigned long page = (unsigned long)m->area + i * page_size;

		ret = uffd_read_msg(m->uffd, &msg, WAIT_MS);
		if (ret && atomic_load(&c->done))
			TH_LOG("the call returned %ld (%s) with page %zu missing", c->ret,
			       strerror(c->err), i);
		ASSERT_EQ(0, ret) TH_LOG("page %zu: no fault message: %s", i, strerror(-ret));
		ASSERT_EQ(page, msg_page(&msg))
			TH_LOG("page %zu: a fault at %#llx", i,
			       (unsigned long long)msg.arg.pagefault.address);
		ASSERT_NE(0, msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
		if (sigusr1 && (i == 0 || i == GUP_LOOP_PAGES / 2)) {
			ASSERT_EQ(0, pthread_kill(t, SIGUSR1));
		}
		if (sigusr1) {
			ASSERT_EQ(-1, read(sig_pipe[0], &ch, 1))
				TH_LOG("the handler ran while page %zu was missing", i);
			ASSERT_EQ(0, atomic_load(&nr_sigusr1));
		}
		ASSERT_EQ(0, uffd_copy(m->uffd, page, fill + i * page_size, page_size));
	}
	ASSERT_EQ(0, join_within(t, WAIT_MS)) TH_LOG("the call did not return");
	ASSERT_EQ(-ETIMEDOUT, uffd_read_msg(m->uffd, &msg, 100))
		TH_LOG("one more fault, at %#llx", (unsigned long long)msg.arg.pagefault.address);
}

/*
 * MADV_POPULATE_WRITE over 16 missing pages: GUP waits and retries once per
 * page, and the call returns 0 once all are resolved. A handled SIGUSR1
 * (without SA_RESTART) sent twice while it waits does not end it: 6.12's
 * faultin_page_range() does not set FOLL_INTERRUPTIBLE, so the faults wait
 * killable and gup_signal_pending() stops only for a fatal signal. The
 * handler runs once (the two signals were one pending SIGUSR1), when the
 * call returns. The pages have the bytes of UFFDIO_COPY.
 */
TEST_F(gup_loop, populate_write_retry_many)
{
	struct gup_syscall_call c = { .what = GUP_POPULATE_WRITE, .addr = self->m.area,
				      .len = self->m.len };
	char ch;

	if (!have_populate_write())
		SKIP(return, "no MADV_POPULATE_WRITE in this kernel (Linux 5.14)");
	ASSERT_EQ(0, install_sigusr1(0));
	resolve_each_page(_metadata, &self->m, &c, self->m.src, 1);
	ASSERT_EQ(0, c.ret) TH_LOG("madvise: %s", strerror(c.err));
	ASSERT_EQ(1, atomic_load(&nr_sigusr1));
	ASSERT_EQ(1, read(sig_pipe[0], &ch, 1));
	ASSERT_EQ(0, memcmp(self->m.area, self->m.src, self->m.len));
}

/*
 * mlock() of 16 missing pages: __mm_populate() faults them in for write
 * (a private writable mapping), waiting and retrying once per page, and
 * mlock() returns 0. Then mincore() reports every page resident, VmLck
 * grew by the 16 pages, and they have the bytes of UFFDIO_COPY.
 */
TEST_F(gup_loop, mlock_retry_many)
{
	struct gup_syscall_call c = { .what = GUP_MLOCK, .addr = self->m.area,
				      .len = self->m.len };
	unsigned char vec[GUP_LOOP_PAGES];
	long locked0 = vm_locked_kb();
	struct rlimit rl;

	ASSERT_LE(0, locked0) TH_LOG("no VmLck in /proc/self/status");
	/* Without CAP_IPC_LOCK, RLIMIT_MEMLOCK must allow the pages. */
	ASSERT_EQ(0, getrlimit(RLIMIT_MEMLOCK, &rl));
	if (geteuid() && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur < (rlim_t)(locked0 * 1024 + self->m.len))
		SKIP(return, "RLIMIT_MEMLOCK (%llu bytes) does not allow mlock() of %zu more",
		     (unsigned long long)rl.rlim_cur, self->m.len);
	resolve_each_page(_metadata, &self->m, &c, self->m.src, 0);
	ASSERT_EQ(0, c.ret) TH_LOG("mlock: %s", strerror(c.err));
	ASSERT_EQ(0, mincore(self->m.area, self->m.len, vec));
	for (int i = 0; i < GUP_LOOP_PAGES; i++) {
		ASSERT_EQ(1, vec[i] & 1) TH_LOG("page %d is not resident", i);
	}
	ASSERT_EQ(locked0 + (long)(self->m.len / 1024), vm_locked_kb());
	ASSERT_EQ(0, memcmp(self->m.area, self->m.src, self->m.len));
}

/*
 * process_vm_writev() of 16 pages into this process's missing memory: the
 * pin waits and retries once per page, and the call returns the whole
 * length. The pages are resolved with zeros: what they hold after the call
 * is what it wrote.
 */
TEST_F(gup_loop, vm_writev_retry_many)
{
	struct gup_syscall_call c = { .what = GUP_VM_WRITEV, .addr = self->m.area,
				      .len = self->m.len, .buf = self->m.src };

	/* self->m.copy is zeros. */
	resolve_each_page(_metadata, &self->m, &c, self->m.copy, 0);
	ASSERT_EQ((long)self->m.len, c.ret) TH_LOG("process_vm_writev: %s", strerror(c.err));
	ASSERT_EQ(0, memcmp(self->m.area, self->m.src, self->m.len));
}

/* ---- storm ---- */

#define STORM_THREADS 4
#define STORM_PAGES_PER_THREAD 16
#define STORM_PAGES (STORM_THREADS * STORM_PAGES_PER_THREAD)
#define STORM_SECONDS 60

struct storm_thread {
	pthread_t t;
	const volatile unsigned char *base;	/* its first page */
	size_t len;
	size_t offset;				/* of base in the area */
	atomic_int done;
	int bad;
};

static void *storm_thread(void *arg)
{
	struct storm_thread *s = arg;

	for (size_t i = 0; i < s->len; i++)
		if (s->base[i] != pattern(s->offset + i))
			s->bad++;
	atomic_store(&s->done, 1);
	return NULL;
}

/*
 * The storm's random seed: FR_SEED from the environment (to replay a run),
 * or one from the time and the PID; logged either way.
 */
static unsigned int storm_seed(struct __test_metadata *_metadata)
{
	const char *env = getenv("FR_SEED");
	unsigned int seed = env ? (unsigned int)strtoul(env, NULL, 0)
				: (unsigned int)time(NULL) ^ getpid();

	TH_LOG("seed %u%s", seed, env ? " (FR_SEED)" : "; FR_SEED=<seed> replays it");
	return seed;
}

FIXTURE(storm)
{
	struct uffd_mem m;
};

FIXTURE_SETUP(storm)
{
	uffd_mem_setup(_metadata, &self->m, STORM_PAGES);
}

FIXTURE_TEARDOWN(storm)
{
	uffd_mem_teardown(&self->m);
}

/*
 * Several threads fault on many pages. The monitor resolves the faults in
 * random order, with random extra wakes and bursts of SIGUSR1. Every byte
 * is checked, every thread finishes, within a bounded time.
 */
TEST_F_TIMEOUT(storm, storm, STORM_SECONDS + 30)
{
	struct storm_thread th[STORM_THREADS] = { 0 };
	unsigned char pending[STORM_PAGES] = { 0 }, resolved[STORM_PAGES] = { 0 };
	unsigned int seed = storm_seed(_metadata);
	int i, nr_done = 0, wakes = 0, bursts = 0, copies = 0;
	double deadline = now_s() + STORM_SECONDS;

	ASSERT_EQ(0, install_sigusr1(SA_RESTART));
	for (i = 0; i < STORM_THREADS; i++) {
		th[i].offset = (size_t)i * STORM_PAGES_PER_THREAD * page_size;
		th[i].base = self->m.area + th[i].offset;
		th[i].len = STORM_PAGES_PER_THREAD * page_size;
		ASSERT_EQ(0, pthread_create(&th[i].t, NULL, storm_thread, &th[i]));
	}
	while (nr_done < STORM_THREADS && now_s() < deadline) {
		struct uffd_msg msg;
		int p, n = 0, pick[STORM_PAGES];

		while (uffd_read_msg(self->m.uffd, &msg, n ? 0 : 10) == 0) {
			p = (msg_page(&msg) - (unsigned long)self->m.area) / page_size;
			ASSERT_LE(0, p);
			ASSERT_GT(STORM_PAGES, p);
			pending[p] = 1;
			n++;
		}
		for (p = 0, n = 0; p < STORM_PAGES; p++)
			if (pending[p])
				pick[n++] = p;
		if (n) {
			unsigned long dst;
			int r = rand_r(&seed) % 4;

			p = pick[rand_r(&seed) % n];
			dst = (unsigned long)self->m.area + p * page_size;
			if (r < 2) {
				unsigned char *src = self->m.src + p * page_size;
				int ret = uffd_copy(self->m.uffd, dst, src, page_size);

				ASSERT_TRUE(ret == 0 || ret == -EEXIST)
					TH_LOG("copy: %s", strerror(-ret));
				pending[p] = 0;
				resolved[p] = 1;
				copies++;
			} else if (r == 2) {
				ASSERT_EQ(0, uffd_wake(self->m.uffd, dst, page_size));
				wakes++;
			} else {
				for (i = 0; i < STORM_THREADS; i++)
					if (!atomic_load(&th[i].done))
						pthread_kill(th[i].t, SIGUSR1);
				bursts++;
			}
		}
		for (i = 0, nr_done = 0; i < STORM_THREADS; i++)
			nr_done += atomic_load(&th[i].done);
	}
	TH_LOG("%d copies, %d extra wakes, %d signal bursts, %d handlers ran",
	       copies, wakes, bursts, atomic_load(&nr_sigusr1));
	/* Release whatever is left, so that every thread can be joined. */
	for (i = 0; i < STORM_PAGES; i++)
		if (!resolved[i])
			uffd_copy(self->m.uffd, (unsigned long)self->m.area + i * page_size,
				  self->m.src + i * page_size, page_size);
	for (i = 0; i < STORM_THREADS; i++)
		ASSERT_EQ(0, join_within(th[i].t, WAIT_MS)) TH_LOG("thread %d is lost", i);
	ASSERT_EQ(STORM_THREADS, nr_done) TH_LOG("not done in %d s", STORM_SECONDS);
	for (i = 0; i < STORM_THREADS; i++) {
		int bad = th[i].bad;

		ASSERT_EQ(0, bad) TH_LOG("thread %d saw %d wrong bytes", i, bad);
	}
}

#define STORM_PROCS 4

/* Stops @pid with SIGSTOP until /proc shows it stopped, then continues it. */
static int stop_and_continue(pid_t pid)
{
	double end = now_s() + WAIT_MS / 1000.0;

	if (kill(pid, SIGSTOP))
		return -1;
	while (proc_state(pid) != 'T')
		if (now_s() > end)
			return -1;
	return kill(pid, SIGCONT);
}

/* Seizes, interrupts (waiting for the stop) and detaches @pid. */
static int ptrace_round_trip(pid_t pid)
{
	int status;

	if (ptrace(PTRACE_SEIZE, pid, 0, 0) || ptrace(PTRACE_INTERRUPT, pid, 0, 0))
		return -1;
	if (wait_within(pid, &status, __WALL, WAIT_MS) || !WIFSTOPPED(status))
		return -1;
	return ptrace(PTRACE_DETACH, pid, 0, 0) ? -1 : 0;
}

FIXTURE(storm_procs)
{
	struct child ch[STORM_PROCS];
	unsigned char *src;
};

FIXTURE_SETUP(storm_procs)
{
	page_size = sysconf(_SC_PAGESIZE);
	for (int i = 0; i < STORM_PROCS; i++)
		child_init(&self->ch[i]);
	self->src = malloc(page_size);
	ASSERT_NE(NULL, self->src);
	fill_pattern(self->src, page_size);
}

FIXTURE_TEARDOWN(storm_procs)
{
	for (int i = 0; i < STORM_PROCS; i++)
		stop_child(&self->ch[i]);
	free(self->src);
}

/*
 * Processes, each blocked in a user-mode fault on its own page, while the
 * monitor does random things to them: extra wakes, SIGSTOP and SIGCONT, a
 * ptrace seize, interrupt and detach, and at last the resolution. After
 * each it expects the fault back (a new message). Every process exits
 * with the right bytes; every action is counted, and each stop or ptrace
 * stop made the fault come back exactly once.
 */
TEST_F_TIMEOUT(storm_procs, storm, STORM_SECONDS + 30)
{
	int n[4] = { 0 }, msgs = 0, refaults = 0, resolved = 0;
	unsigned int seed = storm_seed(_metadata);
	double deadline = now_s() + STORM_SECONDS;
	unsigned char done[STORM_PROCS] = { 0 };
	struct uffd_msg msg;

	for (int i = 0; i < STORM_PROCS; i++) {
		START_CHILD(&self->ch[i], CHILD_TOUCH);
		EXPECT_FAULT_AT(self->ch[i].uffd, self->ch[i].addr, &msg);
		msgs++;
	}
	while (resolved < STORM_PROCS) {
		/* One resolution in eight actions: three wakes, two of each stop. */
		static const int action[8] = { 0, 1, 1, 1, 2, 2, 3, 3 };
		int i = rand_r(&seed) % STORM_PROCS, what = action[rand_r(&seed) % 8];
		struct child *c = &self->ch[i];

		ASSERT_GT(deadline, now_s()) TH_LOG("not done in %d s", STORM_SECONDS);
		if (done[i])
			continue;
		n[what]++;
		switch (what) {
		case 0:		/* resolve */
			ASSERT_EQ(0, uffd_copy(c->uffd, c->addr, self->src, page_size));
			EXPECT_CHILD_OK(c);
			done[i] = 1;
			resolved++;
			continue;
		case 1:
			ASSERT_EQ(0, uffd_wake(c->uffd, c->addr, page_size));
			break;
		case 2:
			ASSERT_EQ(0, stop_and_continue(c->pid)) TH_LOG("stopping %d", c->pid);
			break;
		case 3:
			ASSERT_EQ(0, ptrace_round_trip(c->pid)) TH_LOG("ptrace on %d", c->pid);
			break;
		}
		/* The fault comes back, once, for the same page. */
		EXPECT_FAULT_AT(c->uffd, c->addr, &msg);
		ASSERT_EQ(-ETIMEDOUT, uffd_read_msg(c->uffd, &msg, 0));
		msgs++;
		refaults++;
	}
	TH_LOG("%d resolutions, %d wakes, %d stops, %d ptrace stops; %d messages",
	       n[0], n[1], n[2], n[3], msgs);
	ASSERT_EQ(STORM_PROCS, n[0]);
	ASSERT_EQ(n[1] + n[2] + n[3], refaults);
	ASSERT_EQ(STORM_PROCS + refaults, msgs);
}

/* ---- the Rust GUP sample, /dev/fault_gup (samples/rust/rust_fault_gup.rs) ---- */

static uint64_t fnv1a(const unsigned char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/* In a child: pins its own page through the sample; 0 if the hash is right. */
static int gup_dev_pin_check(void *addr)
{
	struct fr_gup_req req = { .addr = (unsigned long)addr, .nr_pages = 1 };
	unsigned char *want = malloc(page_size);
	int fd = open(FR_GUP_DEV, O_RDWR | O_CLOEXEC);

	if (fd < 0 || !want || ioctl(fd, FR_GUP_PIN, &req))
		return -1;
	fill_pattern(want, page_size);
	return req.checksum == fnv1a(want, page_size) && req.done == 1 ? 0 : -1;
}

/*
 * In a child: faults its own page in for write through the sample's @cmd
 * (FR_GUP_FAULTIN or FR_GUP_FAULT); 0 if the page then has the pattern.
 */
static int gup_dev_fault_check(void *addr, unsigned long cmd)
{
	struct fr_gup_req req = { .addr = (unsigned long)addr, .nr_pages = 1,
				  .flags = FR_GUP_WRITE };
	int fd = open(FR_GUP_DEV, O_RDWR | O_CLOEXEC);

	if (fd < 0 || ioctl(fd, cmd, &req))
		return -1;
	return check_pattern(addr, page_size);
}

/*
 * nr_foll_pin_acquired - nr_foll_pin_released, with the per-CPU deltas
 * folded in; -1 if /proc/vmstat does not have them.
 */
static long pins_outstanding(void)
{
	long acq = -1, rel = -1, v;
	char name[64];
	FILE *f;
	int fd;

	fd = open("/proc/sys/vm/stat_refresh", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			acq = -1;
		close(fd);
	}
	f = fopen("/proc/vmstat", "r");
	if (!f)
		return -1;
	while (fscanf(f, "%63s %ld", name, &v) == 2) {
		if (!strcmp(name, "nr_foll_pin_acquired"))
			acq = v;
		else if (!strcmp(name, "nr_foll_pin_released"))
			rel = v;
	}
	fclose(f);
	return acq < 0 || rel < 0 ? -1 : acq - rel;
}

struct gup_call {
	int fd;
	unsigned long cmd;
	struct fr_gup_req req;
	int ret;
	int err;
};

static void *gup_call_thread(void *arg)
{
	struct gup_call *c = arg;

	c->ret = ioctl(c->fd, c->cmd, &c->req);
	c->err = errno;
	return NULL;
}

/* No pin is left behind: the device holds none, and the kernel's counters balance. */
#define EXPECT_NO_PIN_LEAK() do { \
	int64_t __held = -1; \
	ASSERT_EQ(0, ioctl(self->dev, FR_GUP_PINS, &__held)); \
	ASSERT_EQ(0, __held); \
	ASSERT_EQ(self->pins0, pins_outstanding()); \
} while (0)

/* The pin counters of /proc/vmstat, which EXPECT_NO_PIN_LEAK() compares. */
#define READ_PINS0() do { \
	self->pins0 = pins_outstanding(); \
	ASSERT_LE(0, self->pins0) \
		TH_LOG("no nr_foll_pin_* in /proc/vmstat: a leak would go unseen"); \
} while (0)

FIXTURE(gup)
{
	struct uffd_mem m;
	int dev;
	long pins0;
	struct child target;
};

FIXTURE_SETUP(gup)
{
	self->dev = -1;
	child_init(&self->target);
	uffd_mem_setup(_metadata, &self->m, 1);
	self->dev = open(FR_GUP_DEV, O_RDWR | O_CLOEXEC);
	if (self->dev < 0 && errno == ENOENT)
		SKIP(return, "no %s: CONFIG_SAMPLE_RUST_FAULT_GUP is off", FR_GUP_DEV);
	ASSERT_LE(0, self->dev) TH_LOG("open %s: %s", FR_GUP_DEV, strerror(errno));
	READ_PINS0();
}

FIXTURE_TEARDOWN(gup)
{
	stop_child(&self->target);
	if (self->dev >= 0)
		close(self->dev);
	uffd_mem_teardown(&self->m);
}

/*
 * Drives one ioctl against the missing page at @page (of @uffd) in a thread:
 * it must block (a message), survive NR_WAKES wakes (NR_WAKES + 1 messages),
 * and finish after the resolution.
 */
static void gup_retry_many(struct __test_metadata *_metadata, int uffd,
			   unsigned long page, const unsigned char *src,
			   struct gup_call *c, int want_write)
{
	pthread_t t;

	ASSERT_EQ(0, pthread_create(&t, NULL, gup_call_thread, c));
	EXPECT_RETRIES(uffd, page, want_write ? UFFD_PAGEFAULT_FLAG_WRITE : 0);
	ASSERT_EQ(0, uffd_copy(uffd, page, src, page_size));
	ASSERT_EQ(0, join_within(t, WAIT_MS));
	ASSERT_EQ(0, c->ret) TH_LOG("ioctl: %s", strerror(c->err));
}

/* pin_user_pages_unlocked() through the sample retries without bound. */
TEST_F(gup, pin_retry_many)
{
	struct gup_call c = { self->dev, FR_GUP_PIN,
			      { .addr = (unsigned long)self->m.area, .nr_pages = 1 } };

	gup_retry_many(_metadata, self->m.uffd, (unsigned long)self->m.area, self->m.src, &c, 0);
	ASSERT_EQ(1, c.req.done);
	ASSERT_EQ(fnv1a(self->m.src, page_size), c.req.checksum);
	EXPECT_NO_PIN_LEAK();
}

/* fixup_user_fault() for write through the sample retries without bound. */
TEST_F(gup, faultin_retry_many)
{
	struct gup_call c = { self->dev, FR_GUP_FAULTIN,
			      { .addr = (unsigned long)self->m.area, .nr_pages = 1 } };

	gup_retry_many(_metadata, self->m.uffd, (unsigned long)self->m.area, self->m.src, &c, 1);
	/* The lock was released to wait, and taken again. */
	ASSERT_EQ(1, c.req.done);
	ASSERT_EQ(0, memcmp(self->m.area, self->m.src, page_size));
	EXPECT_NO_PIN_LEAK();
}

/*
 * handle_mm_fault() through the sample's own fault loop (safe Rust over
 * kernel::mm::fault): each wake releases the lock (VM_FAULT_RETRY), and the
 * loop retries without bound until the page is there.
 */
TEST_F(gup, fault_retry_many)
{
	struct gup_call c = { self->dev, FR_GUP_FAULT,
			      { .addr = (unsigned long)self->m.area, .nr_pages = 1,
				.flags = FR_GUP_WRITE } };

	gup_retry_many(_metadata, self->m.uffd, (unsigned long)self->m.area, self->m.src, &c, 1);
	/*
	 * One retry per wake and one after the resolution; one more if the
	 * first attempt, under the VMA lock, had to prepare the anon_vma.
	 */
	ASSERT_LE(NR_WAKES + 1, c.req.done);
	ASSERT_GE(NR_WAKES + 2, c.req.done);
	ASSERT_EQ(0, memcmp(self->m.area, self->m.src, page_size));
	EXPECT_NO_PIN_LEAK();
}

/* Another process's missing page, through the sample's remote ioctl. */
static void remote_retry_many(struct __test_metadata *_metadata,
			      FIXTURE_DATA(gup) *self, uint64_t flags)
{
	struct child *ch = &self->target;
	struct gup_call c = { self->dev, FR_GUP_PIN_REMOTE, { .nr_pages = 1, .flags = flags } };

	START_CHILD(ch, CHILD_IDLE);
	c.req.addr = ch->addr;
	c.req.pid = ch->pid;
	gup_retry_many(_metadata, ch->uffd, ch->addr, self->m.src, &c, 0);
	ASSERT_EQ(1, c.req.done);
	ASSERT_EQ(fnv1a(self->m.src, page_size), c.req.checksum);
	EXPECT_NO_PIN_LEAK();
}

/* pin_user_pages_remote() with the "locked" state, through the sample. */
TEST_F(gup, pin_remote_retry_many)
{
	remote_retry_many(_metadata, self, 0);
}

/* The same with references (get_user_pages_remote()) instead of pins. */
TEST_F(gup, get_remote_retry_many)
{
	remote_retry_many(_metadata, self, FR_GUP_GET);
}

/* A process blocked in a pin, left alone and then resolved, pins the right bytes. */
TEST_F(gup, pin_child_completes)
{
	struct child *ch = &self->target;
	struct uffd_msg msg;

	START_CHILD(ch, CHILD_PIN);
	EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
	ASSERT_EQ(0, uffd_copy(ch->uffd, ch->addr, self->m.src, page_size));
	EXPECT_CHILD_OK(ch);
	EXPECT_NO_PIN_LEAK();
}

/*
 * A handled SIGUSR1 does not make a blocked pin spin: without
 * FOLL_INTERRUPTIBLE it keeps sleeping (killable) and completes after the
 * resolution; with it, it returns EINTR at once.
 */
TEST_F(gup, sigusr1_no_spin)
{
	struct gup_call c = { self->dev, FR_GUP_PIN,
			      { .addr = (unsigned long)self->m.area, .nr_pages = 1 } };
	struct uffd_msg msg;
	pthread_t t;
	double cpu;

	ASSERT_EQ(0, install_sigusr1(SA_RESTART));
	ASSERT_EQ(0, pthread_create(&t, NULL, gup_call_thread, &c));
	EXPECT_FAULT_AT(self->m.uffd, self->m.area, &msg);
	ASSERT_EQ(0, pthread_kill(t, SIGUSR1));
	cpu = thread_cpu_in_one_second(_metadata, t);
	ASSERT_EQ(0, uffd_copy(self->m.uffd, (unsigned long)self->m.area, self->m.src, page_size));
	ASSERT_EQ(0, join_within(t, WAIT_MS));
	EXPECT_LT(cpu, 0.1);
	ASSERT_EQ(0, c.ret) TH_LOG("ioctl: %s", strerror(c.err));
	ASSERT_EQ(fnv1a(self->m.src, page_size), c.req.checksum);
	EXPECT_NO_PIN_LEAK();
}

/*
 * An interruptible GUP call (FR_GUP_PIN: FOLL_INTERRUPTIBLE; FR_GUP_FAULTIN:
 * fixup_user_fault() with FAULT_FLAG_INTERRUPTIBLE) blocked on a missing
 * page: a handled SIGUSR1 ends the wait with EINTR, at once, and leaves no
 * pin and no mmap lock behind. (Before the fix, fixup_user_fault() retried at
 * once, again and again, until the page was resolved.)
 */
static void interruptible_eintr(struct __test_metadata *_metadata,
				FIXTURE_DATA(gup) *self, unsigned long cmd)
{
	struct gup_call c = { self->dev, cmd,
			      { .addr = (unsigned long)self->m.area, .nr_pages = 1,
				.flags = FR_GUP_INTERRUPTIBLE } };
	struct uffd_msg msg;
	pthread_t t;

	ASSERT_EQ(0, install_sigusr1(SA_RESTART));
	ASSERT_EQ(0, pthread_create(&t, NULL, gup_call_thread, &c));
	EXPECT_FAULT_AT(self->m.uffd, self->m.area, &msg);
	ASSERT_EQ(0, pthread_kill(t, SIGUSR1));
	ASSERT_EQ(0, join_within(t, 2000)) TH_LOG("the interruptible call did not return");
	ASSERT_EQ(-1, c.ret);
	ASSERT_EQ(EINTR, c.err);
	EXPECT_NO_PIN_LEAK();
	/* The mmap lock is not leaked: munmap() takes it for write. */
	ASSERT_EQ(0, munmap(mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
				 -1, 0), page_size));
}

TEST_F(gup, sigusr1_interruptible_eintr)
{
	interruptible_eintr(_metadata, self, FR_GUP_PIN);
}

TEST_F(gup, faultin_sigusr1_interruptible_eintr)
{
	interruptible_eintr(_metadata, self, FR_GUP_FAULTIN);
}

TEST_F(gup, fault_sigusr1_interruptible_eintr)
{
	interruptible_eintr(_metadata, self, FR_GUP_FAULT);
}

/*
 * A fault that may not be retried cannot wait for userfaultfd:
 * handle_userfault() would warn and fail it, so kernel::mm refuses it. The
 * same fault on ordinary memory is fine, and the range stays missing.
 */
TEST_F(gup, fault_noretry_refused_on_uffd)
{
	struct fr_gup_req r = { .addr = (unsigned long)self->m.area, .nr_pages = 1,
				.flags = FR_GUP_NORETRY };
	struct uffd_msg msg;
	unsigned char *anon;

	errno = 0;
	ASSERT_EQ(-1, ioctl(self->dev, FR_GUP_FAULT, &r));
	ASSERT_EQ(EINVAL, errno);
	/* No fault reached userfaultfd. */
	ASSERT_EQ(-ETIMEDOUT, uffd_read_msg(self->m.uffd, &msg, 100));
	anon = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, anon);
	r.addr = (unsigned long)anon;
	r.flags = FR_GUP_NORETRY | FR_GUP_WRITE;
	ASSERT_EQ(0, ioctl(self->dev, FR_GUP_FAULT, &r)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, r.done);
	ASSERT_EQ(0, munmap(anon, page_size));
}

/*
 * Two pages whose second is a hole: the pin stops at the hole, and pins
 * (and hashes, and releases) the first page alone, locally and remotely.
 */
TEST_F(gup, pin_stops_at_hole)
{
	unsigned long cmds[] = { FR_GUP_PIN, FR_GUP_PIN_REMOTE };
	unsigned char *p;

	p = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	fill_pattern(p, page_size);
	ASSERT_EQ(0, munmap(p + page_size, page_size));
	for (int i = 0; i < 2; i++) {
		struct fr_gup_req r = { .addr = (unsigned long)p, .nr_pages = 2, .pid = getpid() };

		ASSERT_EQ(0, ioctl(self->dev, cmds[i], &r)) TH_LOG("%s", strerror(errno));
		ASSERT_EQ(1, r.done);
		ASSERT_EQ(fnv1a(p, page_size), r.checksum);
	}
	EXPECT_NO_PIN_LEAK();
	ASSERT_EQ(0, munmap(p, page_size));
}

/* ---- SIGKILL ends every kind of wait promptly, and leaves no pin ---- */

/* Which process the case kills: the page's owner, or another one. */
enum victim { VICTIM_OWNER, VICTIM_REMOTE_READER, VICTIM_REMOTE_WRITER, VICTIM_REMOTE_PINNER };

FIXTURE(sigkill)
{
	struct child target;
	pid_t other;
	int dev;
	long pins0;
};

FIXTURE_VARIANT(sigkill)
{
	enum child_mode mode;	/* what the page's owner does */
	enum victim victim;
	int dev;		/* uses /dev/fault_gup */
};

/* A user-mode fault. */
FIXTURE_VARIANT_ADD(sigkill, user_fault)
{
	.mode = CHILD_TOUCH,
};

/* Kernel-mode faults: copy_from_user() of write(), copy_to_user() of read(). */
FIXTURE_VARIANT_ADD(sigkill, copy_from_user)
{
	.mode = CHILD_PIPE_WRITE,
};

FIXTURE_VARIANT_ADD(sigkill, copy_to_user)
{
	.mode = CHILD_PIPE_READ,
};

/* Another process in pin_user_pages_remote() (process_vm_readv()). */
FIXTURE_VARIANT_ADD(sigkill, process_vm_readv)
{
	.mode = CHILD_IDLE,
	.victim = VICTIM_REMOTE_READER,
};

/*
 * GUP's loops alone: the owner in madvise(MADV_POPULATE_WRITE)
 * (__get_user_pages_locked()) or in mlock() (__mm_populate()), another
 * process in pin_user_pages_remote() for write (process_vm_writev()).
 */
FIXTURE_VARIANT_ADD(sigkill, madv_populate_write)
{
	.mode = CHILD_POPULATE,
};

FIXTURE_VARIANT_ADD(sigkill, mlock)
{
	.mode = CHILD_MLOCK,
};

FIXTURE_VARIANT_ADD(sigkill, process_vm_writev)
{
	.mode = CHILD_IDLE,
	.victim = VICTIM_REMOTE_WRITER,
};

/*
 * The sample: pin_user_pages_unlocked(), pin_user_pages_remote() of another
 * process, fixup_user_fault() and the sample's own fault loop.
 */
FIXTURE_VARIANT_ADD(sigkill, dev_pin)
{
	.mode = CHILD_PIN,
	.dev = 1,
};

FIXTURE_VARIANT_ADD(sigkill, dev_pin_remote)
{
	.mode = CHILD_IDLE,
	.victim = VICTIM_REMOTE_PINNER,
	.dev = 1,
};

FIXTURE_VARIANT_ADD(sigkill, dev_faultin)
{
	.mode = CHILD_FAULTIN,
	.dev = 1,
};

FIXTURE_VARIANT_ADD(sigkill, dev_fault)
{
	.mode = CHILD_FAULT,
	.dev = 1,
};

FIXTURE_SETUP(sigkill)
{
	page_size = sysconf(_SC_PAGESIZE);
	child_init(&self->target);
	self->other = -1;
	self->dev = -1;
	if (variant->mode == CHILD_POPULATE && !have_populate_write())
		SKIP(return, "no MADV_POPULATE_WRITE in this kernel (Linux 5.14)");
	if (!variant->dev)
		return;
	self->dev = open(FR_GUP_DEV, O_RDWR | O_CLOEXEC);
	if (self->dev < 0 && errno == ENOENT)
		SKIP(return, "no %s: CONFIG_SAMPLE_RUST_FAULT_GUP is off", FR_GUP_DEV);
	ASSERT_LE(0, self->dev) TH_LOG("open %s: %s", FR_GUP_DEV, strerror(errno));
	READ_PINS0();
}

FIXTURE_TEARDOWN(sigkill)
{
	int status;

	if (self->other > 0) {
		kill(self->other, SIGKILL);
		waitpid(self->other, &status, 0);
	}
	stop_child(&self->target);
	if (self->dev >= 0)
		close(self->dev);
}

/* In another process: reads, writes or pins the page at @addr of process @pid. */
static int __attribute__((noreturn)) remote_access(enum victim how, pid_t pid,
						   unsigned long addr)
{
	unsigned char *buf = calloc(1, page_size);
	struct fr_gup_req req = { .addr = addr, .nr_pages = 1, .pid = pid };
	struct iovec local = { .iov_base = buf, .iov_len = page_size };
	struct iovec remote = { .iov_base = (void *)addr, .iov_len = page_size };
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (how == VICTIM_REMOTE_READER)
		_exit(buf && remote_read(pid, addr, buf, page_size) == page_size ? 0 : 1);
	if (how == VICTIM_REMOTE_WRITER)
		_exit(buf && process_vm_writev(pid, &local, 1, &remote, 1, 0) == page_size ? 0 : 1);
	fd = open(FR_GUP_DEV, O_RDWR | O_CLOEXEC);
	_exit(fd >= 0 && !ioctl(fd, FR_GUP_PIN_REMOTE, &req) ? 0 : 1);
}

/*
 * SIGKILL ends a process blocked on a missing page within 2 s, wherever
 * it waits (FAULT_FLAG_KILLABLE everywhere), and no pin is left behind.
 */
TEST_F(sigkill, exits_promptly)
{
	struct child *ch = &self->target;
	struct uffd_msg msg;
	pid_t victim;

	START_CHILD(ch, variant->mode);
	if (variant->victim != VICTIM_OWNER) {
		self->other = fork();
		ASSERT_LE(0, self->other);
		if (self->other == 0)
			remote_access(variant->victim, ch->pid, ch->addr);
	}
	EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
	victim = variant->victim == VICTIM_OWNER ? ch->pid : self->other;
	EXPECT_KILLED_PROMPTLY(victim);
	if (victim == ch->pid)
		ch->pid = -1;
	else
		self->other = -1;
	if (variant->dev)
		EXPECT_NO_PIN_LEAK();
}

/* ---- bad input to the sample: a specific errno, no oops, no leaked pin or lock ---- */

FIXTURE(gup_bad)
{
	int dev;
	long pins0;
	unsigned char *rw, *ro;
};

FIXTURE_SETUP(gup_bad)
{
	page_size = sysconf(_SC_PAGESIZE);
	self->rw = MAP_FAILED;
	self->ro = MAP_FAILED;
	self->dev = open(FR_GUP_DEV, O_RDWR | O_CLOEXEC);
	if (self->dev < 0 && errno == ENOENT)
		SKIP(return, "no %s: CONFIG_SAMPLE_RUST_FAULT_GUP is off", FR_GUP_DEV);
	ASSERT_LE(0, self->dev) TH_LOG("open %s: %s", FR_GUP_DEV, strerror(errno));
	self->rw = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, self->rw);
	self->ro = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->ro);
	READ_PINS0();
}

FIXTURE_TEARDOWN(gup_bad)
{
	if (self->rw != MAP_FAILED)
		munmap(self->rw, 2 * page_size);
	if (self->ro != MAP_FAILED)
		munmap(self->ro, page_size);
	if (self->dev >= 0)
		close(self->dev);
}

/*
 * @cmd with @req fails with @err; then nothing is leaked: no pin, and the
 * mmap lock is free (mmap() and munmap() take it for write).
 */
#define EXPECT_GUP_ERRNO(cmd, reqv, err) do { \
	struct fr_gup_req __r = reqv; \
	void *__p; \
	errno = 0; \
	ASSERT_EQ(-1, ioctl(self->dev, cmd, &__r)) TH_LOG(#cmd " succeeded"); \
	ASSERT_EQ(err, errno) TH_LOG(#cmd ": %s, not %s", strerror(errno), strerror(err)); \
	__p = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); \
	ASSERT_NE(MAP_FAILED, __p); \
	ASSERT_EQ(0, munmap(__p, page_size)); \
	EXPECT_NO_PIN_LEAK(); \
} while (0)

#define REQ(a, n, f, p) ((struct fr_gup_req){ .addr = (unsigned long)(a), .nr_pages = (n), \
					      .flags = (f), .pid = (p) })

TEST_F(gup_bad, unmapped)
{
	unsigned char *hole = mmap(NULL, page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole, page_size));
	EXPECT_GUP_ERRNO(FR_GUP_PIN, REQ(hole, 1, 0, 0), EFAULT);
	EXPECT_GUP_ERRNO(FR_GUP_PIN_REMOTE, REQ(hole, 1, 0, getpid()), EFAULT);
	EXPECT_GUP_ERRNO(FR_GUP_FAULTIN, REQ(hole, 1, 0, 0), EFAULT);
	EXPECT_GUP_ERRNO(FR_GUP_FAULT, REQ(hole, 1, 0, 0), EFAULT);
	/* Half mapped: the second page is a hole; faultin stops at it. */
	hole = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		    -1, 0);
	ASSERT_NE(MAP_FAILED, hole);
	ASSERT_EQ(0, munmap(hole + page_size, page_size));
	EXPECT_GUP_ERRNO(FR_GUP_FAULTIN, REQ(hole, 2, 0, 0), EFAULT);
	EXPECT_GUP_ERRNO(FR_GUP_FAULT, REQ(hole, 2, FR_GUP_WRITE, 0), EFAULT);
	ASSERT_EQ(0, munmap(hole, page_size));
}

TEST_F(gup_bad, unaligned)
{
	EXPECT_GUP_ERRNO(FR_GUP_PIN, REQ(self->rw + 1, 1, 0, 0), EINVAL);
	EXPECT_GUP_ERRNO(FR_GUP_PIN_REMOTE, REQ(self->rw + 1, 1, 0, getpid()), EINVAL);
	EXPECT_GUP_ERRNO(FR_GUP_FAULTIN, REQ(self->rw + 1, 1, 0, 0), EINVAL);
	EXPECT_GUP_ERRNO(FR_GUP_FAULT, REQ(self->rw + 1, 1, 0, 0), EINVAL);
}

/* The top of the kernel's address space, which a 32-bit process can name too. */
TEST_F(gup_bad, overflow)
{
	uint64_t top = ~(uint64_t)0 & ~(uint64_t)(page_size - 1);
	struct fr_gup_req r = { .addr = top, .nr_pages = 2 };

	EXPECT_GUP_ERRNO(FR_GUP_PIN, r, EOVERFLOW);
	r.nr_pages = 1;
	r.pid = getpid();
	EXPECT_GUP_ERRNO(FR_GUP_PIN_REMOTE, r, EOVERFLOW);
	r = (struct fr_gup_req){ .addr = top - page_size, .nr_pages = 4 };
	EXPECT_GUP_ERRNO(FR_GUP_FAULTIN, r, EOVERFLOW);
	EXPECT_GUP_ERRNO(FR_GUP_FAULT, r, EOVERFLOW);
}

TEST_F(gup_bad, too_many_pages)
{
	EXPECT_GUP_ERRNO(FR_GUP_PIN, REQ(self->rw, FR_GUP_MAX_PAGES + 1, 0, 0), EINVAL);
	EXPECT_GUP_ERRNO(FR_GUP_PIN, REQ(self->rw, 0, 0, 0), EINVAL);
	EXPECT_GUP_ERRNO(FR_GUP_PIN_REMOTE, REQ(self->rw, FR_GUP_MAX_PAGES + 1, 0, getpid()),
			 EINVAL);
	/* Within the limit, but past the mapping: nothing of it is kept. */
	EXPECT_GUP_ERRNO(FR_GUP_FAULTIN, REQ(self->rw, FR_GUP_MAX_PAGES, 0, 0), EFAULT);
}

TEST_F(gup_bad, write_on_read_only)
{
	EXPECT_GUP_ERRNO(FR_GUP_PIN, REQ(self->ro, 1, FR_GUP_WRITE, 0), EFAULT);
	EXPECT_GUP_ERRNO(FR_GUP_PIN_REMOTE, REQ(self->ro, 1, FR_GUP_WRITE, getpid()), EFAULT);
	EXPECT_GUP_ERRNO(FR_GUP_FAULTIN, REQ(self->ro, 1, 0, 0), EFAULT);
	/* handle_mm_fault() itself would make a private copy: refused, as for faultin. */
	EXPECT_GUP_ERRNO(FR_GUP_FAULT, REQ(self->ro, 1, FR_GUP_WRITE, 0), EFAULT);
}

/*
 * Faults that the mapping cannot take are refused before handle_mm_fault()
 * (which would warn, or map a page the mapping does not allow): a write on
 * a shared mapping of a file opened read-only (no VM_MAYWRITE), a read of a
 * PROT_NONE mapping.
 */
TEST_F(gup_bad, fault_not_allowed)
{
	unsigned char *none, *file;
	struct fr_gup_req r;
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

	ASSERT_LE(0, fd) TH_LOG("open /proc/self/exe: %s", strerror(errno));
	file = mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	ASSERT_NE(MAP_FAILED, file);
	EXPECT_GUP_ERRNO(FR_GUP_FAULT, REQ(file, 1, FR_GUP_WRITE, 0), EFAULT);
	EXPECT_GUP_ERRNO(FR_GUP_FAULTIN, REQ(file, 1, 0, 0), EFAULT);
	/* Reading it is fine. */
	r = REQ(file, 1, 0, 0);
	ASSERT_EQ(0, ioctl(self->dev, FR_GUP_FAULT, &r)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(0, munmap(file, page_size));

	none = mmap(NULL, page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, none);
	EXPECT_GUP_ERRNO(FR_GUP_FAULT, REQ(none, 1, 0, 0), EFAULT);
	ASSERT_EQ(0, munmap(none, page_size));
}

/*
 * FOLL_LONGTERM is for pins: pinning with it works, locally and remotely;
 * taking references with it is refused with EINVAL (GUP would warn).
 */
TEST_F(gup_bad, longterm)
{
	struct fr_gup_req r = REQ(self->rw, 2, FR_GUP_LONGTERM | FR_GUP_WRITE, 0);

	memset(self->rw, 0x5a, 2 * page_size);
	ASSERT_EQ(0, ioctl(self->dev, FR_GUP_PIN, &r)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(2, r.done);
	ASSERT_EQ(fnv1a(self->rw, 2 * page_size), r.checksum);
	r = REQ(self->rw, 1, FR_GUP_LONGTERM, getpid());
	ASSERT_EQ(0, ioctl(self->dev, FR_GUP_PIN_REMOTE, &r)) TH_LOG("%s", strerror(errno));
	ASSERT_EQ(1, r.done);
	EXPECT_NO_PIN_LEAK();
	r = REQ(self->rw, 1, FR_GUP_LONGTERM | FR_GUP_GET, getpid());
	EXPECT_GUP_ERRNO(FR_GUP_PIN_REMOTE, r, EINVAL);
}

TEST_F(gup_bad, bad_flags_and_cmd)
{
	int64_t x;

	EXPECT_GUP_ERRNO(FR_GUP_PIN, REQ(self->rw, 1, 16, 0), EINVAL);
	EXPECT_GUP_ERRNO(FR_GUP_PIN, REQ(self->rw, 1, FR_GUP_GET, 0), EINVAL);
	EXPECT_GUP_ERRNO(FR_GUP_FAULTIN, REQ(self->rw, 1, FR_GUP_GET, 0), EINVAL);
	EXPECT_GUP_ERRNO(FR_GUP_FAULT, REQ(self->rw, 1, FR_GUP_LONGTERM, 0), EINVAL);
	/* FAULT_FLAG_USER is for the arch fault handler alone. */
	EXPECT_GUP_ERRNO(FR_GUP_FAULT, REQ(self->rw, 1, FR_GUP_USER, 0), EINVAL);
	EXPECT_GUP_ERRNO(FR_GUP_PIN, REQ(self->rw, 1, 64, 0), EINVAL);
	errno = 0;
	ASSERT_EQ(-1, ioctl(self->dev, _IOR('f', 99, int64_t), &x));
	ASSERT_EQ(ENOTTY, errno);
	/* The request itself at a bad address. */
	errno = 0;
	ASSERT_EQ(-1, ioctl(self->dev, FR_GUP_PIN, (void *)8));
	ASSERT_EQ(EFAULT, errno);
	EXPECT_NO_PIN_LEAK();
}

TEST_F(gup_bad, dead_pid)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_GUP_ERRNO(FR_GUP_PIN_REMOTE, REQ(self->rw, 1, 0, pid), ESRCH);
	EXPECT_GUP_ERRNO(FR_GUP_PIN_REMOTE, REQ(self->rw, 1, 0, -1), ESRCH);
	EXPECT_GUP_ERRNO(FR_GUP_PIN_REMOTE, REQ(self->rw, 1, 0, 0), ESRCH);
}

TEST_F(gup_bad, foreign_pid)
{
	int status;
	pid_t pid;

	/* A kernel thread has no address space. */
	EXPECT_GUP_ERRNO(FR_GUP_PIN_REMOTE, REQ(self->rw, 1, 0, 2), ESRCH);
	/* A process without ptrace access to us may not pin our memory. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct fr_gup_req r = REQ(self->rw, 1, 0, getppid());

		if (setgid(65534) || setuid(65534))
			_exit(3);
		_exit(ioctl(self->dev, FR_GUP_PIN_REMOTE, &r) == -1 && errno == EPERM ? 0 : 1);
	}
	ASSERT_EQ(0, wait_within(pid, &status, 0, WAIT_MS));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status)) TH_LOG("the unprivileged child was not refused with EPERM");
	EXPECT_NO_PIN_LEAK();
}

/*
 * Fault accounting. The per-VMA-lock events of /proc/vmstat (with
 * CONFIG_PER_VMA_LOCK_STATS), the rusage fault counts and the perf software
 * fault events (with CONFIG_PERF_EVENTS) of a fixed workload, checked
 * against what the C loop of 6.12 counts:
 *  - every hardware fault is one PERF_COUNT_SW_PAGE_FAULTS event, counted by
 *    the arch before the loop, however often the loop retries;
 *  - mm_account_fault() counts the final attempt only, as major if it
 *    returned VM_FAULT_MAJOR or ran with FAULT_FLAG_TRIED, and the perf
 *    minor and major events follow rusage;
 *  - a user fault under the per-VMA lock counts vma_lock_success when it
 *    ends there, vma_lock_retry when it falls back to the mmap lock.
 * Both loops must give the same numbers: the case is the parity check of
 * CONFIG_RUST_FAULT_LOOP. Counters that the kernel lacks are reported and
 * left out; the rusage counts are always checked.
 */
#define ACCT_ANON_PAGES 16
#define ACCT_UFFD_PAGES 4

enum { PERF_FAULTS, PERF_MIN, PERF_MAJ, NR_PERF };
static const unsigned long long perf_config[NR_PERF] = {
	PERF_COUNT_SW_PAGE_FAULTS, PERF_COUNT_SW_PAGE_FAULTS_MIN,
	PERF_COUNT_SW_PAGE_FAULTS_MAJ,
};

enum { VMA_SUCCESS, VMA_RETRY, VMA_MISS, VMA_ABORT, NR_VMA };
static const char *const vma_event[NR_VMA] = {
	"vma_lock_success", "vma_lock_retry", "vma_lock_miss", "vma_lock_abort",
};

struct fault_counts {
	long vma[NR_VMA];	/* -1: no CONFIG_PER_VMA_LOCK_STATS */
	long perf[NR_PERF];	/* -1: no perf software events */
	long minflt, majflt;
	long all;		/* the perf fault events of every task; -1: none */
};

/* The perf fault events of the whole system, one set per CPU. */
#define ACCT_MAX_CPUS 64
static int sys_perf_fds[ACCT_MAX_CPUS][NR_PERF];

/* Touched before use, so reading the counters takes no user fault. */
static char vmstat_buf[32768];

static int read_vmstat(long vma[NR_VMA])
{
	ssize_t n, len = 0;
	int fd, i;

	fd = open("/proc/vmstat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, vmstat_buf + len, sizeof(vmstat_buf) - 1 - len)) > 0)
		len += n;
	close(fd);
	if (n < 0)
		return -EIO;
	vmstat_buf[len] = '\0';
	for (i = 0; i < NR_VMA; i++) {
		size_t l = strlen(vma_event[i]);
		char *p = vmstat_buf;

		vma[i] = -1;
		while ((p = strstr(p, vma_event[i]))) {
			if ((p == vmstat_buf || p[-1] == '\n') && p[l] == ' ') {
				vma[i] = strtol(p + l + 1, NULL, 10);
				break;
			}
			p += l;
		}
	}
	return 0;
}

/*
 * Opens the perf fault events of thread @tid (-1: of every task on @cpu);
 * fds[i] is -1 if there are none.
 */
static void open_perf_on(pid_t tid, int cpu, int fds[NR_PERF])
{
	for (int i = 0; i < NR_PERF; i++) {
		struct perf_event_attr attr = {
			.type = PERF_TYPE_SOFTWARE,
			.size = sizeof(attr),
			.config = perf_config[i],
		};

		fds[i] = syscall(SYS_perf_event_open, &attr, tid, cpu, -1,
				 PERF_FLAG_FD_CLOEXEC);
	}
}

static void open_perf(pid_t tid, int fds[NR_PERF])
{
	open_perf_on(tid, -1, fds);
}

/* The sum of the system-wide fault events, or -1 without them. */
static long read_sys_perf(void)
{
	long sum = 0;
	int n = 0;

	for (int c = 0; c < ACCT_MAX_CPUS; c++) {
		for (int i = 0; i < NR_PERF; i++) {
			unsigned long long v;

			if (sys_perf_fds[c][i] < 0)
				continue;
			if (read(sys_perf_fds[c][i], &v, sizeof(v)) != sizeof(v))
				return -1;
			sum += v;
			n++;
		}
	}
	return n ? sum : -1;
}

/* The parent of @pid (from /proc/PID/stat), or -1. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t len;
	int fd, ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return -1;
	buf[len] = '\0';
	p = strrchr(buf, ')');
	return p && sscanf(p + 1, " %*c %d", &ppid) == 1 ? ppid : -1;
}

/*
 * The user processes other than this one and its ancestors (the harness's
 * processes, /init), which could fault while a case counts system-wide
 * events: their number, each logged with @log. Kernel threads and zombies
 * do not count.
 */
static int other_processes(struct __test_metadata *_metadata, int log)
{
	pid_t ancestors[16];
	struct dirent *de;
	int n = 0, na = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return 0;
	for (pid_t a = getpid(); a > 1 && na < 16; a = parent_of(a))
		ancestors[na++] = a;
	while ((de = readdir(d))) {
		pid_t pid = atoi(de->d_name);
		char path[64], buf[512], *p;
		unsigned long flags;
		ssize_t len;
		char state;
		int fd;

		if (pid <= 1)
			continue;
		for (int i = 0; i < na; i++)
			if (ancestors[i] == pid)
				pid = 0;
		if (!pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		p = strrchr(buf, ')');
		/* state ppid pgrp session tty_nr tpgid flags */
		if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
			continue;
		if ((flags & 0x00200000) || state == 'Z')	/* PF_KTHREAD */
			continue;
		n++;
		if (log)
			TH_LOG("another process runs: %s", buf);
	}
	closedir(d);
	return n;
}

/*
 * Snapshot of the counters of the calling thread. Take one first to warm up:
 * a fault between its reads of /proc/vmstat and of rusage (a new stack
 * page) would be counted by one and not by the other.
 */
static int read_counts(const int perf_fds[NR_PERF], struct fault_counts *c)
{
	struct rusage ru;
	int ret;

	ret = read_vmstat(c->vma);
	if (ret)
		return ret;
	for (int i = 0; i < NR_PERF; i++) {
		unsigned long long v;

		c->perf[i] = -1;
		if (perf_fds[i] >= 0 && read(perf_fds[i], &v, sizeof(v)) == sizeof(v))
			c->perf[i] = v;
	}
	if (getrusage(RUSAGE_THREAD, &ru))
		return -errno;
	c->minflt = ru.ru_minflt;
	c->majflt = ru.ru_majflt;
	c->all = read_sys_perf();
	return 0;
}

static void counts_delta(struct fault_counts *d, const struct fault_counts *a,
			 const struct fault_counts *b)
{
	for (int i = 0; i < NR_VMA; i++)
		d->vma[i] = a->vma[i] < 0 ? -1 : b->vma[i] - a->vma[i];
	for (int i = 0; i < NR_PERF; i++)
		d->perf[i] = a->perf[i] < 0 ? -1 : b->perf[i] - a->perf[i];
	d->minflt = b->minflt - a->minflt;
	d->majflt = b->majflt - a->majflt;
	d->all = a->all < 0 || b->all < 0 ? -1 : b->all - a->all;
}

/*
 * Whether nothing but the counted thread faulted during the measurement:
 * the system-wide perf fault events moved exactly as much as its own.
 * Without perf events, only other_processes() vouches for it.
 */
static bool quiet(const struct fault_counts *d)
{
	if (d->all < 0 || d->perf[PERF_FAULTS] < 0)
		return true;
	return d->all == d->perf[PERF_FAULTS] + d->perf[PERF_MIN] + d->perf[PERF_MAJ];
}

FIXTURE(accounting)
{
	struct fault_counts before, after, d;
	int perf_fds[NR_PERF];
};

FIXTURE_SETUP(accounting)
{
	int ncpus = sysconf(_SC_NPROCESSORS_CONF);
	double end;

	memset(vmstat_buf, 0, sizeof(vmstat_buf));
	for (int i = 0; i < NR_PERF; i++)
		self->perf_fds[i] = -1;
	for (int c = 0; c < ACCT_MAX_CPUS; c++)
		for (int i = 0; i < NR_PERF; i++)
			sys_perf_fds[c][i] = -1;
	page_size = sysconf(_SC_PAGESIZE);
	/*
	 * The vma_lock events count every task's faults: no other user
	 * process may run (an earlier case's, still exiting, gets 5 s). A
	 * fault of the idle /init or harness would still show in the
	 * system-wide perf events, which each measurement checks.
	 */
	for (end = now_s() + 5; other_processes(_metadata, 0) && now_s() < end;)
		usleep(10000);
	ASSERT_EQ(0, other_processes(_metadata, 1))
		TH_LOG("other processes run: their faults would be counted too");
	for (int c = 0; c < ncpus && c < ACCT_MAX_CPUS; c++)
		open_perf_on(-1, c, sys_perf_fds[c]);
	/*
	 * The vma_lock events are global: the monitoring thread must not
	 * fault while the counted thread works. Populate and lock what is
	 * mapped now (code, data, stack); the memory of the workload is
	 * mapped later and faults normally.
	 */
	if (mlockall(MCL_CURRENT))
		TH_LOG("mlockall: %s: other faults may show in vma_lock events",
		       strerror(errno));
}

FIXTURE_TEARDOWN(accounting)
{
	for (int i = 0; i < NR_PERF; i++)
		if (self->perf_fds[i] >= 0)
			close(self->perf_fds[i]);
	for (int c = 0; c < ACCT_MAX_CPUS; c++)
		for (int i = 0; i < NR_PERF; i++)
			if (sys_perf_fds[c][i] >= 0)
				close(sys_perf_fds[c][i]);
}

/*
 * The vma_lock events are counted for the whole system. A measurement
 * counts only if it was quiet (see quiet()); then its counts must be
 * exact. A case measures up to ACCT_ATTEMPTS times until one is quiet, and
 * fails if none is.
 */
#define ACCT_ATTEMPTS 3

/*
 * Logs the deltas and checks them: @faults hardware faults, @minflt minor
 * and @majflt major ones; with per-VMA locks, @vma_success and @vma_retry
 * VMA-lock events and no miss or abort.
 */
static void check_counts(struct __test_metadata *_metadata,
			 const struct fault_counts *d, long faults, long minflt,
			 long majflt, long vma_success, long vma_retry)
{
	TH_LOG("rusage min %ld maj %ld; perf faults %ld min %ld maj %ld (all tasks: %ld events); vma_lock success %ld retry %ld miss %ld abort %ld",
	       d->minflt, d->majflt, d->perf[PERF_FAULTS], d->perf[PERF_MIN],
	       d->perf[PERF_MAJ], d->all, d->vma[VMA_SUCCESS], d->vma[VMA_RETRY],
	       d->vma[VMA_MISS], d->vma[VMA_ABORT]);
	EXPECT_EQ(minflt, d->minflt);
	EXPECT_EQ(majflt, d->majflt);
	if (d->perf[PERF_FAULTS] < 0) {
		TH_LOG("no perf software events (CONFIG_PERF_EVENTS): not checked");
	} else {
		EXPECT_EQ(faults, d->perf[PERF_FAULTS]);
		EXPECT_EQ(d->minflt, d->perf[PERF_MIN]);
		EXPECT_EQ(d->majflt, d->perf[PERF_MAJ]);
	}
	if (d->vma[VMA_SUCCESS] < 0) {
		TH_LOG("no vma_lock events (CONFIG_PER_VMA_LOCK_STATS): not checked");
	} else {
		EXPECT_EQ(vma_success, d->vma[VMA_SUCCESS]);
		EXPECT_EQ(vma_retry, d->vma[VMA_RETRY]);
		EXPECT_EQ(0, d->vma[VMA_MISS]);
		EXPECT_EQ(0, d->vma[VMA_ABORT]);
	}
}

/*
 * Whether the measurement @d was quiet; if not, logs how much else
 * faulted, and the caller measures again.
 */
static bool measured_quietly(struct __test_metadata *_metadata, int attempt,
			     const struct fault_counts *d)
{
	if (quiet(d))
		return true;
	TH_LOG("attempt %d: %ld fault events, %ld of them of other tasks: again", attempt,
	       d->all, d->all - d->perf[PERF_FAULTS] - d->perf[PERF_MIN] - d->perf[PERF_MAJ]);
	return false;
}

/*
 * Write faults on fresh anonymous memory: one minor fault per page, each
 * done under the per-VMA lock. Each page takes one store of a word: a
 * byte store is a read and a write on alpha without BWX, two faults.
 */
TEST_F(accounting, anon_write)
{
	size_t len = ACCT_ANON_PAGES * page_size;

	open_perf(0, self->perf_fds);
	for (int attempt = 1;; attempt++) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		ASSERT_NE(MAP_FAILED, p);
		madvise(p, len, MADV_NOHUGEPAGE);
		ASSERT_EQ(0, read_counts(self->perf_fds, &self->before));
		ASSERT_EQ(0, read_counts(self->perf_fds, &self->before));
		for (size_t i = 0; i < len; i += page_size)
			*(volatile long *)(p + i) = 1;
		ASSERT_EQ(0, read_counts(self->perf_fds, &self->after));
		munmap(p, len);
		counts_delta(&self->d, &self->before, &self->after);
		if (measured_quietly(_metadata, attempt, &self->d))
			break;
		ASSERT_LT(attempt, ACCT_ATTEMPTS) TH_LOG("no quiet measurement");
	}
	check_counts(_metadata, &self->d, ACCT_ANON_PAGES, ACCT_ANON_PAGES, 0,
		     ACCT_ANON_PAGES, 0);
}

struct acct_reader {
	const volatile unsigned char *addr;
	size_t pages;
	int perf_fds[NR_PERF];
	struct fault_counts before, after;
	atomic_int ready;
	int ret;
	unsigned int sum;
};

/* Counts its own faults on the registered pages, one read per page. */
static void *acct_reader_thread(void *arg)
{
	struct acct_reader *r = arg;

	open_perf(0, r->perf_fds);
	r->ret = read_counts(r->perf_fds, &r->before);
	if (!r->ret)
		r->ret = read_counts(r->perf_fds, &r->before);
	atomic_store(&r->ready, 1);
	for (size_t i = 0; i < r->pages; i++)
		r->sum += r->addr[i * page_size];
	if (!r->ret)
		r->ret = read_counts(r->perf_fds, &r->after);
	for (int i = 0; i < NR_PERF; i++)
		if (r->perf_fds[i] >= 0)
			close(r->perf_fds[i]);
	return NULL;
}

/*
 * Reads @pages registered pages in a counting thread, while the monitor
 * answers each fault: @wakes wakes without resolution (each a retry), then
 * UFFDIO_COPY. Measures until quiet; the deltas are in self->d. Returns
 * whether the kernel has per-VMA locks (which the counts show when the
 * vma_lock events are not configured: the retry after the VMA lock is not
 * FAULT_FLAG_TRIED, so a fault resolved at its first wait is minor).
 */
static bool measure_uffd_reads(struct __test_metadata *_metadata,
			       FIXTURE_DATA(accounting) *self, size_t pages, int wakes)
{
	for (int attempt = 1;; attempt++) {
		struct acct_reader r = { .pages = pages };
		struct uffd_mem m;
		struct uffd_msg msg;
		pthread_t t;

		uffd_mem_setup(_metadata, &m, pages);
		r.addr = m.area;
		ASSERT_EQ(0, pthread_create(&t, NULL, acct_reader_thread, &r));
		for (size_t i = 0; i < pages; i++) {
			unsigned long page = (unsigned long)m.area + i * page_size;

			if (wakes)
				EXPECT_RETRIES(m.uffd, page, 0);
			else
				EXPECT_FAULT_AT(m.uffd, page, &msg);
			ASSERT_EQ(0, uffd_copy(m.uffd, page, m.src + i * page_size, page_size));
		}
		ASSERT_EQ(0, join_within(t, WAIT_MS));
		ASSERT_EQ(1, atomic_load(&r.ready));
		ASSERT_EQ(0, r.ret) TH_LOG("reading the counters: %s", strerror(-r.ret));
		counts_delta(&self->d, &r.before, &r.after);
		uffd_mem_teardown(&m);
		if (measured_quietly(_metadata, attempt, &self->d))
			break;
		ASSERT_LT(attempt, ACCT_ATTEMPTS) TH_LOG("no quiet measurement");
	}
	return self->d.vma[VMA_SUCCESS] >= 0 || self->d.majflt == 0;
}

/*
 * The uffd round trip, page by page: the fault waits in handle_userfault(),
 * returns VM_FAULT_RETRY once the monitor has copied the page in, and the
 * loop retries it. With per-VMA locks, handle_userfault() drops the VMA
 * lock (vma_lock_retry) and the retry under the mmap lock, without
 * FAULT_FLAG_TRIED since the first attempt was not major, finds the page:
 * a minor fault. Without them (um), the retry runs with FAULT_FLAG_TRIED:
 * a major fault.
 */
TEST_F(accounting, uffd_round_trip)
{
	bool vma_locks = measure_uffd_reads(_metadata, self, ACCT_UFFD_PAGES, 0);

	check_counts(_metadata, &self->d, ACCT_UFFD_PAGES,
		     vma_locks ? ACCT_UFFD_PAGES : 0,
		     vma_locks ? 0 : ACCT_UFFD_PAGES, 0, ACCT_UFFD_PAGES);
}

/*
 * One fault retried NR_WAKES + 1 times is one fault: one perf event, and
 * one major fault (the attempts after the first wait run with
 * FAULT_FLAG_TRIED); with per-VMA locks one vma_lock_retry (the first
 * attempt), the rest under the mmap lock.
 */
TEST_F(accounting, retry_many)
{
	measure_uffd_reads(_metadata, self, 1, NR_WAKES);
	check_counts(_metadata, &self->d, 1, 0, 1, 0, 1);
}

TEST_HARNESS_MAIN
