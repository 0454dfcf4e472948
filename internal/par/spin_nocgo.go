//go:build !cgo

package par

import (
	"sync/atomic"
	"time"
)

const haveCSpin = false

func cSpinNE(a *atomic.Uint64, shift uint, v uint64, d time.Duration) bool {
	return spinUntil(d, func() bool { return a.Load()>>shift != v })
}

func cSpinLE(a *atomic.Int64, v int64, d time.Duration) bool {
	return spinUntil(d, func() bool { return a.Load() <= v })
}
