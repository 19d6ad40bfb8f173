/*
 * pattern.c - what each page must hold.
 *
 * A page's content is a function of the seed, the stream (the worker),
 * the page number and the pass (how many times the page has been
 * written; pass 0 is a page never written or freed, all zeros).  The
 * kind of the page (text, binary, random, same-filled, duplicate) is
 * drawn from the mix by the same function, so that a wrong page can be
 * compared with what it should hold and with what it could hold instead.
 *
 * Text, binary and random pages begin with a header naming the stream,
 * page and pass: a page that comes back with another page's header was
 * misplaced, one with an older pass of its own is stale, and one with
 * the right header but other bytes is torn or corrupt.  Duplicate pages
 * are one of DUP_TEMPLATES pages per seed, headed by the template's
 * number, so that many pages hold the same bytes.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zsd-stress.h"

#define DUP_TEMPLATES		8
#define STALE_LOOKBACK		16	/* earlier passes tried by explain */

struct page_header {
	uint64_t	tag;		/* header_tag, or dup_tag */
	uint64_t	page;		/* the template, for a duplicate */
	uint32_t	pass;
	uint32_t	stream;
};

const char *const kind_names[NR_KINDS] = {
	"text", "binary", "random", "same", "dup",
};

/* Set once by pattern_init, read-only after. */
static uint64_t		seed;
static uint64_t		header_tag, dup_tag;
static struct mix	mix;

static const char *const words[32] = {
	"the", "page", "swap", "of", "memory", "and", "a", "to", "in",
	"compressed", "is", "zsd", "kernel", "for", "data", "stress",
	"return", "if", "int", "struct", "0x0", "{", "}", ";", "=", "\n",
	"\t", "write", "read", "error", "pool", "value",
};

uint64_t
hash64(uint64_t x)
{
	/* splitmix64's finaliser */
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint64_t
rand_next(uint64_t *s)
{
	/* xorshift64*; the state must not be 0 */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

void
mix_default(struct mix *m)
{
	static const unsigned int w[NR_KINDS] = { 40, 20, 10, 20, 10 };
	int k;

	m->total = 0;
	for (k = 0; k < NR_KINDS; k++) {
		m->weight[k] = w[k];
		m->total += w[k];
	}
}

int
mix_parse(const char *s, struct mix *m, char *err, size_t errlen)
{
	char buf[256], *item, *save, *eq, *end;
	unsigned long v;
	int k;

	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, errlen, "--mix: too long");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	memset(m, 0, sizeof(*m));
	for (item = strtok_r(buf, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		if ((eq = strchr(item, '=')) == NULL) {
			snprintf(err, errlen, "--mix: '%s': expected "
			    "KIND=WEIGHT", item);
			return -1;
		}
		*eq = '\0';
		for (k = 0; k < NR_KINDS; k++)
			if (strcmp(item, kind_names[k]) == 0)
				break;
		if (k == NR_KINDS) {
			snprintf(err, errlen, "--mix: unknown kind '%s' (text, "
			    "binary, random, same, dup)", item);
			return -1;
		}
		v = strtoul(eq + 1, &end, 10);
		if (eq[1] < '0' || eq[1] > '9' || *end != '\0' || v > 1000) {
			snprintf(err, errlen, "--mix: %s=%s: expected a weight "
			    "from 0 to 1000", item, eq + 1);
			return -1;
		}
		m->weight[k] = (unsigned int)v;
	}
	for (k = 0; k < NR_KINDS; k++)
		m->total += m->weight[k];
	if (m->total == 0) {
		snprintf(err, errlen, "--mix: every weight is 0");
		return -1;
	}
	return 0;
}

void
mix_format(const struct mix *m, char *buf, size_t len)
{
	size_t off = 0;
	int k;

	buf[0] = '\0';
	for (k = 0; k < NR_KINDS && off < len; k++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s=%u",
		    k ? "," : "", kind_names[k], m->weight[k]);
}

void
pattern_init(uint64_t s, const struct mix *m)
{
	seed = s;
	mix = *m;
	header_tag = hash64(seed ^ 0x7a73642d73747273ull) | 1;
	dup_tag = header_tag ^ 0xd0d0d0d0d0d0d0d0ull;
}

static uint64_t
page_hash(uint32_t stream, uint64_t page, uint32_t pass)
{
	return hash64(seed ^ hash64(page ^ ((uint64_t)stream << 40) ^
	    hash64(pass)));
}

enum page_kind
page_kind_of(uint32_t stream, uint64_t page, uint32_t pass)
{
	uint64_t r = page_hash(stream, page, pass) >> 11;
	unsigned int x = (unsigned int)(r % mix.total), k;

	for (k = 0; k < NR_KINDS - 1; k++) {
		if (x < mix.weight[k])
			break;
		x -= mix.weight[k];
	}
	return (enum page_kind)k;
}

static void
fill_text(unsigned char *p, size_t start, uint64_t rs)
{
	const char *w;
	size_t i = start, n;
	uint64_t r = 0;
	int bits = 0;

	while (i < PAGE) {
		if (bits < 5) {
			r = rand_next(&rs);
			bits = 64;
		}
		w = words[r & 31];
		r >>= 5;
		bits -= 5;
		n = strlen(w);
		if (n > PAGE - i)
			n = PAGE - i;
		memcpy(p + i, w, n);
		i += n;
		if (i < PAGE)
			p[i++] = ' ';
	}
}

/* 32-byte records: an id, a type, a pointer, a length, a zero. */
static void
fill_binary(unsigned char *p, size_t start, uint64_t rs, uint64_t page)
{
	uint64_t rec[4], r, base = 0x00007f0000000000ull |
	    ((rs & 0xffff) << 24);
	size_t i;

	for (i = start; i + sizeof(rec) <= PAGE; i += sizeof(rec)) {
		r = rand_next(&rs);
		rec[0] = (page << 8 | (i >> 5)) | (r & 7) << 48;
		rec[1] = base + (r >> 20 & 0xffff0);
		rec[2] = r >> 52;
		rec[3] = 0;
		memcpy(p + i, rec, sizeof(rec));
	}
	memset(p + i, 0, PAGE - i);
}

static void
fill_random(unsigned char *p, size_t start, uint64_t rs)
{
	uint64_t v;
	size_t i;

	for (i = start; i < PAGE; i += sizeof(v)) {
		v = rand_next(&rs);
		memcpy(p + i, &v, sizeof(v));
	}
}

enum page_kind
page_fill(void *buf, uint32_t stream, uint64_t page, uint32_t pass)
{
	unsigned char *p = buf;
	struct page_header h;
	uint64_t hsh, rs, v;
	enum page_kind kind;
	size_t i;

	if (pass == 0) {
		memset(p, 0, PAGE);
		return KIND_SAME;
	}
	hsh = page_hash(stream, page, pass);
	kind = page_kind_of(stream, page, pass);
	rs = hsh | 1;
	h.tag = header_tag;
	h.page = page;
	h.pass = pass;
	h.stream = stream;
	switch (kind) {
	case KIND_TEXT:
		memcpy(p, &h, sizeof(h));
		fill_text(p, sizeof(h), rs);
		break;
	case KIND_BINARY:
		memcpy(p, &h, sizeof(h));
		fill_binary(p, sizeof(h), rs, page);
		break;
	case KIND_RANDOM:
		memcpy(p, &h, sizeof(h));
		fill_random(p, sizeof(h), rs);
		break;
	case KIND_SAME:
		/* Half of them zero, as most same-filled pages are. */
		v = (hsh & 1) ? 0 : hash64(hsh);
		for (i = 0; i < PAGE; i += sizeof(v))
			memcpy(p + i, &v, sizeof(v));
		break;
	case KIND_DUP:
		h.tag = dup_tag;
		h.page = hsh % DUP_TEMPLATES;
		h.pass = 0;
		h.stream = 0;
		memcpy(p, &h, sizeof(h));
		fill_text(p, sizeof(h), hash64(seed ^ h.page) | 1);
		break;
	default:
		abort();
	}
	return kind;
}

static bool
is_same_filled(const unsigned char *p, uint64_t *word)
{
	uint64_t v, w;
	size_t i;

	memcpy(&w, p, sizeof(w));
	for (i = sizeof(w); i < PAGE; i += sizeof(v)) {
		memcpy(&v, p + i, sizeof(v));
		if (v != w)
			return false;
	}
	*word = w;
	return true;
}

/* What the found page is, as far as it can be told. */
static void
explain_found(const unsigned char *found, uint32_t stream, uint64_t page,
    uint32_t pass, char *out, size_t len)
{
	unsigned char *old;
	struct page_header h;
	uint64_t word;
	uint32_t p;

	memcpy(&h, found, sizeof(h));
	if (is_same_filled(found, &word)) {
		if (word == 0)
			snprintf(out, len, "it reads back as zeros: lost, or "
			    "an old hole");
		else
			snprintf(out, len, "it is the word 0x%016" PRIx64
			    " repeated", word);
		/* A same-filled earlier pass would be stale, said below. */
		if (word == 0 || pass <= 1)
			return;
	} else if (h.tag == header_tag) {
		if (h.stream == stream && h.page == page && h.pass == pass)
			snprintf(out, len, "its header is right and its bytes "
			    "are not: torn or corrupt");
		else if (h.stream == stream && h.page == page)
			snprintf(out, len, "it holds pass %" PRIu32 " of this "
			    "page: %s", h.pass, h.pass < pass ? "stale" :
			    "from the future");
		else
			snprintf(out, len, "it holds page %" PRIu64 " pass %"
			    PRIu32 " of worker %" PRIu32 " (start %" PRIu32
			    "): misplaced", h.page, h.pass, h.stream & 0xffff,
			    h.stream >> 16);
		return;
	} else if (h.tag == dup_tag && h.page < DUP_TEMPLATES) {
		snprintf(out, len, "it holds duplicate page %" PRIu64 "%s",
		    h.page, page_kind_of(stream, page, pass) == KIND_DUP ?
		    " (another one: torn or misplaced)" : ": misplaced");
		return;
	} else {
		snprintf(out, len, "its content is none of zsd-stress's: "
		    "corrupt");
	}
	/* Headerless kinds: is it an earlier pass of this page? */
	if ((old = malloc(PAGE)) == NULL)
		return;
	for (p = pass - 1; pass >= 2 && p >= 1 && p + STALE_LOOKBACK >= pass;
	    p--) {
		page_fill(old, stream, page, p);
		if (memcmp(old, found, PAGE) == 0) {
			snprintf(out, len, "it holds pass %" PRIu32 " of this "
			    "page: stale", p);
			break;
		}
	}
	free(old);
}

void
page_explain(const void *found, uint32_t stream, uint64_t page,
    uint32_t pass, char *out, size_t len)
{
	const unsigned char *f = found;
	unsigned char *want;
	char what[256], expect[64];
	size_t d, ndiff = 0, i;

	if ((want = malloc(PAGE)) == NULL) {
		snprintf(out, len, "(no memory to describe it)");
		return;
	}
	page_fill(want, stream, page, pass);
	for (d = 0; d < PAGE && f[d] == want[d]; d++)
		;
	for (i = d; i < PAGE; i++)
		ndiff += f[i] != want[i];
	explain_found(f, stream, page, pass, what, sizeof(what));
	if (pass == 0)
		snprintf(expect, sizeof(expect), "zeros (never written, or "
		    "freed)");
	else
		snprintf(expect, sizeof(expect), "a %s page (pass %" PRIu32
		    ")", kind_names[page_kind_of(stream, page, pass)], pass);
	if (d == PAGE)
		snprintf(out, len, "no difference on a second look (it "
		    "changed while read)");
	else
		snprintf(out, len, "expected %s; first difference at byte "
		    "%zu: expected 0x%02x, found 0x%02x; %zu bytes differ; %s",
		    expect, d, want[d], f[d], ndiff, what);
	free(want);
}
