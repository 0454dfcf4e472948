package cuda

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"unsafe"
)

// Module is CUDA C source compiled by NVRTC and loaded into the context.
type Module struct {
	c   *Ctx
	mod uintptr
}

// Func is one kernel (an extern "C" __global__ function) of a Module.
type Func struct {
	name string
	f    uintptr
}

func cbytes(s string) []byte { return append([]byte(s), 0) }

// Compile compiles CUDA C source with NVRTC for this GPU's architecture (sm_XY machine code,
// so no PTX is compiled by the driver at load) and loads it. Kernels must be extern "C". A
// compile error returns NVRTC's log.
func (c *Ctx) Compile(name, src string, opts ...string) (*Module, error) {
	a := c.a
	var prog uintptr
	cs, cn := cbytes(src), cbytes(name)
	if r := ccall(a.nvrtcCreateProgram, uintptr(unsafe.Pointer(&prog)), uintptr(unsafe.Pointer(&cs[0])),
		uintptr(unsafe.Pointer(&cn[0])), 0, 0, 0); r != 0 {
		return nil, fmt.Errorf("cuda: nvrtcCreateProgram %s: %s", name, cString(ccall(a.nvrtcGetErrorString, r)))
	}
	defer ccall(a.nvrtcDestroyProgram, uintptr(unsafe.Pointer(&prog)))
	all := append([]string{fmt.Sprintf("--gpu-architecture=sm_%d%d", c.cc[0], c.cc[1]), "--std=c++17"}, opts...)
	cOpts := make([][]byte, len(all))
	ptrs := make([]uintptr, len(all))
	for i, o := range all {
		cOpts[i] = cbytes(o)
		ptrs[i] = uintptr(unsafe.Pointer(&cOpts[i][0]))
	}
	r := ccall(a.nvrtcCompileProgram, prog, uintptr(len(ptrs)), uintptr(unsafe.Pointer(&ptrs[0])))
	runtime.KeepAlive(cOpts)
	runtime.KeepAlive(cs)
	runtime.KeepAlive(cn)
	var logN uintptr
	ccall(a.nvrtcGetProgramLogSize, prog, uintptr(unsafe.Pointer(&logN)))
	log := ""
	if logN > 1 {
		b := make([]byte, logN)
		ccall(a.nvrtcGetProgramLog, prog, uintptr(unsafe.Pointer(&b[0])))
		log = strings.TrimRight(string(b), "\x00\n ")
	}
	if r != 0 {
		return nil, fmt.Errorf("cuda: NVRTC could not compile %s (%s) with %v:\n%s", name,
			cString(ccall(a.nvrtcGetErrorString, r)), all, log)
	}
	var n uintptr
	ccall(a.nvrtcGetCUBINSize, prog, uintptr(unsafe.Pointer(&n)))
	if n == 0 {
		return nil, fmt.Errorf("cuda: NVRTC produced no machine code for %s", name)
	}
	bin := make([]byte, n)
	ccall(a.nvrtcGetCUBIN, prog, uintptr(unsafe.Pointer(&bin[0])))
	m := &Module{c: c}
	r = ccall(a.cuModuleLoadData, uintptr(unsafe.Pointer(&m.mod)), uintptr(unsafe.Pointer(&bin[0])))
	runtime.KeepAlive(bin)
	if err := a.cuErr("cuModuleLoadData "+name, r); err != nil {
		return nil, err
	}
	return m, nil
}

// Func looks a kernel up by name.
func (m *Module) Func(name string) (*Func, error) {
	f := &Func{name: name}
	cn := cbytes(name)
	r := ccall(m.c.a.cuModuleGetFunction, uintptr(unsafe.Pointer(&f.f)), m.mod, uintptr(unsafe.Pointer(&cn[0])))
	runtime.KeepAlive(cn)
	if err := m.c.a.cuErr("cuModuleGetFunction "+name, r); err != nil {
		return nil, err
	}
	return f, nil
}

// Dim3 is a grid or block size.
type Dim3 struct{ X, Y, Z int }

// Launch queues kernel f on grid × block threads with shmem bytes of dynamic shared memory.
// Arguments are Ptr (a device address), int (passed as a C int), int64, float32 or float64, in
// the kernel's parameter order.
func (c *Ctx) Launch(f *Func, grid, block Dim3, shmem int, args ...any) error {
	if len(args) > len(c.argv) {
		return fmt.Errorf("cuda: launch %s: %d arguments, at most %d", f.name, len(args), len(c.argv))
	}
	for i, v := range args {
		switch x := v.(type) {
		case Ptr:
			c.argv[i] = uint64(x)
		case int:
			if x != int(int32(x)) {
				return fmt.Errorf("cuda: launch %s: argument %d = %d does not fit a C int", f.name, i, x)
			}
			c.argv[i] = uint64(uint32(int32(x)))
		case int64:
			c.argv[i] = uint64(x)
		case float32:
			c.argv[i] = uint64(math.Float32bits(x))
		case float64:
			c.argv[i] = math.Float64bits(x)
		default:
			return fmt.Errorf("cuda: launch %s: argument %d has unsupported type %T", f.name, i, v)
		}
		c.argp[i] = uintptr(unsafe.Pointer(&c.argv[i]))
	}
	g, b := fill(grid), fill(block)
	r := ccall(c.a.cuLaunchKernel, f.f, uintptr(g.X), uintptr(g.Y), uintptr(g.Z), uintptr(b.X), uintptr(b.Y), uintptr(b.Z),
		uintptr(shmem), 0, uintptr(unsafe.Pointer(&c.argp[0])), 0)
	return c.a.cuErr("launch "+f.name, r)
}

func fill(d Dim3) Dim3 {
	return Dim3{max(d.X, 1), max(d.Y, 1), max(d.Z, 1)}
}
