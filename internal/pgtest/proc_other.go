//go:build !linux

package pgtest

import "syscall"

// serverAttr runs the server as cred (nil: as us). Without Linux's parent-death signal a server
// outlives a test process that is killed before Stop.
func serverAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred}
}
