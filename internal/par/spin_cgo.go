//go:build cgo

package par

/*
#include <stdint.h>
#include <time.h>

static uint64_t anelab_now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void anelab_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

// anelab_spin_ne spins until (*p >> shift) != v (1), or for ns nanoseconds (0).
static int anelab_spin_ne(const uint64_t *p, int shift, uint64_t v, int64_t ns) {
	uint64_t end = 0;
	for (unsigned i = 0;; i++) {
		if ((__atomic_load_n(p, __ATOMIC_ACQUIRE) >> shift) != v) return 1;
		anelab_pause();
		if ((i & 255) == 255) {
			uint64_t t = anelab_now_ns();
			if (end == 0) end = t + (uint64_t)ns;
			else if (t > end) return 0;
		}
	}
}

// anelab_spin_le spins until *p <= v (1), or for ns nanoseconds (0).
static int anelab_spin_le(const int64_t *p, int64_t v, int64_t ns) {
	uint64_t end = 0;
	for (unsigned i = 0;; i++) {
		if (__atomic_load_n(p, __ATOMIC_ACQUIRE) <= v) return 1;
		anelab_pause();
		if ((i & 255) == 255) {
			uint64_t t = anelab_now_ns();
			if (end == 0) end = t + (uint64_t)ns;
			else if (t > end) return 0;
		}
	}
}
*/
import "C"

import (
	"sync/atomic"
	"time"
	"unsafe"
)

const haveCSpin = true

// cSpinNE spins in C until a.Load()>>shift != v or d has passed, and reports whether it changed.
// The Go load after it orders what the writer stored before the change for this goroutine (and
// the race detector, which does not see C's loads).
func cSpinNE(a *atomic.Uint64, shift uint, v uint64, d time.Duration) bool {
	if C.anelab_spin_ne((*C.uint64_t)(unsafe.Pointer(a)), C.int(shift), C.uint64_t(v), C.int64_t(d)) == 0 {
		return false
	}
	return a.Load()>>shift != v
}

// cSpinLE spins in C until a.Load() <= v or d has passed, and reports whether it held.
func cSpinLE(a *atomic.Int64, v int64, d time.Duration) bool {
	if C.anelab_spin_le((*C.int64_t)(unsafe.Pointer(a)), C.int64_t(v), C.int64_t(d)) == 0 {
		return false
	}
	return a.Load() <= v
}
