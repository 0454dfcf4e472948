package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/anelab/anelab/kernel/harness"
)

// childCommand is the hidden command `anelab run` starts for each run: it reads the job from
// stdin, trains it, and writes its reply (harness.RunChild). Whatever kills it is recorded by the
// parent, which owns the ledger row.
const childCommand = "_child"

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
