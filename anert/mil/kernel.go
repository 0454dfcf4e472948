// Package mil generates the transformer's ANE kernels as MIL program text (the format the ANE
// compiler takes through _ANEInMemoryModelDescriptor, seed-system §3.2) plus BLOBFILE constants,
// and parses that text back (Parse) for the emulator and the constraint checker.
//
// Every kernel has one fp16 input x of shape [1, Cin, 1, SPin] and one fp16 output [1, Cout, 1, S]
// (channel-first, element (c, s) at c·SP + s). Weights are "dynamic": they travel in the input
// surface's spatial dimension next to the activations and are cut out with slice_by_size (§3.3),
// so each kernel is compiled once and weights are restaged after each optimizer update.
// Each Kernel lists its input and output Fields: which channel × column block holds which tensor,
// in which orientation, so a backend can stage and read them without knowing the MIL.
package mil

import (
	"fmt"
	"math"
	"strings"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/mil/fp16"
)

// Shape is a 4-D tensor shape; kernel surfaces are [1, C, 1, S].
type Shape [4]int

// C is the channel count (dimension 1).
func (s Shape) C() int { return s[1] }

// S is the spatial width (dimension 3).
func (s Shape) S() int { return s[3] }

// Elems is the number of elements.
func (s Shape) Elems() int { return s[0] * s[1] * s[2] * s[3] }

// Bytes is the fp16 size in bytes.
func (s Shape) Bytes() int { return 2 * s.Elems() }

func (s Shape) String() string { return fmt.Sprintf("[%d,%d,%d,%d]", s[0], s[1], s[2], s[3]) }

// Role says when a field is (re)written.
type Role int

const (
	Activation   Role = iota // written for every evaluation
	Weight                   // written once per optimizer update
	Intermediate             // fp16 data handed from one kernel's output to another's input as is
)

func (r Role) String() string {
	return [...]string{"activation", "weight", "intermediate"}[r]
}

// Field is a rectangular block of a kernel's input or output surface: channels [Ch0, Ch0+Channels)
// × columns [Col0, Col0+Cols) of a surface Width columns wide. Block element (i, j) sits at
// surface index (Ch0+i)·Width + Col0+j.
//
// The model-side matrix src that Pack reads and Unpack writes is
//   - Transposed == false: src[i·Cols + j] = block(i, j)   (src is [Channels][Cols])
//   - Transposed == true:  src[j·Channels + i] = block(i, j) (src is [Cols][Channels])
//
// Activations are Transposed: the CPU model keeps them token-major [S][C]. A forward projection
// weight W[out][in] is packed as Wᵀ (channels = in), which is again Transposed; a backward-dx weight
// is packed as W itself (channels = out), not Transposed.
type Field struct {
	Name       string
	Role       Role
	Ch0        int
	Channels   int
	Col0       int
	Cols       int
	Width      int // the surface's spatial width
	Transposed bool
	Doc        string
}

// FirstCols is f narrowed to its first n columns (n ≤ f.Cols): for a token-major activation, the
// first n tokens, which is all a backend reads of a sequence of n < Seq tokens.
func (f Field) FirstCols(n int) Field {
	f.Cols = min(n, f.Cols)
	return f
}

// Len is the number of elements of the block.
func (f Field) Len() int { return f.Channels * f.Cols }

func (f Field) String() string {
	return fmt.Sprintf("%s: channels [%d,%d) × columns [%d,%d) (%s) — %s",
		f.Name, f.Ch0, f.Ch0+f.Channels, f.Col0, f.Col0+f.Cols, f.Role, f.Doc)
}

func (f Field) check(surf int, src int, what string) {
	if surf < (f.Ch0+f.Channels)*f.Width {
		panic(fmt.Sprintf("mil: field %s: surface of %d elements is too small (need %d)", f.Name, surf, (f.Ch0+f.Channels)*f.Width))
	}
	if src != f.Len() {
		panic(fmt.Sprintf("mil: field %s: %s has %d elements, want %d (%d×%d)", f.Name, what, src, f.Len(), f.Channels, f.Cols))
	}
}

// Pack writes src (the model-side matrix, see Field) rounded to fp16 into the block of surf, a
// whole surface of C·Width fp16 values.
func (f Field) Pack(surf []uint16, src []float32) {
	f.check(len(surf), len(src), "src")
	for i := 0; i < f.Channels; i++ {
		row := surf[(f.Ch0+i)*f.Width+f.Col0:][:f.Cols]
		if f.Transposed {
			for j := range row {
				row[j] = fp16.FromFloat32(src[j*f.Channels+i])
			}
		} else {
			fp16.Encode(row, src[i*f.Cols:(i+1)*f.Cols])
		}
	}
}

// Unpack reads the block of surf into dst (the model-side matrix, see Field).
func (f Field) Unpack(dst []float32, surf []uint16) {
	f.check(len(surf), len(dst), "dst")
	for i := 0; i < f.Channels; i++ {
		row := surf[(f.Ch0+i)*f.Width+f.Col0:][:f.Cols]
		if f.Transposed {
			for j, h := range row {
				dst[j*f.Channels+i] = fp16.ToFloat32(h)
			}
		} else {
			fp16.Decode(dst[i*f.Cols:(i+1)*f.Cols], row)
		}
	}
}

// PackFP16 copies block, fp16 in surface order ([Channels][Cols]), into surf.
func (f Field) PackFP16(surf []uint16, block []uint16) {
	f.check(len(surf), len(block), "block")
	for i := 0; i < f.Channels; i++ {
		copy(surf[(f.Ch0+i)*f.Width+f.Col0:][:f.Cols], block[i*f.Cols:])
	}
}

// UnpackFP16 copies the block of surf, fp16 in surface order ([Channels][Cols]), into block.
func (f Field) UnpackFP16(block []uint16, surf []uint16) {
	f.check(len(surf), len(block), "block")
	for i := 0; i < f.Channels; i++ {
		copy(block[i*f.Cols:(i+1)*f.Cols], surf[(f.Ch0+i)*f.Width+f.Col0:][:f.Cols])
	}
}

// Kernel is one generated ANE program with everything a device and a backend need.
type Kernel struct {
	Name    string
	Config  Config
	MIL     string            // program(1.3) text
	Blobs   map[string][]byte // BLOBFILE constants by MIL path ("@model_path/weights/mask.bin")
	In      Shape             // [1, Cin, 1, SPin]
	Out     Shape             // [1, Cout, 1, S]
	Inputs  []Field           // input packing
	Outputs []Field           // output layout
	FLOPs   int64             // 2·multiply-adds of the matmuls, for utilisation
	Doc     string            // what it computes
}

// Input returns the input field called name; it panics if there is none (a programming error).
func (k *Kernel) Input(name string) Field { return k.field(k.Inputs, name, "input") }

// Output returns the output field called name; it panics if there is none.
func (k *Kernel) Output(name string) Field { return k.field(k.Outputs, name, "output") }

func (k *Kernel) field(fs []Field, name, what string) Field {
	for _, f := range fs {
		if f.Name == name {
			return f
		}
	}
	panic(fmt.Sprintf("mil: kernel %s has no %s field %q", k.Name, what, name))
}

// Describe is a human-readable summary: what the kernel computes, its surfaces and fields.
func (k *Kernel) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n  input %v (%.2f MB), output %v (%.2f MB), %.3g GFLOP, blobs %v\n",
		k.Name, k.Doc, k.In, float64(k.In.Bytes())/1e6, k.Out, float64(k.Out.Bytes())/1e6, float64(k.FLOPs)/1e9, BlobPaths(k.Blobs))
	for _, f := range k.Inputs {
		fmt.Fprintf(&b, "  in  %v\n", f)
	}
	for _, f := range k.Outputs {
		fmt.Fprintf(&b, "  out %v\n", f)
	}
	return b.String()
}

// WholeOutput is a field covering the whole output surface in surface order (for verification and
// tests: a backend reads only the fields it keeps).
func (k *Kernel) WholeOutput() Field {
	return Field{Name: "out", Role: Activation, Channels: k.Out.C(), Cols: k.Out.S(), Width: k.Out.S(), Doc: "whole output"}
}

// Whole is a field covering the whole input surface in surface order (for tests and raw staging).
func (k *Kernel) Whole() Field {
	return Field{Name: "x", Role: Activation, Channels: k.In.C(), Cols: k.In.S(), Width: k.In.S(), Doc: "whole input"}
}

// Config is the shape of the kernels: one transformer layer, multi-head attention (KV heads =
// heads), SwiGLU FFN.
type Config struct {
	Dim       int     // model width D
	Heads     int     // attention heads H (head dim = D/H)
	FFN       int     // SwiGLU hidden width
	Seq       int     // tokens per evaluation S
	Rope      bool    // RoPE on q, k (adjacent pairs); false: NoPE
	RopeTheta float64 // RoPE base
	Alpha     float64 // residual scale of the FFN branch in ffnFused: x_next = x2 + α·W2·gate
}

// FromModel derives the kernel config of a model config. Alpha is 1/√(2·layers) (the original's
// residual scaling, seed-system §1.3).
func FromModel(m config.Model) Config {
	return Config{Dim: m.Dim, Heads: m.Heads, FFN: m.FFN, Seq: m.Seq, Rope: m.Pos != "nope",
		RopeTheta: m.RopeTheta, Alpha: 1 / math.Sqrt(2*float64(max(m.Layers, 1)))}
}

// HeadDim is Dim/Heads.
func (c Config) HeadDim() int { return c.Dim / max(c.Heads, 1) }

// Validate reports the first config problem that makes kernel generation impossible. Hardware
// rules (multiples of 32, widths, …) are the checker's job (anert/mil/check), not this one's.
func (c Config) Validate() error {
	switch {
	case c.Dim <= 0 || c.Heads <= 0 || c.FFN <= 0 || c.Seq <= 0:
		return fmt.Errorf("mil: dim %d, heads %d, ffn %d, seq %d: all must be positive", c.Dim, c.Heads, c.FFN, c.Seq)
	case c.Dim%c.Heads != 0:
		return fmt.Errorf("mil: dim %d is not divisible by heads %d", c.Dim, c.Heads)
	case c.Rope && c.HeadDim()%2 != 0:
		return fmt.Errorf("mil: head dim %d is odd; RoPE rotates pairs (use NoPE or an even head dim)", c.HeadDim())
	case c.Rope && !(c.RopeTheta > 0):
		return fmt.Errorf("mil: rope theta %g must be positive", c.RopeTheta)
	case math.IsNaN(c.Alpha) || math.IsInf(c.Alpha, 0):
		return fmt.Errorf("mil: alpha %g is not finite", c.Alpha)
	}
	return nil
}
