#!/usr/bin/env bash
# start.sh — install what is missing (notebooks/setup.sh) and start Jupyter on notebooks/ with the
# GoNB kernel. Jupyter prints the URL to open (with its login token).
#   NB_PORT=8888 NB_IP=127.0.0.1 notebooks/start.sh    (NB_IP=0.0.0.0 to reach it from another machine)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/notebooks/setup.sh"
eval "$("$root/notebooks/setup.sh" --env)"
export JUPYTER_DATA_DIR PATH
args=(notebook --notebook-dir="$root/notebooks" --ip="${NB_IP:-127.0.0.1}" --port="${NB_PORT:-8888}" --no-browser)
[[ "$(id -u)" == 0 ]] && args+=(--allow-root)
echo "starting Jupyter on $root/notebooks: open the http://…?token=… URL below; kernel \"Go (gonb, anelab)\"; Ctrl-C stops it"
exec "$ANELAB_JUPYTER" "${args[@]}"
