package blas

import (
	"errors"
	"fmt"
	"time"
)

// StartupTimeout is how long MeasureAtStartup waits for the sgemm measurement: it takes well under
// a second on any machine that trains at all, so two minutes means it is stuck.
const StartupTimeout = 2 * time.Minute

// ErrInterrupted is MeasureAtStartup's error when stop closed before the measurement finished.
var ErrInterrupted = errors.New("interrupted during the startup sgemm measurement")

// Hooks the tests replace: the measurement itself and the address-space limit.
var (
	measure      = PeakGFLOPS
	addressLimit = addressSpaceLimit
)

// MeasureAtStartup is PeakGFLOPS(n, d) under a watchdog: it gives up after timeout, or when stop
// closes, with an error instead of hanging. The case it is for: under an address-space limit
// (ulimit -v) too small for OpenBLAS's per-thread buffers, OpenBLAS retries its failing memory
// map forever inside the first sgemm, a C call that neither Ctrl-C nor SIGTERM interrupts — a
// run with --threads 100000 under `ulimit -v` sat there for 11 minutes. The stuck call keeps its
// thread; the caller is expected to end the process with the error.
func MeasureAtStartup(n int, d, timeout time.Duration, stop <-chan struct{}) (float64, error) {
	threads := Threads()
	done := make(chan float64, 1)
	go func() { done <- measure(n, d) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case g := <-done:
		return g, nil
	case <-stop:
		return 0, ErrInterrupted
	case <-t.C:
		return 0, stuckError(n, threads, timeout)
	}
}

// stuckError explains a measurement that did not finish, naming the address-space limit.
func stuckError(n, threads int, timeout time.Duration) error {
	what := fmt.Sprintf("the startup sgemm measurement (%d×%d×%d on %d BLAS threads) did not finish within %v", n, n, n, threads, timeout)
	limit, ok := addressLimit()
	if !ok {
		return fmt.Errorf("%s, and no address-space limit (ulimit -v) is set: BLAS is stuck for another reason "+
			"(a machine loaded far beyond its cores, or a broken BLAS install); try fewer --threads", what)
	}
	fewer := ""
	if threads > 1 {
		fewer = " or use fewer --threads"
	}
	return fmt.Errorf("%s: this process runs under an address-space limit of %.0f MiB (ulimit -v %d), and %s retries "+
		"a failing memory map forever when the limit leaves too little room for its buffers; "+
		"raise or lift the limit (ulimit -v unlimited)%s", what, float64(limit)/(1<<20), limit>>10, Backend, fewer)
}
