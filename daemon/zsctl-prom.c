/*
 * zsctl-prom.c - zsctl stat --format=prometheus: zsd's counters for
 * node_exporter's textfile collector or anything else that reads the
 * Prometheus text exposition format (version 0.0.4).
 *
 * Every metric is named zsd_ and what it counts, then its unit (_bytes,
 * _pages, _objects, _zspages, _sections), then _total for a counter;
 * gauges go up and down, counters only grow while zsd runs.  Each one
 * has exactly one # HELP and one # TYPE line before its samples, the
 * HELP text ending in the field of zsctl stat it comes from.  The
 * per-class figures of zsctl classes are metrics of their own with the
 * class's index and slot size as labels.  A stat field this zsctl does
 * not know becomes zsd_stat_FIELD, untyped, so that a newer zsd loses
 * nothing; the tables below list every known one, as zsctl(8) does.
 */
#include <config.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zsctl.h"

#define PROM_MAX_COLUMNS	64	/* of a classes row */

struct prom_metric {
	const char	*field;		/* the reply's key or column */
	const char	*name;		/* after "zsd_" */
	const char	*type;		/* "gauge" or "counter" */
	const char	*help;
};

#define G	"gauge"
#define C	"counter"

/* The fields of stat, in its order. */
static const struct prom_metric prom_stat[] = {
	{ "orig_data_size", "orig_data_bytes", G,
	    "Bytes of the pages stored, before compression" },
	{ "compr_data_size", "compr_data_bytes", G,
	    "Bytes of their compressed objects, uncompressed pages as 4096" },
	{ "mem_used_total", "mem_used_bytes", G,
	    "Bytes of the pool's pages that hold objects" },
	{ "mem_limit", "mem_limit_bytes", G,
	    "The memory limit, 0 for none" },
	{ "mem_used_max", "mem_used_max_bytes", G,
	    "The most mem_used_bytes has been since start or reset-max" },
	{ "same_pages", "same_pages", G,
	    "Pages of one repeated 64-bit word, kept without an object" },
	{ "pages_compacted", "compacted_pages_total", C,
	    "Pages freed by compaction" },
	{ "huge_pages", "huge_pages", G,
	    "Pages that did not compress, kept as they are" },
	{ "failed_reads", "failed_reads_total", C,
	    "Reads that failed" },
	{ "failed_writes", "failed_writes_total", C,
	    "Writes and discards that failed" },
	{ "invalid_io", "invalid_io_total", C,
	    "Writes past the end of the file" },
	{ "notify_free", "discarded_pages_total", C,
	    "Pages freed by discards" },
	{ "disksize", "disksize_bytes", G,
	    "The size of the swap file" },
	{ "pages_stored", "stored_pages", G,
	    "Pages of the file that hold data" },
	{ "reads", "read_pages_total", C,
	    "Pages read" },
	{ "writes", "written_pages_total", C,
	    "Pages written" },
	{ "limit_refusals", "limit_refusals_total", C,
	    "Writes refused because the pool was at mem_limit" },
	{ "pages_merged", "merged_pages", G,
	    "Pages kept in another page's object, taking no memory" },
	{ "merge_objects", "merge_objects", G,
	    "Objects shared by two pages or more" },
	{ "merge_saved_size", "merge_saved_bytes", G,
	    "Bytes of objects merging did not store" },
	{ "merge_collisions", "merge_collisions_total", C,
	    "Hash matches whose bytes differed, not merged" },
	{ "merge_skipped", "merge_skipped_pages_total", C,
	    "Pages written without hashing, merging having found nothing" },
	{ "idle_pages", "idle_pages", G,
	    "Pages marked idle and not read or written since" },
	{ "pages_recompressed", "recompressed_pages_total", C,
	    "Pages recompressed with zstd" },
	{ "recompress_saved_size", "recompress_saved_bytes_total", C,
	    "Bytes recompression took off their objects" },
	{ "bd_count", "backing_pages", G,
	    "Pages kept in the backing file" },
	{ "bd_reads", "backing_read_pages_total", C,
	    "Pages read from the backing file" },
	{ "bd_writes", "backing_written_pages_total", C,
	    "Pages written to the backing file" },
	{ "bd_compr_size", "backing_compr_bytes", G,
	    "Bytes of the pages kept in the backing file, as stored" },
	{ "backing_size", "backing_size_bytes", G,
	    "The size of the backing file, 0 for none" },
	{ "backing_used_size", "backing_used_bytes", G,
	    "Bytes of the backing file's blocks that hold pages" },
	{ "writeback_limit", "writeback_limit_bytes", G,
	    "Most bytes written back in a day, 0 for no limit" },
	{ "writeback_today_size", "writeback_today_bytes", G,
	    "Bytes written back in the current day" },
	{ "writeback_total_size", "writeback_bytes_total", C,
	    "Bytes written back since start" },
	{ "idle_passes", "idle_passes_total", C,
	    "Automatic recompression and writeback passes run" },
	{ "recompress_paused", "recompress_paused_total", C,
	    "Automatic passes that skipped recompression for CPU pressure" },
	{ "writeback_paused", "writeback_paused_total", C,
	    "Automatic passes that skipped writeback for I/O pressure" },
	{ "writeback_errors", "writeback_errors_total", C,
	    "Writebacks stopped by a write that failed" },
	{ "pool_pages_used", "pool_used_pages", G,
	    "Pages in zspages and huge objects" },
	{ "pool_pages_free", "pool_free_pages", G,
	    "Pages mapped by the pool and free, still resident" },
	{ "pool_pages_reported", "pool_reported_pages", G,
	    "Free pages given back to the system" },
	{ "pool_pages_meta", "pool_meta_pages", G,
	    "Pages of the pool's own metadata" },
	{ "pool_pages_mapped", "pool_mapped_pages", G,
	    "All pages of the pool's sections, metadata included" },
	{ "pool_pages_freeable", "pool_freeable_pages", G,
	    "Pages compaction could free now" },
	{ "pool_sections", "pool_sections", G,
	    "Sections the pool has mapped" },
	{ "pool_sections_offlined", "pool_offlined_sections_total", C,
	    "Sections unmapped by shrinking" },
	{ "pool_zspages", "pool_zspages", G,
	    "Zspages in use" },
	{ "pool_zspages_pending_free", "pool_pending_free_zspages", G,
	    "Emptied zspages waiting for the pool's free worker" },
	{ "pool_isolated_zspages", "pool_isolated_zspages", G,
	    "Zspages taken off their lists by compaction or migration" },
	{ "pool_objects", "pool_objects", G,
	    "Objects, those whose free is pending included" },
	{ "pool_objects_pending_free", "pool_pending_free_objects", G,
	    "Objects freed whose slot waits in a batch of frees" },
	{ "pool_huge_objects", "pool_huge_objects", G,
	    "Live objects in the huge class" },
	{ "pool_bytes_requested", "pool_requested_bytes", G,
	    "Bytes of those objects, as allocated" },
	{ "pool_bytes_held", "pool_held_bytes", G,
	    "Bytes of the slots holding them" },
	{ "pool_objs_compacted", "pool_compacted_objects_total", C,
	    "Objects moved by compaction" },
	{ "pool_pages_migrated", "pool_migrated_pages_total", C,
	    "Pages moved by migration" },
	{ "pool_malloc_failures", "pool_malloc_failures_total", C,
	    "Allocations the pool refused for lack of memory" },
	{ "compactions", "compactions_total", C,
	    "Compactions run on request" },
	{ "compactions_auto", "auto_compactions_total", C,
	    "Compactions run automatically" },
	{ "control_clients", "control_clients", G,
	    "Clients connected to the control socket" },
	{ "log_lines_dropped", "log_dropped_lines_total", C,
	    "Log lines dropped because the log's queue was full" },
};

/* The columns of classes, one sample per class. */
static const struct prom_metric prom_class[] = {
	{ "zspages", "class_zspages", G,
	    "Zspages of the class" },
	{ "objs_allocated", "class_allocated_objects", G,
	    "Slots in the class's zspages" },
	{ "objs_used", "class_used_objects", G,
	    "Slots holding an object" },
	{ "pages_used", "class_used_pages", G,
	    "Pages the class's zspages take" },
	{ "freeable_pages", "class_freeable_pages", G,
	    "Pages compaction could free in the class at best" },
};

#undef G
#undef C

/* A count: the only values the metrics take, copied as they are. */
static bool
prom_is_count(const char *s)
{
	size_t n = strspn(s, "0123456789");

	return n > 0 && n <= 20 && s[n] == '\0';
}

static void
prom_header(FILE *f, const char *name, const char *type, const char *help,
    const char *source, const char *field)
{
	fprintf(f, "# HELP zsd_%s %s (%s field %s).\n", name, help, source,
	    field);
	fprintf(f, "# TYPE zsd_%s %s\n", name, type);
}

static const struct prom_metric *
prom_stat_find(const char *field)
{
	size_t i;

	for (i = 0; i < sizeof(prom_stat) / sizeof(prom_stat[0]); i++)
		if (strcmp(prom_stat[i].field, field) == 0)
			return &prom_stat[i];
	return NULL;
}

/* Whether the key at it was in m before: a repeated key is left out. */
static bool
prom_seen_before(const struct proto_msg *m, const struct proto_iter *it)
{
	struct proto_iter prev;

	proto_iter_init(&prev, m);
	while (proto_next(&prev) != 0 && prev.p != it->p)
		if (strcmp(prev.key, it->key) == 0)
			return true;
	return false;
}

static void
prom_print_stat(FILE *f, const struct proto_msg *m)
{
	const struct prom_metric *pm;
	struct proto_iter it;
	char value[PROTO_VALUE_MAX + 1];
	size_t i;

	for (i = 0; i < sizeof(prom_stat) / sizeof(prom_stat[0]); i++) {
		pm = &prom_stat[i];
		if (proto_get(m, pm->field, value, sizeof(value)) == NULL ||
		    !prom_is_count(value))
			continue;
		prom_header(f, pm->name, pm->type, pm->help, "stat",
		    pm->field);
		fprintf(f, "zsd_%s %s\n", pm->name, value);
	}
	/* A newer zsd's fields. */
	proto_iter_init(&it, m);
	while (proto_next(&it) == PROTO_KV) {
		if (prom_stat_find(it.key) != NULL ||
		    !prom_is_count(it.value) || prom_seen_before(m, &it))
			continue;
		fprintf(f, "# HELP zsd_stat_%s Not described by this zsctl "
		    "(stat field %s).\n", it.key, it.key);
		fprintf(f, "# TYPE zsd_stat_%s untyped\n", it.key);
		fprintf(f, "zsd_stat_%s %s\n", it.key, it.value);
	}
}

/* Split a classes line into its words, in place; how many. */
static int
prom_split(char *line, char **words, int max)
{
	char *p, *save;
	int n = 0;

	for (p = strtok_r(line, " ", &save); p != NULL && n < max;
	    p = strtok_r(NULL, " ", &save))
		words[n++] = p;
	return n;
}

static int
prom_column(char **names, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

static void
prom_print_classes(FILE *f, const struct proto_msg *m, bool all)
{
	const struct prom_metric *pm;
	struct proto_iter it;
	char fields[PROTO_VALUE_MAX + 1], *names[PROM_MAX_COLUMNS];
	char *v[PROM_MAX_COLUMNS];
	int nn, nv, col, c_index, c_size, c_zspages;
	size_t i;

	if (proto_get(m, "fields", fields, sizeof(fields)) == NULL)
		return;
	nn = prom_split(fields, names, PROM_MAX_COLUMNS);
	c_index = prom_column(names, nn, "index");
	c_size = prom_column(names, nn, "size");
	c_zspages = prom_column(names, nn, "zspages");
	if (c_index < 0 || c_size < 0 || c_zspages < 0)
		return;
	for (i = 0; i < sizeof(prom_class) / sizeof(prom_class[0]); i++) {
		pm = &prom_class[i];
		if ((col = prom_column(names, nn, pm->field)) < 0)
			continue;
		prom_header(f, pm->name, pm->type, pm->help, "classes",
		    pm->field);
		proto_iter_init(&it, m);
		while (proto_next(&it) == PROTO_KV) {
			if (strcmp(it.key, "class") != 0)
				continue;
			nv = prom_split(it.value, v, PROM_MAX_COLUMNS);
			if (nv < nn || !prom_is_count(v[c_index]) ||
			    !prom_is_count(v[c_size]) ||
			    !prom_is_count(v[col]) ||
			    (!all && strcmp(v[c_zspages], "0") == 0))
				continue;
			fprintf(f, "zsd_%s{class=\"%s\",size=\"%s\"} %s\n",
			    pm->name, v[c_index], v[c_size], v[col]);
		}
	}
}

void
prom_print(FILE *f, const struct proto_msg *stat,
    const struct proto_msg *classes, bool all)
{
	prom_print_stat(f, stat);
	if (classes != NULL)
		prom_print_classes(f, classes, all);
}
