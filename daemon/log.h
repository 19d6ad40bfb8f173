/*
 * log.h - zsd's logging (log.c): stderr in the foreground, else syslog.
 * Apart from the daemon's own header so that fuse/ can log without
 * seeing the daemon.
 */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>

void	log_init(const char *ident, bool foreground);
void	log_set_verbose(int level);		/* 0 info, 1 debug */
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif /* LOG_H */
