package train

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/model"
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

// CheckMemory refuses, before anything is allocated (here, and in kernel/harness before it starts a
// run's process), a run whose analytic need (weights, gradients, optimizer state, activations:
// config.MemoryNeed; on the CPU backend, a set of gradients more for each share past the first of a
// split step, model.SplitSharesOf) exceeds the memory available: otherwise the first large
// allocation ends the process with Go's "fatal error: out of memory" and a page of stack, and
// nothing is recorded.
func CheckMemory(cfg config.Config, avail int64) error {
	need, split := cfg.MemoryNeed(), ""
	if cpuBackend(cfg) {
		if k := model.SplitSharesOf(cfg.Model, cfg.Train.Batch, cfg.Train.Threads); k > 1 {
			need += float64(k-1) * float64(cfg.Model.Params()) * 4
			split = fmt.Sprintf("; with a set of gradients for each of the %d shares the step is split into on these "+
				"threads, which ANELAB_CPU_TUNE=split=0 saves", k)
		}
		if f := model.TransposedFloatsOf(cfg.Model, cfg.Train.Threads); f > 0 {
			need += float64(f) * 4
			split += "; with the layer matrices' transposed copies, which ANELAB_CPU_TUNE=wt=0 saves"
		}
	}
	if avail > 0 && need > float64(avail) {
		return fmt.Errorf("the config needs %.1f GiB to train (weights, gradients, optimizer state, activations%s), "+
			"more than the %.1f GiB this machine has available: make the model (model.dim, model.layers, model.ffn, "+
			"model.vocab) or the batch (train.batch, model.seq) smaller", need/(1<<30), split, float64(avail)/(1<<30))
	}
	return nil
}

// cpuBackend reports whether cfg trains on the CPU backend (newBackendOn): backend cpu, or auto
// where there is no Neural Engine to pick.
func cpuBackend(cfg config.Config) bool {
	switch cfg.Backend {
	case "cpu", "":
		return true
	case "auto":
		return noANE()
	}
	return false
}
