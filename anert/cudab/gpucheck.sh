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
	# Most important first, each step bounded, the whole within GPUCHECK_SECONDS (default 280: a
	# device call's limit is 300 s); a step that fails or times out is logged and the next runs.
	out=${OUT:-$PWD}
	t0=$(date +%s)
	total=${GPUCHECK_SECONDS:-280}
	. anert/bench/devstep.sh # step LIMIT DIR CMD...
	{
		nvidia-smi -L
		# 1. The flash kernels (fp32 and bf16 tensor-core) against the float64 reference; loss and
		#    gradients with flash vs GEMM attention at seq 512, head dim 64 (fp32 and bf16).
		#    Each test binary from its package folder and each step in a process of its own: a
		#    kernel fault can leave the GPU context unusable for the rest of one.
		step 60 anert/cudab "$D/cudab.test" -test.v -test.run 'Flash.*OnGPU|Flash.*MatchesGEMM'
		#    The architecture options (relu2, gelu, qk_norm, untied_head, alone and together) against
		#    the CPU backend, both attentions, fp32 and bf16 (the agreement cases named "arch …").
		step 75 anert/cudab "$D/cudab.test" -test.v -test.run 'AgreesWithCPU/.*/arch'
		#    A 20-update fp32 run with gelu, qk_norm and untied_head against the CPU's, its checkpoint
		#    resumed on both.
		step 30 anert/train "$D/train.test" -test.v -test.run 'CUDARunArch'
		# 1b. Muon on the GPU: its update against the CPU's from the same gradients (fp32, bf16), the
		#     state through ToHost and a fresh trainer (TestMuonUpdateMatchesCPU); the agreement
		#     cases with muon (TestMuonAgreesWithCPU); a 20-update fp32 run, its checkpoint's state
		#     and a resumed run against the CPU's (TestCUDAMuonRunTracksCPUAndResumes).
		step 60 anert/cudab "$D/cudab.test" -test.v -test.run '^TestMuon'
		step 40 anert/train "$D/train.test" -test.v -test.run '^TestCUDAMuon'
		# 2. Speed, both attentions in turn, both configs at the GPU batch (16,384 tokens per
		#    step), bf16; the PyTorch reference (eager) on the same GPU.
		step 80 . "$D/anebench" --backend cuda --configs default,original --attention gemm,flash --steps 20 --out "$out/bench.txt"
		step 40 . python3 anert/bench/pytorch/train_ref_gpu.py --config original
		step 30 . python3 anert/bench/pytorch/train_ref_gpu.py --config default
		# 3. Every agreement case with the CPU backend, flash then GEMM attention (fp32 ≤ 1e-4; bf16
		#    within bf16 tolerance, with flash's bf16 kernels at head dims 16/48/64); the "arch"
		#    cases ran in step 1.
		step 40 anert/cudab "$D/cudab.test" -test.v -test.run 'AgreesWithCPU/flash' -test.skip 'AgreesWithCPU/.*/arch'
		step 30 anert/cudab "$D/cudab.test" -test.v -test.run 'AgreesWithCPU/gemm' -test.skip 'AgreesWithCPU/.*/arch'
		# 4. Whole runs: flash attention's curve and val loss against the CPU's; the GEMM path's too.
		step 60 anert/train "$D/train.test" -test.v -test.run 'CUDA' -test.skip 'CUDARunArch'
		# 5. fp32 speed; with GPUCHECK_TORCH=compile, torch.compile too.
		step 60 . "$D/anebench" --backend cuda-fp32 --configs default,original --attention gemm,flash --out "$out/bench.txt"
		if [ "${GPUCHECK_TORCH:-}" = compile ]; then
			step 90 . python3 anert/bench/pytorch/train_ref_gpu.py --config original --compile
			step 90 . python3 anert/bench/pytorch/train_ref_gpu.py --config default --compile
		fi
		echo "=== done in $(($(date +%s) - t0)) s"
	} 2>&1 | tee "$out/gpucheck.log"
	;;
*)
	echo "usage: [BIN=folder] $0 build|run   (run: [GPUCHECK_SECONDS=280] [GPUCHECK_TORCH=compile])" >&2
	exit 2
	;;
esac
