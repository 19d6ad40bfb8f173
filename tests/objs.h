/*
 * objs.h - objects with known contents, for the libzs tests.
 *
 * An object's bytes are a pseudo-random stream seeded by its key, so a
 * test needs to remember only (handle, size, key) to check it later.
 */
#ifndef TESTS_OBJS_H
#define TESTS_OBJS_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "zs.h"
#include "tap.h"

struct tobj {
	zs_handle_t	handle;		/* 0: none */
	uint32_t	size;
	uint32_t	key;
};

static inline void
tobj_pattern(uint8_t *buf, uint32_t key, size_t size)
{
	uint32_t s = key * 2654435761u + 1;
	size_t i;

	for (i = 0; i < size; i++) {
		s = s * 1103515245u + 12345u;
		buf[i] = (uint8_t)(s >> 16);
	}
}

/*
 * Allocate and write one object; 0 or -errno (handle 0 then).  Odd keys go
 * through zs_malloc_write, even ones through zs_malloc + zs_obj_write, so
 * that every test runs both.
 */
static inline int
tobj_put(struct zs_pool *pool, struct tobj *o, uint32_t key, uint32_t size)
{
	uint8_t buf[ZS_MAX_ALLOC_SIZE];
	int error;

	o->size = size;
	o->key = key;
	tobj_pattern(buf, key, size);
	if (key & 1) {
		o->handle = zs_malloc_write(pool, buf, size);
		return o->handle != 0 ? 0 : -errno;
	}
	o->handle = zs_malloc(pool, size);
	if (o->handle == 0)
		return -errno;
	if ((error = zs_obj_write(pool, o->handle, buf, size)) != 0) {
		zs_free(pool, o->handle);
		o->handle = 0;
	}
	return error;
}

/* Does the object read back right, through zs_obj_copy? */
static inline int
tobj_intact(struct zs_pool *pool, const struct tobj *o)
{
	uint8_t got[ZS_MAX_ALLOC_SIZE], want[ZS_MAX_ALLOC_SIZE];

	tobj_pattern(want, o->key, o->size);
	return zs_obj_copy(pool, o->handle, got, o->size) == 0 &&
	    memcmp(got, want, o->size) == 0;
}

/* How many of objs[0..n) that have a handle read back wrong. */
static inline unsigned int
tobj_count_bad(struct zs_pool *pool, const struct tobj *objs, unsigned int n)
{
	unsigned int i, bad = 0;

	for (i = 0; i < n; i++)
		if (objs[i].handle != 0 && !tobj_intact(pool, &objs[i]))
			bad++;
	return bad;
}

static inline void
tobj_drop(struct zs_pool *pool, struct tobj *o)
{
	if (o->handle != 0)
		zs_free(pool, o->handle);
	o->handle = 0;
}

/* Flush the free queue and validate; says why on failure. */
static inline int
pool_valid(struct zs_pool *pool)
{
	char why[256];

	zs_pool_flush(pool);
	if (zs_pool_validate(pool, why, sizeof(why)) == 0)
		return 1;
	diag("validate: %s", why);
	return 0;
}

#endif /* TESTS_OBJS_H */
