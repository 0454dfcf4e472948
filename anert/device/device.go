// Package device runs generated MIL kernels (anert/mil) on a Device: the portable emulator
// ("emu", here) or the Apple Neural Engine ("ane", in anert/device/ane, darwin/arm64 only, which
// registers itself when imported).
//
// Use: compile each kernel once; give each layer its own Input (its staged weights stay in it);
// after an optimizer update rewrite only the weight fields; before each evaluation write the
// activation fields. Eval leaves its result in the Program's output surface: the backend reads
// only the output fields (and columns) it keeps with Read, and hands intermediates to the next
// kernel's input surface with CopyTo, without passing through Go (the original's io_copy,
// seed-system §3.4). Traffic counts the bytes each of the three moves.
package device

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/anelab/anelab/anert/mil"
)

// Device compiles and runs kernels.
type Device interface {
	Name() string
	// Compile prepares k for evaluation; each kernel is compiled once per process.
	Compile(k *mil.Kernel) (Program, error)
	// CompileCount is the number of Compile calls this process has made on this kind of device.
	CompileCount() int
	// PeakTFLOPS is the fp16 peak used for utilisation (0: unknown, report no utilisation).
	PeakTFLOPS() float64
	Close() error
}

// Program is a compiled kernel.
type Program interface {
	Kernel() *mil.Kernel
	InputShape() mil.Shape
	OutputShape() mil.Shape
	// NewInput allocates an input surface of InputShape, zero-filled. A backend keeps one per
	// layer so that each layer's weights are staged once per optimizer update.
	NewInput() (Input, error)
	// Eval runs the kernel on in. The result stays in the Program's one output surface (fp16,
	// OutputShape, row-major) until the next Eval: read it with Read or CopyTo before then.
	// Evaluations of one Program are serialised (on the ANE all inputs of a Program share its
	// one output surface).
	Eval(in Input) error
	// Read copies the block of output field f from the output surface into dst, fp16 in surface
	// order ([f.Channels][f.Cols]). A field narrowed to its first columns (mil.Field.FirstCols)
	// reads only those: the backend reads the T real tokens of a padded sequence, no more.
	Read(f mil.Field, dst []uint16) error
	// CopyTo copies output field from of the output surface into input field f of to, an input
	// of a Program on the same device, surface to surface (the original's io_copy): one memmove
	// when both fields span whole rows of equal stride, one per row otherwise (CopyBlock).
	CopyTo(from mil.Field, to Input, f mil.Field) error
	Close() error
}

// Input is one input surface of a Program.
type Input interface {
	// Write packs src, the field's model-side matrix (see mil.Field), as fp16 into the surface.
	Write(f mil.Field, src []float32) error
	// WriteFP16 copies an fp16 block in surface order ([f.Channels][f.Cols]) into the surface,
	// e.g. P and dP from sdpaBwd1's output into sdpaBwd2's input.
	WriteFP16(f mil.Field, block []uint16) error
	Close() error
}

// Traffic is the bytes a device moved between Go and its surfaces and between surfaces, fp16
// values × 2: Write and WriteFP16 count as In, Read as Out, CopyTo as Copy.
type Traffic struct {
	In   int64 // Go → input surface
	Out  int64 // output surface → Go
	Copy int64 // output surface → input surface
}

// Go is the bytes that crossed between Go and the surfaces (In + Out).
func (t Traffic) Go() int64 { return t.In + t.Out }

// Total is every byte moved (In + Out + Copy).
func (t Traffic) Total() int64 { return t.In + t.Out + t.Copy }

// Sub is t − u (the traffic between two readings).
func (t Traffic) Sub(u Traffic) Traffic { return Traffic{t.In - u.In, t.Out - u.Out, t.Copy - u.Copy} }

func (t Traffic) String() string {
	return fmt.Sprintf("%.2f MB (%.2f MB Go → surfaces, %.2f MB surfaces → Go, %.2f MB surface → surface)",
		float64(t.Total())/1e6, float64(t.In)/1e6, float64(t.Out)/1e6, float64(t.Copy)/1e6)
}

// Counter counts a device's Traffic; devices embed it (safe for concurrent use).
type Counter struct{ in, out, copy atomic.Int64 }

// Traffic is the bytes counted so far.
func (c *Counter) Traffic() Traffic {
	return Traffic{In: c.in.Load(), Out: c.out.Load(), Copy: c.copy.Load()}
}

// CountIn, CountOut and CountCopy add n fp16 values to In, Out and Copy.
func (c *Counter) CountIn(n int)   { c.in.Add(2 * int64(n)) }
func (c *Counter) CountOut(n int)  { c.out.Add(2 * int64(n)) }
func (c *Counter) CountCopy(n int) { c.copy.Add(2 * int64(n)) }

// CopyBlock copies the block of field sf of the surface src (row stride srcStride fp16 values)
// into the block of field df of the surface dst (row stride dstStride), and returns the number of
// copies it made: 1 when both fields span whole rows and the strides are equal (the block is then
// contiguous in both surfaces), else one per channel row. The fields must have the same shape.
func CopyBlock(dst []uint16, dstStride int, df mil.Field, src []uint16, srcStride int, sf mil.Field) (int, error) {
	if sf.Channels != df.Channels || sf.Cols != df.Cols {
		return 0, fmt.Errorf("copying %s (%d×%d) into %s (%d×%d): the blocks differ in shape",
			sf.Name, sf.Channels, sf.Cols, df.Name, df.Channels, df.Cols)
	}
	for _, c := range []struct {
		f      mil.Field
		n, str int
	}{{sf, len(src), srcStride}, {df, len(dst), dstStride}} {
		if c.str < c.f.Width || (c.f.Ch0+c.f.Channels-1)*c.str+c.f.Col0+c.f.Cols > c.n {
			return 0, fmt.Errorf("field %s (channels [%d,%d), columns [%d,%d)) does not fit a surface of %d values with row stride %d",
				c.f.Name, c.f.Ch0, c.f.Ch0+c.f.Channels, c.f.Col0, c.f.Col0+c.f.Cols, c.n, c.str)
		}
	}
	if sf.Channels == 0 || sf.Cols == 0 {
		return 0, nil
	}
	// Whole rows of equal stride: the block, row padding included, is one contiguous range in
	// both surfaces (the padding copied is padding in the destination too).
	n := sf.Channels * srcStride
	whole := sf.Col0 == 0 && df.Col0 == 0 && sf.Cols == sf.Width && df.Cols == df.Width && srcStride == dstStride &&
		sf.Ch0*srcStride+n <= len(src) && df.Ch0*dstStride+n <= len(dst)
	if whole {
		copy(dst[df.Ch0*dstStride:][:n], src[sf.Ch0*srcStride:][:n])
		return 1, nil
	}
	for i := range sf.Channels {
		copy(dst[(df.Ch0+i)*dstStride+df.Col0:][:df.Cols], src[(sf.Ch0+i)*srcStride+sf.Col0:][:sf.Cols])
	}
	return sf.Channels, nil
}

// ErrNoANE is returned by Open("ane") where there is no Neural Engine.
var ErrNoANE = errors.New("the ANE device needs macOS on Apple silicon; use --device emu or --backend cpu")

var (
	mu      sync.Mutex
	drivers = map[string]func() (Device, error){}
)

// Register makes a device available to Open under name (called from the ane package's init).
func Register(name string, open func() (Device, error)) {
	mu.Lock()
	defer mu.Unlock()
	drivers[name] = open
}

// Open returns the named device: "emu" (the MIL emulator), "ane" (the Neural Engine) or "auto"
// (the ANE where it opens, else the emulator).
func Open(name string) (Device, error) {
	mu.Lock()
	ane := drivers["ane"]
	mu.Unlock()
	switch name {
	case "emu", "":
		return NewEmu(), nil
	case "ane":
		if ane == nil {
			return nil, noANE()
		}
		return ane()
	case "auto":
		if ane != nil {
			if d, err := ane(); err == nil {
				return d, nil
			}
		}
		return NewEmu(), nil
	}
	return nil, fmt.Errorf("device %q: want \"emu\", \"ane\" or \"auto\"", name)
}

func noANE() error {
	if runtime.GOOS == "darwin" && runtime.GOARCH == "arm64" {
		return fmt.Errorf("the ANE driver is not linked into this program: import _ \"github.com/anelab/anelab/anert/device/ane\" (or use --device emu)")
	}
	return ErrNoANE
}

// Names lists the registered devices plus "emu".
func Names() []string {
	mu.Lock()
	defer mu.Unlock()
	n := []string{"emu"}
	for k := range drivers {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// CheckField reports whether f fits a surface of shape s and src has f's length (n < 0: skip).
func CheckField(f mil.Field, s mil.Shape, n int) error {
	if f.Width != s.S() || f.Ch0 < 0 || f.Ch0+f.Channels > s.C() || f.Col0 < 0 || f.Col0+f.Cols > f.Width {
		return fmt.Errorf("field %s (channels [%d,%d), columns [%d,%d) of width %d) does not fit the surface %v",
			f.Name, f.Ch0, f.Ch0+f.Channels, f.Col0, f.Col0+f.Cols, f.Width, s)
	}
	if n >= 0 && n != f.Len() {
		return fmt.Errorf("field %s: %d values, want %d (%d×%d)", f.Name, n, f.Len(), f.Channels, f.Cols)
	}
	return nil
}
