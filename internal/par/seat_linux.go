package par

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// cpu is the CPU the calling thread runs on (the getcpu system call, ~0.1 µs: once per claimed
// part of a homed loop, and per part a timeline records), or k if the call fails.
func cpu(k int) int {
	var cpu uint32
	if _, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0); e != 0 {
		return k
	}
	return int(cpu)
}
