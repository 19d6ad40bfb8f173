/*
 * cgroup.c - the memory cgroup the swap workers run in.
 *
 * v1 if the memory hierarchy is mounted on its own
 * (/sys/fs/cgroup/memory), else v2 if the unified hierarchy offers the
 * memory controller.  The cgroup is zsd-stress.PID under the root, made
 * with a memory limit and swap allowed, and removed at the end: whatever
 * is still in it is ours (our workers), and is killed first.
 */
#include <config.h>

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zsd-stress.h"

#define CG_V1_ROOT	"/sys/fs/cgroup/memory"
#define CG_V2_ROOT	"/sys/fs/cgroup"

static int
cg_write(const char *dir, const char *file, const char *value)
{
	char path[512];
	ssize_t n;
	int fd, error = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = write(fd, value, strlen(value));
	if (n < 0)
		error = -errno;
	else if ((size_t)n != strlen(value))
		error = -EIO;
	close(fd);
	return error;
}

static bool
cg_file_has(const char *path, const char *word)
{
	char buf[1024], *p, *save;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	for (p = strtok_r(buf, " \n", &save); p != NULL;
	    p = strtok_r(NULL, " \n", &save))
		if (strcmp(p, word) == 0)
			return true;
	return false;
}

int
cgroup_detect(struct cgroup *cg, char *why, size_t len)
{
	memset(cg, 0, sizeof(*cg));
	if (access(CG_V1_ROOT "/memory.limit_in_bytes", F_OK) == 0)
		cg->version = 1;
	else if (cg_file_has(CG_V2_ROOT "/cgroup.controllers", "memory"))
		cg->version = 2;
	else {
		snprintf(why, len, "no memory cgroup controller (neither %s "
		    "nor memory in %s/cgroup.controllers)", CG_V1_ROOT,
		    CG_V2_ROOT);
		return -1;
	}
	if (access(cg->version == 1 ? CG_V1_ROOT : CG_V2_ROOT, W_OK) != 0) {
		snprintf(why, len, "cannot create memory cgroups in %s "
		    "(run as root)", cg->version == 1 ? CG_V1_ROOT :
		    CG_V2_ROOT);
		return -1;
	}
	return 0;
}

int
cgroup_create(struct cgroup *cg, uint64_t limit, char *why, size_t len)
{
	const char *root = cg->version == 1 ? CG_V1_ROOT : CG_V2_ROOT;
	char path[256], v[32];
	int error;

	snprintf(path, sizeof(path), "%s/zsd-stress.%ld", root,
	    (long)getpid());
	if (cg->version == 2 && !cg_file_has(CG_V2_ROOT
	    "/cgroup.subtree_control", "memory") && (error = cg_write(
	    CG_V2_ROOT, "cgroup.subtree_control", "+memory")) != 0) {
		snprintf(why, len, "enabling the memory controller in %s: %s",
		    CG_V2_ROOT, strerror(-error));
		return -1;
	}
	if (mkdir(path, 0755) != 0) {
		snprintf(why, len, "mkdir %s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(cg->path, sizeof(cg->path), "%s", path);
	cg->limit = limit;
	snprintf(v, sizeof(v), "%llu", (unsigned long long)limit);
	if (cg->version == 1) {
		if ((error = cg_write(path, "memory.limit_in_bytes", v)) != 0) {
			snprintf(why, len, "%s/memory.limit_in_bytes: %s", path,
			    strerror(-error));
			goto fail;
		}
		/* Not inherited from the root on every kernel. */
		(void)cg_write(path, "memory.swappiness", "100");
	} else {
		if ((error = cg_write(path, "memory.max", v)) != 0) {
			snprintf(why, len, "%s/memory.max: %s", path,
			    strerror(-error));
			goto fail;
		}
		(void)cg_write(path, "memory.swap.max", "max");
	}
	return 0;
fail:
	cgroup_remove(cg);
	return -1;
}

int
cgroup_enter(const struct cgroup *cg)
{
	char pid[32];

	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	return cg_write(cg->path, "cgroup.procs", pid);
}

uint64_t
cgroup_oom_kills(const struct cgroup *cg)
{
	char path[300], key[64];
	unsigned long long v, kills = 0;
	FILE *f;

	if (cg->path[0] == '\0')
		return 0;
	snprintf(path, sizeof(path), "%s/%s", cg->path, cg->version == 1 ?
	    "memory.oom_control" : "memory.events");
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fscanf(f, "%63s %llu", key, &v) == 2)
		if (strcmp(key, "oom_kill") == 0) {
			kills = v;
			break;
		}
	fclose(f);
	return kills;
}

uint64_t
cgroup_swap_bytes(const struct cgroup *cg)
{
	char path[300], key[64];
	unsigned long long v, swap = 0;
	FILE *f;

	if (cg->path[0] == '\0')
		return 0;
	if (cg->version == 2) {
		snprintf(path, sizeof(path), "%s/memory.swap.current",
		    cg->path);
		if ((f = fopen(path, "re")) == NULL)
			return 0;
		if (fscanf(f, "%llu", &swap) != 1)
			swap = 0;
		fclose(f);
		return swap;
	}
	snprintf(path, sizeof(path), "%s/memory.stat", cg->path);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fscanf(f, "%63s %llu", key, &v) == 2)
		if (strcmp(key, "swap") == 0) {
			swap = v;
			break;
		}
	fclose(f);
	return swap;
}

int
cgroup_remove(struct cgroup *cg)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };
	char path[300];
	long pid;
	FILE *f;
	int tries;

	if (cg->path[0] == '\0')
		return 0;
	for (tries = 0; tries < 100; tries++) {
		if (rmdir(cg->path) == 0 || errno == ENOENT) {
			cg->path[0] = '\0';
			return 0;
		}
		/* Only our workers can be in it. */
		snprintf(path, sizeof(path), "%s/cgroup.procs", cg->path);
		if ((f = fopen(path, "re")) != NULL) {
			while (fscanf(f, "%ld", &pid) == 1)
				if (pid > 0)
					kill((pid_t)pid, SIGKILL);
			fclose(f);
		}
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "zsd-stress: cannot remove the cgroup %s: %s\n",
	    cg->path, strerror(errno));
	return -1;
}
