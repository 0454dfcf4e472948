#!/usr/bin/env bash
# The fused (flash) attention's first GPU session, issue 13. Two halves, because the GPU machine
# has no Go toolchain:
#   here, with Go:        anert/cudab/gpucheck.sh build   → $BIN/{cudab.test,train.test,anebench}
#   on the GPU machine:   anert/cudab/gpucheck.sh run     → $OUT/gpucheck.log (and $OUT/bench.txt)
# (one device call: carry $BIN, command `bash anert/cudab/gpucheck.sh run`). BIN is a folder
# relative to the repository root, devbin/gpucheck unless set (git-ignored, like all of devbin/).
# Every binary is built with CGO_ENABLED=0: a static cgo binary crashes (SIGFPE) loading libcuda.
set -uo pipefail
cd "$(dirname "$0")/../.."
D=$PWD/${BIN:-devbin/gpucheck}
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
		#    flash kernels (fp32 and bf16 tensor-core) against the float64 reference and flash vs
		#    GEMM attention at seq 512 (fp32 and bf16); then every agreement case with flash
		#    attention. Each in its own process: a kernel fault can leave the GPU context unusable
		#    for the rest of one.
		(cd anert/cudab && "$D/cudab.test" -test.v -test.run 'AgreesWithCPU/gemm') || echo "FAILED: cudab gemm agreement"
		(cd anert/cudab && "$D/cudab.test" -test.v -test.run 'Flash.*OnGPU|Flash.*MatchesGEMM') || echo "FAILED: cudab flash kernels"
		(cd anert/cudab && "$D/cudab.test" -test.v -test.run 'AgreesWithCPU/flash') || echo "FAILED: cudab flash agreement"
		# 2. Speed, both attentions in turn, both configs at the GPU batch (16,384 tokens per step),
		#    bf16 (fp32 after the whole runs).
		"$D/anebench" --backend cuda --configs default,original --attention gemm,flash --out "$out/bench.txt" || echo "FAILED: bench bf16"
		# 3. Whole runs: flash attention's curve and val loss against the CPU's; the GEMM path's too.
		(cd anert/train && "$D/train.test" -test.v -test.run 'CUDA') || echo "FAILED: train tests"
		"$D/anebench" --backend cuda-fp32 --configs default,original --attention gemm,flash --out "$out/bench.txt" || echo "FAILED: bench fp32"
		# 4. With GPUCHECK_TORCH=1, the PyTorch reference on the same GPU (eager; and torch.compile
		#    with GPUCHECK_TORCH=compile).
		if [ -n "${GPUCHECK_TORCH:-}" ]; then
			for c in original default; do
				python3 anert/bench/pytorch/train_ref_gpu.py --config $c || echo "FAILED: pytorch $c"
				[ "$GPUCHECK_TORCH" = compile ] && { python3 anert/bench/pytorch/train_ref_gpu.py --config $c --compile || echo "FAILED: pytorch $c compile"; }
			done
		fi
	} 2>&1 | tee "$out/gpucheck.log"
	;;
*)
	echo "usage: $0 build|run" >&2
	exit 2
	;;
esac
