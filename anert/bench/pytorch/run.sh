#!/usr/bin/env bash
# PyTorch side of the CPU speed comparison (issue 6): trains the same model with the same Lion
# update in Debian's python3-torch, on both configs, and prints one JSON line per config.
#
#   anert/bench/pytorch/run.sh [THREADS]          THREADS defaults to nproc
#
# Environment: STEPS_DEFAULT, WARMUP_DEFAULT, STEPS_ORIGINAL, WARMUP_ORIGINAL (timed/untimed steps),
# CONFIGS (default "default original"). Installs python3-torch with apt-get when it is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
threads="${1:-$(nproc)}"
py="${PYTHON:-/usr/bin/python3}" # Debian's python: a pyenv python3 on PATH does not see Debian's dist-packages

if ! [[ "$threads" =~ ^[1-9][0-9]*$ ]]; then
	echo "run.sh: THREADS = '$threads': give a positive integer (default: nproc)" >&2
	exit 2
fi

if ! "$py" -c 'import torch' 2>/dev/null; then
	echo "run.sh: installing Debian's python3-torch (about 190 MB of packages)" >&2
	export DEBIAN_FRONTEND=noninteractive
	sudo=""
	[[ "$(id -u)" == 0 ]] || sudo="sudo"
	if ! $sudo apt-get install -y -qq python3-torch >/dev/null; then
		$sudo apt-get update -qq
		$sudo apt-get install -y -qq python3-torch >/dev/null
	fi
	"$py" -c 'import torch' || {
		echo "run.sh: $py still cannot import torch after installing python3-torch" >&2
		exit 1
	}
fi

for config in ${CONFIGS:-default original}; do
	case "$config" in
	default) steps="${STEPS_DEFAULT:-20}" warmup="${WARMUP_DEFAULT:-3}" ;;
	original) steps="${STEPS_ORIGINAL:-5}" warmup="${WARMUP_ORIGINAL:-2}" ;;
	*)
		echo "run.sh: CONFIGS names '$config': the configs are 'default' and 'original'" >&2
		exit 2
		;;
	esac
	"$py" "$here/train_ref.py" --config "$config" --threads "$threads" --steps "$steps" --warmup "$warmup"
done
