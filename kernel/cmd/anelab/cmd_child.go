package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/anelab/anelab/kernel/harness"
)

// childCommand is the hidden command `anelab run` and `vet` start to evaluate a script and to
// train each run: it reads the request from stdin, does it, and writes its reply
// (harness.RunChild). Whatever kills it is recorded by the
// parent, which owns the ledger row.
const childCommand = "_child"

// childArgv is the command line of a run's child process: this program's `_child` command.
// `anelab run` and `anelab vet` evaluate scripts there, and `run` trains there.
func childArgv() ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this program to start each run's process: %w", err)
	}
	return []string{exe, childCommand}, nil
}

// testRunner, when set (by the command's tests only), replaces the real trainer in runs.
var testRunner harness.Runner

func init() {
	register(childCommand, "(internal) train one job for `anelab run`, reading it from stdin", func(args []string) error {
		// SIGINT/SIGTERM from the supervisor stop training; the reply says interrupted.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return harness.RunChild(ctx, os.Stdin, os.Stdout, testRunner)
	})
}
