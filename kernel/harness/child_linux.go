package harness

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// limitMemory caps this process's address space (RLIMIT_AS) at what it holds now plus allowance
// bytes: an allocation beyond it fails, and the Go runtime ends the process with "out of memory",
// which the supervisor records as oom. Counting from what is already mapped matters: the Go
// runtime, cgo and OpenBLAS reserve address space before any work starts, and a limit below it
// makes OpenBLAS retry its first sgemm's buffer mmap forever.
func limitMemory(allowance int64) error {
	held, err := addressSpace()
	if err != nil {
		return err
	}
	lim := uint64(held + allowance)
	return syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: lim, Max: lim})
}

// addressSpace is this process's mapped address space in bytes (VmSize of /proc/self/status).
func addressSpace() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmSize:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmSize %q: %w", rest, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmSize in /proc/self/status")
}

// setOwnGroup puts the child in its own process group (a terminal's Ctrl-C reaches only the
// supervisor, which stops the child and records the run) and has the kernel kill it if the
// supervisor dies (kill -9), so no orphan trains on.
func setOwnGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
