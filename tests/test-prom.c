/*
 * test-prom.c - zsctl's Prometheus output from replies zsd would not
 * send today: fields it does not know, repeated, not numbers; classes
 * with their columns in another order, short rows, no "fields".
 * tests/zsctl.sh checks the output of a real zsd.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zsctl.h"
#include "tap.h"

static struct proto_buf	stat_buf, classes_buf;
static char		out[65536];

/* A reply from "key=value" strings, NULL last. */
static void
reply(struct proto_buf *b, struct proto_msg *m, const char *const *kv)
{
	size_t used;
	char key[PROTO_KEY_MAX + 1];
	const char *eq;

	proto_begin(b, PROTO_REPLY);
	for (; *kv != NULL; kv++) {
		eq = strchr(*kv, '=');
		snprintf(key, sizeof(key), "%.*s", (int)(eq - *kv), *kv);
		proto_add(b, key, "%s", eq + 1);
	}
	if (proto_finish(b) != PROTO_OK ||
	    proto_parse(b->data, b->len, m, &used) != PROTO_OK)
		bail("cannot make the reply");
}

static void
print(const struct proto_msg *s, const struct proto_msg *c, bool all)
{
	FILE *f = fmemopen(out, sizeof(out), "w");

	if (f == NULL)
		bail("fmemopen");
	prom_print(f, s, c, all);
	fputc('\0', f);
	fclose(f);
}

static int
count(const char *needle)
{
	const char *p = out;
	int n = 0;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	return n;
}

static bool
has(const char *needle)
{
	return strstr(out, needle) != NULL;
}

int
main(void)
{
	static const char *const stat_kv[] = {
		"writes=5", "reads=-1", "mem_used_total=4096",
		"new_thing=7", "new_thing=8", "note=hello", "writes=6",
		NULL
	};
	static const char *const classes_kv[] = {
		/* A column zsd does not send today, first. */
		"fields=spare index size zspages objs_used objs_allocated "
		    "pages_used freeable_pages fullness...",
		"class=9 0 32 2 200 256 2 1 0 0 1",
		"class=9 1 48 0 0 0 0 0 0 0 0",
		"class=9 2 64 1 1",
		"class=9 3 x 1 1 1 1 1 0 0 0",
		NULL
	};
	static const char *const nofields_kv[] = {
		"class=0 32 1 128 0 2 256 200 2 0", NULL
	};
	struct proto_msg s, c, nf;

	reply(&stat_buf, &s, stat_kv);
	print(&s, NULL, false);
	ok(has("# HELP zsd_written_pages_total Pages written (stat field "
	    "writes).\n# TYPE zsd_written_pages_total counter\n"
	    "zsd_written_pages_total 5\n"), "writes: a counter, HELP, TYPE "
	    "and the first value");
	ok(count("zsd_written_pages_total") == 3, "a repeated field once");
	ok(has("# TYPE zsd_mem_used_bytes gauge\nzsd_mem_used_bytes 4096\n"),
	    "mem_used_total: a gauge in bytes");
	ok(!has("zsd_read_pages_total"), "a value not a count is left out");
	ok(has("# HELP zsd_stat_new_thing Not described by this zsctl (stat "
	    "field new_thing).\n# TYPE zsd_stat_new_thing untyped\n"
	    "zsd_stat_new_thing 7\n") && count("zsd_stat_new_thing") == 3,
	    "an unknown field: zsd_stat_new_thing, untyped, once");
	ok(!has("note"), "an unknown field not a count is left out");
	ok(count("# HELP") == 3 && count("# TYPE") == 3,
	    "three metrics, one HELP and one TYPE each");

	reply(&classes_buf, &c, classes_kv);
	print(&s, &c, false);
	ok(has("# TYPE zsd_class_used_objects gauge\n"
	    "zsd_class_used_objects{class=\"0\",size=\"32\"} 200\n# HELP"),
	    "classes: columns found by name, one class in use");
	ok(has("zsd_class_allocated_objects{class=\"0\",size=\"32\"} 256\n") &&
	    has("zsd_class_zspages{class=\"0\",size=\"32\"} 2\n") &&
	    has("zsd_class_used_pages{class=\"0\",size=\"32\"} 2\n") &&
	    has("zsd_class_freeable_pages{class=\"0\",size=\"32\"} 1\n"),
	    "classes: all five figures");
	ok(!has("class=\"1\"") && !has("class=\"2\"") &&
	    !has("class=\"3\""), "without all: no empty class, no short "
	    "row, no row with a word not a number");
	print(&s, &c, true);
	ok(has("zsd_class_zspages{class=\"1\",size=\"48\"} 0\n") &&
	    !has("class=\"2\"") && !has("class=\"3\""),
	    "with all: the empty class too, still no bad rows");
	ok(count("# HELP") == 8 && count("# TYPE") == 8,
	    "eight metrics, one HELP and one TYPE each");

	reply(&classes_buf, &nf, nofields_kv);
	print(&s, &nf, true);
	ok(!has("zsd_class_"), "classes without fields: no class metrics");

	return done_testing();
}
