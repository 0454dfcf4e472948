#!/usr/bin/env bash
# The instep sweep of anert/bench/RESULTS.md's "Results (16 cores, 6 Dec 2026, 22:45 UTC)": the step's projection
# shapes (M = 1024 rows, T = 16 threads) with their blocks taken in order (mode 0) or dealt by the
# rows' owner (mode 4; pinned with PIN=1, or each thread given the rows of the thread 8 away with
# SHIFT=8), one line per run. Build instep here, carry it (and oneDNN's libraries: devbin/cpu/lib
# from anert/bench/cpu16.sh build) to the 16-core machine:
#   gcc -O2 anert/bench/cblocks/instep.c -o devbin/instep/instep -ldnnl -lgomp -lpthread
#   bash anert/bench/cblocks/instep_sweep.sh > $OUT/instep.txt     # REPS (1), ROUNDS (300)
L=${LIBS:-devbin/cpu/lib}; I=${INSTEP:-devbin/instep/instep}; R=${ROUNDS:-300}
run() { LD_LIBRARY_PATH=$L "$@" 2>&1 | sed 's/ (.*//'; }
grep -m1 'model name' /proc/cpuinfo; nproc
run "$I" 16 1024 1024 1024 1 1 0 3 5
for _ in $(seq "${REPS:-1}"); do
	for s in "1 256 256" "1 768 256" "1 1536 256" "1 256 768" "1 4096 256" "0 256 256" "0 256 768" "0 256 1536" "0 768 256"; do
		set -- $s
		tb=$1 n=$2 k=$3
		run "$I" 16 1024 "$n" "$k" 8 8 "$tb" 0 "$R"
		for g in "16 1" "16 2" "16 4"; do
			run "$I" 16 1024 "$n" "$k" $g "$tb" 0 "$R"
			run "$I" 16 1024 "$n" "$k" $g "$tb" 4 "$R"
			PIN=1 run "$I" 16 1024 "$n" "$k" $g "$tb" 4 "$R"
		done
		SHIFT=8 run "$I" 16 1024 "$n" "$k" 16 2 "$tb" 4 "$R"
		PIN=1 run "$I" 16 1024 "$n" "$k" 16 2 "$tb" 0 "$R"
	done
done
run "$I" 16 1024 1024 1024 1 1 0 3 5
