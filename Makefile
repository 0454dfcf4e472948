# anelab — the front door. `make run` trains the default model; `make test` runs every test.
SHELL := /bin/bash
BUDGET ?= 5m
DATA   ?= data/out/default
OUT    ?= runs/default
GO     ?= go
BIN    := bin/anelab
UNAME  := $(shell uname -s)

.PHONY: all deps build run test test-go cross bench notebook report clean

all: build

# C libraries for the CPU backend: OpenBLAS on Debian (installed when missing); Accelerate on macOS.
deps:
ifeq ($(UNAME),Linux)
	@if ! dpkg -s libopenblas-dev >/dev/null 2>&1; then \
		echo "installing libopenblas-dev (BLAS for the CPU backend)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
		$(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq libopenblas-dev >/dev/null; \
	fi
endif

build: deps
	$(GO) build -o $(BIN) ./kernel/cmd/anelab

# Prepare the embedded default corpus if missing, train for BUDGET, print the summary and a story.
run: build
	@test -f $(DATA)/manifest.json || $(BIN) data default --out $(DATA)
	$(BIN) train --data $(DATA) --budget $(BUDGET) --out $(OUT)
	$(BIN) sample --tokens 200 $(OUT)/model.ckpt

test: deps test-go cross

test-go:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

# The darwin device and the no-cgo BLAS must build for Apple silicon from Linux.
cross:
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./...
	@echo "cross-build for darwin/arm64: ok"

clean:
	rm -rf bin
