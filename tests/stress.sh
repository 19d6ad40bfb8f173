#!/bin/sh
# stress.sh - the multi-threaded stress test, under `make check`.
#
# Runs tests/stress with a fixed seed: four workers against a compactor and
# a thread that migrates, offlines and reports sections, the pool's mutexes
# priority-inheriting as zsd's are by default (the unit tests use plain
# ones, libzs's default).  STRESS_ARGS
# replaces the arguments (e.g. a longer run by hand:
# STRESS_ARGS='-s 7 -t 8 -n 500000 -p 5 -P' make check TESTS=tests/stress.sh).
exec "${builddir:-.}/tests/stress" ${STRESS_ARGS:--s 1 -t 4 -n 100000 -p 4 -P}
