// SPDX-License-Identifier: GPL-2.0
/*
 * /init of the workbench's guests. A static program with no dependency but
 * libc, so that it runs on every arch we have a cross libc for.
 *
 * It mounts proc, sys, dev, debugfs and a tmpfs on /tmp, lowers the console
 * log level to warnings (so that test output and kernel reports do not
 * interleave, while every WARNING, BUG or Oops still reaches the console),
 * and writes one KTAP document to /dev/console between two marker lines:
 *
 *   # fr-guest: begin
 *   KTAP version 1
 *   1..N
 *       <the KTAP of one KUnit suite that ran at boot, from debugfs>
 *   ok 1 <suite>
 *       <the KTAP of one program in /tests, indented, streamed while it runs>
 *   ok 2 <program>
 *   # fr-guest: end
 *
 * Each program runs under a timeout (FR_TIMEOUT seconds, from the kernel
 * command line; default 300), with the lines of /tests/<program>.args (if
 * there is one) and then the words of FR_ARGS as its arguments (for
 * example FR_ARGS="-t storm" to run one case of a kselftest harness
 * program). When it exits or times out, every process but /init is killed,
 * whatever its process group: a program's processes never outlive it. One
 * that has not exited 10 s later (stuck in the kernel) is named, and the
 * program fails. Then the guest powers off: power-off, not reboot, because
 * UML restarts the kernel on reboot().
 *
 * The hung-task detector and the soft-lockup watchdog (where the kernel has
 * them) report a task in D state and a CPU that does not schedule after
 * 20 s; the host's judge fails the boot on either report. Where the kernel
 * has hugetlbfs, FR_HUGETLB_MB (default 160) MiB of huge pages of the
 * default size are reserved for the programs (upstream's hugetlb tests use
 * the free ones).
 *
 * With FR_BENCH=1 on the kernel command line it runs the programs of /bench
 * instead, and no KUnit suites (make bench).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TESTS_DIR "/tests"
#define BENCH_DIR "/bench"
#define KUNIT_DIR "/sys/kernel/debug/kunit"
#define INDENT "    "
#define MAX_ENTRIES 256
/* Console log level: show KERN_WARNING (4) and more severe messages. */
#define CONSOLE_LOGLEVEL 5
#define SYSLOG_ACTION_CONSOLE_LEVEL 8
/* Seconds after which a hung task or a soft lockup is reported. */
#define WATCHDOG_S 20
/* MiB of huge pages reserved for the programs, unless FR_HUGETLB_MB says. */
#define HUGETLB_MB 160
/* Seconds that the processes left by a program get to exit once killed. */
#define EXIT_GRACE_S 10

static void out(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;
	/* One write per line: a line is never split by another writer. */
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		n -= w;
		memmove(buf, buf + w, n);
	}
}

static void try_mount(const char *src, const char *dst, const char *type)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, 0, NULL) && errno != EBUSY)
		out("# fr-guest: mount %s on %s: %s\n", type, dst, strerror(errno));
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the entries of @dir (no dot files); returns the count. */
static int list_dir(const char *dir, char **names, int max, int want_dirs)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max) {
		char path[512];
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st))
			continue;
		if (want_dirs ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
			continue;
		if (!want_dirs && strstr(de->d_name, ".args"))
			continue;
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	return n;
}

static char *read_file(const char *path)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY);
	ssize_t r;

	if (fd < 0 || !buf) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while ((r = read(fd, buf + len, cap - len - 1)) > 0) {
		len += r;
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

/*
 * The debugfs "results" file of a suite is a whole KTAP document whose only
 * test is the suite: "KTAP version 1", "1..1", the suite indented by four,
 * then "ok 1 <suite>". Emit the suite as subtest @num of our document.
 */
static int report_kunit_suite(int num, const char *suite)
{
	char path[512], *doc, *line, *save, *last = NULL;
	int ok;

	snprintf(path, sizeof(path), "%s/%s/results", KUNIT_DIR, suite);
	doc = read_file(path);
	if (!doc) {
		out("not ok %d %s # cannot read %s\n", num, suite, path);
		return 1;
	}
	for (line = strtok_r(doc, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strcmp(line, "KTAP version 1") || !strcmp(line, "1..1"))
			continue;
		if (!strncmp(line, "ok ", 3) || !strncmp(line, "not ok ", 7)) {
			last = line;	/* the suite's own result, re-emitted below */
			continue;
		}
		out("%s\n", line);
	}
	ok = last && !strncmp(last, "ok ", 3);
	if (last) {
		const char *dir = strstr(last, " # ");

		out("%s %d %s%s\n", ok ? "ok" : "not ok", num, suite, dir ? dir : "");
	} else {
		out("not ok %d %s # no result in %s\n", num, suite, path);
	}
	free(doc);
	return !ok;
}

static pid_t child_pid;
static int child_status;
static int child_done;

/* Reaps every exited process (we are PID 1); notes our child's status. */
static void reap(void)
{
	int status;
	pid_t p;

	while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
		if (p == child_pid) {
			child_status = status;
			child_done = 1;
		}
	}
}

/*
 * The user processes other than /init: their count, and with @report a
 * line for each (PID, name, state, where it waits). Kernel threads
 * (PF_KTHREAD) are not counted.
 */
static int list_processes(int report)
{
	struct dirent *de;
	int n = 0;
	DIR *d = opendir("/proc");

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[64], *stat, *rp, *wchan;
		unsigned long flags = 0;
		int pid = atoi(de->d_name);
		char state = '?';

		if (pid <= 1)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		stat = read_file(path);
		if (!stat)
			continue;
		/* pid (comm) state ppid pgrp session tty_nr tpgid flags */
		rp = strrchr(stat, ')');
		if (rp && sscanf(rp + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) == 2 &&
		    !(flags & 0x00200000)) {
			n++;
			if (report) {
				snprintf(path, sizeof(path), "/proc/%d/wchan", pid);
				wchan = read_file(path);
				*rp = '\0';
				out("# fr-guest: left behind: %d %s) state %c, in %s\n", pid,
				    strchr(stat, '(') ?: "(?", state,
				    wchan && *wchan ? wchan : "?");
				free(wchan);
			}
		}
		free(stat);
	}
	closedir(d);
	return n;
}

/*
 * Kills every process but /init (kill(-1) spares the caller) and reaps
 * them for up to EXIT_GRACE_S seconds. Returns how many are left, named on
 * the console.
 */
static int kill_all(void)
{
	double start = now();

	kill(-1, SIGKILL);
	for (;;) {
		reap();
		if (!list_processes(0))
			return 0;
		if (now() - start > EXIT_GRACE_S)
			return list_processes(1);
		usleep(20000);
	}
}

/* Writes @val to the sysctl file @path; whether it worked. */
static int set_sysctl(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int ok;

	if (fd < 0)
		return 0;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok;
}

/*
 * Reserves @mb MiB of huge pages of the default size (Hugepagesize of
 * /proc/meminfo); reports how many it got. Nothing without hugetlbfs.
 */
static void reserve_huge_pages(long mb)
{
	char *meminfo = read_file("/proc/meminfo"), *p, val[32], *got;
	long kb = 0, want;

	p = meminfo ? strstr(meminfo, "Hugepagesize:") : NULL;
	if (p)
		kb = strtol(p + strlen("Hugepagesize:"), NULL, 10);
	free(meminfo);
	if (kb <= 0)
		return;
	want = (mb * 1024 + kb - 1) / kb;
	snprintf(val, sizeof(val), "%ld", want);
	if (!set_sysctl("/proc/sys/vm/nr_hugepages", val))
		out("# fr-guest: cannot reserve huge pages: %s\n", strerror(errno));
	got = read_file("/proc/sys/vm/nr_hugepages");
	out("# fr-guest: %s of %ld huge pages of %ld kB reserved\n",
	    got ? strtok(got, "\n") : "?", want, kb);
	free(got);
}

static void emit_lines(char *buf, size_t *len, int flush)
{
	char *start = buf, *nl;

	while ((nl = memchr(start, '\n', *len - (start - buf)))) {
		*nl = '\0';
		out(INDENT "%s\n", start);
		start = nl + 1;
	}
	*len -= start - buf;
	memmove(buf, start, *len);
	if (flush && *len) {
		buf[*len] = '\0';
		out(INDENT "%s\n", buf);
		*len = 0;
	}
}

static const char *tests_dir = TESTS_DIR;

static int run_test(int num, const char *name, int timeout)
{
	char path[512], buf[8192];
	size_t len = 0;
	int pfd[2], eof = 0, timed_out = 0, left;
	double start = now(), exited_at = 0;

	snprintf(path, sizeof(path), "%s/%s", tests_dir, name);
	out("# fr-guest: running %s (timeout %d s)\n", name, timeout);
	if (pipe2(pfd, O_CLOEXEC)) {
		out("not ok %d %s # pipe: %s\n", num, name, strerror(errno));
		return 1;
	}
	child_done = 0;
	child_pid = fork();
	if (child_pid < 0) {
		out("not ok %d %s # fork: %s\n", num, name, strerror(errno));
		return 1;
	}
	if (child_pid == 0) {
		char *argv[64] = { path }, *args = getenv("FR_ARGS"), *save, *file;
		char args_path[600];
		int argc = 1;

		snprintf(args_path, sizeof(args_path), "%s.args", path);
		file = read_file(args_path);
		for (char *a = file ? strtok_r(file, "\n", &save) : NULL; a && argc < 63;
		     a = strtok_r(NULL, "\n", &save))
			argv[argc++] = a;
		for (char *a = args ? strtok_r(args, " ", &save) : NULL; a && argc < 63;
		     a = strtok_r(NULL, " ", &save))
			argv[argc++] = a;

		dup2(pfd[1], STDOUT_FILENO);
		dup2(pfd[1], STDERR_FILENO);
		if (chdir("/tmp"))
			_exit(127);
		execv(path, argv);
		dprintf(STDERR_FILENO, "exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);

	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		double t = now();

		reap();
		if (child_done && !exited_at)
			exited_at = t;
		/* The program's own children may hold the pipe: give them 2 s. */
		if ((eof && child_done) || (exited_at && t - exited_at > 2))
			break;
		if (t - start > timeout) {
			timed_out = 1;
			break;
		}
		if (!eof && poll(&p, 1, 200) > 0) {
			ssize_t r = read(pfd[0], buf + len, sizeof(buf) - len - 1);

			if (r > 0) {
				len += r;
				emit_lines(buf, &len, len >= sizeof(buf) - 1);
			} else if (r == 0 || errno != EINTR) {
				eof = 1;
			}
		} else if (eof) {
			usleep(50000);
		}
	}
	/* Nothing of the program outlives it, whatever its process group. */
	left = kill_all();
	emit_lines(buf, &len, 1);
	close(pfd[0]);

	if (timed_out) {
		out("not ok %d %s # TIMEOUT after %d s\n", num, name, timeout);
		return 1;
	}
	if (left) {
		out("not ok %d %s # %d processes did not exit when killed\n", num, name, left);
		return 1;
	}
	if (!child_done) {
		out("not ok %d %s # the program did not exit when killed\n", num, name);
		return 1;
	}
	if (WIFEXITED(child_status)) {
		int code = WEXITSTATUS(child_status);

		if (code == 0)
			out("ok %d %s\n", num, name);
		else if (code == 4)
			out("ok %d %s # SKIP\n", num, name);
		else
			out("not ok %d %s # exit status %d\n", num, name, code);
		return code != 0 && code != 4;
	}
	out("not ok %d %s # killed by signal %d\n", num, name, WTERMSIG(child_status));
	return 1;
}

int main(void)
{
	char *suites[MAX_ENTRIES], *tests[MAX_ENTRIES];
	int nsuites, ntests, i, num = 0, failed = 0, timeout = 300;
	const char *t = getenv("FR_TIMEOUT");
	struct utsname u;
	int hung, soft;
	char val[16];

	if (t && atoi(t) > 0)
		timeout = atoi(t);
	try_mount("proc", "/proc", "proc");
	try_mount("sysfs", "/sys", "sysfs");
	try_mount("devtmpfs", "/dev", "devtmpfs");
	try_mount("debugfs", "/sys/kernel/debug", "debugfs");
	try_mount("tmpfs", "/tmp", "tmpfs");
	if (klogctl(SYSLOG_ACTION_CONSOLE_LEVEL, NULL, CONSOLE_LOGLEVEL))
		out("# fr-guest: cannot set the console log level: %s\n", strerror(errno));
	/* A soft lockup is reported after twice watchdog_thresh. */
	snprintf(val, sizeof(val), "%d", WATCHDOG_S);
	hung = set_sysctl("/proc/sys/kernel/hung_task_timeout_secs", val);
	snprintf(val, sizeof(val), "%d", WATCHDOG_S / 2);
	soft = set_sysctl("/proc/sys/kernel/watchdog_thresh", val);

	t = getenv("FR_BENCH");
	if (t && !strcmp(t, "1")) {
		tests_dir = BENCH_DIR;
		nsuites = 0;
	} else {
		nsuites = list_dir(KUNIT_DIR, suites, MAX_ENTRIES, 1);
	}
	ntests = list_dir(tests_dir, tests, MAX_ENTRIES, 0);

	out("# fr-guest: begin\n");
	out("KTAP version 1\n");
	if (!uname(&u))
		out("# %s %s %s, %ld CPUs\n", u.sysname, u.release, u.machine,
		    sysconf(_SC_NPROCESSORS_ONLN));
	out("# fr-guest: hung-task detector %s, soft-lockup detector %s (%d s)\n",
	    hung ? "on" : "off", soft ? "on" : "off", WATCHDOG_S);
	if (strcmp(tests_dir, BENCH_DIR)) {
		t = getenv("FR_HUGETLB_MB");
		reserve_huge_pages(t ? atol(t) : HUGETLB_MB);
	}
	out("1..%d\n", nsuites + ntests);
	for (i = 0; i < nsuites; i++)
		failed += report_kunit_suite(++num, suites[i]);
	for (i = 0; i < ntests; i++)
		failed += run_test(++num, tests[i], timeout);
	out("# fr-guest: %d of %d failed\n", failed, num);
	out("# fr-guest: end\n");

	sync();
	reboot(RB_POWER_OFF);
	out("# fr-guest: power-off failed: %s\n", strerror(errno));
	for (;;)
		pause();
}
