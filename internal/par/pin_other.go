//go:build !linux

package par

// allowedCPUs is nil: no portable affinity mask, so SetPin pins nothing.
func allowedCPUs() []int { return nil }

func setThreadCPUs([]int) bool { return false }
