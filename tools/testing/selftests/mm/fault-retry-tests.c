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

/* How long a monitor waits for something the kernel should do promptly. */
#define WAIT_MS 5000
/* How many times a fault is woken without being resolved. */
#define NR_WAKES 16

static long page_size;

/* ---- userfaultfd ---- */

/*
 * A userfaultfd with the API handshake done, or -errno. Non-blocking: poll()
 * on a blocking userfaultfd always reports EPOLLERR.
 */
static int uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API };
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

static int uffd_register_missing(int uffd, void *addr, size_t len)
{
	struct uffdio_register reg = {
		.range = { .start = (unsigned long)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	return ioctl(uffd, UFFDIO_REGISTER, &reg) ? -errno : 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * One fault message within @timeout_ms: 0, -ETIMEDOUT or -errno. A fault
 * may be woken between poll() and read(): then read() says EAGAIN and we
 * wait again.
 */
static int uffd_read_msg(int uffd, struct uffd_msg *msg, int timeout_ms)
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
	if (r != sizeof(*msg) || msg->event != UFFD_EVENT_PAGEFAULT)
		return -EPROTO;
	return 0;
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
 * through the Rust sample. PIPE_WRITE and PIPE_READ: kernel-mode faults, with
 * a SIGUSR1 handler (SA_RESTART) installed: write() copies the page into a
 * pipe (copy_from_user()), read() copies the pattern from a pipe into the
 * page (copy_to_user()); either exits 0 if the bytes arrived.
 */
enum child_mode { CHILD_TOUCH, CHILD_IDLE, CHILD_PIN, CHILD_PIPE_WRITE, CHILD_PIPE_READ };

static int gup_dev_pin_check(void *addr);
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
	if (mode == CHILD_PIPE_WRITE || mode == CHILD_PIPE_READ)
		_exit(pipe_copy_check(p, mode));
	_exit(check_pattern(p, page_size) ? 2 : 0);
}

/* 0 or -1; on success @ch describes the child. */
static int start_child(struct child *ch, enum child_mode mode)
{
	int sv[2];

	ch->pid = -1;
	ch->sock = -1;
	ch->uffd = -1;
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
	struct uffd_msg msg;
	int i, msgs = 0;
	pthread_t t;

	ASSERT_EQ(0, pthread_create(&t, NULL, reader_thread, &r));
	for (i = 0; i < NR_WAKES; i++) {
		EXPECT_FAULT_AT(self->m.uffd, self->m.area, &msg);
		msgs++;
		ASSERT_EQ(0, uffd_wake(self->m.uffd, (unsigned long)self->m.area, page_size));
	}
	EXPECT_FAULT_AT(self->m.uffd, self->m.area, &msg);
	msgs++;
	ASSERT_EQ(NR_WAKES + 1, msgs);
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
	struct uffd_msg msg;
	void *ret = (void *)-1L;
	pthread_t t;
	int i;

	ASSERT_EQ(0, pthread_create(&t, NULL, futex_wake_thread, self->m.area));
	for (i = 0; i < NR_WAKES; i++) {
		EXPECT_FAULT_AT(self->m.uffd, self->m.area, &msg);
		/* FOLL_WRITE: the fault came from the futex, not a user read. */
		ASSERT_NE(0, msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
		ASSERT_EQ(0, uffd_wake(self->m.uffd, (unsigned long)self->m.area, page_size));
	}
	EXPECT_FAULT_AT(self->m.uffd, self->m.area, &msg);
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
	struct timespec c0, c1;
	struct uffd_msg msg;
	double w0, w1, cpu;
	clockid_t clk;
	int pfd[2];
	pthread_t t;

	ASSERT_EQ(0, install_sigusr1(SA_RESTART));
	ASSERT_EQ(0, pipe(pfd));
	w.fd = pfd[1];
	ASSERT_EQ(0, pthread_create(&t, NULL, pipe_writer_thread, &w));
	EXPECT_FAULT_AT(self->m.uffd, self->m.area, &msg);
	ASSERT_EQ(0, pthread_getcpuclockid(t, &clk));
	ASSERT_EQ(0, pthread_kill(t, SIGUSR1));
	ASSERT_EQ(0, clock_gettime(clk, &c0));
	w0 = now_s();
	usleep(1000 * 1000);
	ASSERT_EQ(0, clock_gettime(clk, &c1));
	w1 = now_s();
	cpu = (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9;
	TH_LOG("blocked writer used %.3f s of CPU in %.3f s", cpu, w1 - w0);
	/* Resolve first, so that a spinning writer is released either way. */
	ASSERT_EQ(0, uffd_copy(self->m.uffd, (unsigned long)self->m.area, self->m.src,
			       self->m.len));
	ASSERT_EQ(0, join_within(t, WAIT_MS));
	EXPECT_LT(cpu, 0.1 * (w1 - w0));
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
FIXTURE(uffd_signal)
{
	struct uffd_mem m;
};

FIXTURE_VARIANT(uffd_signal)
{
	int sa_flags;
};

FIXTURE_VARIANT_ADD(uffd_signal, sa_restart)
{
	.sa_flags = SA_RESTART,
};

FIXTURE_VARIANT_ADD(uffd_signal, no_sa_restart)
{
	.sa_flags = 0,
};

FIXTURE_SETUP(uffd_signal)
{
	uffd_mem_setup(_metadata, &self->m, 1);
}

FIXTURE_TEARDOWN(uffd_signal)
{
	uffd_mem_teardown(&self->m);
}

TEST_F(uffd_signal, signal_handler_runs_during_fault)
{
	struct reader r = { self->m.area, self->m.len, self->m.copy };
	struct pollfd pfd = { .fd = sig_pipe[0], .events = POLLIN };
	struct uffd_msg msg;
	pthread_t t;
	char c;

	ASSERT_EQ(0, install_sigusr1(variant->sa_flags));
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

/* ---- cases with separate processes ---- */

FIXTURE(proc)
{
	struct child target;
	pid_t other;
	unsigned char *src;
};

FIXTURE_SETUP(proc)
{
	page_size = sysconf(_SC_PAGESIZE);
	self->target.pid = -1;
	self->target.uffd = -1;
	self->target.sock = -1;
	self->other = -1;
	self->src = malloc(page_size);
	ASSERT_NE(NULL, self->src);
	fill_pattern(self->src, page_size);
}

FIXTURE_TEARDOWN(proc)
{
	int status;

	if (self->other > 0) {
		kill(self->other, SIGKILL);
		waitpid(self->other, &status, 0);
	}
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

/* SIGKILL ends a process blocked in a user-mode fault promptly. */
TEST_F(proc, sigkill_user_fault)
{
	struct child *ch = &self->target;
	struct uffd_msg msg;

	START_CHILD(ch, CHILD_TOUCH);
	EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
	EXPECT_KILLED_PROMPTLY(ch->pid);
	ch->pid = -1;
}

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

/* CPU time of process @pid, in seconds, from /proc/PID/stat; -1 on error. */
static double proc_cpu_s(pid_t pid)
{
	unsigned long utime, stime;
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	/* After the name: state, then fields 4 to 13, then utime and stime. */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &utime, &stime) != 2)
		return -1;
	return (double)(utime + stime) / sysconf(_SC_CLK_TCK);
}

/* The CPU time that process @pid uses in one second; logged. */
static double cpu_in_one_second(struct __test_metadata *_metadata, pid_t pid)
{
	double c0, c1;

	c0 = proc_cpu_s(pid);
	usleep(1000 * 1000);
	c1 = proc_cpu_s(pid);
	TH_LOG("the blocked process used %.2f s of CPU in 1 s", c1 - c0);
	return c0 < 0 || c1 < 0 ? 1 : c1 - c0;
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
	self->target.pid = -1;
	self->target.uffd = -1;
	self->target.sock = -1;
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
	EXPECT_LT(cpu_in_one_second(_metadata, ch->pid), 0.1);
	ASSERT_EQ(0, uffd_copy(ch->uffd, ch->addr, self->src, page_size));
	EXPECT_CHILD_OK(ch);
}

/* SIGKILL ends the fault, and the process, promptly. */
TEST_F(kernel_mode, sigkill)
{
	struct child *ch = &self->target;
	struct uffd_msg msg;

	START_CHILD(ch, variant->mode);
	EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
	EXPECT_KILLED_PROMPTLY(ch->pid);
	ch->pid = -1;
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
	EXPECT_LT(cpu_in_one_second(_metadata, ch->pid), 0.1);
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

/*
 * SIGKILL ends a process blocked in GUP promptly: it reads another
 * process's missing memory with process_vm_readv() and waits in
 * handle_userfault() with FAULT_FLAG_KILLABLE.
 */
TEST_F(proc, sigkill_gup)
{
	struct child *ch = &self->target;
	struct uffd_msg msg;

	START_CHILD(ch, CHILD_IDLE);
	self->other = fork();
	ASSERT_LE(0, self->other);
	if (self->other == 0) {
		unsigned char *buf = malloc(page_size);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(remote_read(ch->pid, ch->addr, buf, page_size) == page_size ? 0 : 1);
	}
	EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
	EXPECT_KILLED_PROMPTLY(self->other);
	self->other = -1;
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
	struct uffd_msg msg;
	pthread_t t;
	int i;

	START_CHILD(ch, CHILD_IDLE);
	r.pid = ch->pid;
	r.addr = ch->addr;
	r.buf = calloc(1, page_size);
	ASSERT_NE(NULL, r.buf);
	ASSERT_EQ(0, pthread_create(&t, NULL, remote_reader_thread, &r));
	for (i = 0; i < NR_WAKES; i++) {
		EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
		ASSERT_EQ(0, uffd_wake(ch->uffd, ch->addr, page_size));
	}
	EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
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
	unsigned int seed = (unsigned int)time(NULL) ^ getpid();
	int i, nr_done = 0, wakes = 0, bursts = 0, copies = 0;
	double deadline = now_s() + STORM_SECONDS;

	TH_LOG("seed %u", seed);
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
				char *src = self->m.src + p * page_size;
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

/* ---- the Rust GUP sample, /dev/fault_gup (samples/rust/rust_fault_gup.rs) ---- */

struct fr_gup_req {
	uint64_t addr;
	uint64_t nr_pages;
	uint64_t flags;
	int64_t pid;
	uint64_t checksum;
	uint64_t done;
};

#define FR_GUP_PIN		_IOWR('f', 1, struct fr_gup_req)
#define FR_GUP_PIN_REMOTE	_IOWR('f', 2, struct fr_gup_req)
#define FR_GUP_FAULTIN		_IOWR('f', 3, struct fr_gup_req)
#define FR_GUP_PINS		_IOR('f', 4, int64_t)
#define FR_GUP_FAULT		_IOWR('f', 5, struct fr_gup_req)
#define FR_GUP_WRITE		1
#define FR_GUP_INTERRUPTIBLE	2
#define FR_GUP_GET		4
#define FR_GUP_LONGTERM		8
#define FR_GUP_USER		16
#define FR_GUP_NORETRY		32
#define FR_GUP_MAX_PAGES	(1UL << 16)
#define FR_GUP_DEV		"/dev/fault_gup"

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

/* nr_foll_pin_acquired - nr_foll_pin_released, with the per-CPU deltas folded in. */
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
	self->target.pid = -1;
	self->target.uffd = -1;
	self->target.sock = -1;
	uffd_mem_setup(_metadata, &self->m, 1);
	self->dev = open(FR_GUP_DEV, O_RDWR | O_CLOEXEC);
	if (self->dev < 0 && errno == ENOENT)
		SKIP(return, "no %s: CONFIG_SAMPLE_RUST_FAULT_GUP is off", FR_GUP_DEV);
	ASSERT_LE(0, self->dev) TH_LOG("open %s: %s", FR_GUP_DEV, strerror(errno));
	self->pins0 = pins_outstanding();
}

FIXTURE_TEARDOWN(gup)
{
	stop_child(&self->target);
	if (self->dev >= 0)
		close(self->dev);
	uffd_mem_teardown(&self->m);
}

/* No pin is left behind: the device holds none, and the kernel's counters balance. */
#define EXPECT_NO_PIN_LEAK() do { \
	int64_t __held = -1; \
	ASSERT_EQ(0, ioctl(self->dev, FR_GUP_PINS, &__held)); \
	ASSERT_EQ(0, __held); \
	if (self->pins0 >= 0) \
		ASSERT_EQ(self->pins0, pins_outstanding()); \
} while (0)

/*
 * Drives one ioctl against the missing page at @page (of @uffd) in a thread:
 * it must block (a message), survive NR_WAKES wakes (NR_WAKES + 1 messages),
 * and finish after the resolution.
 */
static void gup_retry_many(struct __test_metadata *_metadata, int uffd,
			   unsigned long page, const unsigned char *src,
			   struct gup_call *c, int want_write)
{
	struct uffd_msg msg;
	pthread_t t;
	int i;

	ASSERT_EQ(0, pthread_create(&t, NULL, gup_call_thread, c));
	for (i = 0; i < NR_WAKES; i++) {
		EXPECT_FAULT_AT(uffd, page, &msg);
		if (want_write)
			ASSERT_NE(0, msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WRITE);
		ASSERT_EQ(0, uffd_wake(uffd, page, page_size));
	}
	EXPECT_FAULT_AT(uffd, page, &msg);
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

/* SIGKILL ends a process blocked in pin_user_pages_unlocked() promptly. */
TEST_F(gup, sigkill_pin)
{
	struct child *ch = &self->target;
	struct uffd_msg msg;

	START_CHILD(ch, CHILD_PIN);
	EXPECT_FAULT_AT(ch->uffd, ch->addr, &msg);
	EXPECT_KILLED_PROMPTLY(ch->pid);
	ch->pid = -1;
	EXPECT_NO_PIN_LEAK();
}

/* The same process, left alone and then resolved, pins the right bytes. */
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
	struct timespec c0, c1;
	struct uffd_msg msg;
	double w0, cpu;
	clockid_t clk;
	pthread_t t;

	ASSERT_EQ(0, install_sigusr1(SA_RESTART));
	ASSERT_EQ(0, pthread_create(&t, NULL, gup_call_thread, &c));
	EXPECT_FAULT_AT(self->m.uffd, self->m.area, &msg);
	ASSERT_EQ(0, pthread_getcpuclockid(t, &clk));
	ASSERT_EQ(0, pthread_kill(t, SIGUSR1));
	ASSERT_EQ(0, clock_gettime(clk, &c0));
	w0 = now_s();
	usleep(1000 * 1000);
	ASSERT_EQ(0, clock_gettime(clk, &c1));
	cpu = (c1.tv_sec - c0.tv_sec) + (c1.tv_nsec - c0.tv_nsec) / 1e9;
	TH_LOG("blocked pin used %.3f s of CPU in %.3f s", cpu, now_s() - w0);
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
	self->pins0 = pins_outstanding();
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
};

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

/* Opens the perf fault events of thread @tid; fds[i] is -1 if there are none. */
static void open_perf(pid_t tid, int fds[NR_PERF])
{
	for (int i = 0; i < NR_PERF; i++) {
		struct perf_event_attr attr = {
			.type = PERF_TYPE_SOFTWARE,
			.size = sizeof(attr),
			.config = perf_config[i],
		};

		fds[i] = syscall(SYS_perf_event_open, &attr, tid, -1, -1,
				 PERF_FLAG_FD_CLOEXEC);
	}
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
}

FIXTURE(accounting)
{
	struct fault_counts before, after, d;
	int perf_fds[NR_PERF];
};

FIXTURE_SETUP(accounting)
{
	memset(vmstat_buf, 0, sizeof(vmstat_buf));
	for (int i = 0; i < NR_PERF; i++)
		self->perf_fds[i] = -1;
	page_size = sysconf(_SC_PAGESIZE);
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
}

/*
 * The vma_lock events are counted for the whole system: a fault of another
 * task during a measurement shows in them. A case that checks them measures
 * up to ACCT_ATTEMPTS times and judges the first measurement that matches,
 * or the last: an accounting bug fails every attempt, another task's fault
 * only one.
 */
#define ACCT_ATTEMPTS 3

/* Whether the deltas are what check_counts() expects; it fails nothing. */
static bool counts_match(const struct fault_counts *d, long faults, long minflt,
			 long majflt, long vma_success, long vma_retry)
{
	if (d->minflt != minflt || d->majflt != majflt)
		return false;
	if (d->perf[PERF_FAULTS] >= 0 &&
	    (d->perf[PERF_FAULTS] != faults || d->perf[PERF_MIN] != d->minflt ||
	     d->perf[PERF_MAJ] != d->majflt))
		return false;
	if (d->vma[VMA_SUCCESS] >= 0 &&
	    (d->vma[VMA_SUCCESS] != vma_success || d->vma[VMA_RETRY] != vma_retry ||
	     d->vma[VMA_MISS] || d->vma[VMA_ABORT]))
		return false;
	return true;
}

/*
 * Logs the deltas and checks them: @faults hardware faults, @minflt minor
 * and @majflt major ones; with per-VMA locks, @vma_success and @vma_retry
 * VMA-lock events and no miss or abort.
 */
static void check_counts(struct __test_metadata *_metadata,
			 const struct fault_counts *d, long faults, long minflt,
			 long majflt, long vma_success, long vma_retry)
{
	TH_LOG("rusage min %ld maj %ld; perf faults %ld min %ld maj %ld; vma_lock success %ld retry %ld miss %ld abort %ld",
	       d->minflt, d->majflt, d->perf[PERF_FAULTS], d->perf[PERF_MIN],
	       d->perf[PERF_MAJ], d->vma[VMA_SUCCESS], d->vma[VMA_RETRY],
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
 * Write faults on fresh anonymous memory: one minor fault per page, each
 * done under the per-VMA lock. Each page takes one store of a word: a
 * byte store is a read and a write on alpha without BWX, two faults.
 */
TEST_F(accounting, anon_write)
{
	size_t len = ACCT_ANON_PAGES * page_size;
	char *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, p);
	madvise(p, len, MADV_NOHUGEPAGE);
	open_perf(0, self->perf_fds);
	ASSERT_EQ(0, read_counts(self->perf_fds, &self->before));
	ASSERT_EQ(0, read_counts(self->perf_fds, &self->before));
	for (size_t i = 0; i < len; i += page_size)
		*(volatile long *)(p + i) = 1;
	ASSERT_EQ(0, read_counts(self->perf_fds, &self->after));
	counts_delta(&self->d, &self->before, &self->after);
	check_counts(_metadata, &self->d, ACCT_ANON_PAGES, ACCT_ANON_PAGES, 0,
		     ACCT_ANON_PAGES, 0);
	munmap(p, len);
}

struct acct_reader {
	const volatile unsigned char *addr;
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
	for (size_t i = 0; i < ACCT_UFFD_PAGES; i++)
		r->sum += r->addr[i * page_size];
	if (!r->ret)
		r->ret = read_counts(r->perf_fds, &r->after);
	for (int i = 0; i < NR_PERF; i++)
		if (r->perf_fds[i] >= 0)
			close(r->perf_fds[i]);
	return NULL;
}

/*
 * The uffd round trip, page by page: the fault waits in handle_userfault(),
 * returns VM_FAULT_RETRY once the monitor has copied the page in, and the
 * loop retries it. With per-VMA locks, handle_userfault() drops the VMA
 * lock (vma_lock_retry) and the retry under the mmap lock, without
 * FAULT_FLAG_TRIED since the first attempt was not major, finds the page:
 * a minor fault. Without them (um), the retry runs with FAULT_FLAG_TRIED:
 * a major fault. Without CONFIG_PER_VMA_LOCK_STATS the case cannot tell
 * which applies, and accepts either, but not a mix.
 */
TEST_F(accounting, uffd_round_trip)
{
	for (int attempt = 1; attempt <= ACCT_ATTEMPTS; attempt++) {
		struct acct_reader r = { 0 };
		struct uffd_mem m;
		struct uffd_msg msg;
		pthread_t t;
		int vma_locks;

		uffd_mem_setup(_metadata, &m, ACCT_UFFD_PAGES);
		r.addr = m.area;
		ASSERT_EQ(0, pthread_create(&t, NULL, acct_reader_thread, &r));
		for (int i = 0; i < ACCT_UFFD_PAGES; i++) {
			unsigned long page = (unsigned long)m.area + i * page_size;

			EXPECT_FAULT_AT(m.uffd, page, &msg);
			ASSERT_EQ(0, uffd_copy(m.uffd, page, m.src + i * page_size, page_size));
		}
		ASSERT_EQ(0, join_within(t, WAIT_MS));
		ASSERT_EQ(1, atomic_load(&r.ready));
		ASSERT_EQ(0, r.ret) TH_LOG("reading the counters: %s", strerror(-r.ret));
		counts_delta(&self->d, &r.before, &r.after);
		uffd_mem_teardown(&m);
		if (self->d.vma[VMA_SUCCESS] >= 0)
			vma_locks = 1;
		else	/* Whether the kernel has per-VMA locks shows in the counts. */
			vma_locks = self->d.majflt == 0;
		if (attempt < ACCT_ATTEMPTS &&
		    !counts_match(&self->d, ACCT_UFFD_PAGES,
				  vma_locks ? ACCT_UFFD_PAGES : 0,
				  vma_locks ? 0 : ACCT_UFFD_PAGES, 0, ACCT_UFFD_PAGES)) {
			TH_LOG("attempt %d: vma_lock success %ld retry %ld miss %ld abort %ld: again",
			       attempt, self->d.vma[VMA_SUCCESS], self->d.vma[VMA_RETRY],
			       self->d.vma[VMA_MISS], self->d.vma[VMA_ABORT]);
			continue;
		}
		check_counts(_metadata, &self->d, ACCT_UFFD_PAGES,
			     vma_locks ? ACCT_UFFD_PAGES : 0,
			     vma_locks ? 0 : ACCT_UFFD_PAGES, 0, ACCT_UFFD_PAGES);
		break;
	}
}

TEST_HARNESS_MAIN
