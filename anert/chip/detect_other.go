//go:build !darwin

package chip

import (
	"errors"
	"os"
	"runtime"
	"strings"
)

// Detect finds no Apple chip off darwin.
func Detect() (Chip, error) {
	return Chip{}, errors.New("chip: no Apple silicon on " + runtime.GOOS + "/" + runtime.GOARCH)
}

// HostOS is the system and, on Linux, the kernel release, e.g. "linux/amd64 6.1.0-18-amd64".
func HostOS() string {
	s := runtime.GOOS + "/" + runtime.GOARCH
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		s += " " + strings.TrimSpace(string(b))
	}
	return s
}
