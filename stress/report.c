/*
 * report.c - what zsd-stress tells a person, or a program.
 *
 * On a terminal, one progress line rewritten every second; elsewhere a
 * plain line every --interval seconds.  Events (chaos actions, warnings)
 * are lines of their own, printed above the progress line.  At the end,
 * a summary table, or with --json one JSON object on stdout (progress
 * and events then go to stderr).
 *
 * The main thread prints progress and the summary; the chaos thread
 * prints events: out_lock keeps their lines apart.
 */
#include <config.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zsd-stress.h"

#define MAX_SAMPLES	100000

static pthread_mutex_t	out_lock = PTHREAD_MUTEX_INITIALIZER;
static struct zsd_stat	stat_plain;	/* at the last plain line */
static double		t_plain;

static double
mib(uint64_t bytes)
{
	return (double)bytes / (1024.0 * 1024.0);
}

static uint64_t
sum_counter(const struct run *r, size_t off)
{
	uint64_t s = 0;
	unsigned int i;

	for (i = 0; i < r->opt.jobs; i++)
		s += atomic_load((_Atomic uint64_t *)((char *)&r->sh->w[i] +
		    off));
	return s;
}

#define SUM(r, field) \
	sum_counter((r), offsetof(struct worker_counters, field))

static double
ratio_of(const struct zsd_stat *st)
{
	return st->mem_used_total ? (double)st->orig_data_size /
	    (double)st->mem_used_total : 0;
}

void
report_init(struct run *r)
{
	r->out = r->opt.json ? stderr : stdout;
	r->tty = isatty(fileno(r->out));
	setvbuf(r->out, NULL, _IOLBF, 0);
}

void
report_event(struct run *r, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	if (r->line_live) {
		fputs("\r\033[K", r->out);
		r->line_live = false;
	}
	fprintf(r->out, "[%6.1fs] ", now() - r->t0);
	va_start(ap, fmt);
	vfprintf(r->out, fmt, ap);
	va_end(ap);
	fputc('\n', r->out);
	fflush(r->out);
	pthread_mutex_unlock(&out_lock);
}

static void
add_sample(struct run *r, const struct sample *s)
{
	struct sample *n;
	size_t cap;

	if (r->nr_samples >= MAX_SAMPLES)
		return;
	if (r->nr_samples == r->cap_samples) {
		cap = r->cap_samples ? 2 * r->cap_samples : 256;
		if ((n = realloc(r->samples, cap * sizeof(*n))) == NULL)
			return;
		r->samples = n;
		r->cap_samples = cap;
	}
	r->samples[r->nr_samples++] = *s;
}

/* The line's fields, shared by both forms. */
static void
format_line(struct run *r, char *buf, size_t len, double t, double out,
    double in)
{
	uint64_t swapped = r->opt.workload == WORKLOAD_SWAP ?
	    cgroup_swap_bytes(&r->cg) : 0;
	size_t off;

	off = (size_t)snprintf(buf, len, "%6.0fs  out %7.1f MiB/s  in %7.1f "
	    "MiB/s  verified %10" PRIu64 "  errors %" PRIu64 "  pool %7.1f "
	    "MiB  ratio %4.2f", t, out, in, SUM(r, pages_verified),
	    atomic_load(&r->sh->wrong_pages), mib(r->stat.mem_used_total),
	    ratio_of(&r->stat));
	if (r->opt.workload == WORKLOAD_SWAP && off < len)
		off += (size_t)snprintf(buf + off, len - off, "  in swap %.0f "
		    "MiB", mib(swapped));
	if (atomic_load(&r->sh->final_check) && off < len)
		snprintf(buf + off, len - off, "  (final check)");
}

void
report_tick(struct run *r, bool last)
{
	struct sample s;
	char line[300];
	double t = now() - r->t0, dt = now() - r->t_stat_prev;
	uint64_t swapped;

	if (!r->stat_ok)
		return;
	if (r->stat.mem_used_total > r->pool_peak)
		r->pool_peak = r->stat.mem_used_total;
	if (r->stat.pages_merged > r->merged_peak)
		r->merged_peak = r->stat.pages_merged;
	if (r->opt.workload == WORKLOAD_SWAP) {
		swapped = cgroup_swap_bytes(&r->cg);
		if (swapped > r->cg_swap_peak)
			r->cg_swap_peak = swapped;
	}
	memset(&s, 0, sizeof(s));
	s.t = t;
	if (dt > 0) {
		s.mib_out = mib((r->stat.writes - r->stat_prev.writes) * PAGE)
		    / dt;
		s.mib_in = mib((r->stat.reads - r->stat_prev.reads) * PAGE)
		    / dt;
	}
	s.verified = SUM(r, pages_verified);
	s.pool = r->stat.mem_used_total;
	s.ratio = ratio_of(&r->stat);
	if (!last)
		add_sample(r, &s);

	pthread_mutex_lock(&out_lock);
	if (r->tty) {
		format_line(r, line, sizeof(line), t, s.mib_out, s.mib_in);
		fprintf(r->out, "\r%s\033[K", line);
		r->line_live = true;
		if (last) {
			fputc('\n', r->out);
			r->line_live = false;
		}
		fflush(r->out);
	} else if (last || t - t_plain >= r->opt.interval) {
		dt = t - t_plain;
		if (t_plain == 0)
			stat_plain = r->stat0;
		format_line(r, line, sizeof(line), t, dt > 0 ? mib((r->stat.writes
		    - stat_plain.writes) * PAGE) / dt : 0, dt > 0 ?
		    mib((r->stat.reads - stat_plain.reads) * PAGE) / dt : 0);
		fprintf(r->out, "%s\n", line);
		stat_plain = r->stat;
		t_plain = t;
	}
	pthread_mutex_unlock(&out_lock);
}

static void
json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static const char *
result_name(int status, const struct run *r)
{
	if (r->interrupted && status == EXIT_PASS)
		return "interrupted";
	switch (status) {
	case EXIT_PASS:
		return "pass";
	case EXIT_FAIL:
		return "fail";
	default:
		return "cannot run";
	}
}

/* The ratio over the samples where the pool held something. */
static double
mean_ratio(const struct run *r)
{
	double sum = 0;
	size_t i, n = 0;

	for (i = 0; i < r->nr_samples; i++)
		if (r->samples[i].pool > 0) {
			sum += r->samples[i].ratio;
			n++;
		}
	return n ? sum / (double)n : 0;
}

static void
summary_json(struct run *r, int status, double stress, double check)
{
	const struct zsd_stat *a = &r->stat0, *b = &r->stat;
	double total = r->t_end - r->t0;
	char mixs[128];
	size_t i;
	int k;

	mix_format(&r->opt.mix, mixs, sizeof(mixs));
	printf("{\n  \"workload\": \"%s\",\n  \"result\": \"%s\",\n"
	    "  \"exit_status\": %d,\n  \"seed\": \"0x%" PRIx64 "\",\n",
	    r->opt.workload == WORKLOAD_SWAP ? "swap" : "file",
	    result_name(status, r), status, r->opt.seed);
	printf("  \"spawned\": %s,\n  \"chaos\": %s,\n  \"quick\": %s,\n"
	    "  \"jobs\": %u,\n  \"size_bytes\": %" PRIu64 ",\n"
	    "  \"limit_bytes\": %" PRIu64 ",\n  \"mix\": \"%s\",\n",
	    r->spawned ? "true" : "false", r->opt.chaos ? "true" : "false",
	    r->opt.quick ? "true" : "false", r->opt.jobs, r->opt.size,
	    r->opt.workload == WORKLOAD_SWAP ? r->opt.limit : 0, mixs);
	printf("  \"seconds\": %.3f,\n  \"stress_seconds\": %.3f,\n"
	    "  \"final_check_seconds\": %.3f,\n", total, stress, check);
	printf("  \"pages_written\": %" PRIu64 ",\n  \"pages_verified\": %"
	    PRIu64 ",\n  \"pages_freed\": %" PRIu64 ",\n  \"wrong_pages\": %"
	    PRIu64 ",\n", SUM(r, pages_written), SUM(r, pages_verified),
	    SUM(r, pages_freed), atomic_load(&r->sh->wrong_pages));
	printf("  \"kinds_written\": {");
	for (k = 0; k < NR_KINDS; k++)
		printf("%s\"%s\": %" PRIu64, k ? ", " : " ", kind_names[k],
		    sum_counter(r, offsetof(struct worker_counters,
		    kind_written) + (size_t)k * sizeof(uint64_t)));
	printf(" },\n  \"failure\": ");
	if (r->sh->failure[0] != '\0')
		json_string(stdout, r->sh->failure);
	else
		printf("null");
	printf(",\n  \"unhealthy\": ");
	if (r->unhealthy[0] != '\0')
		json_string(stdout, r->unhealthy);
	else
		printf("null");
	printf(",\n  \"zsd\": { \"pages_written\": %" PRIu64 ", "
	    "\"pages_read\": %" PRIu64 ", \"mib_s_out\": %.2f, "
	    "\"mib_s_in\": %.2f, \"failed_reads\": %" PRIu64 ", "
	    "\"failed_writes\": %" PRIu64 ", \"limit_refusals\": %" PRIu64
	    ", \"pool_peak_bytes\": %" PRIu64 ", \"merged_peak_pages\": %"
	    PRIu64 ", \"mean_ratio\": %.3f },\n",
	    b->writes - a->writes, b->reads -
	    a->reads, total > 0 ? mib((b->writes - a->writes) * PAGE) / total
	    : 0, total > 0 ? mib((b->reads - a->reads) * PAGE) / total : 0,
	    b->failed_reads - a->failed_reads, b->failed_writes -
	    a->failed_writes, b->limit_refusals - a->limit_refusals,
	    r->pool_peak, r->merged_peak, mean_ratio(r));
	printf("  \"cgroup_swap_peak_bytes\": %" PRIu64 ",\n"
	    "  \"oom_kills\": %" PRIu64 ",\n", r->cg_swap_peak, r->oom_kills);
	printf("  \"chaos_actions\": {");
	for (k = 0; k < NR_CHAOS; k++)
		printf("%s\"%s\": %" PRIu64, k ? ", " : " ", chaos_names[k],
		    atomic_load(&r->chaos_done[k]));
	printf(", \"busy\": %" PRIu64 ", \"failed\": %" PRIu64 " },\n",
	    atomic_load(&r->chaos_busy), atomic_load(&r->chaos_failed));
	printf("  \"replace_max_ms\": %" PRIu64 ",\n",
	    atomic_load(&r->replace_max_ms));
	printf("  \"timeline\": [");
	for (i = 0; i < r->nr_samples; i++)
		printf("%s\n    { \"t\": %.1f, \"mib_s_out\": %.2f, "
		    "\"mib_s_in\": %.2f, \"pages_verified\": %" PRIu64 ", "
		    "\"pool_bytes\": %" PRIu64 ", \"ratio\": %.3f }",
		    i ? "," : "", r->samples[i].t, r->samples[i].mib_out,
		    r->samples[i].mib_in, r->samples[i].verified,
		    r->samples[i].pool, r->samples[i].ratio);
	printf("%s]\n}\n", r->nr_samples ? "\n  " : "");
	fflush(stdout);
}

void
report_summary(struct run *r, int status)
{
	const struct zsd_stat *a = &r->stat0, *b = &r->stat;
	double total = r->t_end - r->t0, stress, check;
	uint64_t written = SUM(r, pages_written), kinds[NR_KINDS];
	FILE *f = r->out;
	char mixs[128];
	int k;

	stress = (r->t_stress_end > 0 ? r->t_stress_end : r->t_end) - r->t0;
	check = r->t_stress_end > 0 ? r->t_end - r->t_stress_end : 0;
	if (r->opt.json) {
		summary_json(r, status, stress, check);
		return;
	}
	pthread_mutex_lock(&out_lock);
	if (r->line_live) {
		fputc('\n', f);
		r->line_live = false;
	}
	mix_format(&r->opt.mix, mixs, sizeof(mixs));
	fprintf(f, "\nzsd-stress %s: %s\n", r->opt.workload == WORKLOAD_SWAP ?
	    "swap" : "file", status == EXIT_PASS ? (r->interrupted ?
	    "INTERRUPTED (no error until then)" : "PASS") : status ==
	    EXIT_FAIL ? "FAIL" : "COULD NOT RUN");
	fprintf(f, "  %-18s 0x%" PRIx64 "\n", "seed", r->opt.seed);
	if (r->opt.workload == WORKLOAD_SWAP)
		fprintf(f, "  %-18s %u processes, %.0f MiB working set in a "
		    "%.0f MiB memory cgroup (v%d)\n", "workload", r->opt.jobs,
		    mib(r->opt.size), mib(r->opt.limit), r->cg.version);
	else
		fprintf(f, "  %-18s %u threads, direct I/O on a %.0f MiB file"
		    "\n", "workload", r->opt.jobs, mib(r->opt.size));
	fprintf(f, "  %-18s %s\n", "mix", mixs);
	fprintf(f, "  %-18s %.1f s of stress, %.1f s of final check\n",
	    "time", stress, check);
	for (k = 0; k < NR_KINDS; k++)
		kinds[k] = sum_counter(r, offsetof(struct worker_counters,
		    kind_written) + (size_t)k * sizeof(uint64_t));
	fprintf(f, "  %-18s %" PRIu64 " (%.0f MiB)", "pages written",
	    written, mib(written * PAGE));
	if (written > 0) {
		for (k = 0; k < NR_KINDS; k++)
			fprintf(f, "%s%s %.0f%%", k ? ", " : ": ",
			    kind_names[k], 100.0 * (double)kinds[k] /
			    (double)written);
	}
	fputc('\n', f);
	fprintf(f, "  %-18s %" PRIu64 "\n", "pages verified",
	    SUM(r, pages_verified));
	fprintf(f, "  %-18s %" PRIu64 "\n", r->opt.workload == WORKLOAD_SWAP ?
	    "pages freed" : "pages punched", SUM(r, pages_freed));
	fprintf(f, "  %-18s %" PRIu64 "\n", "wrong pages",
	    atomic_load(&r->sh->wrong_pages));
	fprintf(f, "  %-18s %.0f MiB out (%.1f MiB/s), %.0f MiB in (%.1f "
	    "MiB/s)\n", "zsd served", mib((b->writes - a->writes) * PAGE),
	    total > 0 ? mib((b->writes - a->writes) * PAGE) / total : 0,
	    mib((b->reads - a->reads) * PAGE), total > 0 ?
	    mib((b->reads - a->reads) * PAGE) / total : 0);
	if (r->opt.workload == WORKLOAD_SWAP)
		fprintf(f, "  %-18s %.0f MiB of the cgroup at most\n",
		    "in swap", mib(r->cg_swap_peak));
	if (r->oom_kills > 0)
		fprintf(f, "  %-18s %" PRIu64 " workers killed by the kernel's "
		    "OOM killer and started over (a larger --limit avoids "
		    "it)\n", "oom kills", r->oom_kills);
	else if (SUM(r, writes_refused) > 0)
		fprintf(f, "  %-18s %" PRIu64 " (over mem_limit, retried)\n",
		    "writes refused", SUM(r, writes_refused));
	fprintf(f, "  %-18s %.1f MiB at most; ratio %.2f on average (data "
	    "stored / pool memory, once a second)\n", "pool",
	    mib(r->pool_peak), mean_ratio(r));
	fprintf(f, "  %-18s %" PRIu64 " pages at most (stored in another "
	    "page's object)\n", "merged", r->merged_peak);
	if (r->opt.chaos) {
		fprintf(f, "  %-18s", "chaos");
		for (k = 0; k < NR_CHAOS; k++)
			if (chaos_enabled(r, k))
				fprintf(f, "%s%s %" PRIu64, k ? ", " : " ",
				    chaos_names[k],
				    atomic_load(&r->chaos_done[k]));
		fprintf(f, "; busy %" PRIu64 ", failed %" PRIu64 "\n",
		    atomic_load(&r->chaos_busy),
		    atomic_load(&r->chaos_failed));
		if (r->can_restart)
			fprintf(f, "  %-18s %" PRIu64 " ms at most, from the "
			    "old server's end to the new one's answer\n",
			    "server replaced", atomic_load(&r->replace_max_ms));
	}
	fprintf(f, "  %-18s %s (failed_reads %" PRIu64 ", failed_writes %"
	    PRIu64 " of which limit refusals %" PRIu64 ")\n", "zsd health",
	    r->unhealthy[0] ? "UNHEALTHY" : "ok", b->failed_reads -
	    a->failed_reads, b->failed_writes - a->failed_writes,
	    b->limit_refusals - a->limit_refusals);
	if (r->sh->failure[0] != '\0')
		fprintf(f, "  %-18s %s\n", "failure", r->sh->failure);
	if (r->unhealthy[0] != '\0')
		fprintf(f, "  %-18s %s\n", "unhealthy", r->unhealthy);
	if (r->warning[0] != '\0')
		fprintf(f, "  %-18s %s\n", "warning", r->warning);
	fflush(f);
	pthread_mutex_unlock(&out_lock);
}

void
report_cannot(struct run *r, int status, const char *why)
{
	printf("{\n  \"workload\": \"%s\",\n  \"result\": \"%s\",\n"
	    "  \"exit_status\": %d,\n  \"seed\": \"0x%" PRIx64 "\",\n"
	    "  \"reason\": ", r->opt.workload == WORKLOAD_SWAP ? "swap" :
	    "file", result_name(status, r), status, r->opt.seed);
	json_string(stdout, why);
	printf("\n}\n");
	fflush(stdout);
}
