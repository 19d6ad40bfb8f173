/*
 * merge.c - the content index of a store: pages with the same bytes are
 * kept as one object, shared by every slot that holds them.
 *
 * What the index holds.  One node per indexed object: its handle, the
 * 32-bit key of the page it holds (merge_page_hash), how many slots hold
 * it (refs) and how it is stored (codec, or raw).  A slot of the store
 * that holds an indexed object names its node; a slot whose object is not
 * indexed (merging off, or skipped, or no node free) names none and frees
 * its object alone, as before.  A key is only a hint: a node is shared
 * only after the caller's compare function has found its object, read
 * back (decompressed), equal to the new page byte for byte.  Two pages
 * with one key and different bytes are both stored, each with its node.
 *
 * Why nodes name handles.  Objects move: compaction, zs_obj_migrate,
 * section migration, offline and shrink copy them to other pages, but
 * their handles do not change (libzs's handle table is the one place that
 * knows where an object lives).  A node keyed by handle stays right across
 * every move without being told, so there is no migration hook to keep in
 * step with libzs, no window in which a node points at memory that moved
 * or was unmapped, and no rescan.  KSM's stable tree first named a page by
 * its address and had to switch to the page frame number, updated at
 * migration, before memory could be hot-removed; a handle is the
 * allocator's own stable name, so the problem does not arise.
 *
 * Layout and memory.  The index is split into shards by the key's low
 * bits.  A shard has a fixed run of nodes (16 bytes each) and a table of
 * 4-byte cells, open addressing with linear probing: a cell holds the
 * shard's node number + 1, or 0 if empty.  A node never moves once given
 * out (the slot names it by number); cells move only within their shard,
 * when a node is removed (backward-shift deletion, no tombstones).  Sizes
 * come from the store's page count n when it is created:
 *   shards	a power of two, n / 1024 of them, 1 to 256;
 *   nodes	n / shards + 25% + 64 per shard: 16 bytes each, given out
 *		from the low end (a free list first), so the memory touched
 *		follows the most unique pages ever indexed: 16 bytes per
 *		unique stored page;
 *   cells	a power of two >= 1.5 times the nodes per shard, 6 to 12
 *		bytes per page of the swap file (the slot table itself takes
 *		16), touched as keys land in them.
 * Both are calloc'ed once (untouched pages cost nothing) and never grow:
 * nothing is allocated on the I/O path.  The nodes may instead be the
 * caller's (merge_nodes_size bytes, zeroed): zsd keeps them in its arena,
 * and after a crash rebuilds the rest from them and from the slots
 * (merge_recover_*).  A shard whose nodes are all in
 * use stores further pages unindexed (with keys from a good hash, 25% more
 * nodes than its share is over 8 standard deviations away).  Stores of
 * 2^31 pages or more (8 TiB) get no index (merge_create: -EFBIG).
 *
 * Locking.  One mutex per shard guards its cells, its nodes and its free
 * list; a thread holds at most one.  The caller's compare function runs
 * with the shard locked (it pins and reads an object of the pool, whose
 * locks come after ours), so a node found equal cannot be freed before
 * its reference is taken, and two threads storing the same new page at
 * once see each other: merge_insert looks again, under the lock, before
 * it adds a node.  The store's stripe lock of a slot may be held when a
 * shard's lock is taken (a partial write re-stores its page with the
 * slot locked), never the other way round: order stripe, shard, pool.
 */
#include <config.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "zsd.h"

#define MERGE_MAX_SHARDS	256u
#define MERGE_PAGES_PER_SHARD	1024u	/* at least, before shards split */
#define MERGE_MAX_PAGES		(1ull << 31)
#define MERGE_REFS_MAX		((1u << 30) - 1)
#define CACHE_LINE		64

/*
 * A node.  In use: refs >= 1.  Free: refs 0, handle the next free node's
 * number + 1 (0: none).  Guarded by its shard's lock.
 */
struct merge_node {
	zs_handle_t	handle;		/* the object every holder shares */
	uint32_t	key;		/* merge_page_hash of its page */
	uint32_t	refs : 30;	/* slots holding it */
	uint32_t	codec : 2;	/* enum codec_id; 0: the page raw */
};

_Static_assert(sizeof(struct merge_node) == 16, "a node is 16 bytes");

/* All fields guarded by lock. */
struct merge_shard {
	pthread_mutex_t		 lock;
	uint32_t		*cells;		/* node number + 1, or 0 */
	struct merge_node	*nodes;
	uint32_t		 used;		/* nodes[0, used) given out */
	uint32_t		 free;		/* first free node + 1, or 0 */
	uint32_t		 live;		/* nodes in use */
} __attribute__((aligned(CACHE_LINE)));

/* Constant after merge_create, but for the shards. */
struct merge_index {
	uint32_t		 shard_mask;	/* shards - 1 */
	uint32_t		 nodes_per_shard;
	uint32_t		 cell_bits;	/* cells per shard: 1 << this */
	struct merge_node	*nodes;		/* every shard's, in turn */
	uint32_t		*cells;
	struct merge_shard	*shards;
	unsigned int		 nr_locks;	/* initialised, for destroy */
	bool			 nodes_given;	/* the caller's memory */
	uint32_t		*recount;	/* recovery: refs per node */
};

static inline uint64_t
rotl64(uint64_t x, unsigned int r)
{
	return x << r | x >> (64 - r);
}

/*
 * Four lanes of a multiply-rotate over 8-byte words, so that the
 * multiplications of one step overlap; then the lanes folded and mixed.
 * Equal pages give equal keys; that is all the index relies on.
 */
uint32_t
merge_page_hash(const void *page)
{
	const uint64_t m = 0x9fb21c651e98df25ull;
	const unsigned char *p = page;
	uint64_t a = 0x243f6a8885a308d3ull, b = 0x13198a2e03707344ull;
	uint64_t c = 0xa4093822299f31d0ull, d = 0x082efa98ec4e6c89ull;
	uint64_t w[4], h;
	size_t i;

	for (i = 0; i < ZSD_PAGE_SIZE; i += sizeof(w)) {
		memcpy(w, p + i, sizeof(w));
		a = rotl64(a ^ w[0], 29) * m;
		b = rotl64(b ^ w[1], 29) * m;
		c = rotl64(c ^ w[2], 29) * m;
		d = rotl64(d ^ w[3], 29) * m;
	}
	h = a ^ rotl64(b, 17) ^ rotl64(c, 31) ^ rotl64(d, 47);
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ull;
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ull;
	h ^= h >> 32;
	return (uint32_t)h;
}

static struct merge_shard *
merge_shard_of(struct merge_index *idx, uint32_t key)
{
	return &idx->shards[key & idx->shard_mask];
}

/* The cell a key's search starts at: its high bits, mixed. */
static uint32_t
merge_home(const struct merge_index *idx, uint32_t key)
{
	return (uint32_t)(key * 0x9e3779b1u) >> (32 - idx->cell_bits);
}

/*
 * Look for a node of key whose object holds page, in sh (locked); if
 * found, take a reference to it and describe it in *obj.
 */
static bool
merge_probe(struct merge_index *idx, struct merge_shard *sh, uint32_t key,
    const void *page, merge_same_fn *same, void *arg, struct merge_obj *obj)
{
	uint32_t mask = (1u << idx->cell_bits) - 1, i, c;
	struct merge_node *n;
	size_t len;

	for (i = merge_home(idx, key); (c = sh->cells[i]) != 0;
	    i = (i + 1) & mask) {
		n = &sh->nodes[c - 1];
		if (n->key != key || n->refs >= MERGE_REFS_MAX)
			continue;
		if (same(arg, n->handle, n->codec, page, &len) != 1) {
			obj->collisions++;
			continue;
		}
		n->refs++;
		obj->handle = n->handle;
		obj->codec = n->codec;
		obj->len = (uint16_t)len;
		obj->node = (uint32_t)((sh - idx->shards) *
		    (size_t)idx->nodes_per_shard + (size_t)(n - sh->nodes) + 1);
		obj->refs = n->refs;
		return true;
	}
	return false;
}

int
merge_find(struct merge_index *idx, uint32_t key, const void *page,
    merge_same_fn *same, void *arg, struct merge_obj *obj)
{
	struct merge_shard *sh = merge_shard_of(idx, key);
	bool found;

	pthread_mutex_lock(&sh->lock);
	found = merge_probe(idx, sh, key, page, same, arg, obj);
	pthread_mutex_unlock(&sh->lock);
	return found;
}

int
merge_insert(struct merge_index *idx, uint32_t key, const void *page,
    merge_same_fn *same, void *arg, struct merge_obj *obj)
{
	struct merge_shard *sh = merge_shard_of(idx, key);
	uint32_t mask = (1u << idx->cell_bits) - 1, i, nr;
	struct merge_node *n;

	pthread_mutex_lock(&sh->lock);
	/* Another thread may have stored the same page since merge_find. */
	if (merge_probe(idx, sh, key, page, same, arg, obj)) {
		pthread_mutex_unlock(&sh->lock);
		return 1;
	}
	if (sh->free != 0) {
		nr = sh->free - 1;
		sh->free = (uint32_t)sh->nodes[nr].handle;
	} else if (sh->used < idx->nodes_per_shard) {
		nr = sh->used++;
	} else {
		/* Every node in use: the page is stored unindexed. */
		pthread_mutex_unlock(&sh->lock);
		obj->node = 0;
		return 0;
	}
	n = &sh->nodes[nr];
	n->handle = obj->handle;
	n->key = key;
	n->refs = 1;
	n->codec = obj->codec & 3;
	sh->live++;
	/* Cells outnumber nodes by half: an empty one is always found. */
	for (i = merge_home(idx, key); sh->cells[i] != 0; i = (i + 1) & mask)
		;
	sh->cells[i] = nr + 1;
	pthread_mutex_unlock(&sh->lock);
	obj->node = (uint32_t)((sh - idx->shards) *
	    (size_t)idx->nodes_per_shard + nr + 1);
	obj->refs = 1;
	return 0;
}

/*
 * Empty cell i of sh and move later cells of the run back over it where
 * their search would otherwise stop short of them.
 */
static void
merge_remove_cell(struct merge_index *idx, struct merge_shard *sh,
    uint32_t i)
{
	uint32_t mask = (1u << idx->cell_bits) - 1, j = i, home, c;

	for (;;) {
		j = (j + 1) & mask;
		if ((c = sh->cells[j]) == 0)
			break;
		home = merge_home(idx, sh->nodes[c - 1].key);
		/* Stays if its home lies cyclically in (i, j]. */
		if (i <= j ? i < home && home <= j : i < home || home <= j)
			continue;
		sh->cells[i] = c;
		i = j;
	}
	sh->cells[i] = 0;
}

uint32_t
merge_refs(struct merge_index *idx, uint32_t node)
{
	struct merge_shard *sh;
	uint32_t refs;

	node--;
	sh = &idx->shards[node / idx->nodes_per_shard];
	pthread_mutex_lock(&sh->lock);
	refs = sh->nodes[node % idx->nodes_per_shard].refs;
	pthread_mutex_unlock(&sh->lock);
	return refs;
}

uint32_t
merge_put(struct merge_index *idx, uint32_t node)
{
	struct merge_shard *sh;
	struct merge_node *n;
	uint32_t nr, mask = (1u << idx->cell_bits) - 1, i, refs;

	node--;
	sh = &idx->shards[node / idx->nodes_per_shard];
	nr = node % idx->nodes_per_shard;
	n = &sh->nodes[nr];
	pthread_mutex_lock(&sh->lock);
	refs = --n->refs;
	if (refs == 0) {
		for (i = merge_home(idx, n->key); sh->cells[i] != nr + 1;
		    i = (i + 1) & mask)
			;
		merge_remove_cell(idx, sh, i);
		n->handle = sh->free;
		n->key = 0;
		n->codec = 0;
		sh->free = nr + 1;
		sh->live--;
	}
	pthread_mutex_unlock(&sh->lock);
	return refs;
}

void
merge_counts(struct merge_index *idx, uint64_t *nodes, uint64_t *refs)
{
	struct merge_shard *sh;
	uint64_t nn = 0, nr = 0;
	uint32_t s, k;

	for (s = 0; s <= idx->shard_mask; s++) {
		sh = &idx->shards[s];
		pthread_mutex_lock(&sh->lock);
		nn += sh->live;
		for (k = 0; k < sh->used; k++)
			nr += sh->nodes[k].refs;
		pthread_mutex_unlock(&sh->lock);
	}
	*nodes = nn;
	*refs = nr;
}

/*
 * Every live node found from its home by a search, exactly once; every
 * cell naming a live node; the free list holding the rest.
 */
int
merge_validate(struct merge_index *idx, char *why, size_t whylen)
{
	uint32_t cells = 1u << idx->cell_bits, mask = cells - 1;
	uint32_t s, i, c, j, seen, nfree, f;
	struct merge_shard *sh;
	struct merge_node *n;
	int error = 0;

	for (s = 0; s <= idx->shard_mask && error == 0; s++) {
		sh = &idx->shards[s];
		pthread_mutex_lock(&sh->lock);
		for (i = 0, seen = 0; i < cells && error == 0; i++) {
			if ((c = sh->cells[i]) == 0)
				continue;
			seen++;
			n = &sh->nodes[c - 1];
			if (c > sh->used || n->refs == 0) {
				snprintf(why, whylen, "shard %u cell %u: node "
				    "%u not in use", s, i, c - 1);
				error = -EUCLEAN;
			} else if ((n->key & idx->shard_mask) != s) {
				snprintf(why, whylen, "shard %u: node %u has "
				    "key %08x of another shard", s, c - 1,
				    n->key);
				error = -EUCLEAN;
			}
			/* No empty cell between its home and it. */
			for (j = merge_home(idx, n->key); error == 0 && j != i;
			    j = (j + 1) & mask)
				if (sh->cells[j] == 0) {
					snprintf(why, whylen, "shard %u: node "
					    "%u unreachable from cell %u", s,
					    c - 1, merge_home(idx, n->key));
					error = -EUCLEAN;
				}
		}
		for (f = sh->free, nfree = 0; error == 0 && f != 0 &&
		    nfree <= sh->used; nfree++) {
			if (f > sh->used || sh->nodes[f - 1].refs != 0)
				break;
			f = (uint32_t)sh->nodes[f - 1].handle;
		}
		if (error == 0 && (seen != sh->live || f != 0 ||
		    sh->live + nfree != sh->used)) {
			snprintf(why, whylen, "shard %u: %u cells, %u live, "
			    "%u free, %u used", s, seen, sh->live, nfree,
			    sh->used);
			error = -EUCLEAN;
		}
		pthread_mutex_unlock(&sh->lock);
	}
	return error;
}

void
merge_destroy(struct merge_index *idx)
{
	if (idx == NULL)
		return;
	while (idx->nr_locks > 0)
		pthread_mutex_destroy(&idx->shards[--idx->nr_locks].lock);
	free(idx->shards);
	free(idx->cells);
	free(idx->recount);
	if (!idx->nodes_given)
		free(idx->nodes);
	free(idx);
}

/* Shards and nodes per shard for a store of nr_pages. */
static void
merge_geometry(uint64_t nr_pages, uint32_t *shardsp, uint32_t *perp)
{
	uint32_t shards = 1, per;

	while (shards < MERGE_MAX_SHARDS &&
	    nr_pages / (shards * 2) >= MERGE_PAGES_PER_SHARD)
		shards *= 2;
	per = (uint32_t)(nr_pages / shards);
	per += per / 4 + 64;
	*shardsp = shards;
	*perp = per;
}

size_t
merge_nodes_size(uint64_t nr_pages)
{
	uint32_t shards, per;

	if (nr_pages == 0 || nr_pages >= MERGE_MAX_PAGES)
		return 0;
	merge_geometry(nr_pages, &shards, &per);
	return (size_t)shards * per * sizeof(struct merge_node);
}

struct merge_index *
merge_create(uint64_t nr_pages, void *nodes, int *errorp)
{
	struct merge_index *idx;
	uint32_t shards, per, cells;
	int error;

	if (nr_pages == 0 || nr_pages >= MERGE_MAX_PAGES) {
		*errorp = nr_pages == 0 ? -EINVAL : -EFBIG;
		return NULL;
	}
	merge_geometry(nr_pages, &shards, &per);
	if ((idx = calloc(1, sizeof(*idx))) == NULL) {
		*errorp = -ENOMEM;
		return NULL;
	}
	idx->shard_mask = shards - 1;
	idx->nodes_per_shard = per;
	for (idx->cell_bits = 1, cells = 2; cells < per + per / 2;
	    cells *= 2)
		idx->cell_bits++;

	error = -ENOMEM;
	idx->nodes = nodes;
	idx->nodes_given = nodes != NULL;
	/* Untouched calloc pages cost nothing until they are used. */
	if ((idx->nodes == NULL && (idx->nodes = calloc((size_t)shards * per,
	    sizeof(*idx->nodes))) == NULL) ||
	    (idx->cells = calloc((size_t)shards * cells,
	    sizeof(*idx->cells))) == NULL ||
	    (idx->shards = aligned_alloc(CACHE_LINE, shards *
	    sizeof(*idx->shards))) == NULL)
		goto fail;
	memset(idx->shards, 0, shards * sizeof(*idx->shards));
	for (; idx->nr_locks < shards; idx->nr_locks++) {
		struct merge_shard *sh = &idx->shards[idx->nr_locks];

		if ((error = -pthread_mutex_init(&sh->lock, NULL)) != 0)
			goto fail;
		sh->nodes = idx->nodes + (size_t)idx->nr_locks * per;
		sh->cells = idx->cells + (size_t)idx->nr_locks * cells;
	}
	return idx;
fail:
	merge_destroy(idx);
	*errorp = error;
	return NULL;
}

/*
 * Recovery of an index whose nodes a dead process left (see persist.c):
 * merge_recover_begin starts counting anew (0 or -ENOMEM), merge_recover_ref counts a
 * slot that names node and handle (false if the node names another
 * handle or none), merge_recover_end frees the nodes no slot named and
 * builds the shards' cells, free lists and counts anew.  Single-threaded,
 * before the index is used.
 */
int
merge_recover_begin(struct merge_index *idx)
{
	size_t n = (size_t)(idx->shard_mask + 1) * idx->nodes_per_shard;

	/*
	 * Counted aside: clearing every node's count would touch, and so
	 * make resident, the nodes of the whole file, used or not.
	 */
	idx->recount = calloc(n, sizeof(*idx->recount));
	return idx->recount != NULL ? 0 : -ENOMEM;
}

bool
merge_recover_ref(struct merge_index *idx, uint32_t node, zs_handle_t handle,
    unsigned int codec)
{
	struct merge_node *n;

	if (node == 0 || node > (uint64_t)(idx->shard_mask + 1) *
	    idx->nodes_per_shard)
		return false;
	n = &idx->nodes[node - 1];
	if (n->handle != handle || n->codec != (codec & 3) ||
	    ((node - 1) / idx->nodes_per_shard) != (n->key & idx->shard_mask) ||
	    idx->recount[node - 1] >= MERGE_REFS_MAX)
		return false;
	idx->recount[node - 1]++;
	return true;
}

void
merge_recover_end(struct merge_index *idx)
{
	uint32_t mask = (1u << idx->cell_bits) - 1, s, k, i;

	for (s = 0; s <= idx->shard_mask; s++) {
		struct merge_shard *sh = &idx->shards[s];

		const uint32_t *count = idx->recount +
		    (size_t)s * idx->nodes_per_shard;

		memset(sh->cells, 0, ((size_t)mask + 1) * sizeof(*sh->cells));
		sh->used = sh->free = sh->live = 0;
		for (k = 0; k < idx->nodes_per_shard; k++)
			if (count[k] != 0)
				sh->used = k + 1;
		for (k = sh->used; k-- > 0;) {
			struct merge_node *n = &sh->nodes[k];

			n->refs = count[k];
			if (n->refs == 0) {
				n->handle = sh->free;
				n->key = 0;
				n->codec = 0;
				sh->free = k + 1;
				continue;
			}
			sh->live++;
			for (i = merge_home(idx, n->key); sh->cells[i] != 0;
			    i = (i + 1) & mask)
				;
			sh->cells[i] = k + 1;
		}
		/* Nodes past used are written whole when given out. */
	}
	free(idx->recount);
	idx->recount = NULL;
}

/* The node's reference count, for recovery's statistics. */
uint32_t
merge_node_refs(struct merge_index *idx, uint32_t node)
{
	return idx->nodes[node - 1].refs;
}
