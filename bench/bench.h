/*
 * bench.h - zs-bench internals: the page stream, the allocators under
 * test, one measured run and the mobility run.
 *
 * The stream is built once, by the parent, into a memfd that every child
 * maps: the forked children and the ones re-executed under LD_PRELOAD
 * (jemalloc, mimalloc) replay exactly the same bytes.  A child touches the
 * whole mapping before it takes its RSS baseline, so the stream itself
 * never shows up in an allocator's figures.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_PAGE	4096

/*
 * The page stream.  Page i of the stream is len[i] bytes at bytes + off[i]:
 * an lz4-compressed 4 KiB page of a file, or the page itself (len 4096)
 * when lz4 could not make it smaller.  All read-only, in the memfd.
 */
struct stream {
	const uint8_t	*bytes;
	const uint32_t	*off, *len;
	uint64_t	 nr_pages;
	uint64_t	 stored;	/* sum of len[]: the bytes to store */
	uint64_t	 raw_pages;	/* kept whole (len 4096) */
	uint64_t	 zero_pages;	/* all zero: not in the stream */
	uint64_t	 files;		/* files that gave at least one page */
	int		 fd;		/* the memfd; inherited across exec */
	void		*map;
	size_t		 map_len;
};

/* One stored object, as the allocators see it: 0 is "none". */
typedef uintptr_t bench_obj_t;

/*
 * An allocator under test.  store() allocates len bytes and copies src
 * into them; drop() frees; quiesce() waits for deferred work of the frees
 * (counted in the free phase); compact() gives back what it can.  A
 * preloaded allocator replaces malloc itself: its runs happen in a fresh
 * program image with preload in LD_PRELOAD, and store through malloc.
 */
struct allocator {
	const char	*name;
	const char	*preload;		/* NULL: runs in a forked child */
	const char	*compact_does;		/* for the output's notes */
	bool		 (*init)(void);		/* false: not available */
	bench_obj_t	 (*store)(const void *src, size_t len);
	void		 (*drop)(bench_obj_t obj);
	void		 (*quiesce)(void);
	void		 (*compact)(void);
	bool		 (*check)(bench_obj_t obj, const void *want, size_t len);
	bool		 has_pool_stats;	/* libzs: pool_basis() below */
};

enum { PHASE_FILL, PHASE_HALF, PHASE_COMPACT, NR_PHASES };

/* Bytes stored / bytes held, measured several ways. */
enum {
	BASIS_RSS,		/* growth of the process's RSS */
	BASIS_USED,		/* libzs: pages of zspages and huge objects */
	BASIS_META,		/* libzs: those + metadata pages */
	BASIS_MAPPED,		/* libzs: every page of every section */
	NR_BASES
};

/* The outcome of one run of one allocator.  Plain data: sent through a
 * pipe from the child. */
struct result {
	int	 ok;			/* 1 ran, 0 not available, -1 failed */
	double	 fill_ops;		/* stores per second */
	double	 free_ops;		/* frees per second (quiesce included) */
	double	 compact_s;
	double	 eff[NR_BASES][NR_PHASES];
	double	 rss_mib[NR_PHASES];	/* RSS growth since the baseline */
};

/* The outcome of one mobility run. */
struct mobility {
	int	 ok;
	double	 fill_gib;		/* stored by the fill */
	double	 live_mib;		/* still stored after freeing 75% */
	double	 rss_before_mib;	/* RSS growth before compaction */
	double	 rss_after_mib;		/* RSS growth once settled */
	double	 mapped_before_mib;	/* the pool's sections, before */
	double	 mapped_after_mib;	/* and after */
	double	 compact_s;		/* zs_compact + zs_pool_flush */
	double	 moved_mib;		/* zs_compact_result.bytes_moved */
	double	 moved_mib_s;
	double	 shrink_s;		/* zs_pool_shrink */
	double	 shrunk_mib;		/* bytes it unmapped */
	double	 report_s;		/* zs_pool_report */
	double	 reported_mib;		/* pages it gave back */
	double	 settled_s;		/* compaction start to RSS settled */
	int	 unsettled;		/* RSS still changing after 10 s */
};

/* util.c */
double		 now(void);
uint64_t	 rss_bytes(void);
uint64_t	 rand_next(uint64_t *state);
void		 shuffle(uint32_t *v, size_t n, uint64_t seed);
pid_t		 child_start(int fd[2]);
void		 pipe_result(int fd, const void *r, size_t len)
		     __attribute__((noreturn));
bool		 child_result(pid_t pid, int fd, void *r, size_t len);

/* stream.c */
int		 stream_build(struct stream *s, uint64_t want_bytes);
int		 stream_attach(struct stream *s, int fd);
void		 stream_touch(const struct stream *s);
void		 stream_print_sources(const char *prefix);

/* allocators.c */
extern const struct allocator allocators[];
extern const unsigned int nr_allocators;
void		 pool_basis(double eff[NR_BASES], uint64_t stored);

/* run.c */
void		 run_one(const struct allocator *a, const struct stream *s,
		     uint64_t seed, struct result *r);
void		 run_child(unsigned int idx, const struct stream *s,
		     uint64_t seed, struct result *r);
int		 run_exec_child(const char *arg);

/* mobility.c */
void		 mobility_child(const struct stream *s, uint64_t bytes,
		     uint64_t seed, struct mobility *m);

#endif /* BENCH_H */
