#!/usr/bin/env bash
# The fused (flash) attention's first GPU session, issue 13. Two halves, because the GPU machine
# has no Go toolchain:
#   here, with Go:        anert/cudab/gpucheck.sh build   → devbin/i13flash/{cudab.test,train.test,anebench}
#   on the GPU machine:   anert/cudab/gpucheck.sh run     → $OUT/gpucheck.log (and $OUT/bench.txt)
# (one device call: carry devbin/i13flash, command `bash anert/cudab/gpucheck.sh run`).
# Every binary is built with CGO_ENABLED=0: a static cgo binary crashes (SIGFPE) loading libcuda.
set -uo pipefail
cd "$(dirname "$0")/../.."
D=$PWD/devbin/i13flash
case "${1:-}" in
build)
	set -e
	mkdir -p "$D"
	CGO_ENABLED=0 go test -c -o "$D/cudab.test" ./anert/cudab
	CGO_ENABLED=0 go test -c -o "$D/train.test" ./anert/train
	CGO_ENABLED=0 go build -o "$D/anebench" ./anert/bench/cmd/anebench
	du -sh "$D"/*
	;;
run)
	out=${OUT:-$PWD}
	{
		nvidia-smi -L
		# 1. The GEMM path's agreement with the CPU backend (fp32 and bf16), as before; then the
		#    flash kernels against the float64 reference and flash vs GEMM attention at seq 512;
		#    then every agreement case with flash attention. Each in its own process: a kernel
		#    fault can leave the GPU context unusable for the rest of one.
		(cd anert/cudab && "$D/cudab.test" -test.v -test.run 'AgreesWithCPU/gemm') || echo "FAILED: cudab gemm agreement"
		(cd anert/cudab && "$D/cudab.test" -test.v -test.run 'Flash') || echo "FAILED: cudab flash kernels"
		(cd anert/cudab && "$D/cudab.test" -test.v -test.run 'AgreesWithCPU/flash') || echo "FAILED: cudab flash agreement"
		# 2. Whole runs: flash attention's curve and val loss against the CPU's; the GEMM path's too.
		(cd anert/train && "$D/train.test" -test.v -test.run 'CUDA') || echo "FAILED: train tests"
		# 3. Speed, both attentions in turn, both configs at the GPU batch (16,384 tokens per step).
		"$D/anebench" --backend cuda --configs default,original --attention gemm,flash --out "$out/bench.txt" || echo "FAILED: bench bf16"
		"$D/anebench" --backend cuda-fp32 --configs default,original --attention gemm,flash --out "$out/bench.txt" || echo "FAILED: bench fp32"
	} 2>&1 | tee "$out/gpucheck.log"
	;;
*)
	echo "usage: $0 build|run" >&2
	exit 2
	;;
esac
