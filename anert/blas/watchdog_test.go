package blas

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Issue 10, defect 10 (the startup hang): a measurement that never returns — as OpenBLAS's first
// sgemm does under a `ulimit -v` too small for its buffers — ends in an error naming the
// address-space limit after the watchdog's time, and at once when stop closes.
func TestStartupMeasurementWatchdog(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	measure = func(int, time.Duration) float64 { <-hang; return 0 }
	defer func() { measure, addressLimit = PeakGFLOPS, addressSpaceLimit }()

	for _, tc := range []struct {
		name  string
		limit uint64 // 0: none
		want  []string
	}{
		{"ulimit -v", 2 << 30, []string{"did not finish within 50ms", "address-space limit of 2048 MiB", "ulimit -v 2097152",
			"retries a failing memory map forever", "ulimit -v unlimited"}},
		{"no limit", 0, []string{"did not finish within 50ms", "no address-space limit (ulimit -v) is set"}},
	} {
		addressLimit = func() (uint64, bool) { return tc.limit, tc.limit > 0 }
		start := time.Now()
		g, err := MeasureAtStartup(64, time.Millisecond, 50*time.Millisecond, nil)
		if err == nil {
			t.Fatalf("%s: a hanging measurement returned %v GFLOP/s", tc.name, g)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error does not say %q:\n%v", tc.name, w, err)
			}
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("%s: gave up after %v", tc.name, el)
		}
	}

	stop := make(chan struct{})
	close(stop)
	if _, err := MeasureAtStartup(64, time.Millisecond, time.Hour, stop); !errors.Is(err, ErrInterrupted) {
		t.Errorf("stopped: %v, want ErrInterrupted", err)
	}

	// A measurement that returns is passed through.
	measure = func(int, time.Duration) float64 { return 42 }
	if g, err := MeasureAtStartup(64, time.Millisecond, time.Hour, nil); g != 42 || err != nil {
		t.Errorf("MeasureAtStartup = %v, %v; want 42, nil", g, err)
	}
}
