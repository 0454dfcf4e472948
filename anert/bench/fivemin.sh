#!/usr/bin/env bash
# The 5-minute GPU-against-CPU run of issue 13 (README "A 5-minute run on one H100"), with the GPU
# checks that fit beside it, in one device call of under 600 s. Two halves, because the GPU machine
# has no Go toolchain:
#   here, with Go:        anert/bench/fivemin.sh build   → devbin/fivemin/*.gz (about 56 MB: under
#                                                          the 64 MiB a device call carries)
#   on the GPU machine:   anert/bench/fivemin.sh run     → $OUT/{gpu,cpu}.log, gpucheck.log, prof14.*
# (one device call: carry devbin/fivemin, command `bash anert/bench/fivemin.sh run`).
# `run` splits the 16 cores: the GPU side on cores 0-1 (the 5-minute cuda run, then the arch, Muon
# and flash agreement tests), the CPU side on cores 2-15 (`anebench --threads 14 --torch
# --profile-loops`, then the 5-minute cpu run on 14 threads), both sides at once. Budgets are wall
# clock (--budget-kind wall): the question is what each backend reaches in the same 5 minutes.
# The GPU binaries are CGO_ENABLED=0 (a static cgo binary crashes loading libcuda); the CPU ones
# static cgo builds with OpenBLAS linked in. All stripped and gzipped to fit the carry limit.
set -uo pipefail
cd "$(dirname "$0")/../.."
D=$PWD/devbin/fivemin
case "${1:-}" in
build)
	set -e
	rm -rf "$D" && mkdir -p "$D"
	CGO_ENABLED=0 go build -ldflags '-s -w' -o "$D/anelab-gpu" ./kernel/cmd/anelab
	CGO_ENABLED=0 go test -c -ldflags '-s -w' -o "$D/cudab.test" ./anert/cudab
	CGO_ENABLED=0 go test -c -ldflags '-s -w' -o "$D/train.test" ./anert/train
	static='-s -w -linkmode external -extldflags "-static"'
	CGO_ENABLED=1 go build -ldflags "$static" -o "$D/anelab-cpu" ./kernel/cmd/anelab 2>&1 | grep -v 'getpw\|getgr\|getaddrinfo\|statically linked\|go-link\|^#' || true
	CGO_ENABLED=1 go build -ldflags "$static" -o "$D/anebench-cpu" ./anert/bench/cmd/anebench 2>&1 | grep -v 'getpw\|getgr\|getaddrinfo\|statically linked\|go-link\|^#' || true
	gzip -1 "$D"/*
	du -sh "$D"
	;;
run)
	out=${OUT:-$PWD}
	export PYTHON=${PYTHON:-python3}
	t0=$(date +%s) total=575
	. anert/bench/devstep.sh # step LIMIT DIR CMD...
	(cd "$D" && for f in *.gz; do [ -f "$f" ] && gunzip -f "$f"; done; chmod +x ./*)
	el() { echo $(($(date +%s) - t0)); }
	{
		nvidia-smi -L
		grep -m1 'model name' /proc/cpuinfo
		nproc
	} > "$out/machine.txt" 2>&1
	"$D/anelab-gpu" data default --out /tmp/fivemin-data > /dev/null 2>&1 || echo "preparing the default data FAILED"
	(
		step 330 . taskset -c 0-1 "$D/anelab-gpu" train --backend cuda --batch 64 --budget 5m --budget-kind wall \
			--data /tmp/fivemin-data --out "$out/gpu" > "$out/gpu.log" 2>&1
		echo "gpu run done [$(el) s]"
		{
			step 75 anert/cudab taskset -c 0-1 "$D/cudab.test" -test.v -test.run 'AgreesWithCPU/.*/arch'
			step 30 anert/train taskset -c 0-1 "$D/train.test" -test.v -test.run 'CUDARunArch'
			step 60 anert/cudab taskset -c 0-1 "$D/cudab.test" -test.v -test.run '^TestMuon'
			step 40 anert/train taskset -c 0-1 "$D/train.test" -test.v -test.run '^TestCUDAMuon'
			step 60 anert/cudab taskset -c 0-1 "$D/cudab.test" -test.v -test.run 'Flash.*MatchesGEMM'
		} > "$out/gpucheck.log" 2>&1
		echo "gpu side done [$(el) s]"
	) &
	(
		step 150 . taskset -c 2-15 "$D/anebench-cpu" --threads 14 --torch --rounds 1 --profile-loops \
			--configs default,original --out "$out/prof14.txt" > "$out/prof14.log" 2>&1
		echo "cpu bench done [$(el) s]"
		step 330 . taskset -c 2-15 "$D/anelab-cpu" train --backend cpu --threads 14 --budget 5m --budget-kind wall \
			--data /tmp/fivemin-data --out "$out/cpu" > "$out/cpu.log" 2>&1
		echo "cpu run done [$(el) s]"
	) &
	wait
	rm -f "$out"/*/model.ckpt # checkpoints are large and not needed back
	echo "all done [$(el) s]"
	;;
*)
	echo "usage: $0 build|run" >&2
	exit 2
	;;
esac
