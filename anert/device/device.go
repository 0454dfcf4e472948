// Package device runs generated MIL kernels (anert/mil) on a Device: the portable emulator
// ("emu", here) or the Apple Neural Engine ("ane", in anert/device/ane, darwin/arm64 only, which
// registers itself when imported).
//
// Use: compile each kernel once; give each layer its own Input (its staged weights stay in it);
// after an optimizer update rewrite only the weight fields; before each evaluation write the
// activation fields; Eval writes the whole output surface, from which the backend unpacks the
// kernel's output fields (mil.Field.Unpack).
package device

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"

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
	// Eval runs the kernel on in and writes the output surface (fp16, OutputShape, row-major)
	// into out. Evaluations of one Program are serialised (on the ANE all inputs of a Program
	// share its one output surface).
	Eval(in Input, out []uint16) error
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
