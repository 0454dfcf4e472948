# anelab — the front door. `make run` trains the default model; `make test` runs every test.
SHELL := /bin/bash
BUDGET ?= 5m
DATA   ?= data/out/default
OUT    ?= runs/default
BACKEND ?= auto
GO     ?= go
BIN    := bin/anelab
UNAME  := $(shell uname -s)

.PHONY: all deps test-deps build run test check-size check-headers test-go test-race test-nocgo test-other-blas test-notebooks cross bench seeds notebook report clean ane-probe fuzz

all: build

# Debian packages, installed when missing. `make run` needs only OpenBLAS (BLAS for the CPU backend;
# Accelerate on macOS). The tests also need PostgreSQL (the ledger's and queue's PostgreSQL tests
# start a throwaway server with its initdb/postgres; `make test` requires them on Linux) — where it is
# not installed, this took 148 s (apt-get update included) on the loaded 2-core machine (load average
# 19), measured in an overlay copy of the system without it — and g++ (TestFlashEmulated compiles the
# CUDA attention kernels, anert/cudab/flash.cu, for the CPU).
DEBS      := libopenblas-dev
TEST_DEBS  = $(DEBS) postgresql g++

# The BLAS of the CPU backend on Linux x86-64: oneDNN's sgemm (BLAS=onednn, the default here), whose
# JIT kernels follow the CPU's features whatever OPENBLAS_CORETYPE pins — on this project's machines,
# which pin OpenBLAS to its AVX2 Haswell kernels on AVX-512 CPUs, 1.7–1.8× faster training steps on 2
# cores (README, "The BLAS") — or OpenBLAS (BLAS=openblas; what a plain `go build` links). The choice
# is a build tag, passed to every go command below through GOFLAGS (notebooks' builds included).
ifeq ($(UNAME)/$(shell uname -m),Linux/x86_64)
BLAS ?= onednn
else
BLAS ?= openblas
endif
ifeq ($(BLAS),onednn)
DEBS      += libdnnl-dev
export GOFLAGS := $(strip $(GOFLAGS) -tags=onednn)
else ifneq ($(BLAS),openblas)
$(error BLAS=$(BLAS): use onednn or openblas)
endif
deps test-deps: DEBS_WANTED = $(if $(filter test-deps,$@),$(TEST_DEBS),$(DEBS))
deps test-deps:
ifeq ($(UNAME),Linux)
	@missing=$$(for p in $(DEBS_WANTED); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq $$missing >/dev/null; \
	fi
endif

build: deps
	$(GO) build -o $(BIN) ./kernel/cmd/anelab

# Prepare the embedded default corpus if missing, train for BUDGET, print the summary and a story.
# BACKEND=auto (default) trains on the Neural Engine on Apple silicon, on the CPU elsewhere.
run: build
	@test -f $(DATA)/manifest.json || $(BIN) data default --out $(DATA)
	$(BIN) train --data $(DATA) --budget $(BUDGET) --out $(OUT) --backend $(BACKEND)
	$(BIN) sample --tokens 200 $(OUT)/model.ckpt

test: test-deps check-size check-headers test-go test-notebooks cross

# No binaries or generated data in the repository: a submission of a session that committed them was
# refused for size. Every tracked file stays under 1 MB.
check-size:
	@big=$$(git ls-files -z 2>/dev/null | xargs -0 -r stat -c '%s %n' 2>/dev/null | awk '$$1 > 1000000'); \
	if [ -n "$$big" ]; then echo "tracked files over 1 MB (binaries or generated data?):"; echo "$$big"; exit 1; fi

# cgo compiles a package's preamble from a file in $$TMPDIR with -I . after it, so a header of a common
# name left in /tmp (a "kernels.h") shadows the package's own: every header cgo includes is anelab_….
check-headers:
	@bad=$$(git ls-files '*.h' | grep -v /testdata/ | grep -v '/anelab_[^/]*\.h$$'); \
	if [ -n "$$bad" ]; then echo "C headers must be named anelab_*.h (a same-named file in \$$TMPDIR shadows them under cgo):"; echo "$$bad"; exit 1; fi

# On Linux `test-deps` installed postgresql, so the PostgreSQL cases must run, not skip.
ifeq ($(UNAME),Linux)
test-go test-race: export ANELAB_PGTEST_REQUIRED = 1
endif
test-go:
	$(GO) vet ./...
	$(GO) mod tidy -diff # go.mod and go.sum list exactly what the code imports, direct requirements marked so
	$(GO) test -count=1 ./...
	$(MAKE) test-race test-nocgo test-other-blas

# The BLAS this build does not use, on the packages that call it (anert/blas's own tests, the model's
# gradient and thread-count checks).
test-other-blas:
ifeq ($(BLAS),onednn)
	GOFLAGS= $(GO) test -count=1 ./anert/blas ./anert/model
endif

# The packages that run goroutines of their own, once under the race detector.
test-race:
	$(GO) test -count=1 -race ./internal/par ./anert/model ./anert/optim ./kernel/ledger ./kernel/harness ./kernel/queue

# The pure-Go build (no cgo: Go BLAS and element-wise kernels) tested, not only built; the GPU
# packages too, since GPU binaries must be built with CGO_ENABLED=0 (a static cgo build crashes
# loading libcuda).
test-nocgo:
	CGO_ENABLED=0 $(GO) test -count=1 ./internal/par ./anert/blas ./anert/model ./anert/optim ./anert/train ./anert/cuda ./anert/cudab

# Fuzz every reader of outside input for FUZZTIME each (issue 10): checkpoints, MIL text, config
# JSON, dataset folders (manifest + shards), both tokenizer files. A crasher is saved under the
# package's testdata/fuzz/ and fails `make test` from then on (go test runs saved inputs as seeds).
# Minutes, not seconds, so it is not part of `make test`.
# Each target runs even when an earlier one found a crasher; the make fails at the end if any did.
# Minimizing a new input is capped at FUZZMINIMIZE: with the default (a minute) a target with large
# seeds (a whole checkpoint) spent most of its time minimizing instead of fuzzing.
FUZZTIME ?= 1m
FUZZMINIMIZE ?= 10s
FUZZ_TARGETS := ./anert/ckpt:FuzzLoad ./anert/mil:FuzzParse ./anert/config:FuzzDecode \
	./data:FuzzOpen ./data/bpe:FuzzRead ./data/llama2:FuzzRead
fuzz:
	@failed=""; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; echo "== $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: crashers in$$failed (saved under testdata/fuzz/)"; exit 1; fi; echo "fuzz: no crasher"

# The darwin device and the no-cgo BLAS must build for Apple silicon from Linux, and the darwin-only
# tests (the ANE against the emulator, the probe) must compile there.
cross:
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) vet ./anert/device/... ./anert/chip/ ./anert/probe/
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) test -c -o /dev/null ./anert/device/ane
	@echo "cross-build for darwin/arm64: ok"

# The first thing to run on a Mac: compile and evaluate every ANE kernel variant from a tiny shape up
# to the default one, compare each with the emulator, time it; writes ane-probe/ane-probe.md (paste it
# into an issue) and ane-probe.json. Elsewhere the same sequence runs on the emulator and says so.
ane-probe: build
	$(BIN) ane probe --out ane-probe

# CPU training speed on the default config and the original's shape: tokens/s, ms/step, time by
# phase, peak memory, MFU against the sgemm rate measured in the same process; benchstat lines in
# runs/bench.txt. TORCH=1 also runs the PyTorch reference (installs Debian's python3-torch).
# BENCH_FLAGS="--backend cuda" times whole steps on an NVIDIA GPU at a GPU-sized batch instead.
bench: deps
	$(GO) build -o bin/anebench ./anert/bench/cmd/anebench
	bin/anebench --out runs/bench.txt $(BENCH_FLAGS)

# The default recipe's seed-to-seed spread (issue 9): SEEDS runs of the default config under a
# SEEDS_BUDGET compute budget; fails when the sd of val_bpb exceeds SEEDS_MAX_SD (a recipe whose
# seeds part). Minutes, not seconds, so it is not part of `make test`; README "The default recipe".
SEEDS        ?= 5
SEEDS_BUDGET ?= 1m
SEEDS_MAX_SD ?= 0.05
seeds: build
	@test -f $(DATA)/manifest.json || $(BIN) data default --out $(DATA)
	BIN=$(BIN) DATA=$(DATA) SEEDS=$(SEEDS) BUDGET=$(SEEDS_BUDGET) MAX_SD=$(SEEDS_MAX_SD) anert/bench/seeds.sh

# Start Jupyter on notebooks/ with the GoNB kernel, installing what is missing first: GoNB and
# goimports at the versions go.mod pins (built into bin/), Jupyter from Debian packages (other
# systems get a message saying how), the kernel registered in bin/jupyter-data. Prints the URL.
# NB_PORT / NB_IP choose where it listens (default 127.0.0.1:8888).
notebook: deps
	notebooks/start.sh

# Execute every notebook headlessly with nbconvert in smoke mode (tiny models, short budgets, a lab
# of its own in notebooks/out/lab); fail on any error output or panic; require image/png and
# text/html outputs; check that a notebook picks up an edited library function without reinstalling.
test-notebooks: deps
	notebooks/run_notebooks.sh

# Execute the notebooks for real against lab/ and export them as HTML to report/ for sharing.
report: deps
	notebooks/run_notebooks.sh --report report

clean:
	rm -rf bin
