#!/usr/bin/env bash
# run_notebooks.sh — execute the notebooks headlessly.
#
#   notebooks/run_notebooks.sh            test: run every notebook in smoke mode (tiny models, ~12 s
#                                         budgets, a lab of its own in notebooks/out/lab), fail on any
#                                         error output or panic, require image/png and text/html
#                                         outputs; then check that a notebook sees a library edit
#                                         without reinstalling anything (go test ./kernel/nb)
#   notebooks/run_notebooks.sh --report [DIR]
#                                         execute every notebook for real against the lab (lab/) and
#                                         export the executed notebooks as HTML to DIR (default report/)
#
# Both install what is missing first (notebooks/setup.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
GO="${GO:-go}"
eval "$(notebooks/setup.sh --env)"
export JUPYTER_DATA_DIR PATH ANELAB_JUPYTER

if [[ "${1:-}" == "--report" ]]; then
	out="${2:-report}"
	mkdir -p "$out"
	log="$(mktemp)"
	for nb in notebooks/*.ipynb; do
		echo "executing $nb → $out/$(basename "${nb%.ipynb}").html"
		if ! "$ANELAB_JUPYTER" nbconvert --to html --execute "$nb" --output-dir "$out" \
			--ExecutePreprocessor.timeout=3600 --ExecutePreprocessor.kernel_name=gonb >"$log" 2>&1; then
			grep -v '^I[0-9]\{4\} ' "$log" | tail -40
			echo "report: $nb failed (full log: $log)"
			exit 1
		fi
	done
	rm -f "$log"
	echo "report: $(cd "$out" && pwd)/"
	exit 0
fi

ANELAB_NOTEBOOKS=1 "$GO" test -count=1 -timeout 20m -v -run 'TestNotebook' ./kernel/nb/ 2>&1 |
	grep -v '^=== \(RUN\|PAUSE\|CONT\)' || { echo "notebook tests FAILED (executed notebooks are in notebooks/out/)"; exit 1; }
