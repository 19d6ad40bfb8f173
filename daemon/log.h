/*
 * log.h - zsd's logging (log.c): stderr in the foreground, else syslog,
 * by a thread of its own once log_start() has run.
 * Apart from the daemon's own header so that fuse/ can log without
 * seeing the daemon.
 */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>
#include <stdint.h>

#define LOG_RING_LINES	128	/* lines queued for the drainer at most */

void	log_init(const char *ident, bool foreground);
void	log_set_verbose(int level);		/* 0 info, 1 debug */
/*
 * Start the drainer thread (normal priority): from then on no thread
 * waits for the log; lines that find the ring full are dropped and
 * counted.  Stopped, the ring written out, at exit (or by log_stop()).
 * fatal() writes out the ring and its message itself before exiting.
 */
int	log_start(void);
void	log_stop(void);
void	log_flush(void);		/* write out what is queued, here */
uint64_t log_dropped(void);		/* lines dropped, ever */
void	log_pause(bool paused);		/* tests: hold the drainer back */
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif /* LOG_H */
