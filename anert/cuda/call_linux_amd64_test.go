//go:build linux && amd64

package cuda

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// The trampoline passes all 24 argument slots in the right order (6 in registers, 18 on the
// stack), checked on libc's snprintf, which takes its variadic integers the same way: this runs
// without a GPU.
func TestCall24ArgumentOrder(t *testing.T) {
	h, err := dlopen("libc.so.6")
	if err != nil {
		t.Skipf("needs glibc's libc.so.6: %v", err)
	}
	fn, err := dlsym(h, "snprintf")
	if err != nil {
		t.Fatal(err)
	}
	const nInts = 21 // buf, size and format take the other 3 slots
	var want []string
	args := make([]uintptr, 0, 24)
	buf := make([]byte, 256)
	format := cbytes(strings.Repeat("%ld ", nInts))
	args = append(args, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), uintptr(unsafe.Pointer(&format[0])))
	for i := range nInts {
		v := int64(i*1000003 - 7)
		want = append(want, fmt.Sprint(v))
		args = append(args, uintptr(v))
	}
	n := ccall(fn, args...)
	got := cString(uintptr(unsafe.Pointer(&buf[0])))
	if w := strings.Join(want, " ") + " "; got != w || int(n) != len(w) {
		t.Fatalf("snprintf through the trampoline wrote %q (returned %d), want %q", got, n, w)
	}
}
