#!/usr/bin/env bash
# The 16-core CPU measurement of issue 11, in two halves, because the device machine has no Go toolchain:
#   here, with Go:            anert/bench/cpu16.sh build   → devbin/cpu/anebench (static: OpenBLAS linked in)
#   on the 16-core machine:   anert/bench/cpu16.sh run     → $OUT/cpu16.log, $OUT/bench16.txt
# (the oneDNN build devbin/cpu/anebench-onednn when `build` made one, else the static OpenBLAS one)
# `run` also times one empty parallel loop on THREADS goroutines (internal/par's BenchmarkLoop, from
# the test binary devbin/cpu/par.test): × the loops per step in the report = the step's loop overhead;
# and the cores' memory bandwidth (anert/bench/pytorch/membw.py), which bounds the optimizer's update.
# (one device call: carry devbin/cpu, command `bash anert/bench/cpu16.sh run`).
#   on the 16-core machine:   anert/bench/cpu16.sh sweep   → $OUT/sweep.txt: scheduling choices in turn
# (carry devbin/cpu16: `build` leaves everything there compressed, with the oneDNN build beside the
# static OpenBLAS one; e.g. TUNES="- onednn - onednn" bash anert/bench/cpu16.sh sweep).
#   on the 16-core machine:   anert/bench/cpu16.sh ab      → $OUT/ab.txt: choices against the defaults,
# each in one process, group by group (anebench --alt; ALTS="ablock=128 …").
#   on the 16-core machine:   anert/bench/cpu16.sh attn    → $OUT/attn.txt: the attention's pairs alone
# and on all cores at once, hot and cold, BLAS and fused (anert/model's BenchmarkAttentionHeads).
#   on the 16-core machine:   anert/bench/cpu16.sh perf    → $OUT/<config>.kernels.txt: the CPU time
# by function and oneDNN kernel (Linux's perf, carried from this machine in devbin/cpu16/perf.tgz).
#   on the 16-core machine:   anert/bench/cpu16.sh all     → the headline against PyTorch, the A/B runs
# of ALTS and the default config's loop timeline in one call (carry devbin/cpu16/cpu.tar.gz alone).
# `run` measures anelab and PyTorch (that machine's python3, PyTorch with MKL) in the same process tree,
# in turn, at THREADS (16) threads, then times an empty parallel loop (par.BenchmarkLoop). No CPU
# profile: Go's profiler credits OpenBLAS's C frames in this static binary to unrelated Go functions.
# Instead --profile-loops: the time of a step loop by loop, busy vs waiting, and the sgemm rate inside
# each (tables in cpu16.log and $OUT/bench16.loops.txt).
set -uo pipefail
cd "$(dirname "$0")/../.."
D=$PWD/devbin/cpu
# On the device: unpack what `build` compressed (devbin/cpu16/cpu.tar.gz) into devbin/cpu.
if [ "${1:-}" != build ] && [ -f devbin/cpu16/cpu.tar.gz ] && [ ! -x "$D/anebench" ]; then
	mkdir -p "$D" && gunzip -c devbin/cpu16/cpu.tar.gz | tar -C "$D" -xf -
fi
case "${1:-}" in
build)
	set -e
	mkdir -p "$D"
	export GOFLAGS= # the static binary is the OpenBLAS build, whatever make's BLAS is
	CGO_ENABLED=1 go build -ldflags '-linkmode external -extldflags "-static"' -o "$D/anebench" ./anert/bench/cmd/anebench 2>&1 |
		grep -v 'getpw\|getgr\|statically linked' || true
	CGO_ENABLED=0 go test -c -o "$D/par.test" ./internal/par
	# The oneDNN build (BLAS=onednn) links dynamically (Debian ships no static libdnnl): the libraries
	# it loads that the device machine lacks travel beside it, in lib/ (run with LD_LIBRARY_PATH).
	if [ -f /usr/include/oneapi/dnnl/dnnl.h ]; then
		CGO_ENABLED=1 go build -tags onednn -o "$D/anebench-onednn" ./anert/bench/cmd/anebench
		CGO_ENABLED=1 go test -c -tags onednn -o "$D/model.test" ./anert/model # for attn
		mkdir -p "$D/lib"
		for l in libdnnl.so.2 libOpenCL.so.1 libgomp.so.1; do cp -L "/usr/lib/x86_64-linux-gnu/$l" "$D/lib/"; done
	fi
	# Compressed for the device call's carry (64 MiB): carry devbin/cpu16; run and sweep unpack it.
	mkdir -p "$PWD/devbin/cpu16"
	tar -C "$D" -cf - . | gzip -1 >"$PWD/devbin/cpu16/cpu.tar.gz"
	# Linux's perf (Debian's linux-perf) for `perf`, with the libraries and the loader it runs on.
	if command -v perf >/dev/null; then
		p=$(mktemp -d "$PWD/devbin/perf.XXXXXX")
		mkdir -p "$p/lib" && cp -L "$(command -v perf)" "$p/"
		for l in $(ldd "$(command -v perf)" | awk '$3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}'); do cp -L "$l" "$p/lib/"; done
		tar -C "$p" -czf "$PWD/devbin/cpu16/perf.tgz" . && rm -rf "$p"
	fi
	du -sh "$D"/* "$PWD/devbin/cpu16/"*
	;;
run)
	out=${OUT:-$PWD}
	t=${THREADS:-16}
	bin=$D/anebench # the oneDNN build when there is one, as make bench and the README's rows run
	[ -x "$D/anebench-onednn" ] && bin=$D/anebench-onednn
	{
		grep -m1 'model name' /proc/cpuinfo; nproc
		LD_LIBRARY_PATH=$D/lib PYTHON=${PYTHON:-python3} "$bin" --threads "$t" --torch --profile-loops --out "$out/bench16.txt" || echo "FAILED: bench"
		GOMAXPROCS=$t "$D/par.test" -test.run '^$' -test.bench Loop -test.benchtime 20000x || echo "FAILED: loop benchmark"
		THREADS=$t ${PYTHON:-python3} anert/bench/pytorch/membw.py || echo "FAILED: memory bandwidth"
	} 2>&1 | tee "$out/cpu16.log"
	;;
sweep)
	# The CPU step's scheduling choices (model.cpuTune, ANELAB_CPU_TUNE) measured in turn in one
	# process tree: each TUNES entry is one anebench run of both configs (one round, no PyTorch),
	# "base" the binary BASE (an earlier build, for the same-run comparison), "-" the defaults,
	# "onednn" the oneDNN build with the defaults, "onednn:key=value,…" the oneDNN build with those.
	# Results: $OUT/sweep.txt (one line per run and config), the full reports in $OUT/sweep.log.
	out=${OUT:-$PWD}
	t=${THREADS:-16}
	{
		grep -m1 'model name' /proc/cpuinfo; nproc; echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
		for tune in ${TUNES:-base - defer=0}; do
			bin=$D/anebench
			env_tune=$tune
			case $tune in
			base) bin=${BASE:-devbin/base/anebench} env_tune= ;;
			-) env_tune= ;;
			onednn) bin=$D/anebench-onednn env_tune= ;;
			onednn:*) bin=$D/anebench-onednn env_tune=${tune#onednn:} ;;
			esac
			echo "=== $tune"
			LD_LIBRARY_PATH=$D/lib ANELAB_CPU_TUNE=$env_tune "$bin" --threads "$t" --rounds 1 --out "" ${SWEEP_ARGS:-} >"$out/one.log" 2>&1 || echo "FAILED: $tune"
			cat "$out/one.log"
			grep -E '^ +(default|original) +[0-9.]+M ' "$out/one.log" | sed "s|^|$tune |" >>"$out/sweep.txt"
		done
		rm -f "$out/one.log"
		cat "$out/sweep.txt"
	} >"$out/sweep.log" 2>&1
	cat "$out/sweep.txt"
	;;
ab)
	# Scheduling choices each measured against the defaults in ONE process, group by group
	# (anebench --alt: every other group of steps runs with the choice, and each is compared with
	# the groups on either side of it, under the same load): ALTS="nta=16,ntb=16 ablock=128" (ANELAB_CPU_TUNE's
	# keys), ROUNDS (2) rounds each, the oneDNN build. Results: $OUT/ab.txt (the rows and the A/B
	# lines), the full reports in $OUT/ab.log.
	out=${OUT:-$PWD}
	t=${THREADS:-16}
	{
		grep -m1 'model name' /proc/cpuinfo; nproc
		for alt in ${ALTS:?ALTS: the choices to compare with the defaults, e.g. ALTS="ablock=128"}; do
			echo "=== $alt"
			LD_LIBRARY_PATH=$D/lib "$D/anebench-onednn" --threads "$t" --rounds "${ROUNDS:-2}" --alt "$alt" --out "" ${AB_ARGS:-} || echo "FAILED: $alt"
		done
	} >"$out/ab.log" 2>&1
	grep -E '^=== |^ +[a-z]+(\+alt)? +[0-9.]+M |^A/B|^  alternative|FAILED' "$out/ab.log" | tee "$out/ab.txt"
	;;
attn)
	# The attention's (sequence, head) pairs on one goroutine and on THREADS at once, hot and cold,
	# through BLAS and through the fused kernels, beside the sgemm burst (anert/model's
	# BenchmarkAttentionHeads, from the oneDNN test binary devbin/cpu/model.test): whether all cores
	# at once take away the fused kernels' lead, which the 16-core step does not show. ROUNDS (2)
	# counts, ATTN_N (200) ops a goroutine each. Results: $OUT/attn.txt.
	out=${OUT:-$PWD}
	t=${THREADS:-16}
	{
		grep -m1 'model name' /proc/cpuinfo; nproc
		LD_LIBRARY_PATH=$D/lib "$D/model.test" -test.run '^$' -test.bench AttentionHeads -test.cpu "$t" \
			-test.benchtime "${ATTN_N:-200}x" -test.count "${ROUNDS:-2}" || echo "FAILED: attention heads"
	} 2>&1 | tee "$out/attn.txt"
	;;
perf)
	# The steps' CPU time by function, oneDNN's JIT kernels by name (ONEDNN_JIT_PROFILE=2 writes
	# them to /tmp/perf-PID.map), in `perf record` of one config's child process (its setup too:
	# its first touches of memory show as the kernel's page-fault locks): $OUT/<config>.kernels.txt,
	# % of samples summed by symbol. PERF_ARGS=-g adds the call graphs.
	out=${OUT:-$PWD}
	t=${THREADS:-16}
	mkdir -p devbin/perf && tar -C devbin/perf -xzf devbin/cpu16/perf.tgz
	perf="devbin/perf/lib/ld-linux-x86-64.so.2 --library-path devbin/perf/lib devbin/perf/perf" # its own loader and libraries
	for c in ${CONFIGS:-default original}; do
		echo "=== $c"
		LD_LIBRARY_PATH=$D/lib ONEDNN_JIT_PROFILE=2 $perf record ${PERF_ARGS:-} -F 997 -o "$out/$c.perf" -- "$D/anebench-onednn" --child "$c" --threads "$t" \
			--steps "${STEPS:-16}" --group "${STEPS:-16}" --peak-dur 20ms >/dev/null || echo "FAILED: perf record $c"
		$perf report -i "$out/$c.perf" --no-children --sort sym -g none --stdio 2>/dev/null | grep '%' |
			awk '{p=$1; sub("%","",p); $1=""; n=$0; gsub(/0x[0-9a-f]+/,"(address)",n); s[n]+=p} END{for(k in s) printf "%6.2f %s\n", s[k], k}' |
			sort -rn >"$out/$c.kernels.txt"
		head -25 "$out/$c.kernels.txt"
		rm -f "$out/$c.perf"
	done
	;;
teams)
	# The work a goroutine gets per loop, and loops that wait for fewer goroutines (RESULTS.md, "Results
	# (16 cores, 7 Dec 2026, 07:40–08:25 UTC)"): ROUNDS (3) rounds of, in turn, the default config
	# (batch 4) as one process on THREADS (16) goroutines; for k in TEAMS (2 4), k processes at once,
	# each on THREADS/k goroutines pinned to its share of the cores (taskset) at batch 4/k — the
	# same rows of each product a goroutine (64 on 16), the step split into k teams that never wait
	# for each other (their tokens/s add up; the weight gradients' sum across teams not included);
	# and one process at batch 8 (twice the rows a goroutine). Results: $OUT/teams.txt.
	out=${OUT:-$PWD}
	t=${THREADS:-16}
	on() { # CPUs, anebench's flags: the default config's row
		local cpus=$1
		shift
		LD_LIBRARY_PATH=$D/lib timeout 120 taskset -c "$cpus" "$D/anebench-onednn" --configs default --rounds 1 --out "" "$@" 2>&1 |
			grep -E '^ +default +[0-9.]+M' | head -1
	}
	{
		grep -m1 'model name' /proc/cpuinfo; nproc
		for r in $(seq "${ROUNDS:-3}"); do
			echo "round $r: one process, $t goroutines, batch 4"
			on "0-$((t - 1))" --threads "$t"
			for k in ${TEAMS:-2 4}; do
				w=$((t / k))
				echo "round $r: $k processes at once, $w goroutines each on its share of the cores, batch $((4 / k)) each"
				for i in $(seq 0 $((k - 1))); do
					on "$((i * w))-$((i * w + w - 1))" --threads "$w" --batch default=$((4 / k)) >"$out/team.$i" &
				done
				wait
				cat "$out"/team.*
				rm -f "$out"/team.*
			done
			echo "round $r: one process, $t goroutines, batch 8"
			on "0-$((t - 1))" --threads "$t" --batch default=8
		done
	} 2>&1 | tee "$out/teams.txt"
	;;
all)
	# One device call's worth, for sessions whose device time goes mostly to starting machines: the
	# headline (the oneDNN build against PyTorch, one round: $OUT/torch.log, the README's "Where it
	# stands" rows), the A/B runs of ALTS when set ($OUT/ab.txt; AB_LIMIT seconds at most, 300), and
	# the default config's loop timeline ($OUT/tl.default.txt, summed by timeline.py into
	# $OUT/tl.summary.txt; with TRACE_ALT also that choice's, $OUT/tl.alt.summary.txt; with ATTN=1
	# the attention's pairs alone and on all cores, $OUT/attn.txt), each under a
	# time limit so that the call ends within ~9 minutes (set AB_LIMIT=240 with TRACE_ALT).
	out=${OUT:-$PWD}
	t=${THREADS:-16}
	unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE # as the README's 16-core rows ran
	LD_LIBRARY_PATH=$D/lib PYTHON=${PYTHON:-python3} timeout 150 "$D/anebench-onednn" --threads "$t" --torch --rounds 1 \
		--out "$out/bench16.txt" >"$out/torch.log" 2>&1 || echo "FAILED (or cut short): headline"
	grep -A3 -E '^ +config +params|torch tokens/s' "$out/torch.log"
	if [ -n "${ALTS:-}" ]; then
		OUT=$out timeout "${AB_LIMIT:-300}" bash "$0" ab || echo "FAILED (or cut short): ab"
	fi
	# trace NAME DIR TUNE: the default config's loop timeline with ANELAB_CPU_TUNE=TUNE (empty: the
	# defaults) into DIR/tl.default.txt, summed into $OUT/NAME.summary.txt (its log $OUT/NAME.log).
	trace() {
		mkdir -p "$2"
		ANELAB_CPU_TUNE=$3 LD_LIBRARY_PATH=$D/lib timeout 90 "$D/anebench-onednn" --threads "$t" --rounds 1 --configs default \
			--profile-loops --trace "$2/tl" --out "" >"$out/$1.log" 2>&1 || echo "FAILED (or cut short): trace ${3:-(defaults)}"
		${PYTHON:-python3} anert/bench/timeline.py "$2/tl.default.txt" >"$out/$1.summary.txt" 2>&1 && head -22 "$out/$1.summary.txt"
	}
	trace tl "$out" "${ANELAB_CPU_TUNE:-}"
	# TRACE_ALT (ANELAB_CPU_TUNE's key=value,…): the same timeline with that choice, beside the
	# defaults' ($OUT/alt/tl.default.txt, summed into $OUT/tl.alt.summary.txt).
	if [ -n "${TRACE_ALT:-}" ]; then
		trace tl.alt "$out/alt" "$TRACE_ALT"
	fi
	# ATTN=1: the attention's pairs alone and on all cores (attn, one count, $OUT/attn.txt).
	if [ -n "${ATTN:-}" ]; then
		OUT=$out ROUNDS=1 timeout 120 bash "$0" attn >/dev/null || echo "FAILED (or cut short): attn"
		grep -E '^Benchmark' "$out/attn.txt" | awk '{print $1, $5, $6, $7, $8}'
	fi
	;;
*)
	echo "usage: $0 build|run|sweep|ab|attn|perf|teams|all" >&2
	exit 2
	;;
esac
