/*
 * zsctl.c - the client of zsd's control socket.
 *
 * One request per run: connect, send, read the reply, print it as a
 * table, as JSON (--json) or, for stat, in the Prometheus text format
 * (--format=prometheus), and exit with a status scripts can rely on
 * (zsctl(8)).  Options may come before or after the command, as with
 * zramctl or git.  It speaks proto.h and links nothing else.
 */
#include <config.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "zsctl.h"

#define ZSCTL_SOCKET		"/run/zsd/control"
#define ZSCTL_TIMEOUT		120	/* seconds for the reply */
#define ZSCTL_MAX_WORDS		3	/* command, argument, one too many */

/* Exit statuses. */
#define EXIT_OK			0
#define EXIT_ZSD_ERROR		1	/* zsd answered with an error */
#define EXIT_USAGE		2
#define EXIT_UNREACHABLE	3	/* no zsd, or no reply */
#define EXIT_DENIED		4

enum format {
	FORMAT_TEXT,
	FORMAT_JSON,
	FORMAT_PROMETHEUS,		/* stat only */
};

/* Long options without a short one. */
enum {
	OPT_THRESHOLD = 256,
	OPT_MAX_PAGES,
};

/* What recompress (the first three) and writeback (all four) pick. */
static const char *const pick_types[] = { "idle", "huge", "huge_idle",
    "incompressible" };

static const char	*socket_path = ZSCTL_SOCKET;
static enum format	 format;
static bool		 bytes;		/* sizes in bytes */
static bool		 all;		/* classes: empty ones too */
static bool		 force;		/* stop: even if pages will not fit */
static bool		 handover;	/* restart: to the service manager */
static const char	*threshold_arg;	/* --threshold, as given */
static const char	*max_pages_arg;	/* --max-pages, as given */
static int		 timeout = ZSCTL_TIMEOUT;
static unsigned char	 msg[PROTO_MAX_MSG];
static unsigned char	 msg_classes[PROTO_MAX_MSG];	/* prometheus */

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("zsctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(status);
}

static void __attribute__((noreturn))
usage(FILE *f, int status)
{
	fprintf(f, "usage: zsctl [options] command [argument] [options]\n"
	    "\n"
	    "  status        one row per swap file\n"
	    "  stat          every counter of the store and the pool\n"
	    "  classes [-a]  the pool's size classes (-a: empty ones too)\n"
	    "  compact       compact the pool now (root)\n"
	    "  limit SIZE    set mem_limit: 512M, 25%%, none (root)\n"
	    "  shrink SIZE   unmap that much of the pool if it can (root)\n"
	    "  reset-max     reset mem_used_max (root)\n"
	    "  stop [-f]     stop zsd, swapoff first, and wait (root;\n"
	    "                -f, --force: even if the pages will not fit)\n"
	    "  restart       a new zsd server takes over, swap stays on, and\n"
	    "                wait for it (root; --handover: the keeper exits\n"
	    "                too, the service manager starts the next zsd)\n"
	    "  idle all|SECONDS\n"
	    "                mark every page idle, or those unused for SECONDS "
	    "(root)\n"
	    "  recompress [idle|huge|huge_idle] [--threshold BYTES] "
	    "[--max-pages N]\n"
	    "                recompress those pages with zstd (root; default "
	    "idle)\n"
	    "  writeback [idle|huge|huge_idle|incompressible] [--max-pages N]\n"
	    "                write those pages to the backing file (root; "
	    "default idle)\n"
	    "\n"
	    "  -s, --socket=PATH    zsd's control socket (default "
	    ZSCTL_SOCKET ")\n"
	    "  -j, --json           print JSON, the same as --format=json\n"
	    "      --format=FORMAT  text, json, or prometheus (stat only)\n"
	    "  -b, --bytes          print sizes in bytes\n"
	    "  -a, --all            classes, stat --format=prometheus: "
	    "empty classes too\n"
	    "  -t, --timeout=SECS   wait that long for the reply (default "
	    "%d)\n"
	    "  -h, --help           print this and exit\n"
	    "  -V, --version        print the version and exit\n"
	    "\n"
	    "Options may come before or after the command; \"--\" ends "
	    "them.\n", ZSCTL_TIMEOUT);
	exit(status);
}

/* 0B, 4K, 1.5M, 12G: zramctl's way. */
static const char *
human(unsigned long long v, char *buf, size_t len)
{
	static const char units[] = "BKMGTPE";
	double d = (double)v;
	int u = 0;

	if (bytes) {
		snprintf(buf, len, "%llu", v);
		return buf;
	}
	while (d >= 1024 && units[u + 1] != '\0') {
		d /= 1024;
		u++;
	}
	if (u == 0 || d >= 10 || d == (double)(unsigned long long)d)
		snprintf(buf, len, "%.0f%c", d, units[u]);
	else
		snprintf(buf, len, "%.1f%c", d, units[u]);
	return buf;
}

/* A value cut to fit. */
static void
copy(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static unsigned long long
num(const char *s)
{
	return strtoull(s, NULL, 10);
}

static bool
is_number(const char *s)
{
	const char *p = s;

	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return *p == '\0';
}

static void
json_string(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static void
json_value(const char *s)
{
	if (is_number(s))
		fputs(s, stdout);
	else
		json_string(s);
}

/* Replies of one record: a JSON object of every key. */
static void
json_object(const struct proto_msg *m)
{
	struct proto_iter it;
	const char *sep = "";
	int r;

	proto_iter_init(&it, m);
	putchar('{');
	while ((r = proto_next(&it)) != 0) {
		if (r != PROTO_KV)
			continue;
		printf("%s\n  ", sep);
		json_string(it.key);
		fputs(": ", stdout);
		json_value(it.value);
		sep = ",";
	}
	puts("\n}");
}

/* Replies of records: a JSON array of objects. */
static void
json_records(const struct proto_msg *m)
{
	struct proto_iter it;
	const char *sep = "", *ksep = "";
	bool open = false;
	int r;

	proto_iter_init(&it, m);
	putchar('[');
	while ((r = proto_next(&it)) != 0) {
		if (r == PROTO_RECORD_END) {
			if (open)
				fputs(" }", stdout);
			open = false;
			continue;
		}
		if (!open) {
			printf("%s\n  {", sep);
			sep = ",";
			ksep = "";
			open = true;
		}
		printf("%s ", ksep);
		json_string(it.key);
		fputs(": ", stdout);
		json_value(it.value);
		ksep = ",";
	}
	if (open)
		fputs(" }", stdout);
	puts("\n]");
}

static void
print_status(const struct proto_msg *m)
{
	struct proto_iter it;
	char name[PROTO_VALUE_MAX + 1] = "", alg[32] = "", loop[64] = "";
	char prio[16] = "", swap[16] = "", transport[16] = "", b[6][32];
	unsigned long long v[6] = { 0 };
	static const char *const keys[6] = { "disksize", "data", "compr",
	    "total", "same_pages", "huge_pages" };
	int r, i;

	printf("%-24s %-9s %8s %8s %8s %8s %6s %6s %-11s %5s %s\n", "NAME",
	    "ALGORITHM", "DISKSIZE", "DATA", "COMPR", "TOTAL", "SAME",
	    "HUGE", "LOOP", "PRIO", "TRANSPORT");
	proto_iter_init(&it, m);
	while ((r = proto_next(&it)) != 0) {
		if (r == PROTO_KV) {
			if (strcmp(it.key, "file") == 0)
				copy(name, sizeof(name), it.value);
			else if (strcmp(it.key, "algorithm") == 0)
				copy(alg, sizeof(alg), it.value);
			else if (strcmp(it.key, "loop") == 0)
				copy(loop, sizeof(loop), it.value);
			else if (strcmp(it.key, "priority") == 0)
				copy(prio, sizeof(prio), it.value);
			else if (strcmp(it.key, "swap") == 0)
				copy(swap, sizeof(swap), it.value);
			else if (strcmp(it.key, "transport") == 0)
				copy(transport, sizeof(transport), it.value);
			for (i = 0; i < 6; i++)
				if (strcmp(it.key, keys[i]) == 0)
					v[i] = num(it.value);
			continue;
		}
		for (i = 0; i < 4; i++)
			human(v[i], b[i], sizeof(b[i]));
		printf("%-24s %-9s %8s %8s %8s %8s %6llu %6llu %-11s %5s %s\n",
		    name, alg, b[0], b[1], b[2], b[3], v[4], v[5],
		    strcmp(swap, "on") == 0 ? loop : "-",
		    strcmp(swap, "on") == 0 ? prio : "-",
		    transport[0] != '\0' ? transport : "-");
	}
}

static void
print_stat(const struct proto_msg *m)
{
	struct proto_iter it;
	char h[32];
	size_t n;

	proto_iter_init(&it, m);
	while (proto_next(&it) == PROTO_KV) {
		n = strlen(it.key);
		/* Byte counts get a readable size beside them. */
		if (!bytes && ((n > 5 && strcmp(it.key + n - 5, "_size") == 0)
		    || strncmp(it.key, "mem_", 4) == 0 || strcmp(it.key,
		    "disksize") == 0 || strncmp(it.key, "pool_bytes_", 11) ==
		    0))
			printf("%-26s %20s  %s\n", it.key, it.value,
			    human(num(it.value), h, sizeof(h)));
		else
			printf("%-26s %20s\n", it.key, it.value);
	}
}

/* classes: "fields" names the columns of each "class" row. */
static void
json_classes(const struct proto_msg *m)
{
	struct proto_iter it;
	char fields[PROTO_VALUE_MAX + 1] = "", *names[32], *p, *save;
	char *vals[64];
	const char *sep = "";
	int nn = 0, nv, i;

	proto_iter_init(&it, m);
	putchar('[');
	while (proto_next(&it) == PROTO_KV) {
		if (strcmp(it.key, "fields") == 0) {
			snprintf(fields, sizeof(fields), "%s", it.value);
			for (nn = 0, p = strtok_r(fields, " ", &save);
			    p != NULL && nn < 32; p = strtok_r(NULL, " ",
			    &save))
				names[nn++] = p;
			continue;
		}
		if (strcmp(it.key, "class") != 0)
			continue;
		for (nv = 0, p = strtok_r(it.value, " ", &save);
		    p != NULL && nv < 64; p = strtok_r(NULL, " ", &save))
			vals[nv++] = p;
		printf("%s\n  {", sep);
		sep = ",";
		for (i = 0; i < nn && i < nv; i++) {
			p = names[i];
			if (strlen(p) > 3 && strcmp(p + strlen(p) - 3,
			    "...") == 0) {
				/* The rest, as an array. */
				printf("%s \"%.*s\": [", i ? "," : "",
				    (int)strlen(p) - 3, p);
				for (; i < nv; i++)
					printf("%s%s", i == nn - 1 ? "" : ",",
					    vals[i]);
				putchar(']');
				break;
			}
			printf("%s \"%s\": %s", i ? "," : "", p, vals[i]);
		}
		fputs(" }", stdout);
	}
	puts("\n]");
}

static void
print_classes(const struct proto_msg *m)
{
	static const char *const groups[] = { "EMPTY", "<10", "<20", "<30",
	    "<40", "<50", "<60", "<70", "<80", "<90", "<100", "FULL" };
	struct proto_iter it;
	unsigned long long v[32], tot[32] = { 0 };
	char *p, *save, *end;
	int nv, i;

	printf("%5s %5s %3s %4s %7s %8s %8s %7s %8s", "CLASS", "SIZE",
	    "PPZ", "OPZ", "ZSPAGES", "ALLOC", "USED", "PAGES", "FREEABLE");
	for (i = 0; i < 12; i++)
		printf(" %5s", groups[i]);
	putchar('\n');
	proto_iter_init(&it, m);
	while (proto_next(&it) == PROTO_KV) {
		if (strcmp(it.key, "class") != 0)
			continue;
		for (nv = 0, p = strtok_r(it.value, " ", &save);
		    p != NULL && nv < 32; p = strtok_r(NULL, " ", &save))
			v[nv++] = strtoull(p, &end, 10);
		if (nv < 22 || (v[5] == 0 && !all))
			continue;
		/* huge (v[4]) shows as the class marked with '*'. */
		printf("%5llu %4llu%s %3llu %4llu %7llu %8llu %8llu %7llu "
		    "%8llu", v[0], v[1], v[4] ? "*" : " ", v[2], v[3], v[5],
		    v[6], v[7], v[8], v[9]);
		for (i = 10; i < 22; i++)
			printf(" %5llu", v[i]);
		putchar('\n');
		for (i = 5; i < 22; i++)
			tot[i] += v[i];
	}
	printf("%5s %5s %3s %4s %7llu %8llu %8llu %7llu %8llu", "total", "",
	    "", "", tot[5], tot[6], tot[7], tot[8], tot[9]);
	for (i = 10; i < 22; i++)
		printf(" %5llu", tot[i]);
	putchar('\n');
}

/* A key the reply must have; without it zsctl exits. */
static const char *
reply_get(const struct proto_msg *m, const char *key, char *buf, size_t len)
{
	if (proto_get(m, key, buf, len) == NULL)
		die(EXIT_ZSD_ERROR, "incomplete reply from zsd: no %s", key);
	return buf;
}

/* " (N failed)" when pages_failed is there and not 0. */
static void
print_failed(const struct proto_msg *m)
{
	char failed[32];

	if (proto_get(m, "pages_failed", failed, sizeof(failed)) != NULL &&
	    num(failed) != 0)
		printf(" (%s failed)", failed);
}

static void
print_idle(const struct proto_msg *m)
{
	char marked[32], idle[32];

	reply_get(m, "marked", marked, sizeof(marked));
	reply_get(m, "idle_pages", idle, sizeof(idle));
	printf("idle: %s pages marked, %s idle\n", marked, idle);
}

static void
print_recompress(const struct proto_msg *m)
{
	char done[32], scanned[32], saved[32], s[32], h[32];

	reply_get(m, "pages_recompressed", done, sizeof(done));
	reply_get(m, "pages_scanned", scanned, sizeof(scanned));
	reply_get(m, "bytes_saved", saved, sizeof(saved));
	reply_get(m, "seconds", s, sizeof(s));
	printf("recompressed: %s of %s pages", done, scanned);
	print_failed(m);
	printf(", %s saved in %s s\n", human(num(saved), h, sizeof(h)), s);
}

static void
print_writeback(const struct proto_msg *m)
{
	char written[32], bytes_written[32], s[32], left[32], h[32];

	reply_get(m, "pages_written", written, sizeof(written));
	reply_get(m, "bytes_written", bytes_written, sizeof(bytes_written));
	reply_get(m, "seconds", s, sizeof(s));
	printf("written back: %s pages", written);
	print_failed(m);
	printf(" in %s of file in %s s\n", human(num(bytes_written), h,
	    sizeof(h)), s);
	if (proto_get(m, "limit_left", left, sizeof(left)) != NULL &&
	    strcmp(left, "none") != 0)
		printf("limit left today: %s\n", human(num(left), h,
		    sizeof(h)));
}

/*
 * writeback: the error that ended it before every page it picked was
 * written (no backing file, a write that failed), on stderr whatever
 * the format; the exit status.
 */
static int
writeback_status(const struct proto_msg *m)
{
	char why[PROTO_VALUE_MAX + 1];

	if (proto_get(m, "error", why, sizeof(why)) == NULL || why[0] == '\0')
		return EXIT_OK;
	fprintf(stderr, "zsctl: writeback stopped: %s\n", why);
	return EXIT_ZSD_ERROR;
}

static void
print_result(int type, const struct proto_msg *m)
{
	char a[32], b[32], c[32], s[32];
	char v1[PROTO_VALUE_MAX + 1], v2[PROTO_VALUE_MAX + 1];

	switch (type) {
	case PROTO_COMPACT:
		if (proto_get(m, "pages_freed", a, sizeof(a)) == NULL ||
		    proto_get(m, "objs_moved", b, sizeof(b)) == NULL ||
		    proto_get(m, "bytes_moved", v1, sizeof(v1)) == NULL ||
		    proto_get(m, "seconds", s, sizeof(s)) == NULL)
			die(EXIT_ZSD_ERROR, "incomplete reply from zsd");
		printf("compacted: %s pages freed (%s), %s objects moved "
		    "(%s) in %s s\n", a, human(num(a) * 4096, c, sizeof(c)),
		    b, human(num(v1), v2, sizeof(v2)), s);
		break;
	case PROTO_SHRINK:
		printf("shrink: %s of %s unmapped in %s s\n",
		    human(num(proto_get(m, "bytes_unmapped", v1,
		    sizeof(v1)) ? v1 : "0"), a, sizeof(a)),
		    human(num(proto_get(m, "bytes_asked", v2,
		    sizeof(v2)) ? v2 : "0"), b, sizeof(b)),
		    proto_get(m, "seconds", s, sizeof(s)) ? s : "?");
		break;
	case PROTO_LIMIT:
		proto_get(m, "mem_limit", v1, sizeof(v1));
		proto_get(m, "old_mem_limit", v2, sizeof(v2));
		printf("mem_limit: %s (was %s)\n",
		    num(v1) ? human(num(v1), a, sizeof(a)) : "none",
		    num(v2) ? human(num(v2), b, sizeof(b)) : "none");
		break;
	case PROTO_RESET_MAX:
		proto_get(m, "mem_used_max", v1, sizeof(v1));
		printf("mem_used_max: %s\n", human(num(v1), a, sizeof(a)));
		break;
	case PROTO_IDLE:
		print_idle(m);
		break;
	case PROTO_RECOMPRESS:
		print_recompress(m);
		break;
	case PROTO_WRITEBACK:
		print_writeback(m);
		break;
	}
}

/* A connection to zsd, or -1 with errno. */
static int
zsd_try_connect(void)
{
	struct sockaddr_un sun;
	struct timeval tv = { .tv_sec = timeout };
	int fd, error;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(socket_path) >= sizeof(sun.sun_path))
		die(EXIT_USAGE, "%s: socket path too long", socket_path);
	memcpy(sun.sun_path, socket_path, strlen(socket_path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die(EXIT_UNREACHABLE, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		error = errno;
		close(fd);
		errno = error;
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

static int
zsd_connect(void)
{
	int fd;

	if ((fd = zsd_try_connect()) == -1) {
		switch (errno) {
		case ENOENT:
			die(EXIT_UNREACHABLE, "zsd is not running (no socket "
			    "at %s)", socket_path);
		case ECONNREFUSED:
			die(EXIT_UNREACHABLE, "zsd is not running (nothing "
			    "answers on %s)", socket_path);
		case EACCES:
		case EPERM:
			die(EXIT_DENIED, "permission denied: cannot connect "
			    "to %s", socket_path);
		default:
			die(EXIT_UNREACHABLE, "cannot connect to %s: %s",
			    socket_path, strerror(errno));
		}
	}
	return fd;
}

/*
 * zsd may have answered and hung up before reading (too many clients):
 * then the answer waits to be read, so a broken pipe is not fatal here.
 */
static void
send_all(int fd, const unsigned char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = send(fd, p, len, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EPIPE || errno == ECONNRESET)
				return;
			die(EXIT_UNREACHABLE, "sending to zsd: %s",
			    strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
}

/*
 * The whole reply, into buf: NULL, or why there is none (with the exit
 * status it means in *status).
 */
static const char *
try_receive(int fd, unsigned char *buf, size_t size, struct proto_msg *m,
    int *status)
{
	static char why[256];
	size_t len = 0, used;
	ssize_t n;
	int r;

	for (;;) {
		r = proto_parse(buf, len, m, &used);
		if (r == PROTO_OK)
			break;
		*status = EXIT_ZSD_ERROR;
		if (r != PROTO_ETRUNC) {
			snprintf(why, sizeof(why), "bad reply from zsd: %s",
			    proto_strerror(r));
			return why;
		}
		*status = EXIT_UNREACHABLE;
		if ((n = read(fd, buf + len, size - len)) < 0) {
			if (errno == EINTR)
				continue;
			snprintf(why, sizeof(why), "no reply from zsd: %s",
			    errno == EAGAIN ? "timed out" : strerror(errno));
			return why;
		}
		if (n == 0) {
			snprintf(why, sizeof(why), "zsd closed the connection "
			    "%s", len == 0 ? "without a reply" :
			    "in the middle of its reply");
			return why;
		}
		len += (size_t)n;
	}
	if (m->type != PROTO_REPLY && m->type != PROTO_ERROR) {
		*status = EXIT_ZSD_ERROR;
		snprintf(why, sizeof(why), "bad reply from zsd: type %d",
		    m->type);
		return why;
	}
	return NULL;
}

static void
receive(int fd, unsigned char *buf, size_t size, struct proto_msg *m)
{
	const char *why;
	int status;

	if ((why = try_receive(fd, buf, size, m, &status)) != NULL)
		die(status, "%s", why);
}

/* Send a request of that type, with key=arg unless arg is NULL. */
static void
request(int fd, int type, const char *key, const char *arg)
{
	static struct proto_buf req;

	proto_begin(&req, type);
	if (arg != NULL)
		proto_add(&req, key, "%s", arg);
	if (proto_finish(&req) != PROTO_OK)
		die(EXIT_USAGE, "request too large");
	send_all(fd, req.data, req.len);
}

/* An error reply on stderr; the exit status it means. */
static int
reply_error(const struct proto_msg *m)
{
	char code[16], why[PROTO_VALUE_MAX + 1];

	if (proto_get(m, "message", why, sizeof(why)) == NULL)
		snprintf(why, sizeof(why), "zsd returned an error");
	fprintf(stderr, "zsctl: %s\n", why);
	switch (atoi(proto_get(m, "error", code, sizeof(code)) ? code : "0")) {
	case PROTO_ERR_PERM:
		return EXIT_DENIED;
	case PROTO_ERR_ARGS:
		return EXIT_USAGE;
	default:
		return EXIT_ZSD_ERROR;
	}
}

/*
 * While a stop goes on: 1 once zsd is gone (its socket and its process),
 * -1 with the reason in why if it refused or failed (a stop after the
 * failed0 zsd had counted when asked), 0 while it is still stopping.
 */
static int
stop_poll(long pid, unsigned long long failed0, char *why, size_t len)
{
	struct proto_msg m;
	char v[32];
	int fd, status;

	if ((fd = zsd_try_connect()) == -1) {
		if (errno != ENOENT && errno != ECONNREFUSED)
			die(EXIT_UNREACHABLE, "cannot connect to %s: %s",
			    socket_path, strerror(errno));
		/* No socket: stopped, once the process is gone too. */
		return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
	}
	request(fd, PROTO_STATUS, NULL, NULL);
	if (try_receive(fd, msg, sizeof(msg), &m, &status) != NULL ||
	    m.type != PROTO_REPLY) {
		close(fd);	/* zsd is on its way out */
		return 0;
	}
	close(fd);
	if (proto_get(&m, "stops_failed", v, sizeof(v)) == NULL ||
	    num(v) <= failed0 ||
	    proto_get(&m, "stopping", v, sizeof(v)) == NULL ||
	    strcmp(v, "no") != 0)
		return 0;
	if (proto_get(&m, "stop_failed", why, len) == NULL)
		snprintf(why, len, "no reason given");
	return -1;
}

/*
 * While a restart goes on: the pid of the server that answers on the
 * socket once it is not old_pid, or 0.
 */
static long
restart_poll(long old_pid)
{
	struct proto_msg m;
	char v[32];
	long pid = 0;
	int fd, status;

	if ((fd = zsd_try_connect()) == -1)
		return 0;		/* between the two servers */
	request(fd, PROTO_STATUS, NULL, NULL);
	if (try_receive(fd, msg, sizeof(msg), &m, &status) == NULL &&
	    m.type == PROTO_REPLY && proto_get(&m, "pid", v, sizeof(v)))
		pid = atol(v);
	close(fd);
	return pid == old_pid ? 0 : pid;
}

/*
 * restart --handover: the server and the keeper exit, and the service
 * manager, which starts the next zsd, may wait for that: wait until both
 * are gone, not for a new server.
 */
static int
handover_wait(long pid, long keeper_pid)
{
	struct timespec t0, t, nap = { 0, 20 * 1000 * 1000 };

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (pid <= 0)
		die(EXIT_ZSD_ERROR, "incomplete reply from zsd");
	while (kill((pid_t)pid, 0) == 0 ||
	    (keeper_pid > 0 && kill((pid_t)keeper_pid, 0) == 0)) {
		nanosleep(&nap, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= timeout)
			die(EXIT_ZSD_ERROR, "server pid %ld or keeper pid %ld "
			    "still there %d s after a handover was asked for",
			    pid, keeper_pid, timeout);
	}
	if (format == FORMAT_JSON)
		printf("{\"old_pid\": %ld, \"keeper_pid\": %ld}\n", pid,
		    keeper_pid);
	else
		printf("zsd handed over: server pid %ld and keeper pid %ld "
		    "exited; the service manager starts the next\n", pid,
		    keeper_pid);
	return EXIT_OK;
}

/* restart: ask, then wait until a new server answers. */
static int
restart_zsd(int fd)
{
	struct timespec t0, t, nap = { 0, 50 * 1000 * 1000 };
	struct proto_msg m;
	char v[32];
	long pid, new_pid;

	request(fd, PROTO_RESTART, "handover", handover ? "yes" : NULL);
	receive(fd, msg, sizeof(msg), &m);
	if (m.type == PROTO_ERROR)
		return reply_error(&m);
	close(fd);
	if (proto_get(&m, "pid", v, sizeof(v)) == NULL)
		die(EXIT_ZSD_ERROR, "incomplete reply from zsd");
	pid = atol(v);
	if (handover)
		return handover_wait(pid, proto_get(&m, "keeper_pid", v,
		    sizeof(v)) != NULL ? atol(v) : 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while ((new_pid = restart_poll(pid)) == 0) {
		nanosleep(&nap, NULL);
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= timeout)
			die(EXIT_ZSD_ERROR, "no new zsd server answers %d s "
			    "after server pid %ld was asked to restart (-t "
			    "sets how long to wait)", timeout, pid);
	}
	if (format == FORMAT_JSON)
		printf("{\"old_pid\": %ld, \"pid\": %ld}\n", pid, new_pid);
	else
		printf("zsd restarted: server pid %ld replaced by pid %ld\n",
		    pid, new_pid);
	return EXIT_OK;
}

/* stop [--force]: ask, then wait until zsd is gone or says it is not. */
static int
stop_zsd(int fd)
{
	struct timespec t0, t, nap = { 0, 200 * 1000 * 1000 };
	struct proto_msg m;
	char v[32], why[PROTO_VALUE_MAX + 1];
	unsigned long long failed0;
	long pid;
	int r;

	request(fd, PROTO_STOP, "force", force ? "yes" : NULL);
	receive(fd, msg, sizeof(msg), &m);
	if (m.type == PROTO_ERROR)
		return reply_error(&m);
	close(fd);
	if (proto_get(&m, "pid", v, sizeof(v)) == NULL)
		die(EXIT_ZSD_ERROR, "incomplete reply from zsd");
	pid = atol(v);
	failed0 = num(proto_get(&m, "stops_failed", v, sizeof(v)) ? v : "0");
	if (format == FORMAT_TEXT) {
		printf("zsd (pid %ld) is stopping%s\n", pid, force ?
		    ", forced" : "");
		fflush(stdout);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		nanosleep(&nap, NULL);
		if ((r = stop_poll(pid, failed0, why, sizeof(why))) != 0)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec >= timeout)
			die(EXIT_ZSD_ERROR, "zsd (pid %ld) has not stopped "
			    "after %d s; it may still be bringing pages back "
			    "from swap (-t sets how long to wait)", pid,
			    timeout);
	}
	if (format == FORMAT_JSON) {
		printf("{\"pid\": %ld, \"stopped\": %s", pid, r > 0 ?
		    "true" : "false");
		if (r < 0) {
			printf(", \"reason\": ");
			json_string(why);
		}
		printf("}\n");
	} else if (r > 0)
		printf("zsd stopped\n");
	if (r > 0)
		return EXIT_OK;
	fprintf(stderr, "zsctl: zsd did not stop and still serves its swap: "
	    "%s\n", why);
	if (!force)
		fprintf(stderr, "zsctl: 'zsctl stop --force' swaps off all the "
		    "same: the kernel may then OOM-kill the processes whose "
		    "pages do not fit\n");
	return EXIT_ZSD_ERROR;
}

static void
words_add(char **words, int *n, char *word)
{
	if (*n < ZSCTL_MAX_WORDS)
		words[*n] = word;
	(*n)++;
}

/*
 * The options, wherever they are, into the globals; the other words
 * (the command and its argument) into words, the first
 * ZSCTL_MAX_WORDS of them; how many there were.  "-" first in the
 * option string keeps them in order whatever POSIXLY_CORRECT says;
 * after "--" every word is a word.
 */
static int
parse_args(int argc, char **argv, char **words)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "format", required_argument, NULL, 'F' },
		{ "bytes", no_argument, NULL, 'b' },
		{ "all", no_argument, NULL, 'a' },
		{ "force", no_argument, NULL, 'f' },
		{ "handover", no_argument, NULL, 'H' },
		{ "threshold", required_argument, NULL, OPT_THRESHOLD },
		{ "max-pages", required_argument, NULL, OPT_MAX_PAGES },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	int c, n = 0;
	char *end;
	long l;

	while ((c = getopt_long(argc, argv, "-s:jbaft:hV", longopts,
	    NULL)) != -1) {
		switch (c) {
		case 1: words_add(words, &n, optarg); break;
		case 's': socket_path = optarg; break;
		case 'j': format = FORMAT_JSON; break;
		case 'b': bytes = true; break;
		case 'a': all = true; break;
		case 'f': force = true; break;
		case 'H': handover = true; break;
		case OPT_THRESHOLD: threshold_arg = optarg; break;
		case OPT_MAX_PAGES: max_pages_arg = optarg; break;
		case 'F':
			if (strcmp(optarg, "text") == 0)
				format = FORMAT_TEXT;
			else if (strcmp(optarg, "json") == 0)
				format = FORMAT_JSON;
			else if (strcmp(optarg, "prometheus") == 0)
				format = FORMAT_PROMETHEUS;
			else
				die(EXIT_USAGE, "--format=%s: expected text, "
				    "json or prometheus", optarg);
			break;
		case 't':
			l = strtol(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || l < 1 ||
			    l > 86400)
				die(EXIT_USAGE, "-t %s: expected seconds, 1 to "
				    "86400", optarg);
			timeout = (int)l;
			break;
		case 'h': usage(stdout, EXIT_OK);
		case 'V': printf("zsctl %s\n", PACKAGE_VERSION); exit(EXIT_OK);
		default: usage(stderr, EXIT_USAGE);
		}
	}
	for (; optind < argc; optind++)
		words_add(words, &n, argv[optind]);
	return n;
}

/* A usage error in the words of a command: why, then the usage. */
static void __attribute__((noreturn, format(printf, 1, 2)))
usage_words(const char *fmt, ...)
{
	va_list ap;

	fputs("zsctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(stderr, EXIT_USAGE);
}

/* s as a count: digits only, no sign, space or suffix, and at most max. */
static bool
parse_count(const char *s, unsigned long long max, unsigned long long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return *end == '\0' && errno == 0 && *v <= max;
}

/* status, stat, compact, stop...: nothing. */
static void
args_none(const char *cmd, char **args, int nargs)
{
	if (nargs > 0)
		usage_words("%s takes no arguments, not '%s'", cmd, args[0]);
}

/* limit, shrink SIZE: size=SIZE as given; zsd parses it. */
static void
args_size(struct proto_buf *req, const char *cmd, char **args, int nargs)
{
	if (nargs == 0)
		usage_words("%s takes a SIZE", cmd);
	if (nargs > 1)
		usage_words("%s takes one SIZE, not '%s'", cmd, args[1]);
	if (args[0][0] == '\0' || strlen(args[0]) > PROTO_VALUE_MAX ||
	    strpbrk(args[0], "\n\r\t") != NULL)
		die(EXIT_USAGE, "%s: bad SIZE '%s'", cmd, args[0]);
	proto_add(req, "size", "%s", args[0]);
}

/* idle all|SECONDS: age=all or age=SECONDS. */
static void
args_idle(struct proto_buf *req, const char *cmd, char **args, int nargs)
{
	unsigned long long age;

	if (nargs == 0)
		usage_words("%s takes all or SECONDS", cmd);
	if (nargs > 1)
		usage_words("%s takes one argument, all or SECONDS, not also "
		    "'%s'", cmd, args[1]);
	if (strcmp(args[0], "all") == 0)
		proto_add(req, "age", "all");
	else if (parse_count(args[0], ULLONG_MAX, &age))
		proto_add_u64(req, "age", age);
	else
		die(EXIT_USAGE, "%s: '%s': expected all or SECONDS (digits)",
		    cmd, args[0]);
}

/*
 * recompress [TYPE] [--threshold BYTES] [--max-pages N] and writeback
 * [TYPE] [--max-pages N]: only what was given; zsd has the defaults.
 * --threshold on writeback is options_check's to refuse.
 */
static void
args_pass(struct proto_buf *req, int type, const char *cmd, char **args,
    int nargs)
{
	size_t ntypes = type == PROTO_WRITEBACK ? 4 : 3, i;
	unsigned long long v;

	if (nargs > 1)
		usage_words("%s takes one TYPE at most, not also '%s'", cmd,
		    args[1]);
	if (nargs == 1) {
		for (i = 0; i < ntypes; i++)
			if (strcmp(args[0], pick_types[i]) == 0)
				break;
		if (i == ntypes)
			die(EXIT_USAGE, "%s: unknown TYPE '%s': expected idle, "
			    "huge%s huge_idle%s", cmd, args[0], ntypes == 4 ?
			    "," : " or", ntypes == 4 ? " or incompressible" :
			    "");
		proto_add(req, "type", "%s", args[0]);
	}
	if (threshold_arg != NULL && type == PROTO_RECOMPRESS) {
		if (!parse_count(threshold_arg, 4096, &v))
			die(EXIT_USAGE, "%s: --threshold '%s': expected BYTES, "
			    "0 to 4096", cmd, threshold_arg);
		proto_add_u64(req, "threshold", v);
	}
	if (max_pages_arg != NULL) {
		/* The store takes 0 for no limit: not what 0 says. */
		if (!parse_count(max_pages_arg, ULLONG_MAX, &v) || v == 0)
			die(EXIT_USAGE, "%s: --max-pages '%s': expected a "
			    "number of pages, 1 or more", cmd, max_pages_arg);
		proto_add_u64(req, "max_pages", v);
	}
}

/*
 * The request of cmd (of that type) into req, from the words after it:
 * nargs of them, the first ZSCTL_MAX_WORDS - 1 in args.  A usage error
 * exits.  stop and restart send requests of their own.
 */
static void
request_build(struct proto_buf *req, int type, const char *cmd, char **args,
    int nargs)
{
	proto_begin(req, type);
	switch (type) {
	case PROTO_LIMIT:
	case PROTO_SHRINK:
		args_size(req, cmd, args, nargs);
		break;
	case PROTO_IDLE:
		args_idle(req, cmd, args, nargs);
		break;
	case PROTO_RECOMPRESS:
	case PROTO_WRITEBACK:
		args_pass(req, type, cmd, args, nargs);
		break;
	default:
		args_none(cmd, args, nargs);
		break;
	}
	if (proto_finish(req) != PROTO_OK)
		die(EXIT_USAGE, "request too large");
}

/* The options given that cmd does not take: usage errors. */
static void
options_check(int type, const char *cmd)
{
	if (format == FORMAT_PROMETHEUS && type != PROTO_STAT)
		die(EXIT_USAGE, "%s: --format=prometheus is for stat only",
		    cmd);
	if (force && type != PROTO_STOP)
		die(EXIT_USAGE, "%s: --force is for stop only", cmd);
	if (handover && type != PROTO_RESTART)
		die(EXIT_USAGE, "%s: --handover is for restart only", cmd);
	if (all && type != PROTO_CLASSES && format != FORMAT_PROMETHEUS)
		die(EXIT_USAGE, "%s: -a is for classes and stat "
		    "--format=prometheus only", cmd);
	if (threshold_arg != NULL && type != PROTO_RECOMPRESS)
		die(EXIT_USAGE, "%s: --threshold is for recompress only", cmd);
	if (max_pages_arg != NULL && type != PROTO_RECOMPRESS &&
	    type != PROTO_WRITEBACK)
		die(EXIT_USAGE, "%s: --max-pages is for recompress and "
		    "writeback only", cmd);
}

int
main(int argc, char **argv)
{
	static struct proto_buf req;
	struct proto_msg m, mc;
	char *words[ZSCTL_MAX_WORDS];
	const char *cmd;
	int fd, type, nwords;

	if ((nwords = parse_args(argc, argv, words)) == 0)
		usage(stderr, EXIT_USAGE);
	cmd = words[0];
	if ((type = proto_type_by_name(cmd)) == -1) {
		fprintf(stderr, "zsctl: unknown command '%s'\n", cmd);
		usage(stderr, EXIT_USAGE);
	}
	request_build(&req, type, cmd, words + 1, nwords - 1);
	options_check(type, cmd);

	fd = zsd_connect();
	if (type == PROTO_STOP)
		return stop_zsd(fd);
	if (type == PROTO_RESTART)
		return restart_zsd(fd);
	send_all(fd, req.data, req.len);
	receive(fd, msg, sizeof(msg), &m);
	if (m.type == PROTO_ERROR)
		return reply_error(&m);
	if (format == FORMAT_PROMETHEUS) {
		/* The per-class figures, on the same connection. */
		request(fd, PROTO_CLASSES, NULL, NULL);
		receive(fd, msg_classes, sizeof(msg_classes), &mc);
		if (mc.type == PROTO_ERROR)
			return reply_error(&mc);
	}
	close(fd);

	if (format == FORMAT_PROMETHEUS)
		prom_print(stdout, &m, &mc, all);
	else if (format == FORMAT_JSON) {
		if (type == PROTO_STATUS)
			json_records(&m);
		else if (type == PROTO_CLASSES)
			json_classes(&m);
		else
			json_object(&m);
	} else if (type == PROTO_STATUS)
		print_status(&m);
	else if (type == PROTO_STAT)
		print_stat(&m);
	else if (type == PROTO_CLASSES)
		print_classes(&m);
	else
		print_result(type, &m);
	if (fflush(stdout) == EOF || ferror(stdout))
		die(EXIT_ZSD_ERROR, "writing the output: %s",
		    strerror(errno));
	return type == PROTO_WRITEBACK ? writeback_status(&m) : EXIT_OK;
}
