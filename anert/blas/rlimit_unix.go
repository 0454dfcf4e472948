//go:build linux || darwin

package blas

import "syscall"

// addressSpaceLimit is the process's soft RLIMIT_AS in bytes, ok false when there is none.
func addressSpaceLimit() (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_AS, &r); err != nil || r.Cur >= 1<<63-1 { // RLIM_INFINITY: ^0 on Linux, 1<<63-1 on macOS
		return 0, false
	}
	return uint64(r.Cur), true
}
