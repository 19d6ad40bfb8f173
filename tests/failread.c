/*
 * failread.c - an LD_PRELOAD shim that makes reads of /dev/fuse fail.
 *
 * With FAILREAD_AFTER=K and FAILREAD_COUNT=N in the environment, the
 * reads of /dev/fuse after the K-th succeeded fail with FAILREAD_ERRNO
 * (default EIO), N times in all; every other read is the real one.
 * tests/readerr.sh uses it, to show zsd serving on through such errors.
 */
#include <config.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_long	done, failed;

static long
env_long(const char *name, long def)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? strtol(v, NULL, 10) : def;
}

static int
is_fuse(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if ((n = readlink(path, target, sizeof(target) - 1)) < 0)
		return 0;
	target[n] = '\0';
	return strcmp(target, "/dev/fuse") == 0;
}

ssize_t
read(int fd, void *buf, size_t len)
{
	static ssize_t (*real)(int, void *, size_t);
	ssize_t n;

	if (real == NULL)
		real = (ssize_t (*)(int, void *, size_t))dlsym(RTLD_NEXT,
		    "read");
	if (len >= 4096 && is_fuse(fd) &&
	    atomic_load(&done) >= env_long("FAILREAD_AFTER", LONG_MAX) &&
	    atomic_fetch_add(&failed, 1) < env_long("FAILREAD_COUNT", 0)) {
		errno = (int)env_long("FAILREAD_ERRNO", EIO);
		return -1;
	}
	n = real(fd, buf, len);
	if (n > 0 && len >= 4096 && is_fuse(fd))
		atomic_fetch_add(&done, 1);
	return n;
}
