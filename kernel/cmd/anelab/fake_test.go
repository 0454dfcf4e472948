package main

import (
	"os"
	"strconv"
	"time"

	"github.com/anelab/anelab/kernel/harness/harnesstest"
)

// The tests run this test binary as `anelab` (see TestMain); ANELAB_FAKE_RUNNER=1 makes its runs,
// in the supervisor and in each run's child process, use the fake trainer.
func init() {
	if os.Getenv("ANELAB_FAKE_RUNNER") != "1" {
		return
	}
	testRunner = harnesstest.FakeRunner
	if ms, err := strconv.Atoi(os.Getenv("ANELAB_FAKE_STEP_MS")); err == nil {
		harnesstest.FakeStepDelay = time.Duration(ms) * time.Millisecond
	}
}
