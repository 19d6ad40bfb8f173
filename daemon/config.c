/*
 * config.c - the configuration: defaults, the config file, -o overrides.
 *
 * Every key is one row of config_keys[]: its type, where its value lives
 * in struct zsd_config, its default, whether SIGHUP may change it while
 * zsd runs, and its help.  Parsing, printing and --help walk the table, so
 * a new key is one new row (and its field, and the man page).
 */
#include <config.h>

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "zsd.h"

#define DISKSIZE_MIN		(1ull << 20)	/* swap wants a few pages */
#define DISKSIZE_DEFAULT_MAX	(4ull << 30)
/*
 * Pages compress about 3 to 1 and the pool lives in RAM, so a swap file
 * much larger than RAM can never fill, while the kernel keeps 3 bytes of
 * swap map and swap cgroup record per page of it: "1000%" is a typo.
 */
#define DISKSIZE_MAX_PERCENT	400
#define CONFIG_LINE_MAX		1023		/* characters, without '\n' */

enum config_type {
	CONFIG_SIZE,		/* uint64_t */
	CONFIG_INT,		/* int or unsigned int, in min..max */
	CONFIG_BOOL,		/* bool */
	CONFIG_STRING,		/* char[size] */
	CONFIG_CODEC,		/* enum codec_id */
	CONFIG_SECONDS,		/* int: 90, 90s, 10m, 2h, 1d */
};

#define KEY_LIVE	0x01	/* SIGHUP may change it */
#define KEY_PERCENT	0x02	/* size: "N%" of RAM */
#define KEY_NONE	0x04	/* size, seconds: "none" or "off" mean 0;
				   string: "none" means "" */
#define KEY_PAGES	0x08	/* size: rounded down to pages, >= 1M */
#define KEY_WORDS	0x10	/* int: yes/no mean 1/0 */

struct config_key {
	const char		*name;
	enum config_type	 type;
	int			 flags;
	size_t			 off;	/* of the value in struct zsd_config */
	size_t			 size;	/* string: of its array */
	long			 min, max;	/* int: the range */
	unsigned int		 max_percent;	/* size: "N%" at most this */
	const char		*def;	/* as in a file; NULL: config_init */
	const char		*shown;	/* the default in --help, if not def */
	/* String: NULL if value is acceptable, else why not. */
	const char		*(*check)(const char *value);
	const char		*help;
};

/* A parsed value, before it is stored. */
union config_value {
	uint64_t	 size;
	long		 num;
	bool		 flag;
	enum codec_id	 codec;
	const char	*str;
};

static const char	*check_mountpoint(const char *);
static const char	*check_name(const char *);
static const char	*check_control(const char *);
static const char	*check_group(const char *);
static const char	*check_backing(const char *);
static const char	*check_transport(const char *);

#define FIELD(f)	offsetof(struct zsd_config, f)

static const struct config_key config_keys[] = {
	{ .name = "disksize", .type = CONFIG_SIZE,
	  .flags = KEY_PERCENT | KEY_PAGES, .off = FIELD(disksize),
	  .max_percent = DISKSIZE_MAX_PERCENT, .shown = "RAM/2, max 4G",
	  .help = "size of the swap file: 512M, 4G, 25% of RAM" },
	{ .name = "algorithm", .type = CONFIG_CODEC, .flags = KEY_LIVE,
	  .off = FIELD(algorithm), .def = "lz4",
	  .help = "compressor for new pages: lz4 or zstd" },
	{ .name = "zstd_level", .type = CONFIG_INT, .flags = KEY_LIVE,
	  .off = FIELD(zstd_level), .min = 1, .max = 19, .def = "3",
	  .help = "zstd compression level, 1 to 19" },
	{ .name = "priority", .type = CONFIG_INT,
	  .off = FIELD(priority), .min = -1, .max = 32767, .def = "100",
	  .help = "swap priority, -1 to 32767" },
	{ .name = "mem_limit", .type = CONFIG_SIZE,
	  .flags = KEY_LIVE | KEY_PERCENT | KEY_NONE, .off = FIELD(mem_limit),
	  .max_percent = 100, .def = "none",
	  .help = "most memory for compressed pages: 2G, 25%, none" },
	{ .name = "merge", .type = CONFIG_BOOL, .flags = KEY_LIVE,
	  .off = FIELD(merge), .def = "yes",
	  .help = "store pages with the same bytes once: yes or no" },
	{ .name = "workers", .type = CONFIG_INT,
	  .off = FIELD(workers), .min = 0, .max = 256, .def = "0",
	  .help = "compression threads; 0: one per online core" },
	{ .name = "rt_priority", .type = CONFIG_INT,
	  .off = FIELD(rt_priority), .min = 0, .max = 99, .def = "10",
	  .help = "real-time priority of the I/O threads; 0: normal" },
	{ .name = "mountpoint", .type = CONFIG_STRING,
	  .off = FIELD(mountpoint), .size = sizeof(((struct zsd_config *)0)
	  ->mountpoint), .def = "/run/zsd/mnt", .check = check_mountpoint,
	  .help = "where the FUSE file system is mounted" },
	{ .name = "name", .type = CONFIG_STRING,
	  .off = FIELD(name), .size = sizeof(((struct zsd_config *)0)->name),
	  .def = "swap0", .check = check_name,
	  .help = "name of the swap file in the mount" },
	{ .name = "swapon", .type = CONFIG_BOOL,
	  .off = FIELD(swapon), .def = "yes",
	  .help = "enable the file as swap: yes or no" },
	{ .name = "discard", .type = CONFIG_BOOL,
	  .off = FIELD(discard), .def = "yes",
	  .help = "swapon with discard, to free unused pages" },
	{ .name = "verbose", .type = CONFIG_INT, .flags = KEY_LIVE | KEY_WORDS,
	  .off = FIELD(verbose), .min = 0, .max = 3, .def = "0",
	  .help = "log level: 0 info, 1 debug" },
	{ .name = "control", .type = CONFIG_STRING,
	  .off = FIELD(control), .size = sizeof(((struct zsd_config *)0)
	  ->control), .def = "/run/zsd/control", .check = check_control,
	  .help = "the control socket zsctl talks to" },
	{ .name = "control_group", .type = CONFIG_STRING,
	  .off = FIELD(control_group), .size = sizeof(((struct zsd_config *)0)
	  ->control_group), .def = "root", .check = check_group,
	  .help = "group that may read statistics" },
	{ .name = "control_timeout", .type = CONFIG_INT,
	  .off = FIELD(control_timeout), .min = 1, .max = 3600, .def = "10",
	  .help = "seconds before an idle client is dropped" },
	{ .name = "compact_threshold", .type = CONFIG_INT, .flags = KEY_LIVE,
	  .off = FIELD(compact_threshold), .min = 0, .max = 100, .def = "10",
	  .help = "compact at N% freeable pages; 0: off" },
	{ .name = "compact_interval", .type = CONFIG_INT, .flags = KEY_LIVE,
	  .off = FIELD(compact_interval), .min = 1, .max = 86400, .def = "60",
	  .help = "seconds between compaction checks" },
	{ .name = "recompress_level", .type = CONFIG_INT, .flags = KEY_LIVE,
	  .off = FIELD(recompress_level), .min = 1, .max = 19, .def = "9",
	  .help = "zstd level of recompression, 1 to 19" },
	{ .name = "recompress_after", .type = CONFIG_SECONDS,
	  .flags = KEY_LIVE | KEY_NONE, .off = FIELD(recompress_after),
	  .min = 1, .max = 365 * 86400, .def = "5m",
	  .help = "recompress pages unused that long; off" },
	{ .name = "recompress_threshold", .type = CONFIG_INT,
	  .flags = KEY_LIVE, .off = FIELD(recompress_threshold), .min = 0,
	  .max = 4096, .def = "0",
	  .help = "recompress only objects of N bytes or more" },
	{ .name = "backing_file", .type = CONFIG_STRING, .flags = KEY_NONE,
	  .off = FIELD(backing_file), .size = sizeof(((struct zsd_config *)0)
	  ->backing_file), .def = "none", .check = check_backing,
	  .help = "file or device idle pages go to, or none" },
	{ .name = "backing_size", .type = CONFIG_SIZE, .flags = KEY_NONE,
	  .off = FIELD(backing_size), .def = "none", .shown = "disksize",
	  .help = "size of a backing file zsd creates or grows" },
	{ .name = "writeback_after", .type = CONFIG_SECONDS,
	  .flags = KEY_LIVE | KEY_NONE, .off = FIELD(writeback_after),
	  .min = 1, .max = 365 * 86400, .def = "10m",
	  .help = "write back pages unused that long; off" },
	{ .name = "writeback_limit", .type = CONFIG_SIZE,
	  .flags = KEY_LIVE | KEY_NONE, .off = FIELD(writeback_limit),
	  .def = "none",
	  .help = "most bytes written back in a day: 1G, none" },
	{ .name = "idle_interval", .type = CONFIG_SECONDS, .flags = KEY_LIVE,
	  .off = FIELD(idle_interval), .min = 1, .max = 86400, .def = "60s",
	  .help = "time between automatic idle passes" },
	{ .name = "idle_batch", .type = CONFIG_INT, .flags = KEY_LIVE,
	  .off = FIELD(idle_batch), .min = 1, .max = 1 << 24, .def = "16384",
	  .help = "most pages an idle pass takes" },
	{ .name = "idle_cpu_pressure", .type = CONFIG_INT, .flags = KEY_LIVE,
	  .off = FIELD(idle_cpu_pressure), .min = 0, .max = 100, .def = "20",
	  .help = "no recompression above N% CPU pressure" },
	{ .name = "idle_io_pressure", .type = CONFIG_INT, .flags = KEY_LIVE,
	  .off = FIELD(idle_io_pressure), .min = 0, .max = 100, .def = "10",
	  .help = "no writeback above N% I/O pressure" },
	{ .name = "transport", .type = CONFIG_STRING,
	  .off = FIELD(transport), .size = sizeof(((struct zsd_config *)0)
	  ->transport), .def = "auto", .check = check_transport,
	  .help = "FUSE requests by auto, uring or dev" },
	{ .name = "max_background", .type = CONFIG_INT,
	  .off = FIELD(max_background), .min = 1, .max = 1024, .def = "12",
	  .help = "asynchronous FUSE requests in flight" },
};

#define NKEYS	(sizeof(config_keys) / sizeof(config_keys[0]))

static const char *const config_true[] = { "yes", "true", "on", "1" };
static const char *const config_false[] = { "no", "false", "off", "0" };

static uint64_t
config_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

	if (pages <= 0 || psize <= 0)
		return 0;
	return (uint64_t)pages * (uint64_t)psize;
}

static const struct config_key *
config_find(const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

static void *
config_field(const struct zsd_config *cfg, const struct config_key *k)
{
	return (char *)cfg + k->off;
}

/*
 * Sizes are digits, then an optional K, M, G or T (powers of 1024, any
 * case, optionally followed by "iB" or "B"), or a plain "B".  With
 * percent_of, "N%" is N hundredths of it.  0, or -1 with errno EINVAL
 * (not a size) or ERANGE (more than 64 bits).
 */
int
config_parse_size(const char *s, uint64_t percent_of, uint64_t *out)
{
	const char *p = s, *units = "kmgt", *u;
	uint64_t n = 0;
	unsigned int d, shift = 0;

	if (*p < '0' || *p > '9')
		goto invalid;
	for (; *p >= '0' && *p <= '9'; p++) {
		d = (unsigned int)(*p - '0');
		if (n > (UINT64_MAX - d) / 10)
			goto range;
		n = n * 10 + d;
	}
	if (*p == '%') {
		if (percent_of == 0 || p[1] != '\0')
			goto invalid;
		if (n != 0 && percent_of > UINT64_MAX / n)
			goto range;
		*out = percent_of * n / 100;
		return 0;
	}
	if (*p != '\0' && (u = strchr(units, *p | 0x20)) != NULL) {
		shift = 10 * (unsigned int)(u - units + 1);
		p++;
		if ((*p | 0x20) == 'i' && (p[1] | 0x20) == 'b')
			p += 2;
		else if ((*p | 0x20) == 'b')
			p++;
	} else if ((*p | 0x20) == 'b')
		p++;
	if (*p != '\0')
		goto invalid;
	if (n > UINT64_MAX >> shift)
		goto range;
	*out = n << shift;
	return 0;

invalid:
	errno = EINVAL;
	return -1;
range:
	errno = ERANGE;
	return -1;
}

static const char *
check_string(const char *s)
{
	size_t len = strlen(s), i;

	if (len == 0)
		return "must not be empty";
	/* What config_print writes must read back the same. */
	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return "contains a control character";
		if ((s[i] == ' ' || s[i] == '\t') && s[i + 1] == '#')
			return "contains \" #\", which starts a comment";
	}
	if (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' ||
	    s[len - 1] == '\t')
		return "starts or ends with a space";
	return NULL;
}

static const char *
check_mountpoint(const char *s)
{
	if (s[0] != '/')
		return "expected an absolute path";
	if (strcmp(s, "/") == 0)
		return "cannot mount over /";
	return NULL;
}

static const char *
check_name(const char *s)
{
	if (strchr(s, '/') != NULL)
		return "expected a file name, without '/'";
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return "expected a file name, not '.' or '..'";
	/* The mount holds the statistics next to the swap file. */
	if (strcmp(s, "mm_stat") == 0)
		return "'mm_stat' is the statistics file";
	return NULL;
}

static const char *
check_control(const char *s)
{
	if (s[0] != '/')
		return "expected an absolute path";
	return NULL;
}

static const char *
check_group(const char *s)
{
	if (strchr(s, ':') != NULL || strchr(s, '/') != NULL ||
	    strchr(s, ' ') != NULL)
		return "expected a group name";
	return NULL;
}

static const char *
check_backing(const char *s)
{
	if (s[0] != '/')
		return "expected an absolute path or none";
	return NULL;
}

static const char *
check_transport(const char *s)
{
	if (strcmp(s, "auto") != 0 && strcmp(s, "uring") != 0 &&
	    strcmp(s, "dev") != 0)
		return "expected auto, uring or dev";
	return NULL;
}

/* 90, 90s, 10m, 2h, 1d: seconds.  0, or -1 if not that. */
static int
config_parse_seconds(const char *s, long *out)
{
	static const struct {
		char	unit;
		long	seconds;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 },
	    { 'd', 86400 } };
	char *end;
	long n;
	size_t i;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno != 0 || n > INT_MAX)
		return -1;
	if (*end == '\0') {
		*out = n;
		return 0;
	}
	if (end[1] != '\0')
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if ((*end | 0x20) == units[i].unit) {
			if (n > INT_MAX / units[i].seconds)
				return -1;
			*out = n * units[i].seconds;
			return 0;
		}
	return -1;
}

static int
config_word(const char *s, bool *out)
{
	size_t i;

	for (i = 0; i < sizeof(config_true) / sizeof(config_true[0]); i++) {
		if (strcasecmp(s, config_true[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, config_false[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* Parse value for k into v.  0, or -1 with the reason in why. */
static int
config_parse(const struct config_key *k, const char *value,
    union config_value *v, char *why, size_t whylen)
{
	const char *reason;
	char *end;
	size_t len;
	bool flag;

	switch (k->type) {
	case CONFIG_SIZE:
		if ((k->flags & KEY_NONE) && strcasecmp(value, "none") == 0) {
			v->size = 0;
			return 0;
		}
		/* strtoul saturates: a percentage too large is refused. */
		if (k->max_percent != 0 && value[0] >= '0' &&
		    value[0] <= '9' && (len = strlen(value)) > 0 &&
		    value[len - 1] == '%' &&
		    strtoul(value, NULL, 10) > k->max_percent) {
			snprintf(why, whylen, "more than %u%% of RAM",
			    k->max_percent);
			return -1;
		}
		if (config_parse_size(value, (k->flags & KEY_PERCENT) ?
		    config_ram() : 0, &v->size) == -1) {
			if (errno == ERANGE)
				snprintf(why, whylen, "too large");
			else
				snprintf(why, whylen, "expected a size like "
				    "512M%s", (k->flags & KEY_NONE) ?
				    ", 25% or none" : " or 25%");
			return -1;
		}
		if (k->flags & KEY_PAGES) {
			v->size &= ~(uint64_t)(ZSD_PAGE_SIZE - 1);
			if (v->size < DISKSIZE_MIN) {
				snprintf(why, whylen, "must be at least 1M");
				return -1;
			}
			/* A file's size is an off_t. */
			if (v->size > INT64_MAX) {
				snprintf(why, whylen, "too large");
				return -1;
			}
		}
		return 0;
	case CONFIG_INT:
		if ((k->flags & KEY_WORDS) && config_word(value, &flag) == 0) {
			v->num = flag;
			return 0;
		}
		errno = 0;
		v->num = strtol(value, &end, 10);
		/* strtol would skip spaces and take a '+'. */
		if ((value[0] == '-' ? value[1] : value[0]) < '0' ||
		    (value[0] == '-' ? value[1] : value[0]) > '9' ||
		    *end != '\0' || errno != 0 ||
		    v->num < k->min || v->num > k->max) {
			snprintf(why, whylen, "expected an integer from %ld "
			    "to %ld%s", k->min, k->max,
			    (k->flags & KEY_WORDS) ? ", yes or no" : "");
			return -1;
		}
		return 0;
	case CONFIG_BOOL:
		if (config_word(value, &v->flag) == -1) {
			snprintf(why, whylen, "expected yes or no");
			return -1;
		}
		return 0;
	case CONFIG_SECONDS:
		if ((k->flags & KEY_NONE) && (strcasecmp(value, "none") == 0 ||
		    strcasecmp(value, "off") == 0 || strcmp(value, "0") == 0)) {
			v->num = 0;
			return 0;
		}
		if (config_parse_seconds(value, &v->num) != 0 ||
		    v->num < k->min || v->num > k->max) {
			snprintf(why, whylen, "expected a time from %lds to "
			    "%ldd, like 90s, 10m or 2h%s", k->min,
			    k->max / 86400, (k->flags & KEY_NONE) ?
			    ", or off" : "");
			return -1;
		}
		return 0;
	case CONFIG_STRING:
		if ((k->flags & KEY_NONE) && strcmp(value, "none") == 0) {
			v->str = "";
			return 0;
		}
		reason = check_string(value);
		if (reason == NULL && strlen(value) >= k->size) {
			snprintf(why, whylen, "longer than %zu characters",
			    k->size - 1);
			return -1;
		}
		if (reason == NULL && k->check != NULL)
			reason = k->check(value);
		if (reason != NULL) {
			snprintf(why, whylen, "%s", reason);
			return -1;
		}
		v->str = value;
		return 0;
	case CONFIG_CODEC:
		if (codec_by_name(value, &v->codec) != 0) {
			snprintf(why, whylen, "expected lz4 or zstd");
			return -1;
		}
		return 0;
	}
	abort();
}

static bool
config_equal(const struct zsd_config *cfg, const struct config_key *k,
    const union config_value *v)
{
	void *p = config_field(cfg, k);

	switch (k->type) {
	case CONFIG_SIZE:
		return *(uint64_t *)p == v->size;
	case CONFIG_INT:
	case CONFIG_SECONDS:
		/* unsigned int (workers) may be read as int: same bits. */
		return *(int *)p == v->num;
	case CONFIG_BOOL:
		return *(bool *)p == v->flag;
	case CONFIG_STRING:
		return strcmp(p, v->str) == 0;
	case CONFIG_CODEC:
		return *(enum codec_id *)p == v->codec;
	}
	abort();
}

static void
config_store(struct zsd_config *cfg, const struct config_key *k,
    const union config_value *v)
{
	void *p = config_field(cfg, k);

	switch (k->type) {
	case CONFIG_SIZE:
		*(uint64_t *)p = v->size;
		break;
	case CONFIG_INT:
	case CONFIG_SECONDS:
		*(int *)p = (int)v->num;
		break;
	case CONFIG_BOOL:
		*(bool *)p = v->flag;
		break;
	case CONFIG_STRING:
		/* config_parse checked the length. */
		memcpy(p, v->str, strlen(v->str) + 1);
		break;
	case CONFIG_CODEC:
		*(enum codec_id *)p = v->codec;
		break;
	}
}

/* Seconds in the largest unit that keeps them exact. */
static void
config_format_seconds(int n, bool none, char *buf, size_t len)
{
	if (n == 0 && none)
		snprintf(buf, len, "off");
	else if (n != 0 && n % 86400 == 0)
		snprintf(buf, len, "%dd", n / 86400);
	else if (n != 0 && n % 3600 == 0)
		snprintf(buf, len, "%dh", n / 3600);
	else if (n != 0 && n % 60 == 0)
		snprintf(buf, len, "%dm", n / 60);
	else
		snprintf(buf, len, "%ds", n);
}

/* The value of k as config_load reads it back. */
static void
config_format(const struct zsd_config *cfg, const struct config_key *k,
    char *buf, size_t len)
{
	static const char units[] = "KMGT";
	void *p = config_field(cfg, k);
	uint64_t size;
	int i;

	switch (k->type) {
	case CONFIG_SIZE:
		size = *(uint64_t *)p;
		if (size == 0 && (k->flags & KEY_NONE)) {
			snprintf(buf, len, "none");
			break;
		}
		/* The largest unit that keeps it exact. */
		for (i = 4; i > 0; i--)
			if (size != 0 &&
			    (size & ((1ull << (10 * i)) - 1)) == 0)
				break;
		if (i == 0)
			snprintf(buf, len, "%" PRIu64, size);
		else
			snprintf(buf, len, "%" PRIu64 "%c", size >> (10 * i),
			    units[i - 1]);
		break;
	case CONFIG_INT:
		snprintf(buf, len, "%d", *(int *)p);
		break;
	case CONFIG_BOOL:
		snprintf(buf, len, "%s", *(bool *)p ? "yes" : "no");
		break;
	case CONFIG_STRING:
		snprintf(buf, len, "%s", (k->flags & KEY_NONE) &&
		    *(const char *)p == '\0' ? "none" : (const char *)p);
		break;
	case CONFIG_CODEC:
		snprintf(buf, len, "%s", codec_name(*(enum codec_id *)p));
		break;
	case CONFIG_SECONDS:
		config_format_seconds(*(int *)p, (k->flags & KEY_NONE) != 0,
		    buf, len);
		break;
	}
}

void
config_init(struct zsd_config *cfg)
{
	union config_value v;
	char why[128];
	uint64_t ram;
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < NKEYS; i++) {
		if (config_keys[i].def == NULL)
			continue;
		/* A default that does not parse is a bug in the table. */
		if (config_parse(&config_keys[i], config_keys[i].def, &v, why,
		    sizeof(why)) == -1)
			abort();
		config_store(cfg, &config_keys[i], &v);
	}

	/*
	 * Half of RAM, as zram-generator does: a compressed copy of it
	 * takes about a quarter.  Capped, because the pool grows with what
	 * is swapped and 4G is plenty to ride out a burst.  If the size of
	 * RAM is unknown, the cap: the file costs nothing until it is used.
	 */
	ram = config_ram();
	cfg->disksize = ram / 2 < DISKSIZE_DEFAULT_MAX && ram != 0 ?
	    ram / 2 : DISKSIZE_DEFAULT_MAX;
	cfg->disksize &= ~(uint64_t)(ZSD_PAGE_SIZE - 1);
	if (cfg->disksize < DISKSIZE_MIN)
		cfg->disksize = DISKSIZE_MIN;
	cfg->path[0] = '\0';
}

/*
 * With live, a key SIGHUP may not change is still accepted with the value
 * it has: a reloaded file normally repeats the disksize zsd started with.
 */
int
config_set(struct zsd_config *cfg, const char *key, const char *value,
    bool live, char *err, size_t errlen)
{
	const struct config_key *k;
	union config_value v;
	char why[128];

	if ((k = config_find(key)) == NULL) {
		snprintf(err, errlen, "unknown key '%s'", key);
		return -1;
	}
	if (config_parse(k, value, &v, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "bad value '%s' for key '%s': %s", value,
		    key, why);
		return -1;
	}
	if (live && !(k->flags & KEY_LIVE) && !config_equal(cfg, k, &v)) {
		snprintf(err, errlen, "'%s' cannot change while zsd runs", key);
		return -1;
	}
	config_store(cfg, k, &v);
	return 0;
}

static char *
config_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	return s;
}

/*
 * One line of f, without its '\n', in buf (NUL bytes and all, cut at
 * size - 1 characters); *len is its whole length, which may be more.
 * 1, 0 at the end of the file, -1 on a read error (errno).
 */
static int
config_getline(FILE *f, char *buf, size_t size, size_t *len)
{
	int ch;

	*len = 0;
	while ((ch = getc(f)) != EOF && ch != '\n') {
		if (*len < size - 1)
			buf[*len] = (char)ch;
		/* A line too long ends in an error: no need to count on. */
		if (++*len == size)
			break;
	}
	buf[*len < size - 1 ? *len : size - 1] = '\0';
	if (ch == EOF && ferror(f))
		return -1;
	return ch == EOF && *len == 0 ? 0 : 1;
}

/*
 * The file is applied to a copy, and the copy to cfg only if every line
 * was good: a reload with a typo changes nothing.
 */
int
config_load(struct zsd_config *cfg, const char *path, bool must_exist,
    bool live, char *err, size_t errlen)
{
	struct zsd_config tmp;
	char line[CONFIG_LINE_MAX + 1], msg[256], *s, *eq, *key, *value;
	unsigned int lineno = 0;
	size_t len;
	int r;
	FILE *f;

	if ((f = fopen(path, "re")) == NULL) {
		if (errno == ENOENT && !must_exist)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	tmp = *cfg;
	while ((r = config_getline(f, line, sizeof(line), &len)) > 0) {
		lineno++;
		if (len > CONFIG_LINE_MAX) {
			snprintf(err, errlen, "%s:%u: line longer than %d "
			    "characters", path, lineno, CONFIG_LINE_MAX);
			goto fail;
		}
		/* Not text: the rest of the line would be lost unseen. */
		if (strlen(line) != len) {
			snprintf(err, errlen, "%s:%u: a NUL byte in the line",
			    path, lineno);
			goto fail;
		}
		if (strchr(line, '\r') != NULL) {
			snprintf(err, errlen, "%s:%u: a carriage return "
			    "(DOS line endings?); lines end with \\n only",
			    path, lineno);
			goto fail;
		}
		/* A comment starts a line or follows a space. */
		for (s = line; (s = strchr(s, '#')) != NULL; s++) {
			if (s == line || s[-1] == ' ' || s[-1] == '\t') {
				*s = '\0';
				break;
			}
		}
		s = config_trim(line);
		if (*s == '\0')
			continue;
		if ((eq = strchr(s, '=')) == NULL) {
			snprintf(err, errlen, "%s:%u: expected 'key = value'",
			    path, lineno);
			goto fail;
		}
		*eq = '\0';
		key = config_trim(s);
		value = config_trim(eq + 1);
		if (*key == '\0') {
			snprintf(err, errlen, "%s:%u: no key before '='", path,
			    lineno);
			goto fail;
		}
		if (config_set(&tmp, key, value, live, msg, sizeof(msg)) ==
		    -1) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, msg);
			goto fail;
		}
	}
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	fclose(f);
	if ((size_t)snprintf(tmp.path, sizeof(tmp.path), "%s", path) >=
	    sizeof(tmp.path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	*cfg = tmp;
	return 0;

fail:
	fclose(f);
	return -1;
}

int
config_restart_only(const struct zsd_config *a, const struct zsd_config *b,
    char *buf, size_t len)
{
	char va[PATH_MAX], vb[PATH_MAX];
	size_t i, used = 0;
	bool full = false;
	int n = 0, r;

	buf[0] = '\0';
	for (i = 0; i < NKEYS; i++) {
		if (config_keys[i].flags & KEY_LIVE)
			continue;
		config_format(a, &config_keys[i], va, sizeof(va));
		config_format(b, &config_keys[i], vb, sizeof(vb));
		if (strcmp(va, vb) == 0)
			continue;
		/* Whole names only: once one does not fit, none more. */
		if (!full) {
			r = snprintf(buf + used, len - used, "%s%s", n > 0 ?
			    ", " : "", config_keys[i].name);
			if (r > 0 && (size_t)r < len - used)
				used += (size_t)r;
			else {
				buf[used] = '\0';
				full = true;
			}
		}
		n++;
	}
	return n;
}

void
config_print(const struct zsd_config *cfg, FILE *f)
{
	char value[PATH_MAX];
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		config_format(cfg, &config_keys[i], value, sizeof(value));
		fprintf(f, "%s = %s\n", config_keys[i].name, value);
	}
}

void
config_usage_keys(FILE *f)
{
	const struct config_key *k;
	const char *def;
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		k = &config_keys[i];
		def = k->shown != NULL ? k->shown : k->def;
		/* Long names and defaults get a line of their own. */
		if (strlen(k->name) > 11 || strlen(def) > 14)
			fprintf(f, "  %s  %s\n%29s%s%s\n", k->name, def, "",
			    k->help, (k->flags & KEY_LIVE) ? " *" : "");
		else
			fprintf(f, "  %-12s%-15s%s%s\n", k->name, def,
			    k->help, (k->flags & KEY_LIVE) ? " *" : "");
	}
	fprintf(f, "  (* can change with SIGHUP while zsd runs)\n");
}
