/*
 * util.c - clock, resident set size, a seeded random generator, and the
 * pipe a child sends its result through.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Resident set size from /proc/self/statm; 0 if it cannot be read.  No
 * stdio: a measurement must not allocate.
 */
uint64_t
rss_bytes(void)
{
	char buf[128], *p;
	unsigned long resident;
	ssize_t n;
	int fd;

	if ((fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "size resident shared ...": the second field. */
	if ((p = strchr(buf, ' ')) == NULL)
		return 0;
	resident = strtoul(p + 1, NULL, 10);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* xorshift64*: the same sequence for the same seed everywhere. */
uint64_t
rand_next(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dull;
}

/* v[0..n) = 0..n-1 in an order fixed by seed. */
void
shuffle(uint32_t *v, size_t n, uint64_t seed)
{
	uint64_t state = seed * 0x9e3779b97f4a7c15ull | 1;
	size_t i;

	for (i = 0; i < n; i++)
		v[i] = (uint32_t)i;
	for (i = n; i > 1; i--) {
		size_t j = rand_next(&state) % i;
		uint32_t x = v[i - 1];

		v[i - 1] = v[j];
		v[j] = x;
	}
}

/*
 * Fork a child that sends its result back through a pipe: 0 in the child,
 * which writes to fd[1]; the pid in the parent, which reads fd[0]; -1 if
 * the pipe or the fork failed.
 */
pid_t
child_start(int fd[2])
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	if (pipe(fd) != 0)
		return -1;
	if ((pid = fork()) < 0) {
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	close(pid == 0 ? fd[0] : fd[1]);
	return pid;
}

/* A child's last act: its result to the parent, then exit. */
void
pipe_result(int fd, const void *r, size_t len)
{
	_exit(write(fd, r, len) == (ssize_t)len ? 0 : 1);
}

/*
 * Read a child's result from fd (len bytes) and reap it.  False if the
 * result is short or the child did not exit with 0.
 */
bool
child_result(pid_t pid, int fd, void *r, size_t len)
{
	char *p = r;
	size_t got = 0;
	ssize_t n;
	int status;

	while (got < len && ((n = read(fd, p + got, len - got)) > 0 ||
	    (n < 0 && errno == EINTR)))
		if (n > 0)
			got += (size_t)n;
	close(fd);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return got == len && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
