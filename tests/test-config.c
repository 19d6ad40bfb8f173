/*
 * test-config.c - the configuration table: defaults, sizes, every key's
 * values and ranges, the file format and its errors, live reloads, and
 * config_print read back.
 */
#include <config.h>

#include <sys/stat.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zsd.h"
#include "tap.h"

#define KiB	(1ull << 10)
#define MiB	(1ull << 20)
#define GiB	(1ull << 30)
#define TiB	(1ull << 40)

static char	 tmpdir[PATH_MAX - 64];	/* room for file names */
static char	 err[PATH_MAX + 512];
static uint64_t	 ram;

static bool
config_same(const struct zsd_config *a, const struct zsd_config *b)
{
	return a->disksize == b->disksize && a->algorithm == b->algorithm &&
	    a->zstd_level == b->zstd_level && a->priority == b->priority &&
	    a->mem_limit == b->mem_limit && a->merge == b->merge &&
	    a->workers == b->workers &&
	    strcmp(a->mountpoint, b->mountpoint) == 0 &&
	    strcmp(a->name, b->name) == 0 && a->swapon == b->swapon &&
	    a->discard == b->discard && a->foreground == b->foreground &&
	    a->verbose == b->verbose &&
	    strcmp(a->control, b->control) == 0 &&
	    strcmp(a->control_group, b->control_group) == 0 &&
	    a->control_timeout == b->control_timeout &&
	    a->compact_threshold == b->compact_threshold &&
	    a->compact_interval == b->compact_interval &&
	    a->recompress_level == b->recompress_level &&
	    a->recompress_after == b->recompress_after &&
	    a->recompress_threshold == b->recompress_threshold &&
	    strcmp(a->backing_file, b->backing_file) == 0 &&
	    a->backing_size == b->backing_size &&
	    a->writeback_after == b->writeback_after &&
	    a->writeback_limit == b->writeback_limit &&
	    a->idle_interval == b->idle_interval &&
	    a->idle_batch == b->idle_batch &&
	    a->idle_cpu_pressure == b->idle_cpu_pressure &&
	    a->idle_io_pressure == b->idle_io_pressure;
}

/* Write text to a file in tmpdir; its path in path. */
static void
write_file(char *path, size_t len, const char *name, const char *text)
{
	FILE *f;

	snprintf(path, len, "%s/%s", tmpdir, name);
	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) == EOF)
		bail("cannot write %s: %s", path, strerror(errno));
}

/* Write len bytes, NUL bytes and all, to a file in tmpdir. */
static void
write_bytes(char *path, size_t len, const char *name, const char *bytes,
    size_t n)
{
	FILE *f;

	snprintf(path, len, "%s/%s", tmpdir, name);
	if ((f = fopen(path, "w")) == NULL || fwrite(bytes, 1, n, f) != n ||
	    fclose(f) == EOF)
		bail("cannot write %s: %s", path, strerror(errno));
}

static int
set(struct zsd_config *cfg, const char *key, const char *value)
{
	err[0] = '\0';
	return config_set(cfg, key, value, false, err, sizeof(err));
}

static void
test_defaults(void)
{
	struct zsd_config cfg;
	uint64_t want;

	config_init(&cfg);
	want = ram / 2 < 4 * GiB ? ram / 2 : 4 * GiB;
	want &= ~(uint64_t)4095;
	ok(cfg.disksize == want, "default disksize %" PRIu64 " is "
	    "min(RAM/2, 4G) = %" PRIu64, cfg.disksize, want);
	ok(cfg.disksize % 4096 == 0 && cfg.disksize >= MiB,
	    "default disksize is page aligned and at least 1M");
	ok(cfg.algorithm == CODEC_LZ4, "default algorithm lz4");
	ok(cfg.zstd_level == 3, "default zstd_level 3");
	ok(cfg.priority == 100, "default priority 100");
	ok(cfg.mem_limit == 0, "default mem_limit none");
	ok(cfg.merge, "default merge yes");
	ok(cfg.workers == 0, "default workers 0");
	ok(strcmp(cfg.mountpoint, "/run/zsd/mnt") == 0,
	    "default mountpoint /run/zsd/mnt");
	ok(strcmp(cfg.name, "swap0") == 0, "default name swap0");
	ok(cfg.swapon, "default swapon yes");
	ok(cfg.discard, "default discard yes");
	ok(cfg.verbose == 0, "default verbose 0");
	ok(strcmp(cfg.control, "/run/zsd/control") == 0,
	    "default control /run/zsd/control");
	ok(strcmp(cfg.control_group, "root") == 0,
	    "default control_group root");
	ok(cfg.control_timeout == 10, "default control_timeout 10");
	ok(cfg.compact_threshold == 10, "default compact_threshold 10");
	ok(cfg.compact_interval == 60, "default compact_interval 60");
	ok(!cfg.foreground, "not in the foreground by default");
	ok(cfg.path[0] == '\0', "no config file read yet");
}

static void	roundtrip(const struct zsd_config *cfg, const char *what);

/* The idle pages' keys: times, a path that may be none, their defaults. */
static void
test_idle_keys(void)
{
	static const struct {
		const char	*s;
		int		 want;
	} times[] = {
		{ "90", 90 }, { "90s", 90 }, { "90S", 90 }, { "10m", 600 },
		{ "2h", 7200 }, { "1d", 86400 }, { "365d", 365 * 86400 },
		{ "off", 0 }, { "none", 0 }, { "0", 0 }, { "OFF", 0 },
	};
	static const char *const bad_times[] = {
		"", "-1", "1w", "10 m", "m", "1.5h", "366d", "2147483648s",
		"99999999999d", "10mm", "yes",
	};
	struct zsd_config cfg;
	size_t i;

	config_init(&cfg);
	ok(cfg.recompress_level == 9 && cfg.recompress_after == 300 &&
	    cfg.recompress_threshold == 0 && cfg.backing_file[0] == '\0' &&
	    cfg.backing_size == 0 && cfg.writeback_after == 600 &&
	    cfg.writeback_limit == 0 && cfg.idle_interval == 60 &&
	    cfg.idle_batch == 16384 && cfg.idle_cpu_pressure == 20 &&
	    cfg.idle_io_pressure == 10, "the idle keys' defaults");
	for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		cfg.recompress_after = -1;
		ok(set(&cfg, "recompress_after", times[i].s) == 0 &&
		    cfg.recompress_after == times[i].want,
		    "recompress_after '%s' is %d s", times[i].s,
		    times[i].want);
	}
	for (i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++)
		ok(set(&cfg, "writeback_after", bad_times[i]) == -1 &&
		    strstr(err, "writeback_after") != NULL,
		    "writeback_after '%s' is refused: %s", bad_times[i], err);
	ok(set(&cfg, "idle_interval", "off") == -1 &&
	    set(&cfg, "idle_interval", "0") == -1,
	    "idle_interval cannot be off: %s", err);
	ok(set(&cfg, "backing_file", "/var/lib/zsd/backing") == 0 &&
	    strcmp(cfg.backing_file, "/var/lib/zsd/backing") == 0,
	    "backing_file takes an absolute path");
	ok(set(&cfg, "backing_file", "backing") == -1 &&
	    strstr(err, "absolute") != NULL, "not a relative one: %s", err);
	ok(set(&cfg, "backing_file", "none") == 0 &&
	    cfg.backing_file[0] == '\0', "backing_file none: no file");
	ok(set(&cfg, "recompress_level", "20") == -1 &&
	    set(&cfg, "recompress_threshold", "4097") == -1,
	    "recompress_level and _threshold have ranges");
	ok(config_set(&cfg, "backing_file", "/x", true, err,
	    sizeof(err)) == -1 && config_set(&cfg, "writeback_limit", "1G",
	    true, err, sizeof(err)) == 0 && cfg.writeback_limit == GiB,
	    "backing_file needs a restart, writeback_limit does not");
	cfg.recompress_after = 90;
	cfg.writeback_after = 7200;
	cfg.idle_interval = 86400;
	roundtrip(&cfg, "times in seconds, hours and days");
	cfg.recompress_after = 0;
	snprintf(cfg.backing_file, sizeof(cfg.backing_file), "/b");
	cfg.backing_size = 3 * GiB;
	roundtrip(&cfg, "off and a backing file");
}

static void
test_parse_size(void)
{
	static const struct {
		const char	*s;
		uint64_t	 want;
	} good[] = {
		{ "0", 0 }, { "4096", 4096 }, { "64K", 64 * KiB },
		{ "64k", 64 * KiB }, { "64KiB", 64 * KiB },
		{ "64kib", 64 * KiB }, { "64KB", 64 * KiB },
		{ "64kb", 64 * KiB }, { "512M", 512 * MiB },
		{ "512MiB", 512 * MiB }, { "4G", 4 * GiB },
		{ "4g", 4 * GiB }, { "2GiB", 2 * GiB }, { "2GB", 2 * GiB },
		{ "1T", TiB }, { "1t", TiB }, { "1TiB", TiB },
		{ "100B", 100 }, { "100b", 100 }, { "007", 7 },
		{ "16777215T", 16777215 * TiB },
		{ "18446744073709551615", UINT64_MAX },
	};
	static const char *const invalid[] = {
		"", "12Q", "-1", "+1", " 4G", "4G ", "4 G", "K", "G4",
		"1.5G", "4iB", "4GiBB", "4GBB", "4KK", "4Gi", "50%", "%",
		"0x10", "4P",
	};
	static const char *const toobig[] = {
		"99999999999T", "18446744073709551616", "16777216T",
		"17179869184G", "99999999999999999999999",
	};
	uint64_t v;
	size_t i;
	int r;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 1;
		r = config_parse_size(good[i].s, 0, &v);
		ok(r == 0 && v == good[i].want, "size '%s' is %" PRIu64
		    " (got %d, %" PRIu64 ")", good[i].s, good[i].want, r, v);
	}
	for (i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		v = 12345;
		errno = 0;
		r = config_parse_size(invalid[i], 0, &v);
		ok(r == -1 && errno == EINVAL && v == 12345,
		    "size '%s' is invalid (EINVAL, output untouched)",
		    invalid[i]);
	}
	for (i = 0; i < sizeof(toobig) / sizeof(toobig[0]); i++) {
		errno = 0;
		r = config_parse_size(toobig[i], 0, &v);
		ok(r == -1 && errno == ERANGE, "size '%s' overflows (ERANGE)",
		    toobig[i]);
	}

	/* Percentages, of what the caller says. */
	ok(config_parse_size("25%", 1000, &v) == 0 && v == 250,
	    "25%% of 1000 is 250");
	ok(config_parse_size("100%", 8 * GiB, &v) == 0 && v == 8 * GiB,
	    "100%% of 8G is 8G");
	ok(config_parse_size("150%", 8 * GiB, &v) == 0 && v == 12 * GiB,
	    "150%% of 8G is 12G");
	ok(config_parse_size("0%", 8 * GiB, &v) == 0 && v == 0,
	    "0%% is 0");
	ok(config_parse_size("33%", 100, &v) == 0 && v == 33,
	    "33%% of 100 is 33");
	errno = 0;
	ok(config_parse_size("50%", 0, &v) == -1 && errno == EINVAL,
	    "no percent without something to take it of");
	ok(config_parse_size("%", 100, &v) == -1, "'%%' alone is invalid");
	ok(config_parse_size("25%x", 100, &v) == -1, "'25%%x' is invalid");
	ok(config_parse_size("25.5%", 100, &v) == -1,
	    "'25.5%%' is invalid");
	ok(config_parse_size("-5%", 100, &v) == -1, "'-5%%' is invalid");
	ok(config_parse_size("25 %", 100, &v) == -1, "'25 %%' is invalid");
	errno = 0;
	ok(config_parse_size("99999999999999%", 64 * TiB, &v) == -1 &&
	    errno == ERANGE, "a percentage that overflows is ERANGE");
}

static void
test_disksize(void)
{
	struct zsd_config cfg, before;

	config_init(&cfg);
	ok(set(&cfg, "disksize", "512M") == 0 && cfg.disksize == 512 * MiB,
	    "disksize 512M");
	ok(set(&cfg, "disksize", "1T") == 0 && cfg.disksize == TiB,
	    "disksize 1T");
	ok(set(&cfg, "disksize", "64KiB") == -1,
	    "disksize 64KiB is below 1M: %s", err);
	ok(set(&cfg, "disksize", "1M") == 0 && cfg.disksize == MiB,
	    "disksize 1M, the least");
	ok(set(&cfg, "disksize", "1048577") == 0 && cfg.disksize == MiB,
	    "disksize 1048577 is rounded down to 1M");
	ok(set(&cfg, "disksize", "5000000") == 0 &&
	    cfg.disksize == 5000000 / 4096 * 4096,
	    "disksize 5000000 is rounded down to a page");
	ok(set(&cfg, "disksize", "25%") == 0 &&
	    cfg.disksize == (ram * 25 / 100 & ~(uint64_t)4095),
	    "disksize 25%% is a quarter of RAM, page aligned");
	ok(set(&cfg, "disksize", "100%") == 0 &&
	    cfg.disksize == (ram & ~(uint64_t)4095), "disksize 100%%");
	ok(set(&cfg, "disksize", "400%") == 0 &&
	    cfg.disksize == (ram * 4 & ~(uint64_t)4095),
	    "disksize 400%%, the most");

	config_init(&cfg);
	before = cfg;
	ok(set(&cfg, "disksize", "1048575") == -1 &&
	    strcmp(err, "bad value '1048575' for key 'disksize': must be at "
	    "least 1M") == 0, "disksize just under 1M: %s", err);
	ok(set(&cfg, "disksize", "0") == -1, "disksize 0: %s", err);
	ok(set(&cfg, "disksize", "0%") == -1, "disksize 0%%: %s", err);
	ok(set(&cfg, "disksize", "") == -1 &&
	    strcmp(err, "bad value '' for key 'disksize': expected a size "
	    "like 512M or 25%") == 0, "disksize '': %s", err);
	ok(set(&cfg, "disksize", "12Q") == -1 &&
	    strcmp(err, "bad value '12Q' for key 'disksize': expected a "
	    "size like 512M or 25%") == 0, "disksize 12Q: %s", err);
	ok(set(&cfg, "disksize", "-1") == -1 && strstr(err, "'-1'") != NULL,
	    "disksize -1: %s", err);
	ok(set(&cfg, "disksize", "99999999999T") == -1 &&
	    strcmp(err, "bad value '99999999999T' for key 'disksize': "
	    "too large") == 0, "disksize 99999999999T: %s", err);
	ok(set(&cfg, "disksize", "8388608T") == -1 &&
	    strstr(err, "too large") != NULL,
	    "disksize 2^63, past an off_t: %s", err);
	ok(set(&cfg, "disksize", "none") == -1, "disksize none: %s", err);
	ok(set(&cfg, "disksize", "401%") == -1 &&
	    strcmp(err, "bad value '401%' for key 'disksize': more than "
	    "400% of RAM") == 0, "disksize 401%%: %s", err);
	ok(set(&cfg, "disksize", "1000%") == -1 &&
	    strstr(err, "more than 400% of RAM") != NULL,
	    "disksize 1000%%: %s", err);
	ok(set(&cfg, "disksize", "99999999999999999999999%") == -1 &&
	    strstr(err, "more than 400% of RAM") != NULL,
	    "disksize 99999999999999999999999%%: %s", err);
	ok(config_same(&cfg, &before), "bad values left the config alone");
}

static void
test_mem_limit(void)
{
	struct zsd_config cfg;

	config_init(&cfg);
	ok(set(&cfg, "mem_limit", "2G") == 0 && cfg.mem_limit == 2 * GiB,
	    "mem_limit 2G");
	ok(set(&cfg, "mem_limit", "none") == 0 && cfg.mem_limit == 0,
	    "mem_limit none");
	cfg.mem_limit = 1;
	ok(set(&cfg, "mem_limit", "NONE") == 0 && cfg.mem_limit == 0,
	    "mem_limit NONE");
	cfg.mem_limit = 1;
	ok(set(&cfg, "mem_limit", "0") == 0 && cfg.mem_limit == 0,
	    "mem_limit 0");
	ok(set(&cfg, "mem_limit", "25%") == 0 &&
	    cfg.mem_limit == ram * 25 / 100, "mem_limit 25%% of RAM");
	ok(set(&cfg, "mem_limit", "100K") == 0 && cfg.mem_limit == 100 * KiB,
	    "mem_limit 100K");
	ok(set(&cfg, "mem_limit", "lots") == -1 &&
	    strcmp(err, "bad value 'lots' for key 'mem_limit': expected a "
	    "size like 512M, 25% or none") == 0, "mem_limit lots: %s", err);
	ok(set(&cfg, "mem_limit", "-1") == -1 && cfg.mem_limit == 100 * KiB,
	    "mem_limit -1 refused, old value kept: %s", err);
	ok(set(&cfg, "mem_limit", "100%") == 0 && cfg.mem_limit == ram,
	    "mem_limit 100%%");
	ok(set(&cfg, "mem_limit", "101%") == -1 && cfg.mem_limit == ram &&
	    strcmp(err, "bad value '101%' for key 'mem_limit': more than "
	    "100% of RAM") == 0, "mem_limit 101%%: %s", err);
}

static void
test_ints(void)
{
	static const struct {
		const char	*key;
		long		 min, max;
	} ints[] = {
		{ "zstd_level", 1, 19 },
		{ "priority", -1, 32767 },
		{ "workers", 0, 256 },
		{ "verbose", 0, 3 },
		{ "control_timeout", 1, 3600 },
		{ "compact_threshold", 0, 100 },
		{ "compact_interval", 1, 86400 },
	};
	static const char *const junk[] = {
		"", "x", "3x", "+3", " 3", "3 ", "0x3", "1e1", "--1",
		"99999999999999999999",
	};
	struct zsd_config cfg;
	char v[32], want[128];
	size_t i, j;

	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		config_init(&cfg);
		snprintf(v, sizeof(v), "%ld", ints[i].min);
		ok(set(&cfg, ints[i].key, v) == 0, "%s %s", ints[i].key, v);
		snprintf(v, sizeof(v), "%ld", ints[i].max);
		ok(set(&cfg, ints[i].key, v) == 0, "%s %s", ints[i].key, v);
		snprintf(v, sizeof(v), "%ld", ints[i].min - 1);
		ok(set(&cfg, ints[i].key, v) == -1 &&
		    strstr(err, ints[i].key) != NULL, "%s %s: %s",
		    ints[i].key, v, err);
		snprintf(v, sizeof(v), "%ld", ints[i].max + 1);
		ok(set(&cfg, ints[i].key, v) == -1, "%s %s: %s",
		    ints[i].key, v, err);
		for (j = 0; j < sizeof(junk) / sizeof(junk[0]); j++)
			ok(set(&cfg, ints[i].key, junk[j]) == -1,
			    "%s '%s': %s", ints[i].key, junk[j], err);
	}

	config_init(&cfg);
	ok(set(&cfg, "zstd_level", "19") == 0 && cfg.zstd_level == 19,
	    "zstd_level 19 stored");
	ok(set(&cfg, "zstd_level", "20") == -1 &&
	    strcmp(err, "bad value '20' for key 'zstd_level': expected an "
	    "integer from 1 to 19") == 0 && cfg.zstd_level == 19,
	    "zstd_level 20: %s", err);
	ok(set(&cfg, "priority", "-1") == 0 && cfg.priority == -1,
	    "priority -1 stored");
	ok(set(&cfg, "priority", "32767") == 0 && cfg.priority == 32767,
	    "priority 32767 stored");
	ok(set(&cfg, "workers", "256") == 0 && cfg.workers == 256,
	    "workers 256 stored");
	ok(set(&cfg, "workers", "-1") == -1 && cfg.workers == 256,
	    "workers -1 refused");
	ok(set(&cfg, "verbose", "yes") == 0 && cfg.verbose == 1,
	    "verbose yes is 1");
	ok(set(&cfg, "verbose", "no") == 0 && cfg.verbose == 0,
	    "verbose no is 0");
	ok(set(&cfg, "verbose", "2") == 0 && cfg.verbose == 2,
	    "verbose 2");
	snprintf(want, sizeof(want), "bad value 'maybe' for key 'verbose': "
	    "expected an integer from 0 to 3, yes or no");
	ok(set(&cfg, "verbose", "maybe") == -1 && strcmp(err, want) == 0,
	    "verbose maybe: %s", err);
	ok(set(&cfg, "priority", "yes") == -1,
	    "only verbose takes yes for 1: %s", err);
}

static void
test_bools(void)
{
	static const char *const keys[] = { "swapon", "discard" };
	static const char *const yes[] = { "yes", "true", "on", "1", "YES",
	    "True", "On" };
	static const char *const no[] = { "no", "false", "off", "0", "NO",
	    "False", "OFF" };
	static const char *const junk[] = { "", "maybe", "2", "y", "n",
	    "yes ", "-1" };
	struct zsd_config cfg;
	bool *field;
	size_t i, j;

	config_init(&cfg);
	for (i = 0; i < 2; i++) {
		field = i == 0 ? &cfg.swapon : &cfg.discard;
		for (j = 0; j < sizeof(no) / sizeof(no[0]); j++) {
			*field = true;
			ok(set(&cfg, keys[i], no[j]) == 0 && !*field,
			    "%s %s", keys[i], no[j]);
		}
		for (j = 0; j < sizeof(yes) / sizeof(yes[0]); j++) {
			*field = false;
			ok(set(&cfg, keys[i], yes[j]) == 0 && *field,
			    "%s %s", keys[i], yes[j]);
		}
		for (j = 0; j < sizeof(junk) / sizeof(junk[0]); j++)
			ok(set(&cfg, keys[i], junk[j]) == -1 && *field &&
			    strstr(err, "expected yes or no") != NULL,
			    "%s '%s': %s", keys[i], junk[j], err);
	}
}

static void
test_codec(void)
{
	struct zsd_config cfg;

	config_init(&cfg);
	ok(set(&cfg, "algorithm", "zstd") == 0 && cfg.algorithm == CODEC_ZSTD,
	    "algorithm zstd");
	ok(set(&cfg, "algorithm", "lz4") == 0 && cfg.algorithm == CODEC_LZ4,
	    "algorithm lz4");
	ok(set(&cfg, "algorithm", "gzip") == -1 &&
	    strcmp(err, "bad value 'gzip' for key 'algorithm': expected lz4 "
	    "or zstd") == 0 && cfg.algorithm == CODEC_LZ4,
	    "algorithm gzip: %s", err);
	ok(set(&cfg, "algorithm", "") == -1, "algorithm '': %s", err);
}

static void
test_strings(void)
{
	struct zsd_config cfg;
	char big[PATH_MAX + 2];

	config_init(&cfg);
	ok(set(&cfg, "mountpoint", "/mnt/zsd test") == 0 &&
	    strcmp(cfg.mountpoint, "/mnt/zsd test") == 0,
	    "mountpoint with a space");
	ok(set(&cfg, "mountpoint", "/mnt/a#b") == 0,
	    "mountpoint with '#' inside a word");
	ok(set(&cfg, "mountpoint", "run/zsd") == -1 &&
	    strcmp(err, "bad value 'run/zsd' for key 'mountpoint': expected "
	    "an absolute path") == 0, "relative mountpoint: %s", err);
	ok(set(&cfg, "mountpoint", "") == -1, "empty mountpoint: %s", err);
	ok(set(&cfg, "mountpoint", "/") == -1, "mountpoint /: %s", err);
	ok(set(&cfg, "mountpoint", "/a #b") == -1,
	    "mountpoint that would read back cut at '#': %s", err);
	ok(set(&cfg, "mountpoint", "/a\tb") == -1 &&
	    strstr(err, "control character") != NULL,
	    "mountpoint with a tab");
	ok(set(&cfg, "mountpoint", "/a\nb") == -1 &&
	    strstr(err, "control character") != NULL,
	    "mountpoint with a newline");
	ok(set(&cfg, "mountpoint", "/a ") == -1,
	    "mountpoint ending in a space: %s", err);
	big[0] = '/';
	memset(big + 1, 'a', PATH_MAX - 1);
	big[PATH_MAX] = '\0';
	ok(set(&cfg, "mountpoint", big) == -1 &&
	    strstr(err, "longer than") != NULL,
	    "mountpoint of PATH_MAX characters");
	big[PATH_MAX - 1] = '\0';
	ok(set(&cfg, "mountpoint", big) == 0 &&
	    strlen(cfg.mountpoint) == PATH_MAX - 1,
	    "mountpoint of PATH_MAX - 1 characters");
	ok(set(&cfg, "mountpoint", "/run/x") == 0 &&
	    strcmp(cfg.mountpoint, "/run/x") == 0, "mountpoint /run/x");

	ok(set(&cfg, "control", "/tmp/ctl") == 0 &&
	    strcmp(cfg.control, "/tmp/ctl") == 0, "control /tmp/ctl");
	ok(set(&cfg, "control", "ctl") == -1 &&
	    strstr(err, "absolute path") != NULL, "relative control: %s",
	    err);
	memset(big + 1, 'a', 107);
	big[108] = '\0';
	ok(set(&cfg, "control", big) == -1 &&
	    strstr(err, "longer than 107") != NULL,
	    "control of 108 characters does not fit sun_path: %s", err);
	big[107] = '\0';
	ok(set(&cfg, "control", big) == 0, "control of 107 characters");
	ok(set(&cfg, "control_group", "adm") == 0 &&
	    strcmp(cfg.control_group, "adm") == 0, "control_group adm");
	ok(set(&cfg, "control_group", "a:b") == -1 &&
	    set(&cfg, "control_group", "a b") == -1 &&
	    set(&cfg, "control_group", "") == -1,
	    "control_group: no ':', spaces or empty: %s", err);

	ok(set(&cfg, "name", "swap1") == 0 && strcmp(cfg.name, "swap1") == 0,
	    "name swap1");
	ok(set(&cfg, "name", "a/b") == -1 &&
	    strcmp(err, "bad value 'a/b' for key 'name': expected a file "
	    "name, without '/'") == 0, "name a/b: %s", err);
	ok(set(&cfg, "name", "/swap") == -1, "name /swap: %s", err);
	ok(set(&cfg, "name", ".") == -1, "name .: %s", err);
	ok(set(&cfg, "name", "..") == -1, "name ..: %s", err);
	ok(set(&cfg, "name", "") == -1, "name '': %s", err);
	ok(set(&cfg, "name", "mm_stat") == -1, "name mm_stat: %s", err);
	ok(set(&cfg, "name", "...") == 0, "name ... is a file name");
	memset(big, 'n', 63);
	big[63] = '\0';
	ok(set(&cfg, "name", big) == 0 && strlen(cfg.name) == 63,
	    "name of 63 characters");
	memset(big, 'm', 64);
	big[64] = '\0';
	ok(set(&cfg, "name", big) == -1 && strlen(cfg.name) == 63 &&
	    cfg.name[0] == 'n', "name of 64 characters: %s", err);
}

static void
test_unknown(void)
{
	struct zsd_config cfg, before;

	config_init(&cfg);
	before = cfg;
	ok(set(&cfg, "foo", "1") == -1 &&
	    strcmp(err, "unknown key 'foo'") == 0, "unknown key: %s", err);
	ok(set(&cfg, "DiskSize", "1G") == -1 &&
	    strcmp(err, "unknown key 'DiskSize'") == 0,
	    "keys are case-sensitive: %s", err);
	ok(set(&cfg, "foreground", "yes") == -1,
	    "foreground is not a key: %s", err);
	ok(set(&cfg, "path", "/x") == -1, "path is not a key: %s", err);
	ok(config_same(&cfg, &before), "unknown keys changed nothing");
}

static void
test_live(void)
{
	static const struct {
		const char	*key, *value;
	} fixed[] = {
		{ "disksize", "1G" }, { "priority", "5" },
		{ "workers", "3" }, { "mountpoint", "/elsewhere" },
		{ "name", "other" }, { "swapon", "no" },
		{ "discard", "no" }, { "control", "/run/other" },
		{ "control_group", "adm" }, { "control_timeout", "5" },
	}, live[] = {
		{ "algorithm", "zstd" }, { "zstd_level", "9" },
		{ "mem_limit", "1G" }, { "verbose", "1" },
		{ "compact_threshold", "0" }, { "compact_interval", "5" },
		{ "merge", "no" },
	};
	struct zsd_config cfg, before;
	char want[128];
	size_t i;
	int r;

	config_init(&cfg);
	set(&cfg, "disksize", "2G");
	before = cfg;
	for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		r = config_set(&cfg, fixed[i].key, fixed[i].value, true, err,
		    sizeof(err));
		snprintf(want, sizeof(want), "'%s' cannot change while zsd "
		    "runs", fixed[i].key);
		ok(r == -1 && strcmp(err, want) == 0, "live %s = %s: %s",
		    fixed[i].key, fixed[i].value, err);
	}
	ok(config_same(&cfg, &before), "refused live changes changed nothing");
	ok(config_set(&cfg, "disksize", "2G", true, err, sizeof(err)) == 0,
	    "live: a fixed key given the value it has is accepted");
	ok(config_set(&cfg, "disksize", "2097152K", true, err,
	    sizeof(err)) == 0, "live: the same size written otherwise");
	ok(config_set(&cfg, "disksize", "x", true, err, sizeof(err)) == -1 &&
	    strstr(err, "bad value 'x'") != NULL,
	    "live: a bad value is reported as such: %s", err);
	ok(config_set(&cfg, "nope", "1", true, err, sizeof(err)) == -1 &&
	    strcmp(err, "unknown key 'nope'") == 0, "live: unknown key");
	for (i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		ok(config_set(&cfg, live[i].key, live[i].value, true, err,
		    sizeof(err)) == 0, "live %s = %s accepted", live[i].key,
		    live[i].value);
	ok(cfg.algorithm == CODEC_ZSTD && cfg.zstd_level == 9 &&
	    cfg.mem_limit == GiB && cfg.verbose == 1 &&
	    cfg.compact_threshold == 0 && cfg.compact_interval == 5 &&
	    !cfg.merge, "live keys changed");
}

static void
test_file(void)
{
	struct zsd_config cfg, before;
	char path[PATH_MAX], want[PATH_MAX + 256], *text;
	size_t n;
	int r;

	config_init(&cfg);
	write_file(path, sizeof(path), "good.conf",
	    "# zsd test configuration\n"
	    "\n"
	    "   \t\n"
	    "disksize = 2G\n"
	    "algorithm=zstd\n"
	    "\t zstd_level \t=\t 7 \t\n"
	    "  # an indented comment\n"
	    "priority = 5   # a trailing comment\n"
	    "mem_limit = 512M\t# after a tab\n"
	    "workers = 4\n"
	    "mountpoint = /run/zsd=x#1\n"
	    "name = swap#1\n"
	    "swapon = no\n"
	    "discard = off\n"
	    "verbose = 1\n"
	    "priority = 6\n"
	    "#disksize = 8G\n"
	    "# the last line has no newline\n"
	    "   workers   =   8");
	r = config_load(&cfg, path, true, false, err, sizeof(err));
	ok(r == 0, "a good file loads: %s", r == 0 ? "" : err);
	ok(cfg.disksize == 2 * GiB, "disksize from the file");
	ok(cfg.algorithm == CODEC_ZSTD, "algorithm without spaces");
	ok(cfg.zstd_level == 7, "zstd_level among tabs and spaces");
	ok(cfg.priority == 6, "a later line wins");
	ok(cfg.mem_limit == 512 * MiB, "comment after a tab");
	ok(cfg.workers == 8, "last line without a newline");
	ok(strcmp(cfg.mountpoint, "/run/zsd=x#1") == 0,
	    "'=' and '#' inside a value");
	ok(strcmp(cfg.name, "swap#1") == 0, "'#' inside a word is kept");
	ok(!cfg.swapon && !cfg.discard && cfg.verbose == 1, "bools");
	ok(strcmp(cfg.path, path) == 0, "path is the file read");

	/* Errors name the file and line; nothing changes. */
	config_init(&cfg);
	before = cfg;
	write_file(path, sizeof(path), "noeq.conf",
	    "# comment\ndisksize = 2G\n\nswapon\n");
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == -1 &&
	    (snprintf(want, sizeof(want), "%s:4: expected 'key = value'",
	    path), strcmp(err, want) == 0), "line without '=': %s", err);
	ok(config_same(&cfg, &before) && cfg.path[0] == '\0',
	    "a file with an error changes nothing, not even earlier lines");

	write_file(path, sizeof(path), "badvalue.conf",
	    "disksize = 2G\n"
	    "zstd_level = 42 # too much\n"
	    "priority = x\n");
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == -1 &&
	    (snprintf(want, sizeof(want), "%s:2: bad value '42' for key "
	    "'zstd_level': expected an integer from 1 to 19", path),
	    strcmp(err, want) == 0), "bad value, first error only: %s", err);

	write_file(path, sizeof(path), "unknown.conf",
	    "\n\n\ncolour = blue\n");
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == -1 &&
	    (snprintf(want, sizeof(want), "%s:4: unknown key 'colour'", path),
	    strcmp(err, want) == 0), "unknown key in a file: %s", err);

	write_file(path, sizeof(path), "nokey.conf", " = 4G\n");
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == -1 &&
	    (snprintf(want, sizeof(want), "%s:1: ", path),
	    strncmp(err, want, strlen(want)) == 0), "no key: %s", err);

	write_file(path, sizeof(path), "novalue.conf", "disksize =\n");
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == -1 &&
	    (snprintf(want, sizeof(want), "%s:1: bad value '' for key "
	    "'disksize'", path), strncmp(err, want, strlen(want)) == 0),
	    "empty value: %s", err);
	ok(config_same(&cfg, &before), "still nothing changed");

	/* 1023 characters are fine, 1024 are not. */
	text = malloc(4096);
	if (text == NULL)
		bail("malloc");
	n = (size_t)snprintf(text, 4096, "name = ");
	memset(text + n, 'x', 1023 - n);
	memcpy(text + 1023, "\n#\n", 4);
	write_file(path, sizeof(path), "long1023.conf", text);
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == -1 &&
	    strstr(err, ":1: bad value") != NULL,
	    "a line of 1023 characters is read whole");
	memset(text, '#', 1023);
	memcpy(text + 1023, "\ndisksize = 3G\n", 16);
	write_file(path, sizeof(path), "comment1023.conf", text);
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == 0 &&
	    cfg.disksize == 3 * GiB, "a comment of 1023 characters");
	memset(text, '#', 1024);
	memcpy(text + 1024, "\ndisksize = 4G\n", 16);
	write_file(path, sizeof(path), "long1024.conf", text);
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == -1 &&
	    (snprintf(want, sizeof(want), "%s:1: line longer than 1023 "
	    "characters", path), strcmp(err, want) == 0) &&
	    cfg.disksize == 3 * GiB, "a line of 1024 characters: %s", err);
	memset(text, '#', 1024);
	text[1024] = '\0';
	write_file(path, sizeof(path), "last1024.conf", text);
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == -1 &&
	    strstr(err, ":1: line longer") != NULL,
	    "a last line of 1024 characters without a newline");
	free(text);

	/* Not text: a NUL byte, a carriage return. */
	config_init(&cfg);
	before = cfg;
	write_bytes(path, sizeof(path), "nul.conf",
	    "disksize = 2G\0\nname = x\n", 24);
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == -1 &&
	    (snprintf(want, sizeof(want), "%s:1: a NUL byte in the line",
	    path), strcmp(err, want) == 0) && config_same(&cfg, &before),
	    "a NUL byte in a line: %s", err);
	write_file(path, sizeof(path), "crlf.conf",
	    "# DOS\r\ndisksize = 2G\r\n");
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == -1 &&
	    (snprintf(want, sizeof(want), "%s:1: a carriage return (DOS "
	    "line endings?); lines end with \\n only", path),
	    strcmp(err, want) == 0) && config_same(&cfg, &before),
	    "a carriage return before the newline: %s", err);
	write_file(path, sizeof(path), "cr.conf", "name = a\rb\n");
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == -1 &&
	    strstr(err, ":1: a carriage return") != NULL,
	    "a carriage return inside a value: %s", err);
	write_file(path, sizeof(path), "nonl.conf", "disksize = 2G");
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == 0 &&
	    cfg.disksize == 2 * GiB, "a last line without a newline");

	/* Missing files. */
	config_init(&cfg);
	before = cfg;
	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	err[0] = '\0';
	ok(config_load(&cfg, path, false, false, err, sizeof(err)) == 0 &&
	    config_same(&cfg, &before) && cfg.path[0] == '\0' &&
	    err[0] == '\0', "a missing optional file is fine, untouched");
	ok(config_load(&cfg, path, true, false, err, sizeof(err)) == -1 &&
	    (snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT)),
	    strcmp(err, want) == 0), "a missing required file: %s", err);
	ok(config_load(&cfg, tmpdir, false, false, err, sizeof(err)) == -1 &&
	    strncmp(err, tmpdir, strlen(tmpdir)) == 0,
	    "a directory is an error even if optional: %s", err);

	/* Reload: only live keys may change. */
	config_init(&cfg);
	set(&cfg, "disksize", "2G");
	before = cfg;
	write_file(path, sizeof(path), "reload-bad.conf",
	    "algorithm = zstd\ndisksize = 3G\n");
	ok(config_load(&cfg, path, true, true, err, sizeof(err)) == -1 &&
	    (snprintf(want, sizeof(want), "%s:2: 'disksize' cannot change "
	    "while zsd runs", path), strcmp(err, want) == 0) &&
	    config_same(&cfg, &before), "reload changing disksize: %s", err);
	write_file(path, sizeof(path), "reload-good.conf",
	    "algorithm = zstd\ndisksize = 2G\nzstd_level = 12\n"
	    "mem_limit = 10%\nverbose = yes\n");
	ok(config_load(&cfg, path, true, true, err, sizeof(err)) == 0 &&
	    cfg.algorithm == CODEC_ZSTD && cfg.zstd_level == 12 &&
	    cfg.mem_limit == ram / 10 && cfg.verbose == 1 &&
	    cfg.disksize == 2 * GiB, "reload changing live keys only");
}

/* What a reload says needs a restart: only the keys that changed. */
static void
test_restart_only(void)
{
	struct zsd_config a, b;
	char keys[256];
	int n;

	config_init(&a);
	b = a;
	ok(config_restart_only(&a, &b, keys, sizeof(keys)) == 0 &&
	    keys[0] == '\0', "the same config: no key named");
	set(&b, "algorithm", "zstd");
	set(&b, "mem_limit", "1G");
	ok(config_restart_only(&a, &b, keys, sizeof(keys)) == 0,
	    "live keys changed: none named");
	set(&b, "priority", "5");
	n = config_restart_only(&a, &b, keys, sizeof(keys));
	ok(n == 1 && strcmp(keys, "priority") == 0,
	    "priority changed: %d, \"%s\"", n, keys);
	set(&b, "control_group", "nogroup");
	set(&b, "disksize", "3G");
	n = config_restart_only(&a, &b, keys, sizeof(keys));
	ok(n == 3 && strcmp(keys, "disksize, priority, control_group") == 0,
	    "three changed, in the table's order: %d, \"%s\"", n, keys);
	n = config_restart_only(&a, &b, keys, 12);
	ok(n == 3 && strcmp(keys, "disksize") == 0,
	    "12 bytes: whole names only: %d, \"%s\"", n, keys);
	n = config_restart_only(&a, &b, keys, 8);
	ok(n == 3 && strcmp(keys, "") == 0,
	    "8 bytes, too short for the first: %d, \"%s\"", n, keys);
	n = config_restart_only(&a, &b, keys, 19);
	ok(n == 3 && strcmp(keys, "disksize, priority") == 0,
	    "19 bytes: two whole names: %d, \"%s\"", n, keys);
}

/* Print cfg, read it back into defaults, compare. */
static void
roundtrip(const struct zsd_config *cfg, const char *what)
{
	struct zsd_config back;
	char path[PATH_MAX];
	FILE *f;
	int r;

	snprintf(path, sizeof(path), "%s/print.conf", tmpdir);
	if ((f = fopen(path, "w")) == NULL)
		bail("fopen %s: %s", path, strerror(errno));
	config_print(cfg, f);
	if (fclose(f) == EOF)
		bail("fclose: %s", strerror(errno));
	config_init(&back);
	back.foreground = cfg->foreground;
	r = config_load(&back, path, true, false, err, sizeof(err));
	ok(r == 0 && config_same(cfg, &back), "config_print of %s reads "
	    "back the same%s%s", what, r == 0 ? "" : ": ", r == 0 ? "" : err);
}

static void
test_print(void)
{
	struct zsd_config cfg;
	char *buf = NULL, *line;
	size_t len = 0, i;
	FILE *f;
	bool each;
	static const char *const keys[] = { "disksize", "algorithm",
	    "zstd_level", "priority", "mem_limit", "merge", "workers",
	    "mountpoint",
	    "name", "swapon", "discard", "verbose", "control",
	    "control_group", "control_timeout", "compact_threshold",
	    "compact_interval" };

	config_init(&cfg);
	roundtrip(&cfg, "the defaults");

	set(&cfg, "disksize", "3G");
	set(&cfg, "algorithm", "zstd");
	set(&cfg, "zstd_level", "19");
	set(&cfg, "priority", "-1");
	set(&cfg, "mem_limit", "123456789");
	set(&cfg, "merge", "off");
	set(&cfg, "workers", "256");
	set(&cfg, "mountpoint", "/mnt/with space/a#b");
	set(&cfg, "name", "swap-1.img");
	set(&cfg, "swapon", "off");
	set(&cfg, "discard", "false");
	set(&cfg, "verbose", "3");
	set(&cfg, "control", "/tmp/zsd control");
	set(&cfg, "control_group", "adm");
	set(&cfg, "control_timeout", "1");
	set(&cfg, "compact_threshold", "0");
	set(&cfg, "compact_interval", "86400");
	roundtrip(&cfg, "every key changed");
	set(&cfg, "disksize", "1050000");
	set(&cfg, "mem_limit", "1T");
	roundtrip(&cfg, "odd sizes");

	if ((f = open_memstream(&buf, &len)) == NULL)
		bail("open_memstream");
	config_init(&cfg);
	set(&cfg, "disksize", "3G");
	set(&cfg, "mem_limit", "4097");
	set(&cfg, "workers", "2");
	config_print(&cfg, f);
	fclose(f);
	ok(strstr(buf, "disksize = 3G\n") != NULL, "sizes print in units");
	ok(strstr(buf, "mem_limit = 4097\n") != NULL, "or in bytes");
	ok(strstr(buf, "algorithm = lz4\n") != NULL &&
	    strstr(buf, "swapon = yes\n") != NULL &&
	    strstr(buf, "name = swap0\n") != NULL &&
	    strstr(buf, "workers = 2\n") != NULL &&
	    strstr(buf, "mem_limit = none\n") == NULL,
	    "codecs, bools, strings, ints");
	free(buf);

	buf = NULL;
	if ((f = open_memstream(&buf, &len)) == NULL)
		bail("open_memstream");
	config_init(&cfg);
	set(&cfg, "mem_limit", "2T");
	config_print(&cfg, f);
	config_init(&cfg);
	config_print(&cfg, f);
	fclose(f);
	ok(strstr(buf, "mem_limit = 2T\n") != NULL &&
	    strstr(buf, "mem_limit = none\n") != NULL,
	    "terabytes in T, no limit as none");
	free(buf);

	buf = NULL;
	if ((f = open_memstream(&buf, &len)) == NULL)
		bail("open_memstream");
	config_usage_keys(f);
	fclose(f);
	each = true;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char pat[32];

		snprintf(pat, sizeof(pat), "  %s ", keys[i]);
		if (strstr(buf, pat) == NULL) {
			diag("--help misses %s", keys[i]);
			each = false;
		}
	}
	ok(each, "config_usage_keys shows every key");
	each = true;
	for (line = buf; *line != '\0'; line += len + 1) {
		len = strcspn(line, "\n");
		if (len > 79) {
			diag("too long: %.*s", (int)len, line);
			each = false;
		}
		if (line[len] == '\0')
			break;
	}
	ok(each, "config_usage_keys lines fit in 80 columns");
	free(buf);
}

static int
cleanup_one(const char *path, const struct stat *st, int type,
    struct FTW *ftw)
{
	if (remove(path) == -1)
		diag("could not remove %s: %s", path, strerror(errno));
	return 0;
}

int
main(void)
{
	const char *t = getenv("TMPDIR");
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

	tap_watchdog(600);
	if (pages <= 0 || psize <= 0)
		skip_all("the size of RAM is unknown");
	ram = (uint64_t)pages * (uint64_t)psize;
	snprintf(tmpdir, sizeof(tmpdir), "%s/test-config.XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(tmpdir) == NULL)
		bail("mkdtemp %s: %s", tmpdir, strerror(errno));

	test_defaults();
	test_parse_size();
	test_disksize();
	test_mem_limit();
	test_ints();
	test_bools();
	test_codec();
	test_strings();
	test_unknown();
	test_live();
	test_file();
	test_restart_only();
	test_print();
	test_idle_keys();

	nftw(tmpdir, cleanup_one, 16, FTW_DEPTH | FTW_PHYS);
	return done_testing();
}
