/*
 * proto.h - the control protocol between zsd and zsctl.
 *
 * A message is a 12-byte header and a payload:
 *
 *	0	magic		"ZSDC" (0x5a 0x53 0x44 0x43)
 *	4	version		PROTO_VERSION
 *	5	type		enum proto_type: a request or a reply
 *	6	reserved	two bytes, zero
 *	8	length		of the payload, big endian, at most
 *				PROTO_MAX_PAYLOAD
 *
 * The payload is text: lines of "key=value\n", where a key is 1 to
 * PROTO_KEY_MAX of [a-z0-9_] and a value 0 to PROTO_VALUE_MAX bytes
 * without control characters.  An empty line ends a record, for replies
 * that are tables (one record per row).  Nothing else is allowed.
 *
 * A client sends requests; zsd answers each with PROTO_REPLY (the data)
 * or PROTO_ERROR (keys "error", the enum proto_error number, "name" and
 * "message"), in order.  After an error in the framing (bad magic,
 * version, reserved bytes, length) zsd replies and closes the connection.
 *
 * proto.c never allocates, never logs and keeps no state: the daemon,
 * zsctl and the tests share it.
 */
#ifndef PROTO_H
#define PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC		"ZSDC"
#define PROTO_VERSION		1
#define PROTO_HDR_SIZE		12
#define PROTO_MAX_MSG		65536		/* header included */
#define PROTO_MAX_PAYLOAD	(PROTO_MAX_MSG - PROTO_HDR_SIZE)
#define PROTO_KEY_MAX		63
#define PROTO_VALUE_MAX		4095

enum proto_type {
	/* Requests. */
	PROTO_STATUS = 1,	/* one record per swap file */
	PROTO_STAT = 2,		/* the store's and the pool's counters */
	PROTO_CLASSES = 3,	/* the per-class table */
	PROTO_COMPACT = 4,	/* compact now (root) */
	PROTO_LIMIT = 5,	/* size=SIZE: set mem_limit (root) */
	PROTO_SHRINK = 6,	/* size=SIZE: offline sections (root) */
	PROTO_RESET_MAX = 7,	/* mem_used_max = mem_used_total (root) */
	PROTO_STOP = 8,		/* [force=yes]: stop zsd (root) */
	PROTO_RESTART = 9,	/* a new server takes over (root) */
	PROTO_IDLE = 10,	/* age=all|SECONDS: mark pages idle (root) */
	PROTO_RECOMPRESS = 11,	/* [type=idle|huge|huge_idle] [threshold=N]
				   [max_pages=N]: recompress (root) */
	PROTO_WRITEBACK = 12,	/* [type=idle|huge|huge_idle|incompressible]
				   [max_pages=N]: write back (root) */
	/* Replies. */
	PROTO_REPLY = 64,
	PROTO_ERROR = 65,
};

/* What proto_parse and proto_check_request find wrong. */
enum proto_status {
	PROTO_OK = 0,
	PROTO_ETRUNC,		/* not all of it yet: read more */
	PROTO_EMAGIC,		/* not our protocol */
	PROTO_EVERSION,		/* a version we do not speak */
	PROTO_ERESERVED,	/* reserved bytes not zero */
	PROTO_ETOOBIG,		/* length over PROTO_MAX_PAYLOAD */
	PROTO_ETYPE,		/* unknown type; the message is framed */
	PROTO_EPAYLOAD,		/* not key=value lines; framed */
	PROTO_EARGS,		/* wrong arguments for the request */
};

/* The error codes of a PROTO_ERROR reply. */
enum proto_error {
	PROTO_ERR_PROTOCOL = 1,	/* malformed message */
	PROTO_ERR_UNKNOWN = 2,	/* unknown command */
	PROTO_ERR_ARGS = 3,	/* bad arguments */
	PROTO_ERR_PERM = 4,	/* only root may do that */
	PROTO_ERR_BUSY = 5,	/* too many clients, or a job runs */
	PROTO_ERR_FAILED = 6,	/* the command failed */
};

struct proto_msg {
	int			 type;
	size_t			 len;		/* of the payload */
	const unsigned char	*payload;	/* into the parsed buffer */
};

/*
 * Parse the message at the start of buf.  PROTO_OK with m filled and
 * *used its size; PROTO_ETRUNC if buf holds a good prefix only;
 * PROTO_ETYPE or PROTO_EPAYLOAD with *used set (the next message starts
 * there); else the framing is broken and *used is 0.
 */
int		 proto_parse(const void *buf, size_t len, struct proto_msg *m,
		    size_t *used);
/* PROTO_OK if m is a request with the arguments its type takes. */
int		 proto_check_request(const struct proto_msg *m);
const char	*proto_strerror(int status);
/* Request names as zsctl takes them ("reset-max"); NULL, or -1. */
const char	*proto_type_name(int type);
int		 proto_type_by_name(const char *name);
const char	*proto_error_name(int code);

/* Building a message: errors stick, proto_finish reports them. */
struct proto_buf {
	size_t		len;
	bool		overflow;	/* the payload did not fit */
	bool		bad;		/* a bad key was added */
	unsigned char	data[PROTO_MAX_MSG];
};

void		 proto_begin(struct proto_buf *b, int type);
/* Control characters in the value become '?'; a long one is cut. */
void		 proto_add(struct proto_buf *b, const char *key,
		    const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
void		 proto_add_u64(struct proto_buf *b, const char *key,
		    uint64_t v);
void		 proto_end_record(struct proto_buf *b);
/* Fill in the length.  PROTO_OK, PROTO_ETOOBIG or PROTO_EPAYLOAD. */
int		 proto_finish(struct proto_buf *b);
/* A whole PROTO_ERROR message. */
void		 proto_error(struct proto_buf *b, int code, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));

/* Reading a parsed payload. */
struct proto_iter {
	const unsigned char	*p, *end;
	char			 key[PROTO_KEY_MAX + 1];
	char			 value[PROTO_VALUE_MAX + 1];
};

#define PROTO_KV		1	/* key and value are set */
#define PROTO_RECORD_END	2	/* an empty line */

void		 proto_iter_init(struct proto_iter *it,
		    const struct proto_msg *m);
/* PROTO_KV, PROTO_RECORD_END, or 0 at the end. */
int		 proto_next(struct proto_iter *it);
/* The value of the first key of that name, into buf; NULL if none. */
const char	*proto_get(const struct proto_msg *m, const char *key,
		    char *buf, size_t len);

#endif /* PROTO_H */
