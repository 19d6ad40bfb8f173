/*
 * ctl.c - asking zsd through its control socket, as zsctl(8) does.
 *
 * One connection per request, so that the progress loop and the chaos
 * thread never share one.  Each call takes its buffers from the heap:
 * this is control code, a few requests a second at most.
 */
#include <config.h>

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "zsd-stress.h"

#define CTL_TIMEOUT_STAT	15	/* seconds for stat and status */
#define CTL_TIMEOUT_JOB		120	/* for compact and shrink */

struct ctl_conn {
	struct proto_buf	req;
	unsigned char		reply[PROTO_MAX_MSG];
	struct proto_msg	m;
};

static int
ctl_connect(const char *path, int timeout, char *why, size_t len)
{
	struct sockaddr_un sun;
	struct timeval tv = { .tv_sec = timeout };
	int fd, error;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(why, len, "%s: socket path too long", path);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		error = -errno;
		snprintf(why, len, "socket: %s", strerror(errno));
		return error;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		error = -errno;
		if (errno == ENOENT || errno == ECONNREFUSED)
			snprintf(why, len, "zsd is not running (%s at %s)",
			    errno == ENOENT ? "no socket" : "nothing answers",
			    path);
		else
			snprintf(why, len, "cannot connect to %s: %s", path,
			    strerror(errno));
		close(fd);
		return error;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Send c->req, read the reply into c->m: 0 or -errno with why set. */
static int
ctl_transact(const char *path, struct ctl_conn *c, int timeout, char *why,
    size_t len)
{
	size_t got = 0, used, off = 0;
	char code[16], msg[PROTO_VALUE_MAX + 1];
	ssize_t n;
	int fd, r;

	if (proto_finish(&c->req) != PROTO_OK) {
		snprintf(why, len, "request too large");
		return -EINVAL;
	}
	if ((fd = ctl_connect(path, timeout, why, len)) < 0)
		return fd;
	while (off < c->req.len) {
		n = send(fd, c->req.data + off, c->req.len - off,
		    MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* zsd may have answered and hung up: read it. */
			break;
		}
		off += (size_t)n;
	}
	for (;;) {
		r = proto_parse(c->reply, got, &c->m, &used);
		if (r == PROTO_OK)
			break;
		if (r != PROTO_ETRUNC) {
			snprintf(why, len, "bad reply from zsd: %s",
			    proto_strerror(r));
			close(fd);
			return -EPROTO;
		}
		n = read(fd, c->reply + got, sizeof(c->reply) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(why, len, "no reply from zsd: %s", n == 0 ?
			    "it hung up" : errno == EAGAIN ? "timed out" :
			    strerror(errno));
			close(fd);
			return n == 0 ? -ECONNRESET : -ETIMEDOUT;
		}
		got += (size_t)n;
	}
	close(fd);
	if (c->m.type == PROTO_ERROR) {
		if (proto_get(&c->m, "message", msg, sizeof(msg)) == NULL)
			snprintf(msg, sizeof(msg), "an error");
		snprintf(why, len, "%s", msg);
		switch (atoi(proto_get(&c->m, "error", code, sizeof(code)) ?
		    code : "0")) {
		case PROTO_ERR_PERM:
			return -EPERM;
		case PROTO_ERR_BUSY:
			return -EBUSY;
		case PROTO_ERR_ARGS:
			return -EINVAL;
		default:
			return -EIO;
		}
	}
	if (c->m.type != PROTO_REPLY) {
		snprintf(why, len, "bad reply from zsd: type %d", c->m.type);
		return -EPROTO;
	}
	return 0;
}

int
ctl_stat(const char *path, struct zsd_stat *st, char *why, size_t len)
{
	static const struct {
		const char	*key;
		size_t		 off;
	} keys[] = {
#define K(f)	{ #f, offsetof(struct zsd_stat, f) }
		K(orig_data_size), K(compr_data_size), K(mem_used_total),
		K(mem_limit), K(mem_used_max), K(same_pages),
		K(pages_compacted), K(huge_pages), K(failed_reads),
		K(failed_writes), K(limit_refusals), K(notify_free),
		K(pages_stored), K(reads), K(writes), K(disksize),
		K(pages_merged),
#undef K
	};
	struct ctl_conn *c;
	struct proto_iter it;
	size_t i;
	int error;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	proto_begin(&c->req, PROTO_STAT);
	if ((error = ctl_transact(path, c, CTL_TIMEOUT_STAT, why, len)) ==
	    0) {
		memset(st, 0, sizeof(*st));
		proto_iter_init(&it, &c->m);
		while (proto_next(&it) == PROTO_KV)
			for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
				if (strcmp(it.key, keys[i].key) == 0)
					*(uint64_t *)((char *)st +
					    keys[i].off) = strtoull(it.value,
					    NULL, 10);
	}
	free(c);
	return error;
}

/* A value cut to fit. */
static void
copy(char *dst, size_t len, const char *src)
{
	size_t n = strnlen(src, len - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

int
ctl_status(const char *path, struct zsd_status *s, char *why, size_t len)
{
	struct ctl_conn *c;
	char v[PROTO_VALUE_MAX + 1];
	int error;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	proto_begin(&c->req, PROTO_STATUS);
	if ((error = ctl_transact(path, c, CTL_TIMEOUT_STAT, why, len)) ==
	    0) {
		memset(s, 0, sizeof(*s));
		if (proto_get(&c->m, "file", v, sizeof(v)))
			copy(s->file, sizeof(s->file), v);
		if (proto_get(&c->m, "algorithm", v, sizeof(v)))
			copy(s->algorithm, sizeof(s->algorithm), v);
		if (proto_get(&c->m, "loop", v, sizeof(v)))
			copy(s->loop, sizeof(s->loop), v);
		if (proto_get(&c->m, "swap", v, sizeof(v)))
			s->swap_on = strcmp(v, "on") == 0;
		if (proto_get(&c->m, "priority", v, sizeof(v)))
			s->priority = atoi(v);
		if (proto_get(&c->m, "disksize", v, sizeof(v)))
			s->disksize = strtoull(v, NULL, 10);
		if (proto_get(&c->m, "pid", v, sizeof(v)))
			s->pid = atol(v);
		if (proto_get(&c->m, "keeper_pid", v, sizeof(v)))
			s->keeper_pid = atol(v);
		if (proto_get(&c->m, "restarts", v, sizeof(v)))
			s->restarts = strtoull(v, NULL, 10);
	}
	free(c);
	return error;
}

int
ctl_command(const char *path, const char *cmd, const char *arg, char *out,
    size_t len)
{
	struct ctl_conn *c;
	struct proto_iter it;
	size_t off = 0;
	int type, error;

	if ((type = proto_type_by_name(cmd)) == -1) {
		snprintf(out, len, "unknown command %s", cmd);
		return -EINVAL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(out, len, "out of memory");
		return -ENOMEM;
	}
	proto_begin(&c->req, type);
	if (arg != NULL)
		proto_add(&c->req, "size", "%s", arg);
	error = ctl_transact(path, c, CTL_TIMEOUT_JOB, out, len);
	if (error == 0) {
		/* The reply's keys, on one line. */
		out[0] = '\0';
		proto_iter_init(&it, &c->m);
		while (proto_next(&it) == PROTO_KV && off < len)
			off += (size_t)snprintf(out + off, len - off,
			    "%s%s=%s", off ? " " : "", it.key, it.value);
	}
	free(c);
	return error;
}
