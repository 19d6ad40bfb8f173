/*
 * swap.c - turning the FUSE file into swap, and back.
 *
 * swapon(2) reads the swap header and swapoff(2) reads every swapped page
 * back, both through the loop device and so through our own FUSE file,
 * which the FUSE transport's threads serve meanwhile; the loop must not
 * wait for them either.  They run on a thread of their own, which tells
 * the loop when it is done (z->swap_done, an event of zsd.c's).
 *
 * Start: write the swap header straight into the store (no need to go
 * through FUSE for it), open the file with O_DIRECT, attach a free loop
 * device to it with direct I/O and a 4 KiB block size (LOOP_CONFIGURE),
 * then swapon with the configured priority and discard of freed pages, so
 * that the kernel punches freed slots out of the store.
 * Stop: unless forced, first check that the pages swapped out to the
 * device fit back into memory (memfit.c) and refuse if they do not; then
 * swapoff; then detach the loop device.  If the check refuses or swapoff
 * fails, the device stays attached and swap stays on.  A device that is
 * no longer swap (swapoff by hand) is detached without either.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/swap.h>
#include <unistd.h>

#include <event2/event.h>

#include "fs.h"
#include "zsd.h"

#ifndef SWAP_FLAG_DISCARD_PAGES
#define SWAP_FLAG_DISCARD_PAGES	0x40000	/* discard freed pages only */
#endif

/* The swap area header, as mkswap(8) writes it: version 1, 4 KiB pages. */
struct swap_header_v1 {
	char		bootbits[1024];
	uint32_t	version;
	uint32_t	last_page;
	uint32_t	nr_badpages;
	unsigned char	uuid[16];
	char		volume_name[16];
	uint32_t	padding[117];
	uint32_t	badpages[1];
};

void
swap_write_header(struct store *st, struct store_ctx *ctx, uint64_t nr_pages,
    int *errorp)
{
	static const char magic[] = "SWAPSPACE2";
	union {
		struct swap_header_v1	h;
		char			page[ZSD_PAGE_SIZE];
	} u;

	memset(&u, 0, sizeof(u));
	u.h.version = 1;
	u.h.last_page = (uint32_t)(nr_pages - 1);
	if (getrandom(u.h.uuid, sizeof(u.h.uuid), 0) !=
	    (ssize_t)sizeof(u.h.uuid))
		memset(u.h.uuid, 0x5a, sizeof(u.h.uuid));
	u.h.uuid[6] = (u.h.uuid[6] & 0x0f) | 0x40;	/* version 4 */
	u.h.uuid[8] = (u.h.uuid[8] & 0x3f) | 0x80;
	snprintf(u.h.volume_name, sizeof(u.h.volume_name), "zsd");
	memcpy(u.page + ZSD_PAGE_SIZE - (sizeof(magic) - 1), magic,
	    sizeof(magic) - 1);
	*errorp = store_write(st, ctx, 0, u.page, sizeof(u.page));
}

/* Attach a free loop device to fd; its name in dev, its fd returned. */
static int
swap_attach_loop(struct zsd *z, int fd, char *dev, size_t devlen)
{
	struct loop_config lc;
	int ctl, lfd, n, tries, error = 0;

	if ((ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC)) < 0) {
		log_warn("/dev/loop-control");
		return -errno;
	}
	for (tries = 0; tries < 16; tries++) {
		if ((n = ioctl(ctl, LOOP_CTL_GET_FREE)) < 0) {
			error = -errno;
			log_warn("no free loop device");
			break;
		}
		snprintf(dev, devlen, "/dev/loop%d", n);
		if ((lfd = open(dev, O_RDWR | O_CLOEXEC)) < 0) {
			error = -errno;
			log_warn("%s", dev);
			break;
		}
		memset(&lc, 0, sizeof(lc));
		lc.fd = (uint32_t)fd;
		lc.block_size = ZSD_PAGE_SIZE;
		lc.info.lo_flags = LO_FLAGS_DIRECT_IO;
		snprintf((char *)lc.info.lo_file_name,
		    sizeof(lc.info.lo_file_name), "%s", fs_file_path(z->fs));
		if (ioctl(lfd, LOOP_CONFIGURE, &lc) == 0) {
			close(ctl);
			return lfd;
		}
		error = -errno;
		close(lfd);
		if (error != -EBUSY) {	/* EBUSY: someone took it first */
			errno = -error;
			log_warn("attaching %s to %s", dev, fs_file_path(z->fs));
			break;
		}
	}
	close(ctl);
	return error != 0 ? error : -EBUSY;
}

static void
swap_detach_loop(struct zsd *z)
{
	if (z->loop_fd < 0)
		return;
	if (ioctl(z->loop_fd, LOOP_CLR_FD, 0) != 0)
		log_warn("detaching %s", z->loop_dev);
	close(z->loop_fd);
	z->loop_fd = -1;
}

static int
swap_flags(const struct zsd_config *cfg)
{
	int flags = 0;

	if (cfg->priority >= 0)
		flags |= SWAP_FLAG_PREFER | ((cfg->priority <<
		    SWAP_FLAG_PRIO_SHIFT) & SWAP_FLAG_PRIO_MASK);
	if (cfg->discard)
		flags |= SWAP_FLAG_DISCARD | SWAP_FLAG_DISCARD_PAGES;
	return flags;
}

static void *
swap_on_thread(void *arg)
{
	struct zsd *z = arg;
	struct store_ctx *ctx;
	int fd, lfd, error;

	(void)pthread_setname_np(pthread_self(), "zsd-swapon");
	sched_background();
	if ((ctx = store_ctx_create(z->store)) == NULL) {
		error = -ENOMEM;
		goto out;
	}
	swap_write_header(z->store, ctx, store_nr_pages(z->store), &error);
	store_ctx_destroy(ctx);
	if (error != 0) {
		errno = -error;
		log_warn("writing the swap header");
		goto out;
	}
	if ((fd = open(fs_file_path(z->fs), O_RDWR | O_DIRECT |
	    O_CLOEXEC)) < 0) {
		error = -errno;
		log_warn("%s", fs_file_path(z->fs));
		goto out;
	}
	lfd = swap_attach_loop(z, fd, z->loop_dev, sizeof(z->loop_dev));
	close(fd);		/* the loop device holds the file */
	if (lfd < 0) {
		error = lfd;
		goto out;
	}
	z->loop_fd = lfd;
	if (swapon(z->loop_dev, swap_flags(&z->cfg)) != 0) {
		error = -errno;
		log_warn("swapon %s", z->loop_dev);
		swap_detach_loop(z);
		goto out;
	}
	error = 0;
out:
	z->swap_error = error;
	event_active(z->swap_done, 0, 0);	/* on to the loop */
	return NULL;
}

/*
 * Would the swapped pages not fit back (memfit.c)?  Then say why and
 * refuse: a swapoff would have the kernel OOM-kill their owners.  If it
 * cannot tell, it says so and lets the swapoff go ahead.
 */
static bool
swap_refuse_stop(struct zsd *z)
{
	char *why = z->stop_why;
	int fits;

	fits = memfit_swapoff(z->loop_dev, "/proc", "/sys/fs/cgroup", why,
	    sizeof(z->stop_why));
#ifdef ZS_DEBUG
	/* For tests (debug builds only): refuse as if nothing would fit. */
	if (getenv("ZSD_FAULT_MEMFIT_REFUSE") != NULL) {
		snprintf(why, sizeof(z->stop_why), "ZSD_FAULT_MEMFIT_REFUSE "
		    "is set");
		fits = 0;
	}
#endif
	if (fits < 0) {
		errno = -fits;
		log_warn("cannot tell whether the pages on %s fit in memory; "
		    "swapoff anyway", z->loop_dev);
		return false;
	}
	if (fits)
		return false;
	log_warnx("not stopping: %s", why);
	return true;
}

/*
 * True if the loop device is no longer swap -- someone ran swapoff by
 * hand -- so that the stop goes on without one.  After our own swapoff
 * failed, only for EINVAL; errno is kept.
 */
static bool
swap_gone(struct zsd *z)
{
	uint64_t used;
	int saved = errno;

	if (memfit_swap_used("/proc", z->loop_dev, &used) == -ENOENT) {
		log_warnx("%s is no longer swap: turned off by someone else",
		    z->loop_dev);
		return true;
	}
	errno = saved;
	return false;
}

static void *
swap_off_thread(void *arg)
{
	struct zsd *z = arg;
	int error = 0;

	(void)pthread_setname_np(pthread_self(), "zsd-swapoff");
	sched_background();
	if (swap_gone(z)) {
		swap_detach_loop(z);
	} else if (!z->force_stop && swap_refuse_stop(z)) {
		error = -EAGAIN;
	} else if (swapoff(z->loop_dev) != 0 && (errno != EINVAL ||
	    !swap_gone(z))) {
		error = -errno;
		snprintf(z->stop_why, sizeof(z->stop_why), "swapoff %s: %m",
		    z->loop_dev);
		log_warn("swapoff %s (zsd keeps serving it)", z->loop_dev);
	} else {
		swap_detach_loop(z);
	}
	z->swap_error = error;
	event_active(z->swap_done, 0, 0);	/* on to the loop */
	return NULL;
}

/*
 * The thread blocks every signal: one delivered to it would interrupt
 * swapoff (EINTR) and leave swap on.  The loop thread takes them.
 */
static int
swap_spawn(struct zsd *z, void *(*fn)(void *))
{
	sigset_t all, old;
	pthread_t t;
	int error;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	error = pthread_create(&t, NULL, fn, z);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error != 0)
		return -error;
	pthread_detach(t);
	return 0;
}

/* Loop thread, SWAP_OFF -> SWAP_STARTING. */
int
swap_start(struct zsd *z)
{
	int error;

	z->loop_fd = -1;
	z->swap = SWAP_STARTING;
	if ((error = swap_spawn(z, swap_on_thread)) != 0)
		z->swap = SWAP_OFF;
	return error;
}

/* Loop thread, SWAP_ON -> SWAP_STOPPING. */
int
swap_stop(struct zsd *z)
{
	int error;

	z->swap = SWAP_STOPPING;
	if ((error = swap_spawn(z, swap_off_thread)) != 0)
		z->swap = SWAP_ON;
	return error;
}
