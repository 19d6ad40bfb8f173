/*
 * log.c - messages to stderr in the foreground, to syslog otherwise.
 *
 * Any thread may log.  A line is formatted into a buffer on the stack and
 * written with one write(2), so lines from different threads do not
 * interleave; syslog(3) is thread-safe by itself.  Nothing here allocates,
 * so the I/O path may log even when memory is short.
 */
#include <config.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "zsd.h"

#define LOG_LINE_MAX	2048

/*
 * Until log_init() runs, messages go to stderr: errors in the command line
 * or the config file must be seen even before the daemon is set up.
 */
static const char	*log_ident = "zsd";
static bool		 log_foreground = true;
static int		 log_verbose;	/* read by every thread, relaxed */

void
log_init(const char *ident, bool foreground)
{
	/* openlog() keeps the pointer: ident must outlive the process. */
	log_ident = ident;
	log_foreground = foreground;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_verbose(int level)
{
	__atomic_store_n(&log_verbose, level, __ATOMIC_RELAXED);
}

static void
log_write(const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(STDERR_FILENO, buf, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return;		/* nowhere left to complain */
		}
		buf += n;
		len -= (size_t)n;
	}
}

/*
 * Append to buf, which holds *len bytes; what does not fit is cut and
 * *truncated set.
 */
static void
log_vappend(char *buf, size_t *len, bool *truncated, const char *fmt,
    va_list ap)
{
	int n;

	if (*len >= LOG_LINE_MAX - 1) {
		*truncated = true;
		return;
	}
	n = vsnprintf(buf + *len, LOG_LINE_MAX - *len, fmt, ap);
	if (n < 0)
		return;
	*len += (size_t)n;
	if (*len > LOG_LINE_MAX - 1) {
		*len = LOG_LINE_MAX - 1;
		*truncated = true;
	}
}

__attribute__((format(printf, 4, 5))) static void
log_append(char *buf, size_t *len, bool *truncated, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vappend(buf, len, truncated, fmt, ap);
	va_end(ap);
}

/*
 * Log one message; errnum != 0 appends ": strerror(errnum)".  The caller's
 * errno is left as it was.
 */
static void
log_vmsg(int pri, int errnum, const char *prefix, const char *fmt,
    va_list ap)
{
	char buf[LOG_LINE_MAX], ebuf[128];
	size_t len = 0, msg;
	bool truncated = false;
	int saved = errno;

	/* syslog adds the ident itself: it gets the line from buf + msg. */
	log_append(buf, &len, &truncated, "%s: ", log_ident);
	msg = len;
	log_append(buf, &len, &truncated, "%s", prefix);
	log_vappend(buf, &len, &truncated, fmt, ap);
	if (errnum != 0)
		log_append(buf, &len, &truncated, ": %s",
		    strerror_r(errnum, ebuf, sizeof(ebuf)));
	if (truncated)
		memcpy(buf + len - 3, "...", 3);

	if (log_foreground) {
		buf[len++] = '\n';	/* in place of the NUL */
		log_write(buf, len);
	} else {
		buf[len] = '\0';
		syslog(pri, "%s", buf + msg);
	}
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vmsg(LOG_ERR, saved, "", fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERR, 0, "", fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_INFO, 0, "", fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (__atomic_load_n(&log_verbose, __ATOMIC_RELAXED) < 1)
		return;
	va_start(ap, fmt);
	log_vmsg(LOG_DEBUG, 0, "", fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, saved, "fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, 0, "fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}
