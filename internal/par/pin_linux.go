package par

import (
	"golang.org/x/sys/unix"
)

// pinCPUs is the process's CPUs (its affinity mask when first asked), in order: worker k of a
// pinned loop runs on pinCPUs[k] (SetPin). Nil when the mask cannot be read.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for c := range len(set) * 64 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

// setThreadCPUs restricts the calling thread to cpus (all of them: nil), and reports whether it could.
func setThreadCPUs(cpus []int) bool {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	return unix.SchedSetaffinity(0, &set) == nil
}
