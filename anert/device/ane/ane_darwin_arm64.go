//go:build darwin && arm64

package ane

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/anelab/anelab/anert/chip"
	"github.com/anelab/anelab/anert/device"
	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/anert/mil/fp16"
	"github.com/tmc/apple/corefoundation"
	"github.com/tmc/apple/coregraphics"
	"github.com/tmc/apple/iosurface"
	xane "github.com/tmc/apple/x/ane"
)

func init() { device.Register("ane", Open) }

// compiles counts this process's compiles across all devices (the limit is per process).
var compiles atomic.Int64

// Device is an open ANE client.
type Device struct {
	device.Counter // bytes moved: Traffic
	client         *xane.Client
	info           xane.DeviceInfo
	chip           chip.Chip // detected (zero when sysctl names no known chip)
	mu             sync.Mutex
	progs          []*program
}

// Open connects to the ANE.
func Open() (device.Device, error) {
	c, err := xane.Open()
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", device.ErrNoANE, err)
	}
	ch, _ := chip.Detect()
	return &Device{client: c, info: c.Info(), chip: ch}, nil
}

func (d *Device) Name() string {
	var what []string
	if d.chip.Name != "" {
		what = append(what, d.chip.Name)
	}
	if d.info.Architecture != "" {
		what = append(what, d.info.Architecture)
	}
	if len(what) > 0 {
		return "ane (" + strings.Join(what, ", ") + ")"
	}
	return "ane"
}

// Chip is the detected chip (zero when it was not recognised).
func (d *Device) Chip() chip.Chip { return d.chip }

func (d *Device) CompileCount() int { return int(compiles.Load()) }

// PeakTFLOPS is the detected chip's fp16 peak (anert/chip), or FallbackTFLOPS.
func (d *Device) PeakTFLOPS() float64 {
	if d.chip.PeakTFLOPS > 0 {
		return d.chip.PeakTFLOPS
	}
	return FallbackTFLOPS
}

// Close releases every program and the client.
func (d *Device) Close() error {
	d.mu.Lock()
	ps := d.progs
	d.progs = nil
	d.mu.Unlock()
	for _, p := range ps {
		p.Close()
	}
	return d.client.Close()
}

// Compile compiles and loads k, and checks that the compiled layout is the kernel's.
func (d *Device) Compile(k *mil.Kernel) (device.Program, error) {
	if n := compiles.Add(1); n > MaxCompiles {
		compiles.Add(-1)
		return nil, fmt.Errorf("ane: refusing to compile kernel %s: this process has compiled %d kernels, the limit is %d "+
			"(ANECompilerService fails silently after ~100-119 compiles per process, ane-facts §B3); "+
			"compile each kernel once and restage weights, or restart the process", k.Name, n-1, MaxCompiles)
	}
	var files []xane.WeightFile
	for _, path := range mil.BlobPaths(k.Blobs) {
		files = append(files, xane.WeightFile{Path: path, Blob: k.Blobs[path]})
	}
	m, err := d.client.Compile(xane.CompileOptions{ModelType: xane.ModelTypeMIL, MILText: []byte(k.MIL), WeightFiles: files})
	if err != nil {
		return nil, fmt.Errorf("ane: compiling kernel %s failed: %v; the MIL and its blobs are in %s "+
			"(run the constraint checker, anert/mil/check, on the config)", k.Name, err, dump(k))
	}
	p := &program{d: d, k: k, m: m}
	if err := p.checkLayouts(); err != nil {
		m.Close()
		return nil, fmt.Errorf("ane: kernel %s: %v; the MIL is in %s", k.Name, err, dump(k))
	}
	d.mu.Lock()
	d.progs = append(d.progs, p)
	d.mu.Unlock()
	return p, nil
}

// dump writes the kernel's MIL and blobs to a new temporary directory and returns its path.
func dump(k *mil.Kernel) string {
	dir, err := os.MkdirTemp("", "anelab-"+k.Name+"-")
	if err != nil {
		return "(could not create a directory: " + err.Error() + ")"
	}
	os.WriteFile(filepath.Join(dir, "model.mil"), []byte(k.MIL), 0o644)
	for path, b := range k.Blobs {
		rel := strings.TrimPrefix(path, "@model_path/")
		os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755)
		os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	}
	return dir
}

type program struct {
	d       *Device
	k       *mil.Kernel
	m       *xane.Model
	in, out xane.TensorLayout
	mu      sync.Mutex // one output surface: evaluations are serialised
	first   bool       // the model's own input surface is handed out
	inputs  []*input
	closed  bool
}

func (p *program) checkLayouts() error {
	if p.m.NumInputs() != 1 || p.m.NumOutputs() != 1 {
		return fmt.Errorf("compiled model has %d inputs and %d outputs, want 1 and 1", p.m.NumInputs(), p.m.NumOutputs())
	}
	p.in, p.out = p.m.InputLayout(0), p.m.OutputLayout(0)
	for _, c := range []struct {
		what string
		l    xane.TensorLayout
		s    mil.Shape
	}{{"input", p.in, p.k.In}, {"output", p.out, p.k.Out}} {
		if c.l.Channels != c.s.C() || c.l.Width != c.s.S() || c.l.Height != 1 || c.l.ElemSize != 2 || c.l.PlaneStride < 2*c.l.Width || c.l.PlaneStride%2 != 0 {
			return fmt.Errorf("compiled %s layout %+v does not match the kernel's fp16 %v", c.what, c.l, c.s)
		}
	}
	return nil
}

func (p *program) Kernel() *mil.Kernel    { return p.k }
func (p *program) InputShape() mil.Shape  { return p.k.In }
func (p *program) OutputShape() mil.Shape { return p.k.Out }

// NewInput hands out the model's own input surface first, then new surfaces of the same layout,
// each with a mapped request that writes the model's output surface.
func (p *program) NewInput() (device.Input, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("ane: kernel %s: program is closed", p.k.Name)
	}
	if !p.first {
		p.first = true
		in := &input{p: p, surf: p.m.InputSurface(0)}
		if err := in.zero(); err != nil {
			return nil, err
		}
		p.inputs = append(p.inputs, in)
		return in, nil
	}
	surf, err := newSurface(p.in)
	if err != nil {
		return nil, fmt.Errorf("ane: kernel %s: %v", p.k.Name, err)
	}
	plan, err := xane.NewMultiSurfaceEvalPlan(p.m,
		[]xane.SurfaceBinding{{Surface: surf, SymbolIndex: max(p.in.SymbolIndex, 0)}},
		[]xane.SurfaceBinding{{Surface: p.m.OutputSurface(0), SymbolIndex: max(p.out.SymbolIndex, 0)}},
		xane.DefaultMultiSurfaceEvalPlanConfig())
	if err != nil {
		corefoundation.CFRelease(corefoundation.CFTypeRef(surf))
		return nil, fmt.Errorf("ane: kernel %s: a second input surface could not be mapped: %v", p.k.Name, err)
	}
	in := &input{p: p, surf: surf, plan: plan, owned: true}
	if err := in.zero(); err != nil {
		return nil, err
	}
	p.inputs = append(p.inputs, in)
	return in, nil
}

// Eval runs the kernel on in; the result stays in the output surface (Read, CopyTo).
func (p *program) Eval(di device.Input) error {
	in, ok := di.(*input)
	if !ok || in.p != p {
		return fmt.Errorf("ane: kernel %s: the input was not made by this program's NewInput", p.k.Name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || in.closed {
		return fmt.Errorf("ane: kernel %s: program or input is closed", p.k.Name)
	}
	var err error
	if in.plan != nil {
		err = in.plan.Eval()
	} else {
		err = p.m.Eval()
	}
	if err != nil {
		return fmt.Errorf("ane: evaluating kernel %s: %w", p.k.Name, err)
	}
	return nil
}

// Read copies output field f (or its first columns) from the output surface into dst.
func (p *program) Read(f mil.Field, dst []uint16) error {
	if err := device.CheckField(f, p.k.Out, len(dst)); err != nil {
		return fmt.Errorf("ane: kernel %s: reading the output: %w", p.k.Name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("ane: kernel %s: program is closed", p.k.Name)
	}
	var cerr error
	err := withSurface(p.m.OutputSurface(0), true, func(base []byte) {
		block := mil.Field{Name: f.Name, Channels: f.Channels, Cols: f.Cols, Width: f.Cols}
		_, cerr = device.CopyBlock(dst, f.Cols, block, fp16s(base), p.out.PlaneStride/2, f)
	})
	if err = cmp.Or(err, cerr); err != nil {
		return fmt.Errorf("ane: kernel %s: reading %s: %w", p.k.Name, f.Name, err)
	}
	p.d.CountOut(f.Len())
	return nil
}

// CopyTo copies output field from into input field f of to (an input of a program on the same
// device), surface to surface: one memmove when both span whole rows of equal stride.
func (p *program) CopyTo(from mil.Field, to device.Input, f mil.Field) error {
	in, ok := to.(*input)
	if !ok || in.p.d != p.d {
		return fmt.Errorf("ane: kernel %s: copying %s to %T: the destination is not an input on this device", p.k.Name, from.Name, to)
	}
	if err := device.CheckField(from, p.k.Out, -1); err != nil {
		return fmt.Errorf("ane: kernel %s: copying from the output: %w", p.k.Name, err)
	}
	if err := device.CheckField(f, in.p.k.In, from.Len()); err != nil {
		return fmt.Errorf("ane: kernel %s → %s: %w", p.k.Name, in.p.k.Name, err)
	}
	// Both programs' locks, in one global order (by address) so that two copies in opposite
	// directions cannot deadlock; once when the input is this program's own.
	a, b := p, in.p
	if uintptr(unsafe.Pointer(b)) < uintptr(unsafe.Pointer(a)) {
		a, b = b, a
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if b != a {
		b.mu.Lock()
		defer b.mu.Unlock()
	}
	if p.closed || in.closed {
		return fmt.Errorf("ane: kernel %s → %s: program or input is closed", p.k.Name, in.p.k.Name)
	}
	var cerr error
	err := withSurface(p.m.OutputSurface(0), true, func(src []byte) {
		cerr = withSurface(in.surf, false, func(dst []byte) {
			_, cerr = device.CopyBlock(fp16s(dst), in.p.in.PlaneStride/2, f, fp16s(src), p.out.PlaneStride/2, from)
		})
	})
	if err = cmp.Or(err, cerr); err != nil {
		return fmt.Errorf("ane: kernel %s → %s: copying %s to %s: %w", p.k.Name, in.p.k.Name, from.Name, f.Name, err)
	}
	p.d.CountCopy(from.Len())
	return nil
}

// fp16s views a surface's bytes as fp16 values (surfaces are page-aligned, rows 2-byte strided).
func fp16s(b []byte) []uint16 { return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2) }

func (p *program) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	for _, in := range p.inputs {
		in.release()
	}
	return p.m.Close()
}

type input struct {
	p      *program
	surf   coregraphics.IOSurfaceRef
	plan   *xane.MultiSurfaceEvalPlan
	owned  bool
	closed bool
}

func (in *input) zero() error {
	return withSurface(in.surf, false, func(base []byte) { clear(base) })
}

// write stores fp16 values of the block (i, j) = get(i, j) into the surface rows.
func (in *input) write(f mil.Field, n int, put func(row []uint16, i int)) error {
	if err := device.CheckField(f, in.p.k.In, n); err != nil {
		return fmt.Errorf("ane: kernel %s: %w", in.p.k.Name, err)
	}
	in.p.mu.Lock()
	defer in.p.mu.Unlock()
	if in.closed {
		return fmt.Errorf("ane: kernel %s: input is closed", in.p.k.Name)
	}
	err := withSurface(in.surf, false, func(base []byte) {
		for i := 0; i < f.Channels; i++ {
			off := (f.Ch0+i)*in.p.in.PlaneStride + 2*f.Col0
			put(unsafe.Slice((*uint16)(unsafe.Pointer(&base[off])), f.Cols), i)
		}
	})
	if err == nil {
		in.p.d.CountIn(n)
	}
	return err
}

func (in *input) Write(f mil.Field, src []float32) error {
	return in.write(f, len(src), func(row []uint16, i int) {
		if f.Transposed {
			for j := range row {
				row[j] = fp16.FromFloat32(src[j*f.Channels+i])
			}
		} else {
			fp16.Encode(row, src[i*f.Cols:(i+1)*f.Cols])
		}
	})
}

func (in *input) WriteFP16(f mil.Field, block []uint16) error {
	return in.write(f, len(block), func(row []uint16, i int) { copy(row, block[i*f.Cols:]) })
}

func (in *input) Close() error {
	in.p.mu.Lock()
	defer in.p.mu.Unlock()
	in.release()
	return nil
}

func (in *input) release() {
	if in.closed {
		return
	}
	in.closed = true
	if in.plan != nil {
		in.plan.Close()
	}
	if in.owned {
		corefoundation.CFRelease(corefoundation.CFTypeRef(in.surf))
	}
}

// withSurface locks s (read-only if ro), calls fn with its bytes and unlocks.
func withSurface(s coregraphics.IOSurfaceRef, ro bool, fn func(base []byte)) error {
	ref := iosurface.IOSurfaceRef(s)
	var opt iosurface.IOSurfaceLockOptions
	if ro {
		opt = iosurface.KIOSurfaceLockReadOnly
	}
	if r := iosurface.IOSurfaceLock(ref, opt, nil); r != 0 {
		return fmt.Errorf("ane: IOSurfaceLock failed (%d)", r)
	}
	defer iosurface.IOSurfaceUnlock(ref, opt, nil)
	base := iosurface.IOSurfaceGetBaseAddress(ref)
	if base == nil {
		return fmt.Errorf("ane: IOSurface has no base address")
	}
	fn(unsafe.Slice((*byte)(base), int(iosurface.IOSurfaceGetAllocSize(ref))))
	return nil
}

// newSurface creates an IOSurface for layout l as x/ane does for a compiled model's own
// surfaces: width = spatial, height = channels·height, bytes per row = the row stride.
func newSurface(l xane.TensorLayout) (coregraphics.IOSurfaceRef, error) {
	str := func(s string) uintptr { return uintptr(corefoundation.CFStringCreateWithCString(0, s, 0x08000100)) }
	num := func(v int) uintptr {
		x := int64(v)
		return uintptr(corefoundation.CFNumberCreate(0, corefoundation.KCFNumberSInt64Type, unsafe.Pointer(&x)))
	}
	keys := [6]uintptr{str("IOSurfaceWidth"), str("IOSurfaceHeight"), str("IOSurfaceBytesPerElement"),
		str("IOSurfaceBytesPerRow"), str("IOSurfaceAllocSize"), str("IOSurfacePixelFormat")}
	vals := [6]uintptr{num(l.Width), num(l.Channels * l.Height), num(l.ElemSize), num(l.RowStride),
		num(l.Channels * l.PlaneStride), num(0)}
	dict := corefoundation.CFDictionaryCreate(0, unsafe.Pointer(&keys[0]), unsafe.Pointer(&vals[0]), len(keys), nil, nil)
	ref := iosurface.IOSurfaceCreate(dict)
	corefoundation.CFRelease(corefoundation.CFTypeRef(dict))
	for i := range keys {
		corefoundation.CFRelease(corefoundation.CFTypeRef(keys[i]))
		corefoundation.CFRelease(corefoundation.CFTypeRef(vals[i]))
	}
	if ref == 0 {
		return 0, fmt.Errorf("IOSurfaceCreate failed for %d channels × %d (row stride %d)", l.Channels, l.Width, l.RowStride)
	}
	return coregraphics.IOSurfaceRef(ref), nil
}
