//go:build darwin

package chip

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Detect reads the chip from sysctl machdep.cpu.brand_string ("Apple M2 Pro"); hw.model (e.g.
// "Mac14,12") is reported alongside when the brand string is not an Apple M-series name.
func Detect() (Chip, error) {
	brand, err := unix.Sysctl("machdep.cpu.brand_string")
	if err != nil {
		return Chip{}, fmt.Errorf("chip: sysctl machdep.cpu.brand_string: %w", err)
	}
	c, err := Lookup(brand)
	if err != nil {
		model, _ := unix.Sysctl("hw.model")
		return Chip{}, fmt.Errorf("chip: brand string %q (hw.model %q) is not a known Apple M-series chip", brand, model)
	}
	c.Detected = brand
	return c, nil
}

// HostOS is the macOS version, e.g. "macOS 15.3 (24D60)".
func HostOS() string {
	v, _ := unix.Sysctl("kern.osproductversion")
	b, _ := unix.Sysctl("kern.osversion")
	return "macOS " + v + " (" + b + ")"
}
