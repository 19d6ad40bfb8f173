#!/bin/sh
# stress-batch.sh - the stress test with frees carried out four at a time,
# under `make check`.
#
# tests/stress.sh runs the pool as zsd makes it, whose frees wait in
# batches of libzs's default size.  Here batches of four run all the time
# beside compaction, migration and offline (which meet dead objects whose
# free waits), with plain (not priority-inheriting) mutexes and another
# seed.
# STRESS_BATCH_ARGS replaces the arguments.
exec "${builddir:-.}/tests/stress" ${STRESS_BATCH_ARGS:--s 2 -t 4 -n 100000 -p 4 -B 4}
