/*
 * spawn.c - a zsd of zsd-stress's own, and its orderly end.
 *
 * The zsd runs in the foreground on a private mountpoint and control
 * socket in a private directory, with a configuration file zsd-stress
 * writes (so that a reload can switch the codec), its stderr in a log
 * there.  It is put in a process group of its own, so that Ctrl-C on the
 * terminal reaches zsd-stress alone, which then stops things in order;
 * and it gets SIGTERM should zsd-stress die without doing so.
 *
 * The end undoes what that zsd made, and nothing else: SIGTERM (zsd
 * turns its swap off, detaches its loop device and unmounts), SIGKILL if
 * it does not stop in time, then whatever it left behind: swap on, loop
 * devices backed by the file in our directory, the mount.
 */
#include <config.h>

#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <linux/loop.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zsd-stress.h"

#define SPAWN_READY_TIMEOUT	60	/* seconds to "ready" */
#define SPAWN_STOP_TIMEOUT	120	/* seconds from SIGTERM to SIGKILL */

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* $ZSD, zsd beside us (installed, or in the build tree), else PATH. */
static void
find_zsd(char *out, size_t len)
{
	char self[PATH_MAX], *slash;
	const char *env = getenv("ZSD");
	ssize_t n;

	if (env != NULL && *env != '\0') {
		snprintf(out, len, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		if ((slash = strrchr(self, '/')) != NULL) {
			*slash = '\0';
			if ((size_t)snprintf(out, len, "%s/zsd", self) < len &&
			    access(out, X_OK) == 0)
				return;
			if ((size_t)snprintf(out, len, "%s/../daemon/zsd",
			    self) < len && access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, len, "zsd");
}

static int
write_config(const struct spawned *z)
{
	char tmp[320];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.new", z->conf);
	if ((f = fopen(tmp, "we")) == NULL)
		return -errno;
	fprintf(f, "# Written by zsd-stress for the zsd it runs; removed at "
	    "its end.\n"
	    "disksize = %llu\n"
	    "algorithm = %s\n"
	    "priority = %d\n"
	    "mountpoint = %s\n"
	    "control = %s\n",
	    (unsigned long long)z->disksize, z->algorithm, z->priority,
	    z->mnt, z->control);
	if (fclose(f) == EOF || rename(tmp, z->conf) != 0) {
		unlink(tmp);
		return -errno;
	}
	return 0;
}

/* Does the log say "ready:"? */
static bool
log_says_ready(const struct spawned *z)
{
	char line[1024];
	bool ready = false;
	FILE *f;

	if ((f = fopen(z->log, "re")) == NULL)
		return false;
	while (!ready && fgets(line, sizeof(line), f) != NULL)
		ready = strstr(line, " ready: ") != NULL;
	fclose(f);
	return ready;
}

void
spawn_log_tail(const struct spawned *z, FILE *out, int lines)
{
	char (*ring)[256];
	int n = 0, i;
	FILE *f;

	if (z->log[0] == '\0' || (f = fopen(z->log, "re")) == NULL)
		return;
	if ((ring = calloc((size_t)lines, sizeof(*ring))) == NULL) {
		fclose(f);
		return;
	}
	while (fgets(ring[n % lines], sizeof(ring[0]), f) != NULL)
		n++;
	fclose(f);
	fprintf(out, "zsd-stress: the last lines of zsd's log:\n");
	for (i = n > lines ? n - lines : 0; i < n; i++)
		fprintf(out, "  %s%s", ring[i % lines],
		    strchr(ring[i % lines], '\n') ? "" : "\n");
	free(ring);
}

int
spawn_start(struct spawned *z, const struct options *o, bool swapon,
    uint64_t disksize, char *err, size_t errlen)
{
	char tmpl[256], dir[PATH_MAX], zsd[PATH_MAX];
	const char *tmp = getenv("TMPDIR");
	int fd, error, status, tenths;
	pid_t pid;

	memset(z, 0, sizeof(*z));
	z->pid = -1;
	snprintf(tmpl, sizeof(tmpl), "%s/zsd-stress.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (mkdtemp(tmpl) == NULL) {
		snprintf(err, errlen, "mkdtemp %s: %s", tmpl, strerror(errno));
		return -1;
	}
	/* The kernel names loop backing files by their physical path. */
	if (realpath(tmpl, dir) == NULL || strlen(dir) > 200) {
		snprintf(err, errlen, "%s: %s", tmpl, strerror(errno));
		rmdir(tmpl);
		return -1;
	}
	snprintf(z->dir, sizeof(z->dir), "%s", dir);
	snprintf(z->mnt, sizeof(z->mnt), "%s/mnt", dir);
	snprintf(z->control, sizeof(z->control), "%s/control", dir);
	snprintf(z->conf, sizeof(z->conf), "%s/zsd.conf", dir);
	snprintf(z->log, sizeof(z->log), "%s/zsd.log", dir);
	snprintf(z->file, sizeof(z->file), "%s/swap0", z->mnt);
	snprintf(z->algorithm, sizeof(z->algorithm), "%s", o->algorithm);
	z->swapon = swapon;
	z->disksize = disksize;
	z->priority = o->priority;
	if (mkdir(z->mnt, 0700) != 0 || (error = write_config(z)) != 0) {
		snprintf(err, errlen, "%s: %s", z->dir, strerror(errno));
		spawn_stop(z, false);
		return -1;
	}
	find_zsd(zsd, sizeof(zsd));
	if ((fd = open(z->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) < 0) {
		snprintf(err, errlen, "%s: %s", z->log, strerror(errno));
		spawn_stop(z, false);
		return -1;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(fd);
		spawn_stop(z, false);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		if (null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 ||
		    dup2(fd, 2) < 0)
			_exit(126);
		execlp(zsd, zsd, "-f", "-c", z->conf, swapon ? "--swapon" :
		    "--no-swapon", (char *)NULL);
		dprintf(2, "zsd-stress: cannot run %s: %s\n", zsd,
		    strerror(errno));
		_exit(127);
	}
	close(fd);
	z->pid = pid;
	for (tenths = 0; !log_says_ready(z); tenths++) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			z->pid = -1;
			z->exit_status = status;
			snprintf(err, errlen, "%s did not start (%s %d); see its "
			    "log above", zsd, WIFEXITED(status) ? "exit status"
			    : "signal", WIFEXITED(status) ? WEXITSTATUS(status)
			    : WTERMSIG(status));
			spawn_log_tail(z, stderr, 20);
			spawn_stop(z, false);
			return -1;
		}
		if (tenths >= SPAWN_READY_TIMEOUT * 10) {
			snprintf(err, errlen, "%s not ready after %d s", zsd,
			    SPAWN_READY_TIMEOUT);
			spawn_stop(z, true);
			return -1;
		}
		sleep_ms(100);
	}
	return 0;
}

int
spawn_reload(struct spawned *z, const char *algorithm)
{
	int error;

	snprintf(z->algorithm, sizeof(z->algorithm), "%s", algorithm);
	if ((error = write_config(z)) != 0)
		return error;
	if (z->pid <= 0 || kill(z->pid, SIGHUP) != 0)
		return -ESRCH;
	return 0;
}

bool
spawn_alive(struct spawned *z)
{
	int status;

	if (z->pid <= 0)
		return false;
	if (waitpid(z->pid, &status, WNOHANG) == z->pid) {
		z->pid = -1;
		z->exit_status = status;
		return false;
	}
	return true;
}

/* Is path a mountpoint, from the mount table alone (no stat on FUSE)? */
static bool
is_mounted(const char *path)
{
	char line[4096], mnt[4096];
	bool found = false;
	FILE *f;

	if ((f = fopen("/proc/self/mountinfo", "re")) == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1)
			found = strcmp(mnt, path) == 0;
	fclose(f);
	return found;
}

/* Is dev active swap? */
static bool
is_swap(const char *dev)
{
	char line[512], name[256];
	bool found = false;
	FILE *f;

	if ((f = fopen("/proc/swaps", "re")) == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%255s", name) == 1)
			found = strcmp(name, dev) == 0;
	fclose(f);
	return found;
}

int
swaps_at_or_above(int prio, const char *dev, char *buf, size_t len)
{
	char line[512], name[256];
	size_t off = 0;
	int p, n = 0;
	FILE *f;

	buf[0] = '\0';
	if ((f = fopen("/proc/swaps", "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%255s %*s %*s %*s %d", name, &p) != 2 ||
		    p < prio || (dev != NULL && strcmp(name, dev) == 0))
			continue;
		if (off < len)
			off += (size_t)snprintf(buf + off, len - off, "%s%s "
			    "(priority %d)", n ? ", " : "", name, p);
		n++;
	}
	fclose(f);
	return n;
}

/* Loop devices whose backing file is in our directory: swapoff, detach. */
static void
undo_loops(const struct spawned *z)
{
	char file[PATH_MAX], dev[64];
	glob_t g;
	size_t i, n;
	FILE *f;
	int fd;

	if (glob("/sys/block/loop*/loop/backing_file", 0, NULL, &g) != 0)
		return;
	for (i = 0; i < g.gl_pathc; i++) {
		if ((f = fopen(g.gl_pathv[i], "re")) == NULL)
			continue;
		if (fgets(file, sizeof(file), f) == NULL)
			file[0] = '\0';
		fclose(f);
		n = strlen(z->dir);
		if (strncmp(file, z->dir, n) != 0 || file[n] != '/')
			continue;
		snprintf(dev, sizeof(dev), "/dev/%.*s",
		    (int)strcspn(g.gl_pathv[i] + 11, "/"),
		    g.gl_pathv[i] + 11);
		if (is_swap(dev) && swapoff(dev) != 0)
			fprintf(stderr, "zsd-stress: swapoff %s: %s\n", dev,
			    strerror(errno));
		if ((fd = open(dev, O_RDONLY | O_CLOEXEC)) >= 0) {
			if (ioctl(fd, LOOP_CLR_FD, 0) != 0)
				fprintf(stderr, "zsd-stress: detaching %s: "
				    "%s\n", dev, strerror(errno));
			close(fd);
		}
	}
	globfree(&g);
}

void
spawn_stop(struct spawned *z, bool show_log)
{
	char path[320];
	int status, tenths;

	if (z->pid > 0) {
		kill(z->pid, SIGTERM);
		for (tenths = 0; tenths < SPAWN_STOP_TIMEOUT * 10; tenths++) {
			if (waitpid(z->pid, &status, WNOHANG) == z->pid)
				break;
			sleep_ms(100);
		}
		if (tenths == SPAWN_STOP_TIMEOUT * 10) {
			fprintf(stderr, "zsd-stress: zsd %ld did not stop in "
			    "%d s; killing it\n", (long)z->pid,
			    SPAWN_STOP_TIMEOUT);
			kill(z->pid, SIGKILL);
			waitpid(z->pid, &status, 0);
		}
		z->pid = -1;
		z->exit_status = status;
	}
	if (z->dir[0] == '\0')
		return;
	if (show_log)
		spawn_log_tail(z, stderr, 20);
	undo_loops(z);
	if (is_mounted(z->mnt) && umount2(z->mnt, MNT_DETACH) != 0)
		fprintf(stderr, "zsd-stress: cannot unmount %s: %s\n", z->mnt,
		    strerror(errno));
	if (is_mounted(z->mnt)) {
		fprintf(stderr, "zsd-stress: %s left: still mounted\n",
		    z->dir);
		return;
	}
	rmdir(z->mnt);
	unlink(z->conf);
	unlink(z->log);
	unlink(z->control);
	snprintf(path, sizeof(path), "%s.new", z->conf);
	unlink(path);
	if (rmdir(z->dir) != 0)
		fprintf(stderr, "zsd-stress: cannot remove %s: %s\n", z->dir,
		    strerror(errno));
	z->dir[0] = '\0';
}
