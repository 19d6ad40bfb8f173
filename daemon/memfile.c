/*
 * memfile.c - the files the pool and the keeper's state live in: shared
 * memory that is never swapped.
 *
 * The arena and the state file are mapped by the serving process, which
 * locks what it maps (mlockall).  Between the death of one server and the
 * moment the next has mapped them again, and while only systemd's fd
 * store holds them, nobody has them locked, and a memfd's pages may then
 * be reclaimed -- and swapped to the highest-priority swap, which is
 * zsd's own.  The next server then faults on a page that only it could
 * read back, and hangs for good.
 *
 * So both files are made on one tmpfs of our own, mounted with noswap
 * (Linux 6.4), whose pages the kernel keeps in memory whoever maps them:
 * fsopen() and fsmount() make the mount without a place in any directory
 * tree, and the files are opened there with O_TMPFILE, so nothing is
 * left to clean up: the mount goes away with the last open file in it.
 * Its size is not limited (the pool's own mem_limit is the limit).
 * Unlike a memfd, such a file cannot be sealed against shrinking; only
 * zsd ever has it.
 * Where the kernel has no noswap, or mounting is not permitted (no
 * CAP_SYS_ADMIN), the files are memfds, and memfile_open says why.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <unistd.h>

#include "zsd.h"

#ifdef HAVE_FSOPEN
/* A new noswap tmpfs, mounted nowhere: its mount fd; -1 with errno. */
static int
memfile_mount(const char **step)
{
	int fs, mnt = -1, saved;

	*step = "fsopen tmpfs";
	if ((fs = fsopen("tmpfs", FSOPEN_CLOEXEC)) < 0)
		return -1;
	*step = "the noswap option (Linux 6.4)";
	if (fsconfig(fs, FSCONFIG_SET_FLAG, "noswap", NULL, 0) != 0)
		goto out;
	*step = "size=0";
	if (fsconfig(fs, FSCONFIG_SET_STRING, "size", "0", 0) != 0)
		goto out;
	*step = "mode=0700";
	if (fsconfig(fs, FSCONFIG_SET_STRING, "mode", "0700", 0) != 0)
		goto out;
	*step = "creating the tmpfs";
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) != 0)
		goto out;
	*step = "fsmount";
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID |
	    MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
out:
	saved = errno;
	close(fs);
	errno = saved;
	return mnt;
}
#else
static int
memfile_mount(const char **step)
{
	*step = "fsopen (built without it)";
	errno = ENOSYS;
	return -1;
}
#endif

static void
memfile_close(int *fds, unsigned int n)
{
	while (n > 0)
		close(fds[--n]);
}

int
memfile_open(const char *const *names, int *fds, unsigned int n,
    bool *noswap, char *why, size_t whylen)
{
	const char *step;
	unsigned int i;
	int mnt, saved;

	if ((mnt = memfile_mount(&step)) >= 0) {
		step = "O_TMPFILE";
		for (i = 0; i < n; i++)
			if ((fds[i] = openat(mnt, ".", O_TMPFILE | O_RDWR |
			    O_CLOEXEC, 0600)) < 0)
				break;
		saved = errno;
		close(mnt);
		if (i == n) {
			*noswap = true;
			return 0;
		}
		memfile_close(fds, i);
		errno = saved;
	}
	snprintf(why, whylen, "%s: %s", step, strerror(errno));
	*noswap = false;
	for (i = 0; i < n; i++)
		if ((fds[i] = memfd_create(names[i], MFD_CLOEXEC |
		    MFD_ALLOW_SEALING)) < 0) {
			saved = errno;
			memfile_close(fds, i);
			errno = saved;
			return -1;
		}
	return 0;
}
