#!/usr/bin/env bash
# setup.sh — make this checkout ready for Go notebooks, installing only what is missing:
#   * GoNB (the Go Jupyter kernel) and goimports, at the versions go.mod pins as tools, built into bin/;
#   * Jupyter (notebook server, nbconvert, nbclient): Debian packages on Linux; elsewhere a message
#     says how to install it;
#   * the GoNB kernel, registered in bin/jupyter-data (JUPYTER_DATA_DIR) with bin/ on its PATH.
# Idempotent and quick when everything is there. Prints the environment to use on its last lines:
#   eval "$(notebooks/setup.sh --env)"   # sets JUPYTER_DATA_DIR and PATH for jupyter commands
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
data="$bin/jupyter-data"
GO="${GO:-go}"
quiet=0
[[ "${1:-}" == "--env" ]] && quiet=1
say() { [[ $quiet == 1 ]] && echo "$*" >&2 || echo "$*"; }

# jupyter_bin finds a Jupyter that has nbconvert; Debian's /usr/bin first (a pyenv python3 or a
# half-installed pip jupyter earlier on PATH must not shadow it).
jupyter_bin() {
	for j in /usr/bin/jupyter "$(command -v jupyter 2>/dev/null || true)"; do
		if [[ -n "$j" && -x "$j" ]] && "$j" nbconvert --version >/dev/null 2>&1 && "$j" notebook --version >/dev/null 2>&1; then
			echo "$j"
			return 0
		fi
	done
	return 1
}

# 1. Jupyter.
if ! J="$(jupyter_bin)"; then
	if [[ "$(uname -s)" == Linux ]] && command -v apt-get >/dev/null; then
		say "installing Jupyter from Debian packages (jupyter-notebook jupyter-nbconvert python3-nbclient)"
		sudo=""; [[ "$(id -u)" == 0 ]] || sudo=sudo
		export DEBIAN_FRONTEND=noninteractive
		$sudo apt-get update -qq >&2
		$sudo apt-get install -y -qq jupyter-notebook jupyter-nbconvert python3-nbclient >&2
		J="$(jupyter_bin)" || { echo "setup.sh: Jupyter was installed but 'jupyter nbconvert' does not run; see the apt-get output above" >&2; exit 1; }
	else
		cat >&2 <<MSG
setup.sh: Jupyter (notebook + nbconvert) is not installed, and this is not a Debian/Ubuntu system.
Install it, then run this again:
  python3 -m pip install --user notebook nbconvert nbclient
(or any Jupyter that provides the 'jupyter notebook' and 'jupyter nbconvert' commands)
MSG
		exit 1
	fi
fi

# 2. GoNB and goimports, at the versions pinned by go.mod's tool directives. Rebuilt only when
#    missing or older than go.mod (a rebuild from a warm cache takes a second or two).
mkdir -p "$bin"
for tool in github.com/janpfeifer/gonb:gonb golang.org/x/tools/cmd/goimports:goimports; do
	pkg="${tool%%:*}" name="${tool##*:}"
	if [[ ! -x "$bin/$name" || "$root/go.mod" -nt "$bin/$name" ]]; then
		say "building $name ($pkg, version pinned in go.mod) into bin/"
		(cd "$root" && "$GO" build -o "$bin/$name" "$pkg")
	fi
done

# 3. Register the kernel in bin/jupyter-data with bin/ first on the kernel's PATH (GoNB runs
#    goimports and go from PATH). Notebooks import this module through the go.work recipe in
#    their first cell, so the kernel itself is not tied to this checkout's path.
kdir="$data/kernels/gonb"
want="$bin/gonb"
if [[ ! -f "$kdir/kernel.json" ]] || ! grep -q "\"$want\"" "$kdir/kernel.json" || [[ "$bin/gonb" -nt "$kdir/kernel.json" ]]; then
	say "registering the GoNB kernel in bin/jupyter-data"
	JUPYTER_DATA_DIR="$data" PATH="$bin:$PATH" "$bin/gonb" -install -force_deps >/dev/null 2>&1 ||
		{ echo "setup.sh: 'gonb -install' failed; run: JUPYTER_DATA_DIR=$data $bin/gonb -install -force_deps" >&2; exit 1; }
	py=/usr/bin/python3; [[ -x $py ]] || py=python3
	goroot_bin="$(dirname "$(command -v "$GO")")"
	"$py" - "$kdir/kernel.json" "$bin:$goroot_bin:$PATH" <<'PY'
import json, sys
p, path = sys.argv[1], sys.argv[2]
k = json.load(open(p))
k.setdefault("env", {})["PATH"] = path
k["display_name"] = "Go (gonb, anelab)"
json.dump(k, open(p, "w"), indent=1)
PY
fi

if [[ $quiet == 1 ]]; then
	echo "export JUPYTER_DATA_DIR='$data' PATH='$bin':\"\$PATH\" ANELAB_JUPYTER='$J'"
else
	say "notebook setup ok: $J, bin/gonb, bin/goimports, kernel in bin/jupyter-data"
fi
