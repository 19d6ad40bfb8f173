/*
 * log.c - messages to stderr in the foreground, to syslog otherwise.
 *
 * Any thread may log, and none waits for the log: under systemd, syslog
 * is journald, which may itself be waiting for memory, that is for zsd's
 * swap.  So once log_start() has started the drainer thread, a line is
 * formatted on the caller's stack and copied into a ring of LOG_RING_LINES
 * slots of LOG_LINE_MAX bytes (some 128 KiB), and the caller goes on; the
 * drainer, at normal priority, writes the lines out in the order they
 * were put in.  A line that finds the ring full is dropped and counted
 * (log_dropped()); once the drainer has made room it says how many were
 * lost.  Before log_start() (command line and configuration errors, the
 * keeper) and after log_stop(), a line is written at once, as in a
 * process with one thread.
 *
 * A line written out is one write(2), so lines do not interleave; syslog(3)
 * is thread-safe by itself.  Nothing on the logging path allocates, so the
 * I/O path may log even when memory is short: the ring is static, and
 * touched whole by log_start() so that mlockall() keeps it resident.
 *
 * The ring is a bounded multi-producer queue (each slot carries a sequence
 * number that says whose turn it is, after D. Vyukov's): a producer claims
 * a position with a compare-and-swap, fills the slot and publishes it; it
 * never waits for anyone, and fails only when the ring is full.  Lines
 * are taken out by whoever holds drain_lock: the drainer, or fatal() and
 * log_flush(), which write out what is queued in their own thread.
 * Producers never take that lock.  The drainer sleeps on a futex (wake)
 * that producers bump; they make the system call only when it sleeps.
 */
#include <config.h>

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include "zsd.h"

#define LOG_LINE_MAX	1024	/* a longer line is cut, "..." at its end */

/*
 * Until log_init() runs, messages go to stderr: errors in the command line
 * or the config file must be seen even before the daemon is set up.
 */
static const char	*log_ident = "zsd";
static bool		 log_foreground = true;
static int		 log_verbose;	/* read by every thread, relaxed */

/*
 * A slot of the ring.  seq is the position whose turn the slot is: equal
 * to it, free for the producer that claims that position; one more, full
 * and ready for the consumer, who makes it position + LOG_RING_LINES.
 * The rest is written by the producer between claim and publish, and read
 * by the consumer after.
 */
struct log_slot {
	_Atomic size_t	seq;
	int		pri;
	unsigned int	len;		/* of line, the NUL not counted */
	unsigned int	msg;		/* syslog gets line + msg */
	char		line[LOG_LINE_MAX];
};

static struct log_slot	 log_ring[LOG_RING_LINES];
static _Atomic size_t	 log_head;	/* next position to claim */
static size_t		 log_tail;	/* next to take out; drain_lock */
static pthread_mutex_t	 drain_lock = PTHREAD_MUTEX_INITIALIZER;

static _Atomic bool	 log_running;	/* the drainer takes the lines */
static _Atomic bool	 log_stopping;
static _Atomic bool	 log_paused;	/* log_pause(): tests */
static _Atomic uint32_t	 log_wake;	/* futex: bumped by producers */
static _Atomic bool	 log_sleeping;	/* the drainer waits on log_wake */
static _Atomic uint64_t	 log_nr_dropped;	/* ever */
static _Atomic uint64_t	 log_unreported;	/* not yet said */
static pthread_t	 log_thread;
static bool		 log_ready;	/* log_start() set the ring up */

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
 * Write one line out: line holds len bytes and room for one more; the
 * message proper (without the ident) starts at msg.
 */
static void
log_emit(int pri, char *line, size_t len, size_t msg)
{
	if (log_foreground) {
		line[len] = '\n';	/* in place of the NUL */
		log_write(line, len + 1);
	} else {
		line[len] = '\0';
		syslog(pri, "%s", line + msg);
	}
}

static void	log_append(char *, size_t *, bool *, const char *, ...)
		    __attribute__((format(printf, 4, 5)));

static void
futex_wake(_Atomic uint32_t *word)
{
	(void)syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
	    NULL, 0);
}

static void
futex_wait(_Atomic uint32_t *word, uint32_t seen)
{
	(void)syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL,
	    0);
}

/*
 * Queue a line; false if the ring is full.  Never waits: the loop goes
 * round again only when another producer claimed the position first.
 */
static bool
log_enqueue(int pri, const char *line, size_t len, size_t msg)
{
	struct log_slot *s;
	size_t pos, seq;

	pos = atomic_load_explicit(&log_head, memory_order_relaxed);
	for (;;) {
		s = &log_ring[pos % LOG_RING_LINES];
		seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		if (seq == pos) {
			if (atomic_compare_exchange_weak_explicit(&log_head,
			    &pos, pos + 1, memory_order_relaxed,
			    memory_order_relaxed))
				break;
		} else if ((ptrdiff_t)(seq - pos) < 0) {
			return false;	/* a lap behind: full */
		} else {
			pos = atomic_load_explicit(&log_head,
			    memory_order_relaxed);
		}
	}
	s->pri = pri;
	s->len = (unsigned int)len;
	s->msg = (unsigned int)msg;
	memcpy(s->line, line, len);
	atomic_store_explicit(&s->seq, pos + 1, memory_order_release);

	/* Bump, then look: the drainer sets sleeping, then reads wake. */
	atomic_fetch_add(&log_wake, 1);
	if (atomic_load(&log_sleeping))
		futex_wake(&log_wake);
	return true;
}

/* The slot at log_tail, if it is published; drain_lock held. */
static struct log_slot *
log_peek(void)
{
	struct log_slot *s = &log_ring[log_tail % LOG_RING_LINES];

	if (atomic_load_explicit(&s->seq, memory_order_acquire) !=
	    log_tail + 1)
		return NULL;
	return s;
}

/* Write out every line published in a row; drain_lock held. */
static void
log_drain(void)
{
	struct log_slot *s;

	while ((s = log_peek()) != NULL) {
		log_emit(s->pri, s->line, s->len, s->msg);
		atomic_store_explicit(&s->seq, log_tail + LOG_RING_LINES,
		    memory_order_release);
		log_tail++;
	}
}

/* Say how many lines were lost since last said, if any. */
static void
log_report_dropped(void)
{
	char line[LOG_LINE_MAX];
	size_t len = 0, msg;
	bool truncated = false;
	uint64_t n;

	if ((n = atomic_exchange(&log_unreported, 0)) == 0)
		return;
	log_append(line, &len, &truncated, "%s: ", log_ident);
	msg = len;
	log_append(line, &len, &truncated, "%llu log lines dropped",
	    (unsigned long long)n);
	log_emit(LOG_WARNING, line, len, msg);
}

/* Write out what is queued, in this thread. */
static void
log_write_out(void)
{
	pthread_mutex_lock(&drain_lock);
	log_drain();
	log_report_dropped();
	pthread_mutex_unlock(&drain_lock);
}

static bool
log_ring_empty(void)
{
	return atomic_load(&log_head) == log_tail;
}

static void *
log_drainer(void *arg)
{
	uint32_t seen;
	bool stop, idle;

	(void)arg;
	(void)pthread_setname_np(pthread_self(), "zsd-log");
	for (;;) {
		stop = atomic_load(&log_stopping);
		if (!atomic_load(&log_paused) || stop)
			log_write_out();
		if (stop) {
			/* A producer in the middle of a line finishes it. */
			pthread_mutex_lock(&drain_lock);
			stop = log_ring_empty();
			pthread_mutex_unlock(&drain_lock);
			if (stop)
				break;
			sched_yield();
			continue;
		}
		/*
		 * Sleep until a producer bumps wake.  We set sleeping, then
		 * read wake; a producer publishes, bumps wake, then reads
		 * sleeping.  So either it sees sleeping and wakes us (if
		 * its bump came after our read, futex_wait returns at
		 * once), or its bump came before our read, and the check
		 * below sees its line.
		 */
		atomic_store(&log_sleeping, true);
		seen = atomic_load(&log_wake);
		pthread_mutex_lock(&drain_lock);
		idle = log_peek() == NULL || atomic_load(&log_paused);
		pthread_mutex_unlock(&drain_lock);
		if (idle && !atomic_load(&log_stopping))
			futex_wait(&log_wake, seen);
		atomic_store(&log_sleeping, false);
	}
	return NULL;
}

/*
 * In a child of fork(), the drainer is not there: the child logs at once.
 * What the parent had queued is the parent's to write.
 */
static void
log_forked(void)
{
	size_t i;

	atomic_store(&log_running, false);
	atomic_store(&log_stopping, false);
	pthread_mutex_init(&drain_lock, NULL);
	for (i = 0; i < LOG_RING_LINES; i++)
		atomic_store(&log_ring[i].seq, i);
	atomic_store(&log_head, 0);
	log_tail = 0;
	atomic_store(&log_nr_dropped, 0);
	atomic_store(&log_unreported, 0);
}

int
log_start(void)
{
	struct sched_param sp = { .sched_priority = 0 };
	pthread_attr_t attr;
	size_t i;
	int error;

	if (atomic_load(&log_running))
		return 0;
	if (!log_ready) {
		/* exit() writes out what is queued; fatal() does before. */
		if (atexit(log_stop) != 0 ||
		    pthread_atfork(NULL, NULL, log_forked) != 0)
			return -ENOMEM;
		/* Every page of the ring resident now, not on the I/O path. */
		for (i = 0; i < LOG_RING_LINES; i++) {
			memset(log_ring[i].line, 0, sizeof(log_ring[i].line));
			atomic_store(&log_ring[i].seq, i);
		}
		log_ready = true;
	}
	atomic_store(&log_stopping, false);

	/* Normal priority, whatever the thread starting it runs at. */
	if ((error = pthread_attr_init(&attr)) != 0)
		return -error;
	if ((error = pthread_attr_setinheritsched(&attr,
	    PTHREAD_EXPLICIT_SCHED)) == 0 &&
	    (error = pthread_attr_setschedpolicy(&attr, SCHED_OTHER)) == 0 &&
	    (error = pthread_attr_setschedparam(&attr, &sp)) == 0)
		error = pthread_create(&log_thread, &attr, log_drainer, NULL);
	pthread_attr_destroy(&attr);
	if (error != 0)
		return -error;
	atomic_store(&log_running, true);
	return 0;
}

void
log_stop(void)
{
	if (!atomic_load(&log_running))
		return;
	/* From now on lines are written at once; the drainer finishes. */
	atomic_store(&log_running, false);
	atomic_store(&log_stopping, true);
	atomic_fetch_add(&log_wake, 1);
	futex_wake(&log_wake);
	pthread_join(log_thread, NULL);
	/* A line queued after the drainer's last look is not lost. */
	log_write_out();
}

void
log_flush(void)
{
	if (atomic_load(&log_running))
		log_write_out();
}

void
log_pause(bool paused)
{
	atomic_store(&log_paused, paused);
	atomic_fetch_add(&log_wake, 1);
	futex_wake(&log_wake);
}

uint64_t
log_dropped(void)
{
	return atomic_load_explicit(&log_nr_dropped, memory_order_relaxed);
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

static void
log_append(char *buf, size_t *len, bool *truncated, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vappend(buf, len, truncated, fmt, ap);
	va_end(ap);
}

/*
 * Log one message; errnum != 0 appends ": strerror(errnum)".  sync: write
 * it out before returning, after whatever is queued (fatal).  The caller's
 * errno is left as it was.
 */
static void
log_vmsg(int pri, int errnum, bool sync, const char *prefix,
    const char *fmt, va_list ap)
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

	if (!atomic_load(&log_running)) {
		log_emit(pri, buf, len, msg);
	} else if (sync) {
		pthread_mutex_lock(&drain_lock);
		log_drain();
		log_report_dropped();
		log_emit(pri, buf, len, msg);
		pthread_mutex_unlock(&drain_lock);
	} else if (!log_enqueue(pri, buf, len, msg)) {
		atomic_fetch_add_explicit(&log_nr_dropped, 1,
		    memory_order_relaxed);
		atomic_fetch_add_explicit(&log_unreported, 1,
		    memory_order_relaxed);
	}
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vmsg(LOG_ERR, saved, false, "", fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_ERR, 0, false, "", fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_INFO, 0, false, "", fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	if (__atomic_load_n(&log_verbose, __ATOMIC_RELAXED) < 1)
		return;
	va_start(ap, fmt);
	log_vmsg(LOG_DEBUG, 0, false, "", fmt, ap);
	va_end(ap);
}

/*
 * What is queued and the message itself are written out before exit(),
 * by this thread: waiting on the drainer's write in progress, if any.
 */
void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, saved, true, "fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_CRIT, 0, true, "fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}
