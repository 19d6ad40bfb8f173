/*
 * tap.h - the Test Anything Protocol, as much as our tests need.
 *
 *	ok(cond, fmt, ...)	one test point; returns cond
 *	diag(fmt, ...)		a comment line
 *	skip(n, fmt, ...)	n test points skipped, for the reason given
 *	skip_all(fmt, ...)	skip the whole program (exit 77 plan 1..0)
 *	bail(fmt, ...)		stop everything
 *	done_testing()		print the plan; the exit status for main
 *	tap_watchdog(seconds)	bail out if still running after seconds
 *				(again to re-arm, 0 to disarm)
 *
 * The plan comes last, so tests need not count their points.  Output is
 * flushed line by line so a crash leaves what came before it.
 */
#ifndef TAP_H
#define TAP_H

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static unsigned int tap_run, tap_failed;

static void
tap_line(const char *prefix, const char *fmt, va_list ap)
{
	fputs(prefix, stdout);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
}

__attribute__((format(printf, 2, 3), unused)) static int
ok(int cond, const char *fmt, ...)
{
	char prefix[32];
	va_list ap;

	tap_run++;
	if (!cond)
		tap_failed++;
	snprintf(prefix, sizeof(prefix), "%sok %u - ", cond ? "" : "not ",
	    tap_run);
	va_start(ap, fmt);
	tap_line(prefix, fmt, ap);
	va_end(ap);
	return cond;
}

__attribute__((format(printf, 2, 3), unused)) static void
skip(unsigned int n, const char *fmt, ...)
{
	char prefix[32];
	va_list ap;

	while (n-- > 0) {
		tap_run++;
		snprintf(prefix, sizeof(prefix), "ok %u # SKIP ", tap_run);
		va_start(ap, fmt);
		tap_line(prefix, fmt, ap);
		va_end(ap);
	}
}

__attribute__((format(printf, 1, 2), unused)) static void
diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_line("# ", fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 1, 2), noreturn, unused)) static void
skip_all(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_line("1..0 # SKIP ", fmt, ap);
	va_end(ap);
	exit(77);
}

__attribute__((format(printf, 1, 2), noreturn, unused)) static void
bail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_line("Bail out! ", fmt, ap);
	va_end(ap);
	exit(99);
}

__attribute__((unused)) static int
done_testing(void)
{
	printf("1..%u\n", tap_run);
	fflush(stdout);
	return tap_failed != 0;
}

static void
tap_alarm(int sig)
{
	static const char msg[] = "Bail out! watchdog: still running after "
	    "its time limit, stuck\n";

	(void)sig;
	(void)!write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(99);
}

/*
 * A test that hangs must fail, not stall the suite: SIGALRM after seconds
 * prints a bail-out line and exits.  Forked children do not inherit it.
 */
__attribute__((unused)) static void
tap_watchdog(unsigned int seconds)
{
	signal(SIGALRM, tap_alarm);
	alarm(seconds);
}

#endif /* TAP_H */
