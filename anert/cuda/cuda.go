// Package cuda drives an NVIDIA GPU from Go without cgo: it opens the driver (libcuda.so.1),
// cuBLAS and NVRTC at run time with github.com/ebitengine/purego, compiles CUDA C kernels with
// NVRTC for the device's own architecture, and wraps the few calls a trainer needs: device
// memory, copies, kernel launches and row-major GEMMs (cuBLAS is column-major; Gemm maps a
// row-major C = op(A)·op(B) to the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ).
//
// Nothing CUDA is needed to build: `go build` works with CGO_ENABLED=0 on every platform, and on a
// machine without a driver Open returns an error wrapping ErrNoDriver. The calls go through a
// small trampoline of our own (call_linux_amd64.s) because purego's stops at 15 arguments and the
// batched cuBLAS GEMMs take up to 23; so the backend runs on linux/amd64 only.
//
// Threading: a CUDA context is current per OS thread, and goroutines move between threads. Every
// entry point of a Ctx user runs inside Ctx.Do, which locks the goroutine to its thread and makes
// the context current there. A Ctx is not safe for concurrent use. All work goes to the default
// stream, so it runs in order; copies to the host wait for it.
package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"unsafe"
)

// ErrNoDriver is wrapped by Open's error when the CUDA driver library does not load or finds no
// GPU.
var ErrNoDriver = errors.New("no CUDA driver (libcuda.so.1)")

// Ptr is a device address (CUdeviceptr).
type Ptr uintptr

// Add is p advanced by n float32 elements.
func (p Ptr) Add(n int) Ptr { return p + Ptr(4*n) }

// AddBF16 is p advanced by n bf16 (2-byte) elements.
func (p Ptr) AddBF16(n int) Ptr { return p + Ptr(2*n) }

// api is every C entry point used, resolved once by load.
type api struct {
	cuInit, cuDriverGetVersion, cuDeviceGetCount, cuDeviceGet, cuDeviceGetName, cuDeviceGetAttribute,
	cuDevicePrimaryCtxRetain, cuDevicePrimaryCtxRelease, cuCtxSetCurrent, cuCtxSynchronize,
	cuMemAlloc, cuMemFree, cuMemcpyHtoD, cuMemcpyDtoH, cuMemcpyDtoD, cuMemsetD32, cuMemGetInfo,
	cuModuleLoadData, cuModuleGetFunction, cuLaunchKernel, cuGetErrorName, cuGetErrorString,
	cuEventCreate, cuEventRecord, cuEventSynchronize, cuEventElapsedTime, cuEventDestroy uintptr

	cublasCreate, cublasDestroy, cublasSetMathMode, cublasGetVersion, cublasSgemm,
	cublasSgemmStridedBatched, cublasGemmEx, cublasGemmStridedBatchedEx uintptr

	nvrtcVersion, nvrtcCreateProgram, nvrtcCompileProgram, nvrtcGetProgramLogSize, nvrtcGetProgramLog,
	nvrtcGetCUBINSize, nvrtcGetCUBIN, nvrtcDestroyProgram, nvrtcGetErrorString uintptr
}

var (
	loadOnce sync.Once
	loaded   *api
	loadErr  error
)

// Library file names tried in order: CUDA 13 (the device machine's), then 12, then the
// unversioned development link.
var (
	driverLibs = []string{"libcuda.so.1", "libcuda.so"}
	cublasLibs = []string{"libcublas.so.13", "libcublas.so.12", "libcublas.so"}
	nvrtcLibs  = []string{"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"}
)

func openFirst(names []string) (uintptr, string, error) {
	var errs []string
	for _, n := range names {
		h, err := dlopen(n)
		if err == nil {
			return h, n, nil
		}
		errs = append(errs, err.Error())
	}
	return 0, "", fmt.Errorf("none of %v loads (%v)", names, errs)
}

// load opens the three libraries and resolves every symbol, once per process.
func load() (*api, error) {
	loadOnce.Do(func() { loaded, loadErr = doLoad() })
	return loaded, loadErr
}

func doLoad() (*api, error) {
	a := &api{}
	drv, _, err := openFirst(driverLibs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDriver, err)
	}
	blas, _, err := openFirst(cublasLibs)
	if err != nil {
		return nil, fmt.Errorf("cuda: cuBLAS: %w (install the CUDA toolkit's libcublas)", err)
	}
	rtc, _, err := openFirst(nvrtcLibs)
	if err != nil {
		return nil, fmt.Errorf("cuda: NVRTC: %w (install the CUDA toolkit's libnvrtc)", err)
	}
	syms := []struct {
		h    uintptr
		name string
		p    *uintptr
	}{
		{drv, "cuInit", &a.cuInit}, {drv, "cuDriverGetVersion", &a.cuDriverGetVersion},
		{drv, "cuDeviceGetCount", &a.cuDeviceGetCount}, {drv, "cuDeviceGet", &a.cuDeviceGet},
		{drv, "cuDeviceGetName", &a.cuDeviceGetName}, {drv, "cuDeviceGetAttribute", &a.cuDeviceGetAttribute},
		{drv, "cuDevicePrimaryCtxRetain", &a.cuDevicePrimaryCtxRetain},
		{drv, "cuDevicePrimaryCtxRelease_v2", &a.cuDevicePrimaryCtxRelease},
		{drv, "cuCtxSetCurrent", &a.cuCtxSetCurrent}, {drv, "cuCtxSynchronize", &a.cuCtxSynchronize},
		{drv, "cuMemAlloc_v2", &a.cuMemAlloc}, {drv, "cuMemFree_v2", &a.cuMemFree},
		{drv, "cuMemcpyHtoD_v2", &a.cuMemcpyHtoD}, {drv, "cuMemcpyDtoH_v2", &a.cuMemcpyDtoH},
		{drv, "cuMemcpyDtoD_v2", &a.cuMemcpyDtoD}, {drv, "cuMemsetD32_v2", &a.cuMemsetD32},
		{drv, "cuMemGetInfo_v2", &a.cuMemGetInfo},
		{drv, "cuModuleLoadData", &a.cuModuleLoadData}, {drv, "cuModuleGetFunction", &a.cuModuleGetFunction},
		{drv, "cuLaunchKernel", &a.cuLaunchKernel},
		{drv, "cuGetErrorName", &a.cuGetErrorName}, {drv, "cuGetErrorString", &a.cuGetErrorString},
		{drv, "cuEventCreate", &a.cuEventCreate}, {drv, "cuEventRecord", &a.cuEventRecord},
		{drv, "cuEventSynchronize", &a.cuEventSynchronize}, {drv, "cuEventElapsedTime", &a.cuEventElapsedTime},
		{drv, "cuEventDestroy_v2", &a.cuEventDestroy},
		{blas, "cublasCreate_v2", &a.cublasCreate}, {blas, "cublasDestroy_v2", &a.cublasDestroy},
		{blas, "cublasSetMathMode", &a.cublasSetMathMode}, {blas, "cublasGetVersion_v2", &a.cublasGetVersion},
		{blas, "cublasSgemm_v2", &a.cublasSgemm}, {blas, "cublasSgemmStridedBatched", &a.cublasSgemmStridedBatched},
		{blas, "cublasGemmEx", &a.cublasGemmEx}, {blas, "cublasGemmStridedBatchedEx", &a.cublasGemmStridedBatchedEx},
		{rtc, "nvrtcVersion", &a.nvrtcVersion}, {rtc, "nvrtcCreateProgram", &a.nvrtcCreateProgram},
		{rtc, "nvrtcCompileProgram", &a.nvrtcCompileProgram}, {rtc, "nvrtcGetProgramLogSize", &a.nvrtcGetProgramLogSize},
		{rtc, "nvrtcGetProgramLog", &a.nvrtcGetProgramLog}, {rtc, "nvrtcGetCUBINSize", &a.nvrtcGetCUBINSize},
		{rtc, "nvrtcGetCUBIN", &a.nvrtcGetCUBIN}, {rtc, "nvrtcDestroyProgram", &a.nvrtcDestroyProgram},
		{rtc, "nvrtcGetErrorString", &a.nvrtcGetErrorString},
	}
	for _, s := range syms {
		p, err := dlsym(s.h, s.name)
		if err != nil || p == 0 {
			return nil, fmt.Errorf("cuda: symbol %s not found (%v): the CUDA libraries are older than this code expects", s.name, err)
		}
		*s.p = p
	}
	if r := ccall(a.cuInit, 0); r != 0 {
		return nil, fmt.Errorf("%w: cuInit returned %d (%s)", ErrNoDriver, r, a.errName(r))
	}
	var n int32
	ccall(a.cuDeviceGetCount, uintptr(unsafe.Pointer(&n)))
	if n < 1 {
		return nil, fmt.Errorf("%w: the driver loads but sees no GPU", ErrNoDriver)
	}
	return a, nil
}

// cString reads a NUL-terminated C string.
func cString(p uintptr) string {
	if p == 0 {
		return ""
	}
	b := *(*unsafe.Pointer)(unsafe.Pointer(&p))
	n := 0
	for *(*byte)(unsafe.Add(b, n)) != 0 {
		n++
	}
	return string(unsafe.Slice((*byte)(b), n))
}

func (a *api) errName(r uintptr) string {
	var s, d uintptr
	ccall(a.cuGetErrorName, r, uintptr(unsafe.Pointer(&s)))
	ccall(a.cuGetErrorString, r, uintptr(unsafe.Pointer(&d)))
	return cString(s) + ": " + cString(d)
}

// cuErr turns a driver result into an error naming the call.
func (a *api) cuErr(what string, r uintptr) error {
	if r == 0 {
		return nil
	}
	return fmt.Errorf("cuda: %s: error %d (%s)", what, r, a.errName(r))
}

func cublasErr(what string, r uintptr) error {
	if r == 0 {
		return nil
	}
	names := map[uintptr]string{1: "NOT_INITIALIZED", 3: "ALLOC_FAILED", 7: "INVALID_VALUE", 8: "ARCH_MISMATCH",
		11: "MAPPING_ERROR", 13: "EXECUTION_FAILED", 14: "INTERNAL_ERROR", 15: "NOT_SUPPORTED", 16: "LICENSE_ERROR"}
	return fmt.Errorf("cuda: %s: cuBLAS status %d (CUBLAS_STATUS_%s)", what, r, names[r])
}

// Available reports whether a CUDA GPU can be used here, and if not, why.
func Available() error {
	_, err := load()
	return err
}

// Ctx is one GPU's primary context with a cuBLAS handle and a precision for its GEMMs.
type Ctx struct {
	a      *api
	dev    int32
	ctx    uintptr
	blas   uintptr
	name   string
	cc     [2]int32 // compute capability major, minor
	prec   Precision
	allocs map[Ptr]int

	// kernel argument storage, reused by Launch (heap memory: Go's collector never moves it)
	argv [32]uint64
	argp [32]uintptr
	one  [2]float32 // alpha, beta for GEMMs, read by cuBLAS during the call
}

// Precision is how a trainer's GEMMs compute, and how Gemm and GemmBatched (fp32 tensors)
// compute.
type Precision int

const (
	// FP32: IEEE single precision throughout (CUBLAS_COMPUTE_32F_PEDANTIC: no TF32, no reduced
	// precision reductions), for agreement with the CPU backend.
	FP32 Precision = iota
	// BF16: tensor-core GEMMs on bf16 operands with fp32 accumulation. A trainer stores the
	// operands in bf16 (GemmTyped with TypeBF16: half the bytes read, no conversion on load);
	// Gemm and GemmBatched, on fp32 tensors, compute as BF16Fast does.
	BF16
	// BF16Fast: tensor-core GEMMs on fp32 tensors (CUBLAS_COMPUTE_32F_FAST_16BF): cuBLAS rounds
	// the fp32 inputs to bf16 as it loads them. The cuda backend's bf16 mode before it stored bf16
	// operands, kept to measure against (--gemm-precision fast16bf).
	BF16Fast
)

func (p Precision) String() string {
	switch p {
	case BF16:
		return "bf16"
	case BF16Fast:
		return "bf16-fast16bf"
	}
	return "fp32"
}

func (p Precision) computeType() uintptr { return uintptr(p.F32Compute()) }

// F32Compute is the compute type of GEMMs on fp32 tensors in this precision: pedantic fp32, or
// (both bf16 modes) rounded to bf16 on load.
func (p Precision) F32Compute() Compute {
	if p == FP32 {
		return Compute32FPedantic
	}
	return Compute32FFast16BF
}

// Open makes the first GPU's primary context current and creates a cuBLAS handle. Its error
// wraps ErrNoDriver when there is no driver or no GPU.
func Open(p Precision) (*Ctx, error) {
	a, err := load()
	if err != nil {
		return nil, err
	}
	c := &Ctx{a: a, prec: p, allocs: map[Ptr]int{}}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := a.cuErr("cuDeviceGet", ccall(a.cuDeviceGet, uintptr(unsafe.Pointer(&c.dev)), 0)); err != nil {
		return nil, err
	}
	var name [256]byte
	ccall(a.cuDeviceGetName, uintptr(unsafe.Pointer(&name[0])), 256, uintptr(c.dev))
	c.name = cString(uintptr(unsafe.Pointer(&name[0])))
	ccall(a.cuDeviceGetAttribute, uintptr(unsafe.Pointer(&c.cc[0])), 75, uintptr(c.dev)) // COMPUTE_CAPABILITY_MAJOR
	ccall(a.cuDeviceGetAttribute, uintptr(unsafe.Pointer(&c.cc[1])), 76, uintptr(c.dev)) // COMPUTE_CAPABILITY_MINOR
	if err := a.cuErr("cuDevicePrimaryCtxRetain", ccall(a.cuDevicePrimaryCtxRetain, uintptr(unsafe.Pointer(&c.ctx)), uintptr(c.dev))); err != nil {
		return nil, err
	}
	if err := a.cuErr("cuCtxSetCurrent", ccall(a.cuCtxSetCurrent, c.ctx)); err != nil {
		return nil, err
	}
	if err := cublasErr("cublasCreate", ccall(a.cublasCreate, uintptr(unsafe.Pointer(&c.blas)))); err != nil {
		ccall(a.cuDevicePrimaryCtxRelease, uintptr(c.dev))
		return nil, err
	}
	// Default math: the compute type of each GemmEx call decides the precision.
	ccall(a.cublasSetMathMode, c.blas, 0)
	return c, nil
}

// Name is the GPU's name ("NVIDIA H200").
func (c *Ctx) Name() string { return c.name }

// ComputeCapability is the GPU's compute capability, e.g. 9, 0.
func (c *Ctx) ComputeCapability() (major, minor int) { return int(c.cc[0]), int(c.cc[1]) }

// Precision is the GEMM precision Open was given.
func (c *Ctx) Precision() Precision { return c.prec }

// SetPrecision changes the GEMM precision for later calls.
func (c *Ctx) SetPrecision(p Precision) { c.prec = p }

// Do runs f with the goroutine locked to its OS thread and the context current there: wrap every
// sequence of calls on c in it.
func (c *Ctx) Do(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := c.a.cuErr("cuCtxSetCurrent", ccall(c.a.cuCtxSetCurrent, c.ctx)); err != nil {
		return err
	}
	return f()
}

// Versions says which driver, cuBLAS and NVRTC were loaded.
func (c *Ctx) Versions() string {
	var drv, bl, maj, min int32
	ccall(c.a.cuDriverGetVersion, uintptr(unsafe.Pointer(&drv)))
	ccall(c.a.cublasGetVersion, c.blas, uintptr(unsafe.Pointer(&bl)))
	ccall(c.a.nvrtcVersion, uintptr(unsafe.Pointer(&maj)), uintptr(unsafe.Pointer(&min)))
	return fmt.Sprintf("driver API %d.%d, cuBLAS %d, NVRTC %d.%d", drv/1000, drv%1000/10, bl, maj, min)
}

// MemInfo is the device's free and total memory in bytes.
func (c *Ctx) MemInfo() (free, total uint64) {
	ccall(c.a.cuMemGetInfo, uintptr(unsafe.Pointer(&free)), uintptr(unsafe.Pointer(&total)))
	return free, total
}

// Alloc allocates n float32 (4-byte) elements of device memory, not initialised.
func (c *Ctx) Alloc(n int) (Ptr, error) { return c.AllocBytes(4 * n) }

// AllocBF16 allocates n bf16 (2-byte) elements of device memory, not initialised.
func (c *Ctx) AllocBF16(n int) (Ptr, error) { return c.AllocBytes(2 * n) }

// AllocBytes allocates n bytes of device memory (256-byte aligned), not initialised.
func (c *Ctx) AllocBytes(n int) (Ptr, error) {
	var p Ptr
	if n <= 0 {
		n = 4
	}
	if r := ccall(c.a.cuMemAlloc, uintptr(unsafe.Pointer(&p)), uintptr(n)); r != 0 {
		free, total := c.MemInfo()
		return 0, fmt.Errorf("%w (asked for %.1f MiB; %.0f of %.0f MiB free)", c.a.cuErr("cuMemAlloc", r),
			float64(n)/(1<<20), float64(free)/(1<<20), float64(total)/(1<<20))
	}
	c.allocs[p] = n
	return p, nil
}

// Free releases memory from Alloc.
func (c *Ctx) Free(p Ptr) {
	if _, ok := c.allocs[p]; ok {
		ccall(c.a.cuMemFree, uintptr(p))
		delete(c.allocs, p)
	}
}

// Upload copies host values to device memory at dst (len(src) elements of their size: uint16
// for bf16 bits).
func Upload[T float32 | int32 | uint32 | uint16](c *Ctx, dst Ptr, src []T) error {
	if len(src) == 0 {
		return nil
	}
	r := ccall(c.a.cuMemcpyHtoD, uintptr(dst), uintptr(unsafe.Pointer(&src[0])), uintptr(int(unsafe.Sizeof(src[0]))*len(src)))
	runtime.KeepAlive(src)
	return c.a.cuErr("cuMemcpyHtoD", r)
}

// Download copies len(dst) values from device memory at src to the host, after all earlier
// work on the context has finished.
func Download[T float32 | int32 | uint32 | uint16](c *Ctx, dst []T, src Ptr) error {
	if len(dst) == 0 {
		return nil
	}
	r := ccall(c.a.cuMemcpyDtoH, uintptr(unsafe.Pointer(&dst[0])), uintptr(src), uintptr(int(unsafe.Sizeof(dst[0]))*len(dst)))
	runtime.KeepAlive(dst)
	return c.a.cuErr("cuMemcpyDtoH", r)
}

// DownloadF64 copies len(dst) float64 values from the device.
func (c *Ctx) DownloadF64(dst []float64, src Ptr) error {
	if len(dst) == 0 {
		return nil
	}
	r := ccall(c.a.cuMemcpyDtoH, uintptr(unsafe.Pointer(&dst[0])), uintptr(src), uintptr(8*len(dst)))
	runtime.KeepAlive(dst)
	return c.a.cuErr("cuMemcpyDtoH", r)
}

// Copy copies n 4-byte elements between device buffers.
func (c *Ctx) Copy(dst, src Ptr, n int) error {
	if n == 0 {
		return nil
	}
	return c.a.cuErr("cuMemcpyDtoD", ccall(c.a.cuMemcpyDtoD, uintptr(dst), uintptr(src), uintptr(4*n)))
}

// Zero sets n 4-byte elements to 0.
func (c *Ctx) Zero(p Ptr, n int) error {
	if n == 0 {
		return nil
	}
	return c.a.cuErr("cuMemsetD32", ccall(c.a.cuMemsetD32, uintptr(p), 0, uintptr(n)))
}

// Sync waits for all work on the context and returns the first asynchronous error.
func (c *Ctx) Sync() error { return c.a.cuErr("cuCtxSynchronize", ccall(c.a.cuCtxSynchronize)) }

// Close frees every allocation, the cuBLAS handle and the context reference.
func (c *Ctx) Close() error {
	return c.Do(func() error {
		for p := range c.allocs {
			c.Free(p)
		}
		ccall(c.a.cublasDestroy, c.blas)
		ccall(c.a.cuDevicePrimaryCtxRelease, uintptr(c.dev))
		return nil
	})
}

// Timer measures device time between two points on the context's stream.
type Timer struct {
	c          *Ctx
	start, end uintptr
}

// NewTimer creates a pair of CUDA events.
func (c *Ctx) NewTimer() (*Timer, error) {
	t := &Timer{c: c}
	if err := c.a.cuErr("cuEventCreate", ccall(c.a.cuEventCreate, uintptr(unsafe.Pointer(&t.start)), 0)); err != nil {
		return nil, err
	}
	if err := c.a.cuErr("cuEventCreate", ccall(c.a.cuEventCreate, uintptr(unsafe.Pointer(&t.end)), 0)); err != nil {
		return nil, err
	}
	return t, nil
}

// Start records the start event.
func (t *Timer) Start() { ccall(t.c.a.cuEventRecord, t.start, 0) }

// Stop records the end event, waits for it and returns the milliseconds since Start.
func (t *Timer) Stop() (float32, error) {
	ccall(t.c.a.cuEventRecord, t.end, 0)
	if err := t.c.a.cuErr("cuEventSynchronize", ccall(t.c.a.cuEventSynchronize, t.end)); err != nil {
		return 0, err
	}
	var ms float32
	ccall(t.c.a.cuEventElapsedTime, uintptr(unsafe.Pointer(&ms)), t.start, t.end)
	return ms, nil
}

// Median calls f warmup times untimed, then reps times between Start and Stop, and returns the
// median of the timed calls in milliseconds: the one way GPU work is timed here (a GEMM rate's
// ceiling, cudagemm's shapes).
func (t *Timer) Median(warmup, reps int, f func() error) (float64, error) {
	ms := make([]float64, 0, reps)
	for i := range warmup + reps {
		t.Start()
		if err := f(); err != nil {
			return 0, err
		}
		d, err := t.Stop()
		if err != nil {
			return 0, err
		}
		if i >= warmup {
			ms = append(ms, float64(d))
		}
	}
	slices.Sort(ms)
	return ms[len(ms)/2], nil
}

// Close destroys the events.
func (t *Timer) Close() {
	ccall(t.c.a.cuEventDestroy, t.start)
	ccall(t.c.a.cuEventDestroy, t.end)
}
