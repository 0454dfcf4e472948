# step, sourced by the device scripts (anert/cudab/gpucheck.sh, anert/bench/fivemin.sh): a device
# call has a hard time limit, so each step is bounded and one that fails or runs out of time is
# logged while the next still runs.
#
#   step LIMIT DIR CMD...   CMD in DIR, for at most LIMIT seconds and what is left of $total
#                           seconds since $t0 (both set by the caller; t0 from `date +%s`)
step() {
	local lim=$1 dir=$2 left=$((total - ($(date +%s) - t0)))
	shift 2
	if [ "$left" -lt 5 ]; then
		echo "SKIPPED (out of time): $*"
		return
	fi
	[ "$lim" -gt "$left" ] && lim=$left
	echo "=== [$(($(date +%s) - t0)) s] $*"
	(cd "$dir" && timeout "$lim" "$@") || echo "FAILED (rc $?): $*"
}
