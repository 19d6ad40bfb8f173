/*
 * memfit.c - would the pages swapped out to our device fit back into RAM?
 *
 * swapoff(2) reads every page on the device back into memory.  When they
 * do not fit, the kernel does not fail at once: it reclaims, then
 * OOM-kills the owners of the pages (or, in a memory cgroup at its limit,
 * kills inside that cgroup), and fails only afterwards.  So before a stop
 * zsd asks here first, and refuses to swapoff when the answer is no.
 *
 * The answer is an estimate, on the safe side:
 *   - the whole system: the bytes in use on the device (the "Used" column
 *     of /proc/swaps) plus a reserve (MEMFIT_RESERVE_DIV of MemTotal, at
 *     least MEMFIT_RESERVE_MIN) must be at most MemAvailable;
 *   - each memory cgroup with a limit and pages in swap: its usage, less
 *     its file pages (which reclaim can drop), plus what may come back to
 *     it (its swap usage, at most what the device holds) must be at most
 *     its limit.  The kernel does not say on which device a cgroup's
 *     pages are, so all of its swap is counted as ours.
 * Memory the pool frees as the pages leave it is not counted, nor room on
 * other swap devices the kernel could move pages to.
 *
 * Cgroup v2 (memory.max, memory.current, memory.swap.current) and v1
 * (memory.limit_in_bytes, memory.usage_in_bytes, memory.memsw.* or
 * memory.stat's total_swap) are both read.  The roots are parameters so
 * that tests can point them at a tree of their own.
 *
 * Runs on the swap thread, never on an I/O thread: it reads a few files
 * per cgroup.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zsd.h"

#define MEMFIT_RESERVE_MIN	(64ull << 20)
#define MEMFIT_RESERVE_DIV	50		/* 2% of MemTotal */
#define MEMFIT_MAX_DEPTH	32
#define MIB(b)			((b) >> 20)

/* The walk's state: what the device holds, the first cgroup that fails. */
struct memfit_walk {
	uint64_t	 used;		/* bytes in use on the device */
	int		 v2;
	size_t		 root_len;	/* of the hierarchy's path */
	char		*why;
	size_t		 whylen;
	int		 refused;
};

/* The first line of dir/name as an unsigned number; "max" is UINT64_MAX. */
static int
memfit_read_u64(const char *dir, const char *name, uint64_t *out)
{
	char path[PATH_MAX], buf[64], *end;
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EINVAL;
	buf[n] = '\0';
	if (strncmp(buf, "max", 3) == 0) {
		*out = UINT64_MAX;
		return 0;
	}
	errno = 0;
	*out = strtoull(buf, &end, 10);
	if (errno != 0 || end == buf)
		return -EINVAL;
	return 0;
}

/*
 * Sum the values of the keys named in file path ("key value" lines), into
 * *sum.  The number of keys found.
 */
static int
memfit_sum_keys(const char *path, const char *const *keys, uint64_t *sum)
{
	char line[256], key[128];
	unsigned long long v;
	int found = 0, i;
	FILE *f;

	*sum = 0;
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%127s %llu", key, &v) != 2)
			continue;
		for (i = 0; keys[i] != NULL; i++) {
			if (strcmp(key, keys[i]) == 0) {
				*sum += v;
				found++;
			}
		}
	}
	fclose(f);
	return found;
}

/* Does the file at path hold word, space-separated? */
static int
memfit_has_word(const char *path, const char *word)
{
	char buf[1024], *tok, *save;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (tok = strtok_r(buf, " \n", &save); tok != NULL;
	    tok = strtok_r(NULL, " \n", &save))
		if (strcmp(tok, word) == 0)
			return 1;
	return 0;
}

int
memfit_swap_used(const char *proc, const char *dev, uint64_t *used)
{
	char path[PATH_MAX], line[512], name[PATH_MAX];
	unsigned long long size, kib;
	int error = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "%s/swaps", proc);
	if ((f = fopen(path, "re")) == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		/* Filename Type Size Used Priority; the header fails here. */
		if (sscanf(line, "%4095s %*s %llu %llu", name, &size, &kib) !=
		    3)
			continue;
		if (strcmp(name, dev) == 0) {
			*used = (uint64_t)kib << 10;
			error = 0;
			break;
		}
	}
	fclose(f);
	return error;
}

/* One cgroup: 1 if what may come back fits under its limit. */
static int
memfit_cgroup(struct memfit_walk *w, const char *dir)
{
	static const char *const file_v2[] = { "active_file",
	    "inactive_file", NULL };
	static const char *const file_v1[] = { "total_active_file",
	    "total_inactive_file", NULL };
	static const char *const swap_v1[] = { "total_swap", NULL };
	uint64_t limit, usage, swap, memsw, file, back, need;
	char path[PATH_MAX];
	const char *name;

	if (w->v2) {
		if (memfit_read_u64(dir, "memory.max", &limit) != 0 ||
		    memfit_read_u64(dir, "memory.current", &usage) != 0 ||
		    memfit_read_u64(dir, "memory.swap.current", &swap) != 0)
			return 1;
	} else {
		if (memfit_read_u64(dir, "memory.limit_in_bytes", &limit) !=
		    0 || memfit_read_u64(dir, "memory.usage_in_bytes",
		    &usage) != 0)
			return 1;
		if (memfit_read_u64(dir, "memory.memsw.usage_in_bytes",
		    &memsw) == 0)
			swap = memsw > usage ? memsw - usage : 0;
		else {
			snprintf(path, sizeof(path), "%s/memory.stat", dir);
			if (memfit_sum_keys(path, swap_v1, &swap) == 0)
				return 1;
		}
		/* v1 says "no limit" with PAGE_COUNTER_MAX pages in bytes. */
		if (limit >= (1ull << 62))
			limit = UINT64_MAX;
	}
	if (limit == UINT64_MAX || swap == 0)
		return 1;
	snprintf(path, sizeof(path), "%s/memory.stat", dir);
	memfit_sum_keys(path, w->v2 ? file_v2 : file_v1, &file);
	back = swap < w->used ? swap : w->used;
	need = (usage > file ? usage - file : 0) + back;
	if (need <= limit)
		return 1;
	name = dir + w->root_len;
	snprintf(w->why, w->whylen, "memory cgroup %s has %" PRIu64 " MiB in "
	    "swap and uses %" PRIu64 " MiB (%" PRIu64 " MiB of it file "
	    "pages) of its %" PRIu64 " MiB limit: what comes back would not "
	    "fit", *name != '\0' ? name : "/", MIB(swap), MIB(usage),
	    MIB(file), MIB(limit));
	return 0;
}

/* Depth first; stops at the first cgroup that does not fit. */
static void
memfit_walk_dir(struct memfit_walk *w, char *dir, int depth)
{
	size_t len = strlen(dir);
	struct dirent *de;
	struct stat sb;
	DIR *d;

	if (w->refused || depth > MEMFIT_MAX_DEPTH)
		return;
	if (depth > 0 && !memfit_cgroup(w, dir)) {
		w->refused = 1;
		return;
	}
	if ((d = opendir(dir)) == NULL)
		return;
	while (!w->refused && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || len + 1 + strlen(de->d_name) >=
		    PATH_MAX)
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		dir[len] = '/';
		strcpy(dir + len + 1, de->d_name);
		if (lstat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
			memfit_walk_dir(w, dir, depth + 1);
		dir[len] = '\0';
	}
	closedir(d);
}

int
memfit_swapoff(const char *dev, const char *proc, const char *cgroup,
    char *why, size_t whylen)
{
	static const char *const avail_keys[] = { "MemAvailable:", NULL };
	static const char *const total_keys[] = { "MemTotal:", NULL };
	struct memfit_walk w = { .why = why, .whylen = whylen };
	uint64_t avail, total, reserve;
	char path[PATH_MAX], dir[PATH_MAX];
	struct stat sb;
	int error;

	if (whylen > 0)
		why[0] = '\0';
	if ((error = memfit_swap_used(proc, dev, &w.used)) != 0)
		return error;
	if (w.used == 0)
		return 1;

	snprintf(path, sizeof(path), "%s/meminfo", proc);
	if (memfit_sum_keys(path, avail_keys, &avail) != 1 ||
	    memfit_sum_keys(path, total_keys, &total) != 1)
		return -ENODATA;
	avail <<= 10;
	total <<= 10;
	reserve = total / MEMFIT_RESERVE_DIV;
	if (reserve < MEMFIT_RESERVE_MIN)
		reserve = MEMFIT_RESERVE_MIN;
	if (w.used + reserve > avail) {
		snprintf(why, whylen, "%" PRIu64 " MiB swapped out to %s would "
		    "come back into RAM, and only %" PRIu64 " MiB is available "
		    "(%" PRIu64 " MiB kept in reserve)", MIB(w.used), dev,
		    MIB(avail), MIB(reserve));
		return 0;
	}

	/* v2 if the root lists the memory controller, else v1's memory/. */
	snprintf(path, sizeof(path), "%s/cgroup.controllers", cgroup);
	if (memfit_has_word(path, "memory")) {
		w.v2 = 1;
		snprintf(dir, sizeof(dir), "%s", cgroup);
	} else {
		snprintf(dir, sizeof(dir), "%s/memory", cgroup);
		if (stat(dir, &sb) != 0)
			return 1;	/* no memory cgroups: nothing more */
	}
	w.root_len = strlen(dir);
	memfit_walk_dir(&w, dir, 0);
	return w.refused ? 0 : 1;
}
