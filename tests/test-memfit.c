/*
 * test-memfit.c - memfit_swapoff on /proc and cgroup trees made here:
 * the device's use, MemAvailable, cgroup v1 (with and without memsw) and
 * v2 limits, nested cgroups, file pages, "no limit".
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "zsd.h"

#define MiB	(1ull << 20)
#define DEV	"/dev/loop7"

static char	top[PATH_MAX - 64];	/* room for the files' names */
static char	proc[PATH_MAX];
static char	cg[PATH_MAX];
static int	tree;		/* a new tree per case */

/* Write a file under the case's tree, making its directories. */
__attribute__((format(printf, 2, 3)))
static void
put(const char *rel, const char *fmt, ...)
{
	char path[PATH_MAX], *p;
	va_list ap;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%d/%s", top, tree, rel);
	for (p = path + strlen(top) + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			bail("mkdir %s: %s", path, strerror(errno));
		*p = '/';
	}
	if ((f = fopen(path, "w")) == NULL)
		bail("%s: %s", path, strerror(errno));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
}

/* A new tree: /proc with DEV using used_mib, MemAvailable avail_mib. */
static void
new_case(unsigned long long used_mib, unsigned long long avail_mib)
{
	tree++;
	snprintf(proc, sizeof(proc), "%s/%d/proc", top, tree);
	snprintf(cg, sizeof(cg), "%s/%d/cgroup", top, tree);
	put("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\t"
	    "Priority\n/dev/zram0                              partition\t"
	    "4194300\t\t4000000\t\t5\n%s                              "
	    "partition\t4194300\t\t%llu\t\t100\n", DEV, used_mib * 1024);
	put("proc/meminfo", "MemTotal:       16384000 kB\nMemFree:        "
	    "1000 kB\nMemAvailable:   %llu kB\nBuffers:  0 kB\n",
	    avail_mib * 1024);
	if (mkdir(cg, 0700) != 0)
		bail("mkdir %s: %s", cg, strerror(errno));
}

/* A v1 memory cgroup at rel under memory/; memsw_mib 0: no memsw files. */
static void
v1_group(const char *rel, unsigned long long limit_mib,
    unsigned long long usage_mib, unsigned long long swap_mib,
    int with_memsw, unsigned long long file_mib)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "cgroup/memory/%s/memory.limit_in_bytes",
	    rel);
	if (limit_mib == 0)
		put(path, "9223372036854771712\n");
	else
		put(path, "%llu\n", limit_mib * MiB);
	snprintf(path, sizeof(path), "cgroup/memory/%s/memory.usage_in_bytes",
	    rel);
	put(path, "%llu\n", usage_mib * MiB);
	snprintf(path, sizeof(path), "cgroup/memory/%s/memory.stat", rel);
	put(path, "cache 0\nrss %llu\ntotal_swap %llu\ntotal_active_file "
	    "%llu\ntotal_inactive_file %llu\n", usage_mib * MiB,
	    swap_mib * MiB, file_mib / 2 * MiB, (file_mib - file_mib / 2) *
	    MiB);
	if (with_memsw) {
		snprintf(path, sizeof(path),
		    "cgroup/memory/%s/memory.memsw.usage_in_bytes", rel);
		put(path, "%llu\n", (usage_mib + swap_mib) * MiB);
	}
}

static void
v2_group(const char *rel, unsigned long long max_mib,
    unsigned long long current_mib, unsigned long long swap_mib)
{
	char path[PATH_MAX];

	put("cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
	snprintf(path, sizeof(path), "cgroup/%s/memory.max", rel);
	if (max_mib == 0)
		put(path, "max\n");
	else
		put(path, "%llu\n", max_mib * MiB);
	snprintf(path, sizeof(path), "cgroup/%s/memory.current", rel);
	put(path, "%llu\n", current_mib * MiB);
	snprintf(path, sizeof(path), "cgroup/%s/memory.swap.current", rel);
	put(path, "%llu\n", swap_mib * MiB);
	snprintf(path, sizeof(path), "cgroup/%s/memory.stat", rel);
	put(path, "anon %llu\nfile 0\nactive_file 0\ninactive_file 0\n",
	    current_mib * MiB);
}

static int
check(const char *dev, char *why, size_t len)
{
	return memfit_swapoff(dev, proc, cg, why, len);
}

int
main(void)
{
	char why[512], cmd[PATH_MAX + 16];
	int r;

	tap_watchdog(60);
	snprintf(top, sizeof(top), "%s/test-memfit.XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(top) == NULL)
		bail("mkdtemp: %s", strerror(errno));

	new_case(100, 8192);
	r = check("/dev/loop99", why, sizeof(why));
	ok(r == -ENOENT, "a device not in /proc/swaps: -ENOENT (%d)", r);
	ok(check(DEV, why, sizeof(why)) == 1,
	    "100 MiB used, 8 GiB available, no memory cgroups: fits");

	new_case(0, 10);
	ok(check(DEV, why, sizeof(why)) == 1, "nothing used: fits");

	new_case(1024, 900);
	r = check(DEV, why, sizeof(why));
	ok(r == 0 && strstr(why, "1024 MiB swapped out to " DEV) != NULL &&
	    strstr(why, "900 MiB is available") != NULL,
	    "1 GiB used, 900 MiB available: refused: %s", why);
	/* The reserve: 2% of MemTotal (320 MiB here), at least 64 MiB. */
	new_case(1024, 1300);
	ok(check(DEV, why, sizeof(why)) == 0,
	    "1 GiB used, 1300 MiB available, 320 MiB reserve: refused");
	new_case(1024, 1400);
	ok(check(DEV, why, sizeof(why)) == 1,
	    "1 GiB used, 1400 MiB available: fits");

	new_case(256, 8192);
	v1_group("a", 64, 60, 240, 1, 0);
	r = check(DEV, why, sizeof(why));
	ok(r == 0 && strstr(why, "memory cgroup /a ") != NULL &&
	    strstr(why, "240 MiB in swap") != NULL,
	    "v1 (memsw): 240 MiB in swap, 60 of 64 MiB used: refused: %s",
	    why);

	new_case(100, 8192);
	v1_group("a", 256, 60, 240, 1, 0);
	ok(check(DEV, why, sizeof(why)) == 1, "v1: 240 MiB in swap but only "
	    "100 MiB on the device, 60 of 256 MiB used: fits");

	new_case(256, 8192);
	v1_group("a", 0, 60, 240, 1, 0);
	v1_group("b", 512, 60, 240, 1, 0);
	ok(check(DEV, why, sizeof(why)) == 1,
	    "v1: no limit, and a limit with room: fits");

	new_case(256, 8192);
	v1_group("a", 0, 60, 240, 1, 0);
	v1_group("a/b", 128, 60, 240, 0, 0);
	r = check(DEV, why, sizeof(why));
	ok(r == 0 && strstr(why, "memory cgroup /a/b ") != NULL,
	    "v1 without memsw (total_swap), nested: refused: %s", why);

	new_case(256, 8192);
	v1_group("a", 128, 120, 40, 1, 100);
	ok(check(DEV, why, sizeof(why)) == 1, "v1: 120 of 128 MiB used, 100 "
	    "of them file pages, 40 MiB in swap: fits");
	new_case(256, 8192);
	v1_group("a", 128, 120, 40, 1, 10);
	ok(check(DEV, why, sizeof(why)) == 0, "v1: 120 of 128 MiB used, 10 "
	    "of them file pages, 40 MiB in swap: refused");

	new_case(256, 8192);
	v2_group("x", 64, 60, 200);
	v2_group("y", 0, 60, 200);
	r = check(DEV, why, sizeof(why));
	ok(r == 0 && strstr(why, "memory cgroup /x ") != NULL,
	    "v2: 200 MiB in swap, 60 of 64 MiB used: refused: %s", why);
	new_case(256, 8192);
	v2_group("x", 1024, 60, 200);
	v2_group("y", 0, 60, 200);
	v2_group("y/z", 0, 60, 0);
	ok(check(DEV, why, sizeof(why)) == 1,
	    "v2: room under the limit, \"max\", nothing in swap: fits");

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd) != 0)
		diag("could not remove %s", top);
	return done_testing();
}
