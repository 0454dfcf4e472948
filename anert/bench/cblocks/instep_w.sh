#!/usr/bin/env bash
# The instep runs of anert/bench/RESULTS.md's "Results (16 cores, 7 Dec 2026, 15:35–16:00 UTC)", on T
# (16) threads, one line per run. Build here (Debian's libdnnl-dev), carry devbin/instep and
# devbin/cpu16 (oneDNN's libraries, from anert/bench/cpu16.sh build) to the 16-core machine:
#   gcc -O2 anert/bench/cblocks/instep.c -o devbin/instep/instep -ldnnl -lgomp -lpthread
#   for v in "8 2" "12 2" "6 4"; do set -- $v; gcc -O2 -DANELAB_NN_MR=$1 -DANELAB_NN_NV=$2 \
#     anert/bench/cblocks/instep.c -o devbin/instep/instep_$1x$2 -ldnnl -lgomp -lpthread; done
#   gcc -O2 -DANELAB_NN_PACK=1 anert/bench/cblocks/instep.c -o devbin/instep/instep_pk1 -ldnnl -lgomp -lpthread
#   bash anert/bench/cblocks/instep_w.sh own  > $OUT/own.txt    # anelab_own_nn.h's tiles (mode 6) against oneDNN (mode 0)
#   bash anert/bench/cblocks/instep_w.sh cold > $OUT/cold.txt   # W cold (EVICT), rewritten (WRITEW), prefetched (PREF)
# (mkdir -p devbin/cpu && gunzip -c devbin/cpu16/cpu.tar.gz | tar -C devbin/cpu -xf - first, for the libraries.)
L=${LIBS:-devbin/cpu/lib}; I=${INSTEP:-devbin/instep}; T=${T:-16}
run() { env "$@" 2>&1 | sed 's/ (.*//; s/ shift 0 pin 0//'; }
grep -m1 'model name' /proc/cpuinfo; nproc
run LD_LIBRARY_PATH=$L "$I/instep" "$T" 1024 1024 1024 1 1 0 3 5
case ${1:-} in
own)
	for _ in 1 2; do
		for s in "256 256 16 4" "256 256 8 8" "768 256 16 4" "1536 256 16 4" "1536 256 16 8" "256 768 16 4" "256 1536 16 4" "4096 256 16 8"; do
			set -- $s
			R=$((200 * 256 * 256 / ($1 * $2) + 20))
			run LD_LIBRARY_PATH=$L "$I/instep" "$T" 1024 "$1" "$2" "$3" "$4" 0 0 "$R"
			for v in 8x2 12x2 6x4 pk1; do run LD_LIBRARY_PATH=$L "$I/instep_$v" "$T" 1024 "$1" "$2" "$3" "$4" 0 6 "$R" | sed "s/^/$v /"; done
		done
	done
	;;
cold)
	for _ in 1 2 3; do
		for s in "256 256 16 4 0" "768 256 16 4 0" "1536 256 16 8 0" "256 768 16 4 0" "256 256 8 8 1"; do
			set -- $s
			R=$((600 * 256 * 256 / ($1 * $2) + 20))
			for c in "X=0" "EVICT=16" "EVICT=16 PREF=1" "WRITEW=1" "WRITEW=1 PREF=1"; do
				run LD_LIBRARY_PATH=$L $c "$I/instep" "$T" 1024 "$1" "$2" "$3" "$4" "$5" 0 "$R"
			done
		done
	done
	;;
*)
	echo "usage: $0 own|cold" >&2
	exit 2
	;;
esac
run LD_LIBRARY_PATH=$L "$I/instep" "$T" 1024 1024 1024 1 1 0 3 5
