package pgtest

import "syscall"

// serverAttr runs the server as cred (nil: as us) and has the kernel kill it when the thread
// that started it ends — with this process, however it ends.
func serverAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
}
