//go:build !darwin

package chip

import (
	"errors"
	"runtime"
)

// Detect finds no Apple chip off darwin.
func Detect() (Chip, error) {
	return Chip{}, errors.New("chip: no Apple silicon on " + runtime.GOOS + "/" + runtime.GOARCH)
}
