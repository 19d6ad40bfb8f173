/*
 * stale.c - what a zsd that died left behind, cleaned up before a new one
 * starts on the same mountpoint.
 *
 * A zsd killed without its orderly stop leaves its FUSE mount (every
 * access now fails with ENOTCONN), the loop device attached to the swap
 * file in it, and that loop device still enabled as swap.  The pages in
 * that swap are gone with the process that held them.  Left alone, the
 * dead swap takes writes that fail, and the mountpoint cannot be mounted
 * again.
 *
 * stale_cleanup looks for exactly that: a mount of type fuse.zsd at our
 * mountpoint whose connection is dead.  Anything else (a live zsd, another
 * file system) is left to check_mountpoint to refuse; a connection open
 * that nobody serves is refused here, without waiting on it forever
 * (stale_probe).  Then, for every
 * loop device whose backing file is in that mount: swapoff if it is swap
 * (the kernel reads every page back; the reads fail, and it marks each
 * such page poisoned, so a process that touches one later gets SIGBUS
 * instead of wrong data), detach it, and finally unmount the dead mount
 * lazily.  It says what it found and how much was lost.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "zsd.h"

#define STALE_PROBE_MS	2000	/* a live mount answers a stat sooner */

/* Undo mountinfo's octal escapes (\040 for a space and the like). */
static void
stale_unescape(char *s)
{
	char *p, *q;

	for (p = q = s; *p != '\0'; q++) {
		if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' &&
		    p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
			*q = (char)((p[1] - '0') << 6 | (p[2] - '0') << 3 |
			    (p[3] - '0'));
			p += 4;
		} else
			*q = *p++;
	}
	*q = '\0';
}

/* The file system type of the mount at path, from mountinfo; "" if none. */
static void
stale_mount_type(const char *path, char *type, size_t len)
{
	char line[4096], mnt[PATH_MAX], fstype[64], *sep;
	FILE *f;

	type[0] = '\0';
	if ((f = fopen("/proc/self/mountinfo", "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		/* id parent maj:min root mountpoint opts [tags] - type ... */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		stale_unescape(mnt);
		if (strcmp(mnt, path) != 0 ||
		    (sep = strstr(line, " - ")) == NULL)
			continue;
		/* The last mount on path is the one seen there. */
		if (sscanf(sep + 3, "%63s", fstype) == 1)
			snprintf(type, len, "%s", fstype);
	}
	fclose(f);
}

/* Swapoff and detach one loop device of the dead mount. */
static int
stale_loop(const char *dev, const char *file)
{
	uint64_t used;
	int fd, error;

	error = memfit_swap_used("/proc", dev, &used);
	if (error != 0 && error != -ENOENT) {
		errno = -error;
		log_warn("/proc/swaps: cannot tell whether %s is swap", dev);
		return error;
	}
	if (error == 0) {
		log_warnx("%s, backed by %s of a zsd that is gone, is still "
		    "swap with %" PRIu64 " MiB in use: those pages are lost "
		    "(a process that touches one gets SIGBUS); swapoff %s",
		    dev, file, used >> 20, dev);
		if (swapoff(dev) != 0) {
			error = -errno;
			log_warn("swapoff %s", dev);
			/*
			 * The kernel charges every page it reads back to the
			 * page's memory cgroup, lost or not: one at its limit
			 * fails the swapoff.
			 */
			if (error == -ENOMEM)
				log_warnx("a memory cgroup whose pages were on "
				    "%s may be at its limit: stop the "
				    "processes whose pages were lost, or "
				    "raise that limit, then start zsd again",
				    dev);
			return error;
		}
	} else
		log_warnx("%s is attached to %s of a zsd that is gone; "
		    "detaching it", dev, file);
	if ((fd = open(dev, O_RDWR | O_CLOEXEC)) < 0) {
		log_warn("%s", dev);
		return -errno;
	}
	if (ioctl(fd, LOOP_CLR_FD, 0) != 0 && errno != ENXIO) {
		error = -errno;
		log_warn("detaching %s", dev);
	}
	close(fd);
	return error;
}

/* Every loop device whose backing file is under dir/. */
static int
stale_loops(const char *dir)
{
	char path[PATH_MAX], file[PATH_MAX], dev[300];
	size_t dirlen = strlen(dir);
	struct dirent *de;
	int error = 0, r;
	ssize_t n;
	DIR *d;
	int fd;

	/* Unmounting with a dead loop device still swap would hide it. */
	if ((d = opendir("/sys/block")) == NULL) {
		error = -errno;
		log_warn("/sys/block: cannot look for loop devices on %s", dir);
		return error;
	}
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "loop", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file",
		    de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		n = read(fd, file, sizeof(file) - 1);
		close(fd);
		if (n <= 0)
			continue;
		file[n] = '\0';
		file[strcspn(file, "\n")] = '\0';
		if (strncmp(file, dir, dirlen) != 0 || file[dirlen] != '/')
			continue;
		snprintf(dev, sizeof(dev), "/dev/%s", de->d_name);
		if ((r = stale_loop(dev, file)) != 0 && error == 0)
			error = r;
	}
	closedir(d);
	return error;
}

/*
 * stat(2) of a FUSE mount waits for its server, and a connection that is
 * open with nobody serving it (a zsd stopped with SIGSTOP, or the fds of
 * one whose keeper died kept by a service manager) would hold this
 * process forever.  So a child makes the stat, and is killed after
 * STALE_PROBE_MS.  0 if it answered, the errno it failed with, or
 * -ETIMEDOUT.
 */
static int
stale_probe(const char *path)
{
	struct timespec nap = { 0, 10 * 1000 * 1000 };
	struct stat st;
	unsigned int waited;
	int status;
	pid_t pid;

	if ((pid = fork()) < 0)
		return errno;
	if (pid == 0)
		_exit(stat(path, &st) == 0 ? 0 : errno & 0xff);
	for (waited = 0; waited < STALE_PROBE_MS; waited += 10) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
		nanosleep(&nap, NULL);
	}
	/* A FUSE request waits killably. */
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return -ETIMEDOUT;
}

int
stale_cleanup(const char *mountpoint)
{
	char type[64];
	int error;

	stale_mount_type(mountpoint, type, sizeof(type));
	if (strcmp(type, "fuse.zsd") != 0)
		return 0;
	error = stale_probe(mountpoint);
	if (error == -ETIMEDOUT) {
		log_warnx("%s: a zsd mount whose connection is open but does "
		    "not answer in %d ms (a zsd stopped, or the descriptors "
		    "of one kept by a service manager): leaving it alone",
		    mountpoint, STALE_PROBE_MS);
		return -EBUSY;
	}
	if (error != ENOTCONN && error != ECONNABORTED)
		return 0;		/* alive: another zsd serves it */
	log_warnx("%s: the mount of a zsd that is gone (%s); cleaning up "
	    "what it left", mountpoint, strerror(error));
	if ((error = stale_loops(mountpoint)) != 0)
		return error;
	if (umount2(mountpoint, MNT_DETACH) != 0) {
		log_warn("unmounting %s", mountpoint);
		return -errno;
	}
	log_info("%s: unmounted; starting afresh", mountpoint);
	return 1;
}
