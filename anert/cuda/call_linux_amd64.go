//go:build linux && amd64

package cuda

import (
	"unsafe"

	"github.com/ebitengine/purego"
)

// callArgs is what anelab_cuda_call24 (call_linux_amd64.s) reads: the function, up to 24
// integer/pointer arguments, and the slot it writes the return value to.
type callArgs struct {
	fn uintptr
	a  [24]uintptr
	r1 uintptr
}

var call24ABI0 uintptr

//go:linkname runtime_cgocall runtime.cgocall
//go:noescape
func runtime_cgocall(fn uintptr, arg unsafe.Pointer) int32

// ccall calls the C function fn with integer/pointer arguments and returns its integer result.
// Arguments that point into Go memory must be kept alive by the caller (runtime.KeepAlive) until
// ccall returns; the C side must not keep them.
func ccall(fn uintptr, args ...uintptr) uintptr {
	if len(args) > 24 {
		panic("cuda: ccall with more than 24 arguments")
	}
	var c callArgs
	c.fn = fn
	copy(c.a[:], args)
	runtime_cgocall(call24ABI0, unsafe.Pointer(&c))
	return c.r1
}

// dlopen opens a shared library by its loader name (RTLD_NOW | RTLD_GLOBAL).
func dlopen(name string) (uintptr, error) {
	return purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL)
}

func dlsym(h uintptr, name string) (uintptr, error) { return purego.Dlsym(h, name) }
