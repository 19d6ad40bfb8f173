/*
 * test-log.c - the log's ring: lines come out in order and none is lost
 * while there is room; with the drainer held back, the lines that do not
 * fit are dropped, counted and said to be; fatal() writes out what is
 * queued before it exits.
 *
 * The log goes to stderr (the foreground), which the test points at a
 * file it reads back; TAP goes to stdout.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "zsd.h"
#include "tap.h"

#define THREADS		4
#define PER_THREAD	2000

static char	log_text[4 << 20];
static size_t	log_len;

/* Read what the log file holds now into log_text. */
static size_t
read_log(void)
{
	ssize_t n;

	log_len = 0;
	while (log_len < sizeof(log_text) - 1 &&
	    (n = pread(STDERR_FILENO, log_text + log_len,
	    sizeof(log_text) - 1 - log_len, (off_t)log_len)) > 0)
		log_len += (size_t)n;
	log_text[log_len] = '\0';
	return log_len;
}

static unsigned int
count_lines(void)
{
	unsigned int n = 0;
	size_t i;

	for (i = 0; i < log_len; i++)
		n += log_text[i] == '\n';
	return n;
}

/* Wait (5 s at most) until the log holds n lines. */
static bool
wait_lines(unsigned int n)
{
	int tries;

	for (tries = 0; tries < 500; tries++) {
		read_log();
		if (count_lines() >= n)
			return count_lines() == n;
		usleep(10000);
	}
	return false;
}

/*
 * Do lines [from, from + n) of the log read "test-log: <word> <k>" for
 * k = first, first + 1, ...?  Returns the offset after them, or -1.
 */
static long
lines_are(size_t off, unsigned int n, const char *word, unsigned int first)
{
	char want[64];
	unsigned int k;
	size_t len;

	for (k = 0; k < n; k++) {
		len = (size_t)snprintf(want, sizeof(want), "test-log: %s %u\n",
		    word, first + k);
		if (off + len > log_len || memcmp(log_text + off, want, len))
			return -1;
		off += len;
	}
	return (long)off;
}

/*
 * In a child, while this process has no other thread: the drainer held
 * back, lines queued, then fatalx().  All of them, then the fatal line,
 * must be in the log when the child is gone.
 */
static void
test_fatal(void)
{
	size_t before = read_log();
	int status, k;
	pid_t pid;
	long off;

	fflush(stdout);
	if ((pid = fork()) == -1)
		bail("fork: %s", strerror(errno));
	if (pid == 0) {
		if (log_start() != 0)
			_exit(3);
		log_pause(true);
		for (k = 0; k < 5; k++)
			log_info("queued %d", k);
		fatalx("the end");
	}
	ok(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 1, "fatalx exits with status 1");
	read_log();
	off = lines_are(before, 5, "queued", 0);
	ok(off >= 0 && strcmp(log_text + off, "test-log: fatal: the end\n") ==
	    0, "fatalx wrote out the 5 lines the held drainer had queued, "
	    "then its own");
}

static void
test_order(void)
{
	unsigned int round, k, n = 0;
	size_t start = read_log();
	bool all = true;

	/* Ten rounds of half a ring: its positions go round five times. */
	for (round = 0; round < 10; round++) {
		for (k = 0; k < LOG_RING_LINES / 2; k++)
			log_info("line %u", n++);
		all &= wait_lines(count_lines() + LOG_RING_LINES / 2);
	}
	ok(all, "the drainer wrote out %u lines in rounds of %u", n,
	    LOG_RING_LINES / 2);
	ok(lines_are(start, n, "line", 0) == (long)log_len,
	    "in the order they were logged");
	ok(log_dropped() == 0, "none dropped");
}

static void
test_full(void)
{
	size_t start = read_log();
	unsigned int lines = count_lines(), k;
	long off;

	log_pause(true);
	for (k = 0; k < LOG_RING_LINES; k++)
		log_info("held %u", k);
	usleep(100000);
	read_log();
	ok(log_len == start && log_dropped() == 0,
	    "drainer held: a ring's worth (%u lines) queued, none written, "
	    "none dropped", LOG_RING_LINES);
	log_pause(false);
	ok(wait_lines(lines + LOG_RING_LINES) &&
	    lines_are(start, LOG_RING_LINES, "held", 0) == (long)log_len,
	    "let go: all of them written, in order");

	/* Past the ring: the rest are dropped, counted, and said to be. */
	start = log_len;
	lines = count_lines();
	log_pause(true);
	for (k = 0; k < LOG_RING_LINES + 10; k++)
		log_info("more %u", k);
	ok(log_dropped() == 10, "%u lines into a ring of %u: %llu dropped",
	    LOG_RING_LINES + 10, LOG_RING_LINES,
	    (unsigned long long)log_dropped());
	log_pause(false);
	ok(wait_lines(lines + LOG_RING_LINES + 1), "let go: %u lines and one "
	    "more written", LOG_RING_LINES);
	off = lines_are(start, LOG_RING_LINES, "more", 0);
	ok(off >= 0 && strcmp(log_text + off,
	    "test-log: 10 log lines dropped\n") == 0,
	    "the first %u, then \"10 log lines dropped\"", LOG_RING_LINES);
}

/* log_flush() writes out what is queued in the calling thread. */
static void
test_flush(void)
{
	size_t start = read_log();

	log_pause(true);
	log_info("flushed 0");
	log_info("flushed 1");
	log_flush();
	read_log();
	ok(lines_are(start, 2, "flushed", 0) == (long)log_len,
	    "log_flush wrote out the queue though the drainer is held");
	log_pause(false);
}

static void *
producer(void *arg)
{
	unsigned int t = (unsigned int)(uintptr_t)arg, k;

	for (k = 0; k < PER_THREAD; k++)
		log_info("t%u %u", t, k);
	return NULL;
}

/*
 * Threads at once: each one's lines that arrive are in its order, and
 * those that do not are counted.
 */
static void
test_threads(void)
{
	pthread_t th[THREADS];
	unsigned int t, next[THREADS] = { 0 }, got = 0, bad = 0, k, said = 0;
	unsigned long long dropped = log_dropped(), n;
	size_t start = read_log();
	char *p, *end;

	for (t = 0; t < THREADS; t++)
		pthread_create(&th[t], NULL, producer, (void *)(uintptr_t)t);
	for (t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	log_flush();
	read_log();
	dropped = log_dropped() - dropped;
	for (p = log_text + start; p < log_text + log_len; p = end + 1) {
		end = strchr(p, '\n');
		if (sscanf(p, "test-log: t%u %u", &t, &k) == 2 &&
		    t < THREADS) {
			/* Dropped lines leave gaps, never a step back. */
			bad += k < next[t];
			next[t] = k + 1;
			got++;
		} else if (sscanf(p, "test-log: %llu log lines dropped",
		    &n) == 1) {
			said += (unsigned int)n;
		} else {
			bad++;
		}
	}
	ok(bad == 0, "%u threads: each one's lines in its order (%u wrong)",
	    THREADS, bad);
	ok(got + dropped == THREADS * PER_THREAD && said == dropped,
	    "%u written + %llu dropped = %u logged; %u said to be dropped",
	    got, dropped, THREADS * PER_THREAD, said);
}

int
main(void)
{
	char path[PATH_MAX];
	const char *tmp = getenv("TMPDIR");
	int fd;

	snprintf(path, sizeof(path), "%s/test-log.XXXXXX",
	    tmp != NULL ? tmp : "/tmp");
	if ((fd = mkstemp(path)) == -1)
		bail("mkstemp %s: %s", path, strerror(errno));
	unlink(path);
	if (dup2(fd, STDERR_FILENO) == -1)
		bail("dup2: %s", strerror(errno));
	close(fd);
	tap_watchdog(120);

	log_init("test-log", true);
	log_info("before %d", 0);
	read_log();
	ok(lines_are(0, 1, "before", 0) == (long)log_len,
	    "before log_start: written at once");

	/* First, while there is no other thread to fork with. */
	test_fatal();

	ok(log_start() == 0, "log_start");
	test_order();
	test_full();
	test_flush();
	test_threads();

	log_pause(true);
	log_info("last %d", 0);
	log_stop();
	read_log();
	ok(log_len >= 17 && strcmp(log_text + log_len - 17,
	    "test-log: last 0\n") == 0, "log_stop writes out what is queued");
	log_info("after %d", 0);
	read_log();
	ok(log_len >= 18 && strcmp(log_text + log_len - 18,
	    "test-log: after 0\n") == 0, "after log_stop: written at once");
	return done_testing();
}
