#!/usr/bin/env bash
# The 16-core CPU measurement of issue 11, in two halves, because the device machine has no Go toolchain:
#   here, with Go:            anert/bench/cpu16.sh build   → devbin/cpu/anebench (static: OpenBLAS linked in)
#   on the 16-core machine:   anert/bench/cpu16.sh run     → $OUT/cpu16.log, $OUT/bench16.txt
# `run` also times one empty parallel loop on THREADS goroutines (internal/par's BenchmarkLoop, from
# the test binary devbin/cpu/par.test): × the loops per step in the report = the step's loop overhead.
# (one device call: carry devbin/cpu, command `bash anert/bench/cpu16.sh run`).
# `run` measures anelab and PyTorch (that machine's python3, PyTorch with MKL) in the same process tree,
# in turn, at THREADS (16) threads, then times an empty parallel loop (par.BenchmarkLoop). No CPU
# profile: Go's profiler credits OpenBLAS's C frames in this static binary to unrelated Go functions.
# Instead --profile-loops: the time of a step loop by loop, busy vs waiting, and the sgemm rate inside
# each (tables in cpu16.log and $OUT/bench16.loops.txt).
set -uo pipefail
cd "$(dirname "$0")/../.."
D=$PWD/devbin/cpu
case "${1:-}" in
build)
	set -e
	mkdir -p "$D"
	CGO_ENABLED=1 go build -ldflags '-linkmode external -extldflags "-static"' -o "$D/anebench" ./anert/bench/cmd/anebench 2>&1 |
		grep -v 'getpw\|getgr\|statically linked' || true
	CGO_ENABLED=0 go test -c -o "$D/par.test" ./internal/par
	du -sh "$D"/*
	;;
run)
	out=${OUT:-$PWD}
	t=${THREADS:-16}
	{
		grep -m1 'model name' /proc/cpuinfo; nproc
		PYTHON=${PYTHON:-python3} "$D/anebench" --threads "$t" --torch --profile-loops --out "$out/bench16.txt" || echo "FAILED: bench"
		GOMAXPROCS=$t "$D/par.test" -test.run '^$' -test.bench Loop -test.benchtime 20000x || echo "FAILED: loop benchmark"
	} 2>&1 | tee "$out/cpu16.log"
	;;
*)
	echo "usage: $0 build|run" >&2
	exit 2
	;;
esac
