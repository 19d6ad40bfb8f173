/*
 * codec.c - the page compressors, lz4 and zstd, behind an ops table.
 *
 * Every call works on one 4 KiB page.  A codec context holds the state of
 * every codec, so the thread that owns it can read a page whichever codec
 * wrote it (the codec of new writes can change while the daemon runs).
 * Everything a context needs is allocated by codec_ctx_create(), and each
 * codec is run once there so that its lazily allocated work space exists
 * before the first real page: compressing and decompressing never call
 * malloc afterwards.  The one exception is a change of zstd level, which
 * may resize zstd's work space once (codec_ctx_set_level warms it up).
 *
 * A context belongs to one thread at a time; nothing here locks.
 */
#include <config.h>

#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "zsd.h"

/*
 * The state of each codec, owned by the thread using the context.
 */
struct codec_ctx {
	void		*lz4_state;	/* LZ4_sizeofState() bytes */
	ZSTD_CCtx	*zstd_c;	/* parameters set once, level below */
	ZSTD_DCtx	*zstd_d;
	int		 zstd_level;	/* the level zstd_c compresses at */
};

struct codec_ops {
	enum codec_id	 id;
	const char	*name;
	size_t		 (*compress)(struct codec_ctx *, const void *,
			    void *, size_t);
	int		 (*decompress)(struct codec_ctx *, const void *,
			    size_t, void *);
};

_Static_assert(CODEC_DST_SIZE >= LZ4_COMPRESSBOUND(ZSD_PAGE_SIZE),
    "CODEC_DST_SIZE below lz4's worst case");

/*
 * Given room for the worst case, lz4 compresses without checking for the
 * end of dst at every sequence (measurably faster); what ends up longer
 * than cap is refused afterwards.
 */
static size_t
lz4_compress(struct codec_ctx *ctx, const void *page, void *dst, size_t cap)
{
	int n;

	n = LZ4_compress_fast_extState(ctx->lz4_state, page, dst,
	    ZSD_PAGE_SIZE, (int)CODEC_DST_SIZE, 1);
	return n > 0 && (size_t)n <= cap ? (size_t)n : 0;
}

static int
lz4_decompress(struct codec_ctx *ctx, const void *src, size_t len,
    void *page)
{
	int n;

	if (len > INT_MAX)
		return -EIO;
	n = LZ4_decompress_safe(src, page, (int)len, ZSD_PAGE_SIZE);
	return n == (int)ZSD_PAGE_SIZE ? 0 : -EIO;
}

static size_t
zstd_compress(struct codec_ctx *ctx, const void *page, void *dst, size_t cap)
{
	size_t n;

	if (cap > CODEC_DST_SIZE)
		cap = CODEC_DST_SIZE;
	/* ZSTD_compress2 tunes its parameters to the known 4 KiB input. */
	n = ZSTD_compress2(ctx->zstd_c, dst, cap, page, ZSD_PAGE_SIZE);
	return ZSTD_isError(n) ? 0 : n;
}

static int
zstd_decompress(struct codec_ctx *ctx, const void *src, size_t len,
    void *page)
{
	size_t n;

	n = ZSTD_decompressDCtx(ctx->zstd_d, page, ZSD_PAGE_SIZE, src, len);
	return !ZSTD_isError(n) && n == ZSD_PAGE_SIZE ? 0 : -EIO;
}

static const struct codec_ops codecs[] = {
	{ CODEC_LZ4,	"lz4",	lz4_compress,	lz4_decompress },
	{ CODEC_ZSTD,	"zstd",	zstd_compress,	zstd_decompress },
};
#define NR_CODECS	(sizeof(codecs) / sizeof(codecs[0]))

static const struct codec_ops *
codec_ops(enum codec_id id)
{
	size_t i;

	for (i = 0; i < NR_CODECS; i++)
		if (codecs[i].id == id)
			return &codecs[i];
	return NULL;
}

const char *
codec_name(enum codec_id id)
{
	const struct codec_ops *ops = codec_ops(id);

	return ops != NULL ? ops->name : "unknown";
}

int
codec_by_name(const char *name, enum codec_id *id)
{
	size_t i;

	for (i = 0; i < NR_CODECS; i++) {
		if (strcmp(codecs[i].name, name) == 0) {
			*id = codecs[i].id;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * Run every codec once on a page of text-like bytes so that the work
 * space each one allocates on first use is there before the I/O path
 * needs it.
 */
static void
codec_ctx_warm_up(struct codec_ctx *ctx, bool zstd_only)
{
	static const char text[] = "zsd warms up its codecs; ";
	unsigned char page[ZSD_PAGE_SIZE], out[CODEC_DST_SIZE];
	size_t i, n;

	for (i = 0; i < sizeof(page); i++)
		page[i] = (unsigned char)text[i % (sizeof(text) - 1)];
	for (i = 0; i < NR_CODECS; i++) {
		if (zstd_only && codecs[i].id != CODEC_ZSTD)
			continue;
		n = codecs[i].compress(ctx, page, out, sizeof(out));
		if (n != 0)
			(void)codecs[i].decompress(ctx, out, n, page);
	}
}

void
codec_ctx_destroy(struct codec_ctx *ctx)
{
	if (ctx == NULL)
		return;
	free(ctx->lz4_state);
	ZSTD_freeCCtx(ctx->zstd_c);	/* both accept NULL */
	ZSTD_freeDCtx(ctx->zstd_d);
	free(ctx);
}

/* zstd's level for a requested one: 0 is the default, others clamped. */
static int
codec_zstd_level(int level)
{
	if (level == 0)
		return ZSTD_CLEVEL_DEFAULT;
	if (level < ZSTD_minCLevel())
		return ZSTD_minCLevel();
	if (level > ZSTD_maxCLevel())
		return ZSTD_maxCLevel();
	return level;
}

struct codec_ctx *
codec_ctx_create(int zstd_level)
{
	struct codec_ctx *ctx;
	int error = ENOMEM;

	if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
		goto fail;
	/* malloc's alignment is enough for LZ4_stream_t. */
	if ((ctx->lz4_state = malloc((size_t)LZ4_sizeofState())) == NULL ||
	    (ctx->zstd_c = ZSTD_createCCtx()) == NULL ||
	    (ctx->zstd_d = ZSTD_createDCtx()) == NULL)
		goto fail;
	/*
	 * No checksum (the bytes never leave memory, and decompression
	 * checks the length) and no dictionary id: fewer bytes per page.
	 */
	ctx->zstd_level = codec_zstd_level(zstd_level);
	error = EINVAL;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(ctx->zstd_c,
	    ZSTD_c_checksumFlag, 0)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(ctx->zstd_c,
	    ZSTD_c_dictIDFlag, 0)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(ctx->zstd_c,
	    ZSTD_c_compressionLevel, ctx->zstd_level)))
		goto fail;
	codec_ctx_warm_up(ctx, false);
	return ctx;

fail:
	codec_ctx_destroy(ctx);
	errno = error;
	return NULL;
}

/*
 * A new level may need a larger work space: it is allocated here rather
 * than on the next page written.
 */
void
codec_ctx_set_level(struct codec_ctx *ctx, int zstd_level)
{
	zstd_level = codec_zstd_level(zstd_level);
	if (zstd_level == ctx->zstd_level ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(ctx->zstd_c,
	    ZSTD_c_compressionLevel, zstd_level)))
		return;
	ctx->zstd_level = zstd_level;
	codec_ctx_warm_up(ctx, true);
}

size_t
codec_compress(struct codec_ctx *ctx, enum codec_id id, const void *page,
    void *dst, size_t cap)
{
	const struct codec_ops *ops = codec_ops(id);

	return ops != NULL ? ops->compress(ctx, page, dst, cap) : 0;
}

int
codec_decompress(struct codec_ctx *ctx, enum codec_id id, const void *src,
    size_t len, void *page)
{
	const struct codec_ops *ops = codec_ops(id);

	return ops != NULL ? ops->decompress(ctx, src, len, page) : -EIO;
}
