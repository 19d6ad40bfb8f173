/*
 * arena.c - a pool that outlives its process: the pool's memory in a
 * memfd, and the recovery of a pool a dead process left there.
 *
 * Layout.  The arena is one file mapped whole (MAP_SHARED) at one
 * address, recorded in its header; a successor maps it at the same
 * address, so every pointer the pool keeps inside it (section pointers
 * and zspage list links, say) means the same thing in both processes.
 * The address is chosen far from where the kernel puts programs,
 * libraries, heaps and stacks (and from the sanitizers' shadow memory),
 * so that a new process finds it free; if it is taken all the same,
 * attach fails with EADDRINUSE and the arena is left as it is.  (Offsets
 * instead of pointers would free us of the address, at the price of an
 * addition on every access and of rewriting every structure of libzs.)
 *
 *	header		one page: struct arena_hdr
 *	root		the caller's, root_size bytes
 *	handles		the handle table: HANDLE_MAX words
 *	zspages		the zspage descriptors: ZSPAGE_DIR * ZSPAGE_CHUNK
 *	sections	max_sections sections, section i at i * section_size
 *
 * Each region is as large as it can ever need to be and sits at a fixed
 * offset, so nothing about where things are needs to be written down as
 * the pool grows: the handle table's chunk k, the zspage table's chunk k
 * and section k are always at the same place.  The file is sparse: only
 * pages written cost memory, and what the pool gives back (free page
 * reporting, an unmapped section) is punched out of the file
 * (fallocate), which is what frees shared memory; madvise cannot, and
 * MADV_REMOVE refuses memory locked by mlockall.  Only the highest
 * section slot ever used is kept in the header, updated before the
 * section is used.
 *
 * Recovery.  What a dead process left may be mid-way through anything:
 * lists half linked, counters off, a lock held, a handle pinned.  None of
 * that is trusted.  What is trusted is what every move of an object keeps
 * valid at each single store: a live handle's word names a slot (or huge
 * page) holding its object, whose zspage descriptor names populated pages
 * (libzs copies before it switches a word or a pfn, and frees the old
 * place after).  The caller names the handles it holds (zs_arena_mark);
 * zs_arena_recover then keeps their objects and builds everything else
 * from them: each zspage's free slots and chain, its pages (those no kept
 * object overlaps are dropped), every section's page descriptors and free
 * list, the handle and zspage free lists, the classes' fullness lists and
 * counters.  Sections left with no kept page are punched out whole.
 * Last, the pages of the arena that are in memory are mapped into the
 * new process, which locks them if it runs under mlockall
 * (arena_lock_resident).
 */
#include <config.h>

#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zs-internal.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE	0x100000	/* Linux 4.17 */
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS		1033		/* Linux 3.17 */
#define F_SEAL_SHRINK		0x0002
#define F_SEAL_GROW		0x0004
#endif

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22		/* Linux 5.14 */
#endif

#define ARENA_MAGIC		"ZSARENA"
#define ARENA_VERSION		1
#define ARENA_ALIGN		(2u << 20)
/*
 * 32 TiB: above ASan's shadow (it ends near 16 TiB), far below where
 * position-independent programs (~85 TiB) and the mmap area (~127 TiB)
 * go on x86-64 and on arm64 with 48-bit addresses.
 *
 * ThreadSanitizer leaves a program only three ranges (x86-64, gcc 12's
 * libtsan): below 512 GiB, 85-86.5 TiB (the program) and the top 1.5 TiB
 * (libraries, stacks), and 32 TiB lies in a gap it keeps unmapped.  Its
 * mmap turns a hint outside those ranges into no hint, which
 * MAP_FIXED_NOREPLACE then takes as address 0.  So under TSan the arena
 * goes at 64 GiB, clear of 32-bit mappings and of a program not built as
 * PIE and its heap, in a range nothing else uses, and must be bounded
 * (max_size) to fit below 512 GiB: the tables alone take 112 GiB.
 *
 * An arena larger than ARENA_HINT_ROOM goes where the kernel puts it,
 * where a successor may find its address taken (EADDRINUSE).
 */
#ifndef __has_feature
#define __has_feature(x)	0			/* gcc before 14 */
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define ARENA_HINT		0x1000000000ull		/* 64 GiB */
#define ARENA_HINT_ROOM		0x7000000000ull		/* up to 512 GiB */
#else
#define ARENA_HINT		0x200000000000ull	/* 32 TiB */
#define ARENA_HINT_ROOM		0x200000000000ull	/* up to 64 TiB */
#endif

/* The first page of the file.  Constant after creation but section_slots. */
struct arena_hdr {
	char		magic[8];
	uint32_t	version;
	uint32_t	page_size;
	uint64_t	base;		/* the address it is mapped at */
	uint64_t	size;		/* of the file, and of the mapping */
	uint64_t	section_size;
	uint32_t	max_chain;
	uint32_t	max_sections;
	/* What this build's structures are: another layout is refused. */
	uint32_t	sizeof_zspage;
	uint32_t	sizeof_page;
	uint32_t	sizeof_section;
	uint32_t	nr_classes;
	uint64_t	root_off, root_size;
	uint64_t	handles_off, zspages_off, sections_off;
	_Atomic uint32_t section_slots;	/* slots below were ever used */
	uint32_t	attaches;	/* times recovered */
};

/* Private to the process; the pool's arena field. */
struct arena {
	int			 fd;
	char			*base;
	size_t			 size;
	struct arena_hdr	*hdr;
	/* Recovery: the handle indices marked, a bit each. */
	uint64_t		*marks;
	size_t			 marks_len;	/* words */
	uint32_t		 mark_top;	/* highest marked + 1 */
	uint32_t		 zspage_top;	/* highest zspage id named + 1 */
	uint64_t		 nr_marked;
};

static size_t
align_up(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

/* The layout for pool's geometry and root_size bytes of root. */
static void
arena_layout(const struct zs_pool *pool, size_t root_size,
    struct arena_hdr *h)
{
	size_t sections = (size_t)pool->max_sections * pool->cfg.section_size;

	if (pool->cfg.max_size != 0 && pool->cfg.max_size < sections)
		sections = align_up(pool->cfg.max_size, pool->cfg.section_size);
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, ARENA_MAGIC, sizeof(h->magic));
	h->version = ARENA_VERSION;
	h->page_size = PAGE_SIZE;
	h->section_size = pool->cfg.section_size;
	h->max_chain = pool->cfg.max_chain;
	h->max_sections = (uint32_t)(sections / pool->cfg.section_size);
	h->sizeof_zspage = sizeof(struct zspage);
	h->sizeof_page = sizeof(struct zs_page);
	h->sizeof_section = sizeof(struct section);
	h->nr_classes = pool->nr_classes;
	h->root_off = ARENA_ALIGN;
	h->root_size = root_size;
	h->handles_off = h->root_off + align_up(root_size, ARENA_ALIGN);
	h->zspages_off = h->handles_off + align_up((size_t)HANDLE_MAX *
	    sizeof(uint64_t), ARENA_ALIGN);
	h->sections_off = h->zspages_off + align_up((size_t)ZSPAGE_DIR *
	    ZSPAGE_CHUNK * sizeof(struct zspage), ARENA_ALIGN);
	h->size = h->sections_off + sections;
}

static struct arena *
arena_new(int fd, char *base, size_t size)
{
	struct arena *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->fd = fd;
	a->base = base;
	a->size = size;
	a->hdr = (struct arena_hdr *)(void *)base;
	return a;
}

struct zs_pool *
zs_arena_create(const struct zs_pool_config *cfg, int fd, size_t root_size)
{
	struct arena_hdr h;
	struct zs_pool *pool;
	struct stat sb;
	char *base;
	int error;

	if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size != 0 || root_size > (1ull << 40)) {
		errno = EINVAL;
		return NULL;
	}
	if ((pool = pool_new(cfg)) == NULL)
		return NULL;
	arena_layout(pool, root_size, &h);
	if (h.max_sections < pool->max_sections)
		pool->max_sections = h.max_sections;
	if (ftruncate(fd, (off_t)h.size) != 0)
		goto fail;
	/* Where sealing is not allowed (no MFD_ALLOW_SEALING), go without. */
	(void)fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
	base = h.size > ARENA_HINT_ROOM ? MAP_FAILED : mmap((void *)ARENA_HINT,
	    h.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE,
	    fd, 0);
	if (base == MAP_FAILED || base != (char *)ARENA_HINT) {
		if (base != MAP_FAILED)
			munmap(base, h.size);	/* kernel without NOREPLACE */
		base = mmap(NULL, h.size, PROT_READ | PROT_WRITE, MAP_SHARED,
		    fd, 0);
		if (base == MAP_FAILED)
			goto fail;
	}
	if ((pool->arena = arena_new(fd, base, h.size)) == NULL) {
		munmap(base, h.size);
		errno = ENOMEM;
		goto fail;
	}
	h.base = (uint64_t)(uintptr_t)base;
	memcpy(base, &h, sizeof(h));
	if ((error = pool_start(pool)) != 0) {
		errno = -error;
		goto fail;
	}
	return pool;

fail:
	error = errno;
	zs_destroy_pool(pool);
	errno = error;
	return NULL;
}

struct zs_pool *
zs_arena_attach(const struct zs_pool_config *cfg, int fd)
{
	struct zs_pool_config c;
	struct arena_hdr h, want;
	struct zs_pool *pool;
	struct stat sb;
	char *base;
	int error;

	if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    (size_t)sb.st_size < sizeof(h) ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h)) {
		errno = EINVAL;
		return NULL;
	}
	if (memcmp(h.magic, ARENA_MAGIC, sizeof(h.magic)) != 0 ||
	    h.version != ARENA_VERSION || h.page_size != PAGE_SIZE ||
	    h.size != (uint64_t)sb.st_size) {
		errno = EPROTO;
		return NULL;
	}
	if (cfg != NULL)
		c = *cfg;
	else
		zs_pool_config_init(&c);
	c.section_size = h.section_size;
	c.max_chain = h.max_chain;
	if ((pool = pool_new(&c)) == NULL)
		return NULL;
	arena_layout(pool, h.root_size, &want);
	want.base = h.base;
	want.size = h.size;
	want.max_sections = h.max_sections;
	want.section_slots = h.section_slots;
	want.attaches = h.attaches;
	if (memcmp(&want, &h, sizeof(h)) != 0 ||
	    h.section_slots > h.max_sections) {
		zs_destroy_pool(pool);
		errno = EPROTO;
		return NULL;
	}
	if (h.max_sections < pool->max_sections)
		pool->max_sections = h.max_sections;
	base = mmap((void *)(uintptr_t)h.base, h.size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
	if (base == MAP_FAILED || base != (char *)(uintptr_t)h.base) {
		error = base == MAP_FAILED && errno != EEXIST ? errno :
		    EADDRINUSE;
		if (base != MAP_FAILED)
			munmap(base, h.size);
		zs_destroy_pool(pool);
		errno = error;
		return NULL;
	}
	if ((pool->arena = arena_new(fd, base, h.size)) == NULL) {
		munmap(base, h.size);
		zs_destroy_pool(pool);
		errno = ENOMEM;
		return NULL;
	}
	pool->recovering = true;
	return pool;
}

int
zs_pool_is_arena(struct zs_pool *pool)
{
	return pool->arena != NULL;
}

int
zs_arena_recovering(struct zs_pool *pool)
{
	return pool->arena != NULL && pool->recovering;
}

void *
zs_arena_root(struct zs_pool *pool, size_t *sizep)
{
	struct arena *a = pool->arena;

	if (a == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if (sizep != NULL)
		*sizep = a->hdr->root_size;
	return a->base + a->hdr->root_off;
}

void *
arena_handle_chunk(struct zs_pool *pool, uint32_t k)
{
	struct arena *a = pool->arena;

	return a->base + a->hdr->handles_off +
	    (size_t)k * HANDLE_CHUNK * sizeof(uint64_t);
}

void *
arena_zspage_chunk(struct zs_pool *pool, uint32_t k)
{
	struct arena *a = pool->arena;

	return a->base + a->hdr->zspages_off +
	    (size_t)k * ZSPAGE_CHUNK * sizeof(struct zspage);
}

/*
 * Section slot's memory, its slot recorded as used before the caller
 * writes it (grow_lock held).  NULL + ENOMEM past the arena's sections.
 */
struct section *
arena_section(struct zs_pool *pool, uint32_t slot)
{
	struct arena *a = pool->arena;

	if (slot >= a->hdr->max_sections) {
		errno = ENOMEM;
		return NULL;
	}
	if (slot >= atomic_load(&a->hdr->section_slots))
		atomic_store(&a->hdr->section_slots, slot + 1);
	return (struct section *)(void *)(a->base + a->hdr->sections_off +
	    (size_t)slot * pool->cfg.section_size);
}

/* Punch [addr, addr + len) out of the file: its memory is freed. */
int
arena_release(struct zs_pool *pool, void *addr, size_t len)
{
	struct arena *a = pool->arena;
	off_t off = (char *)addr - a->base;

	if (fallocate(a->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
	    (off_t)len) != 0)
		return -errno;
	return 0;
}

/* Pool teardown: unmap, and leave the file as it is. */
void
arena_unmap(struct zs_pool *pool)
{
	struct arena *a = pool->arena;

	if (a == NULL)
		return;
	munmap(a->base, a->size);
	free(a->marks);
	free(a);
	pool->arena = NULL;
}

/* ------------------------------------------------------------------ */
/* Recovery.                                                            */

static _Atomic uint64_t *
arena_word(struct arena *a, uint32_t idx)
{
	return (_Atomic uint64_t *)(void *)(a->base + a->hdr->handles_off) +
	    idx;
}

static struct zspage *
arena_zspage(struct arena *a, uint32_t id)
{
	return (struct zspage *)(void *)(a->base + a->hdr->zspages_off) + id;
}

static struct section *
arena_sec(struct zs_pool *pool, uint32_t slot)
{
	struct arena *a = pool->arena;

	return (struct section *)(void *)(a->base + a->hdr->sections_off +
	    (size_t)slot * pool->cfg.section_size);
}

static uint32_t
first_data_page(const struct zs_pool *pool)
{
	size_t meta = sizeof(struct section) +
	    ((size_t)1 << pool->sec_shift) * sizeof(struct zs_page);

	return (uint32_t)((meta + PAGE_SIZE - 1) >> PAGE_SHIFT);
}

/* Whether pfn can be a data page of a section the arena has used. */
static bool
pfn_valid(const struct zs_pool *pool, uint32_t pfn)
{
	uint32_t slot = pfn >> pool->sec_shift;
	uint32_t idx = pfn & ((1u << pool->sec_shift) - 1);

	return slot < atomic_load(&pool->arena->hdr->section_slots) &&
	    idx >= first_data_page(pool);
}

static char *
arena_page(struct zs_pool *pool, uint32_t pfn)
{
	return (char *)arena_sec(pool, pfn >> pool->sec_shift) +
	    ((size_t)(pfn & ((1u << pool->sec_shift) - 1)) << PAGE_SHIFT);
}

/* Whether zspage z of class c is sane enough to read slot obj of. */
static bool
zspage_slot_ok(struct zs_pool *pool, const struct size_class *c,
    const struct zspage *z, unsigned int obj)
{
	size_t start = (size_t)obj * c->size;
	unsigned int p, last;

	if (obj >= c->objs_per_zspage || obj >= z->fresh)
		return false;
	last = (unsigned int)((start + c->size - 1) >> PAGE_SHIFT);
	for (p = (unsigned int)(start >> PAGE_SHIFT); p <= last; p++)
		if (p >= c->pages_per_zspage || z->pfn[p] == PFN_NONE ||
		    !pfn_valid(pool, z->pfn[p]))
			return false;
	return true;
}

/* z's class, if its descriptor names one; else NULL. */
static struct size_class *
zspage_class(struct zs_pool *pool, const struct zspage *z)
{
	struct size_class *c;

	if (z->class_idx > NR_SIZE_SLOTS)
		return NULL;
	c = &pool->class_store[z->class_idx];
	if (c->huge || c->objs_per_zspage == 0 || c != pool->size_class[
	    (c->size - 1) / CLASS_STEP])
		return NULL;
	return c;
}

static const struct obj_hdr *
arena_slot_hdr(struct zs_pool *pool, const struct size_class *c,
    const struct zspage *z, unsigned int obj)
{
	size_t off = (size_t)obj * c->size;

	return (const struct obj_hdr *)(void *)(arena_page(pool,
	    z->pfn[off >> PAGE_SHIFT]) + (off & PAGE_MASK));
}

int
zs_arena_mark(struct zs_pool *pool, zs_handle_t handle)
{
	struct arena *a = pool->arena;
	uint32_t idx = (uint32_t)handle, gen = (uint32_t)(handle >> 32);
	const struct obj_hdr *hdr;
	struct size_class *c;
	struct zspage *z;
	uint64_t w;
	size_t need;

	if (a == NULL || !pool->recovering)
		return -EINVAL;
	if (idx == 0 || idx >= HANDLE_MAX || gen > 0xffff)
		return -EINVAL;
	w = atomic_load(arena_word(a, idx));
	if (!(w & HW_ALLOC) || HW_GEN(w) != gen)
		return -EINVAL;
	if (w & HW_HUGE) {
		if (!pfn_valid(pool, HW_LOC(w)))
			return -EINVAL;
	} else {
		if (HW_LOC(w) >= ZSPAGE_DIR * ZSPAGE_CHUNK)
			return -EINVAL;
		z = arena_zspage(a, HW_LOC(w));
		if ((c = zspage_class(pool, z)) == NULL ||
		    !zspage_slot_ok(pool, c, z, HW_OBJ(w)))
			return -EINVAL;
		hdr = arena_slot_hdr(pool, c, z, HW_OBJ(w));
		if (hdr->tag != (idx << 1 | 1) || hdr->size == 0 ||
		    hdr->size + OBJ_HDR_SIZE > c->size)
			return -EINVAL;
	}
	if ((size_t)idx / 64 >= a->marks_len) {
		size_t len = a->marks_len ? a->marks_len : 1024;
		uint64_t *m;

		while (len <= (size_t)idx / 64)
			len *= 2;
		if ((m = realloc(a->marks, len * sizeof(*m))) == NULL)
			return -ENOMEM;
		memset(m + a->marks_len, 0, (len - a->marks_len) * sizeof(*m));
		a->marks = m;
		a->marks_len = len;
	}
	need = (size_t)1 << (idx % 64);
	if (!(a->marks[idx / 64] & need)) {
		a->marks[idx / 64] |= need;
		a->nr_marked++;
	}
	if (idx + 1 > a->mark_top)
		a->mark_top = idx + 1;
	if (!(w & HW_HUGE) && HW_LOC(w) + 1 > a->zspage_top)
		a->zspage_top = HW_LOC(w) + 1;
	return 0;
}

static bool
marked(const struct arena *a, uint32_t idx)
{
	return (size_t)idx / 64 < a->marks_len &&
	    (a->marks[idx / 64] >> (idx % 64) & 1);
}

/* What a page of the pool is, while the sections are rebuilt. */
#define OWN_NONE	0
#define OWN_HUGE	(1ull << 63)	/* | handle index */
					/* else zspage id + 1 */

struct rebuild {
	struct zs_pool	*pool;
	uint64_t	*owner;		/* per pfn below nr_pfns */
	uint64_t	 nr_pfns;
	uint8_t		*zmark;		/* per zspage id: holds a kept object */
	uint32_t	 ztop;		/* highest zspage id kept + 1 */
	char		*why;
	size_t		 whylen;
};

static int
rebuild_fail(struct rebuild *r, const char *what, unsigned long long n)
{
	if (r->why != NULL)
		snprintf(r->why, r->whylen, "%s %llu", what, n);
	return -EUCLEAN;
}

/* Claim pfn for owner; two claims of one page are a broken arena. */
static int
claim(struct rebuild *r, uint32_t pfn, uint64_t owner)
{
	if (pfn >= r->nr_pfns || !pfn_valid(r->pool, pfn))
		return rebuild_fail(r, "page out of range:", pfn);
	if (r->owner[pfn] != OWN_NONE && r->owner[pfn] != owner)
		return rebuild_fail(r, "page claimed twice:", pfn);
	r->owner[pfn] = owner;
	return 0;
}

/*
 * Pass 1: the handles.  Marked ones lose a dead process's pin and claim
 * their huge page or their zspage; the others, below the highest marked,
 * go on the free list (generation kept); the words above are cleared.
 */
static int
rebuild_handles(struct rebuild *r, struct zs_recovery *res)
{
	struct zs_pool *pool = r->pool;
	struct arena *a = pool->arena;
	uint32_t top = a->mark_top ? a->mark_top : 1, idx, k;
	_Atomic uint64_t *w;
	uint64_t v;
	int error;

	for (k = 0; k <= (top - 1) >> HANDLE_CHUNK_SHIFT; k++)
		atomic_store(&pool->handle_dir[k],
		    (_Atomic uint64_t *)arena_handle_chunk(pool, k));
	pool->handle_free = 0;
	for (idx = top; idx-- > 1;) {
		w = arena_word(a, idx);
		v = atomic_load(w);
		if (!marked(a, idx)) {
			if (v & HW_ALLOC)
				res->objects_freed++;
			atomic_store(w, (v & HW_GEN_MASK) |
			    (uint64_t)pool->handle_free << HW_LOC_SHIFT);
			pool->handle_free = idx;
			continue;
		}
		atomic_store(w, v & ~HW_PIN);
		if (v & HW_HUGE) {
			if ((error = claim(r, HW_LOC(v), OWN_HUGE | idx)) != 0)
				return error;
		} else {
			r->zmark[HW_LOC(v)] = 1;
			if (HW_LOC(v) + 1 > r->ztop)
				r->ztop = HW_LOC(v) + 1;
		}
	}
	atomic_store(&pool->handle_top, top);
	/* Words past top may hold anything a dead process left: zeros. */
	w = arena_word(a, 0);
	k = (top + HANDLE_CHUNK - 1) >> HANDLE_CHUNK_SHIFT;
	for (idx = top; idx < k * HANDLE_CHUNK; idx++)
		res->objects_freed += (atomic_load(&w[idx]) & HW_ALLOC) != 0;
	memset((void *)(w + top), 0, ((size_t)k * HANDLE_CHUNK - top) *
	    sizeof(*w));
	/* Written just now, so in memory: new handles may come from them. */
	pool->handle_ready = k * HANDLE_CHUNK;
	(void)arena_release(pool, w + (size_t)k * HANDLE_CHUNK,
	    ((size_t)HANDLE_MAX - (size_t)k * HANDLE_CHUNK) * sizeof(*w));
	res->handles_marked = a->nr_marked;
	return 0;
}

/*
 * Pass 2: the zspages.  In one that holds a kept object, a slot is live
 * if its header names a marked handle whose word names the slot back;
 * every other slot is made free, the chain is threaded anew, pages that
 * no live slot overlaps are let go, and the zspage joins its class.
 * Zspages with no kept object go on the id free list.
 */
static int
rebuild_zspages(struct rebuild *r, struct zs_recovery *res)
{
	struct zs_pool *pool = r->pool;
	struct arena *a = pool->arena;
	uint32_t id, k, busy;
	unsigned int obj, p, first, last;
	int error;

	for (k = 0; r->ztop > 0 && k <= (r->ztop - 1) >> ZSPAGE_CHUNK_SHIFT;
	    k++)
		atomic_store(&pool->zspage_dir[k],
		    (struct zspage *)arena_zspage_chunk(pool, k));
	LOCKED_SET(pool->zspage_top, r->ztop);
	list_init(&pool->zspage_free);
	for (id = r->ztop; id-- > 0;) {
		struct zspage *z = arena_zspage(a, id);
		struct size_class *c;

		if (!r->zmark[id]) {
			z->id = id;
			list_add(&z->list, &pool->zspage_free);
			res->zspages_freed++;
			continue;
		}
		c = zspage_class(pool, z);	/* checked by the mark */
		z->id = id;
		z->inuse = 0;
		busy = 0;
		for (obj = 0; obj < z->fresh && obj < c->objs_per_zspage;
		    obj++) {
			struct obj_hdr *hdr;
			uint64_t v;

			if (!zspage_slot_ok(pool, c, z, obj))
				continue;
			hdr = (struct obj_hdr *)arena_slot_hdr(pool, c, z, obj);
			if (!(hdr->tag & 1))
				continue;
			v = atomic_load(arena_word(a, hdr->tag >> 1));
			if (!marked(a, hdr->tag >> 1) || (v & HW_HUGE) ||
			    HW_LOC(v) != id || HW_OBJ(v) != obj) {
				/* A copy left by a move, or an orphan. */
				hdr->tag = 0;
				continue;
			}
			z->inuse++;
			LOCKED_ADD(c->objs_used, 1);
			LOCKED_ADD(c->bytes_requested, hdr->size);
			first = (unsigned int)(((size_t)obj * c->size) >>
			    PAGE_SHIFT);
			last = (unsigned int)(((size_t)obj * c->size + c->size -
			    1) >> PAGE_SHIFT);
			for (p = first; p <= last; p++)
				busy |= 1u << p;
		}
		if (z->fresh > c->objs_per_zspage)
			z->fresh = c->objs_per_zspage;
		z->nr_pages = 0;
		for (p = 0; p < ZS_MAX_CHAIN; p++) {
			if (p >= c->pages_per_zspage || !(busy & (1u << p))) {
				z->pfn[p] = PFN_NONE;
				continue;
			}
			if ((error = claim(r, z->pfn[p], (uint64_t)id + 1)) != 0)
				return error;
			z->nr_pages++;
		}
		z->flags = 0;
		zspage_rebuild_chain(pool, c, z);
		class_insert_zspage(c, z);
		c->nr_zspages++;
		LOCKED_ADD(c->nr_pages, z->nr_pages);
		STAT_ADD(pool, pages_used, z->nr_pages);
		STAT_ADD(pool, nr_zspages, 1);
		res->pages_kept += z->nr_pages;
	}
	return 0;
}

/*
 * Pass 3: the sections.  One with a claimed page gets its header and
 * page descriptors written anew: claimed pages theirs, every other data
 * page free -- not reported if it is in memory (the report worker gives
 * it back), reported if not (a hole, or swapped out), so that it is
 * faulted in when taken, not when first written under a class lock
 * (section.c); one without is punched out.
 */
static int
rebuild_sections(struct rebuild *r, struct zs_recovery *res)
{
	struct zs_pool *pool = r->pool;
	uint32_t slots = atomic_load(&pool->arena->hdr->section_slots);
	uint32_t nr = 1u << pool->sec_shift, first = first_data_page(pool);
	unsigned char *in;
	uint32_t slot, i;

	if ((in = malloc(nr)) == NULL)
		return -ENOMEM;
	for (slot = 0; slot < slots; slot++) {
		uint64_t *own = r->owner + ((uint64_t)slot << pool->sec_shift);
		struct section *sec = arena_sec(pool, slot);
		struct size_class *hc = pool->huge_class;
		bool used = false;

		for (i = first; i < nr && !used; i++)
			used = own[i] != OWN_NONE;
		if (!used) {
			atomic_store(&pool->sections[slot], NULL);
			(void)arena_release(pool, sec, pool->cfg.section_size);
			res->sections_freed++;
			continue;
		}
		/* Cannot tell: as if none were in. */
		if (mincore(sec, pool->cfg.section_size, in) != 0)
			memset(in, 0, nr);
		sec->index = slot;
		sec->nr_pages = nr;
		sec->first_data = first;
		sec->state = SECTION_ONLINE;
		sec->free_head = sec->free_tail = PAGE_NIL;
		sec->nr_free = sec->nr_reported = sec->nr_reporting = 0;
		sec->unused = 0;
		for (i = 0; i < nr; i++) {
			struct zs_page *pg = &sec->pages[i];
			uint16_t hsize = pg->huge_size;

			pg->next = pg->prev = PAGE_NIL;
			pg->flags = 0;
			pg->owner = 0;
			pg->huge_size = 0;
			if (i < first) {
				pg->state = PAGE_META;
			} else if (own[i] == OWN_NONE && (in[i] & 1)) {
				pg->state = PAGE_FREE;
				pg->next = sec->free_head;
				if (sec->free_head != PAGE_NIL)
					sec->pages[sec->free_head].prev = i;
				else
					sec->free_tail = i;
				sec->free_head = i;
				sec->nr_free++;
			} else if (own[i] == OWN_NONE) {
				pg->state = PAGE_FREE;
				pg->flags = PG_REPORTED;
				pg->prev = sec->free_tail;
				if (sec->free_tail != PAGE_NIL)
					sec->pages[sec->free_tail].next = i;
				else
					sec->free_head = i;
				sec->free_tail = i;
				sec->nr_free++;
				sec->nr_reported++;
			} else if (own[i] & OWN_HUGE) {
				if (hsize < pool->huge_size ||
				    hsize > ZS_MAX_ALLOC_SIZE) {
					free(in);
					return rebuild_fail(r,
					    "huge object of bad size, page",
					    ((uint64_t)slot << pool->sec_shift)
					    | i);
				}
				pg->state = PAGE_HUGE;
				pg->owner = (uint32_t)own[i];
				pg->huge_size = hsize;
				hc->nr_zspages++;
				LOCKED_ADD(hc->objs_used, 1);
				LOCKED_ADD(hc->bytes_requested, hsize);
				STAT_ADD(pool, pages_used, 1);
				res->pages_kept++;
			} else {
				pg->state = PAGE_ZSPAGE;
				pg->owner = (uint32_t)(own[i] - 1);
			}
		}
		atomic_store(&pool->sections[slot], sec);
		LOCKED_ADD(pool->nr_sections, 1);
		LOCKED_ADD(pool->nr_free_pages, sec->nr_free);
		LOCKED_ADD(pool->nr_reported_pages, sec->nr_reported);
		LOCKED_ADD(pool->nr_memmap_pages, first);
		res->sections_kept++;
	}
	free(in);
	pool->nr_section_slots = slots;
	pool->free_hint = 0;
	return 0;
}

/*
 * Map into this process every page of [addr, addr + len) that is in
 * memory (mincore), none other: in a process that locks its memory
 * (mlockall, as zsd does) that locks them.  A page the dead process had
 * locked is locked by no one once it is gone, and could be swapped out --
 * for zsd, to its own swap -- until the next process touches it, which
 * for an object's page may be long after recovery.  Pages not in memory
 * (holes, and pages swapped out meanwhile) are left alone: faulting a
 * hole in would allocate it.  Only a speedup if it fails.
 */
static void
arena_lock_resident(char *addr, size_t len)
{
	static unsigned char vec[16384];
	size_t off, n, i, run;

	for (off = 0; off < len; off += n << PAGE_SHIFT) {
		n = (len - off) >> PAGE_SHIFT;
		if (n > sizeof(vec))
			n = sizeof(vec);
		if (n == 0 || mincore(addr + off, n << PAGE_SHIFT, vec) != 0)
			return;
		for (i = 0; i < n; i += run) {
			for (run = 0; i + run < n && (vec[i + run] & 1); run++)
				;
			if (run > 0)
				(void)madvise(addr + off + (i << PAGE_SHIFT),
				    run << PAGE_SHIFT, MADV_POPULATE_READ);
			else
				run = 1;
		}
	}
}

/* Lock what recovery kept: root, tables, sections in use. */
static void
arena_lock_kept(struct zs_pool *pool)
{
	struct arena *a = pool->arena;
	uint32_t slots = atomic_load(&a->hdr->section_slots), i;

	arena_lock_resident(a->base, a->hdr->root_off + a->hdr->root_size);
	arena_lock_resident(a->base + a->hdr->handles_off, (size_t)atomic_load(
	    &pool->handle_top) * sizeof(uint64_t));
	arena_lock_resident(a->base + a->hdr->zspages_off,
	    (size_t)pool->zspage_top * sizeof(struct zspage));
	for (i = 0; i < slots; i++)
		if (atomic_load(&pool->sections[i]) != NULL)
			arena_lock_resident((char *)arena_sec(pool, i),
			    pool->cfg.section_size);
}

int
zs_arena_recover(struct zs_pool *pool, struct zs_recovery *res,
    char *why, size_t whylen)
{
	struct zs_recovery dummy;
	struct rebuild r = { .pool = pool, .why = why, .whylen = whylen };
	struct arena *a = pool->arena;
	uint32_t slots, i;
	int error;

	if (res == NULL)
		res = &dummy;
	memset(res, 0, sizeof(*res));
	if (a == NULL || !pool->recovering)
		return -EINVAL;
	slots = atomic_load(&a->hdr->section_slots);
	r.nr_pfns = (uint64_t)slots << pool->sec_shift;
	r.owner = calloc(r.nr_pfns ? r.nr_pfns : 1, sizeof(*r.owner));
	r.zmark = calloc((size_t)a->zspage_top + 1, 1);
	if (r.owner == NULL || r.zmark == NULL) {
		error = -ENOMEM;
		goto out;
	}
	/* Zspage slots are read through pool->sections until pass 3. */
	for (i = 0; i < slots; i++)
		atomic_store(&pool->sections[i], arena_sec(pool, i));
	if ((error = rebuild_handles(&r, res)) != 0 ||
	    (error = rebuild_zspages(&r, res)) != 0 ||
	    (error = rebuild_sections(&r, res)) != 0)
		goto out;
	/* The zspage descriptors past the last kept one: gone. */
	(void)arena_release(pool, arena_zspage(a, (uint32_t)
	    (((size_t)r.ztop + ZSPAGE_CHUNK - 1) / ZSPAGE_CHUNK * ZSPAGE_CHUNK)),
	    (size_t)(ZSPAGE_DIR * (size_t)ZSPAGE_CHUNK - ((size_t)r.ztop +
	    ZSPAGE_CHUNK - 1) / ZSPAGE_CHUNK * ZSPAGE_CHUNK) *
	    sizeof(struct zspage));
	a->hdr->attaches++;
	pool->recovering = false;
	free(a->marks);
	a->marks = NULL;
	a->marks_len = 0;
	arena_lock_kept(pool);
	if ((error = pool_start(pool)) != 0)
		goto out;
	report_request(pool);
out:
	free(r.owner);
	free(r.zmark);
	if (error == -ENOMEM && why != NULL)
		snprintf(why, whylen, "out of memory");
	return error;
}
