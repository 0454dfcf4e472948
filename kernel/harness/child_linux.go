package harness

import (
	"os/exec"
	"syscall"
)

// limitMemory caps this process's address space (RLIMIT_AS): an allocation beyond it fails, and
// the Go runtime ends the process with "out of memory", which the supervisor records as oom.
func limitMemory(bytes int64) error {
	return syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: uint64(bytes), Max: uint64(bytes)})
}

// setOwnGroup puts the child in its own process group (a terminal's Ctrl-C reaches only the
// supervisor, which stops the child and records the run) and has the kernel kill it if the
// supervisor dies (kill -9), so no orphan trains on.
func setOwnGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
