package train

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/anelab/anelab/anert/config"
)

// peakRSSMB is the process's peak resident set size in MiB (ru_maxrss: KiB on Linux, bytes on macOS).
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return float64(ru.Maxrss) / (1 << 20)
	}
	return float64(ru.Maxrss) / (1 << 10)
}

// AvailableMemory is the machine's available memory in bytes (Linux: MemAvailable of
// /proc/meminfo), or 0 where unknown.
func AvailableMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// checkMemory refuses, before anything is allocated, a CPU run whose analytic need (weights,
// gradients, optimizer state, activations: config.MemoryNeed) exceeds the memory available:
// otherwise the first large allocation ends the process with Go's "fatal error: out of memory"
// and a page of stack, and nothing is recorded.
func checkMemory(cfg config.Config, avail int64) error {
	if need := cfg.MemoryNeed(); avail > 0 && need > float64(avail) {
		return fmt.Errorf("the config needs %.1f GiB to train (weights, gradients, optimizer state, activations), "+
			"more than the %.1f GiB this machine has available: make the model (model.dim, model.layers, model.ffn, "+
			"model.vocab) or the batch (train.batch, model.seq) smaller", need/(1<<30), float64(avail)/(1<<30))
	}
	return nil
}
