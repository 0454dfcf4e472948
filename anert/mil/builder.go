package mil

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/anelab/anelab/anert/mil/fp16"
)

// Header is the fixed program header every kernel starts with (seed-system §3.2).
const Header = `program(1.3)
[buildInfo = dict<string, string>({{"coremlc-component-MIL", "3510.2.1"}, {"coremlc-version", "3505.4.1"}, {"coremltools-component-milinternal", ""}, {"coremltools-version", "9.0"}})]
{
`

// Var is a named value of the program being built.
type Var struct {
	Name  string
	DType string // "fp16", "int32", "bool"
	Shape []int  // nil for a scalar
}

// Type is the MIL type text, e.g. "tensor<fp16, [1,64,1,32]>" or "bool".
func (v Var) Type() string {
	if v.Shape == nil {
		return v.DType
	}
	return fmt.Sprintf("tensor<%s, %s>", v.DType, dims(v.Shape))
}

func dims(s []int) string {
	p := make([]string, len(s))
	for i, d := range s {
		p[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(p, ",") + "]"
}

// Builder emits the body of `func main<ios18>` one op per line. Every op is named with
// [name=string("…")] equal to its variable, consts with equal values are emitted once and shared,
// and output shapes are computed here (the emulator recomputes them from the text and compares).
// Misuse (bad shapes, duplicate names) panics: generators are code, not input.
type Builder struct {
	in     Var
	lines  []string
	names  map[string]bool
	consts map[string]Var // literal text → const var
	blobs  map[string][]byte
	flops  int64
}

// NewBuilder starts a program whose single input x has shape in.
func NewBuilder(in Shape) *Builder {
	b := &Builder{names: map[string]bool{"x": true}, consts: map[string]Var{}, blobs: map[string][]byte{}}
	b.in = Var{Name: "x", DType: "fp16", Shape: in[:]}
	return b
}

// X is the program input.
func (b *Builder) X() Var { return b.in }

func (b *Builder) claim(name string) {
	if name == "" || b.names[name] {
		panic(fmt.Sprintf("mil: duplicate or empty variable name %q", name))
	}
	b.names[name] = true
}

func (b *Builder) emit(out Var, op string, args ...string) Var {
	b.claim(out.Name)
	b.lines = append(b.lines, fmt.Sprintf("        %s %s = %s(%s)[name=string(%q)];",
		out.Type(), out.Name, op, strings.Join(args, ","), out.Name))
	return out
}

// konst emits a const with the given literal, or reuses the one emitted before for the same
// role (begin, size, shape, perm, …) and literal.
func (b *Builder) konst(role, name string, v Var, lit string) Var {
	key := role + "|" + lit
	if c, ok := b.consts[key]; ok {
		return c
	}
	v.Name = name
	b.claim(name)
	b.lines = append(b.lines, fmt.Sprintf("        %s %s = const()[name=string(%q), val=%s];", v.Type(), name, name, lit))
	b.consts[key] = v
	return v
}

// Ints is a const tensor<int32, [n]>, shared with earlier consts of the same role and value.
func (b *Builder) Ints(role, name string, vals ...int) Var {
	v := Var{DType: "int32", Shape: []int{len(vals)}}
	return b.konst(role, name, v, fmt.Sprintf("%s(%s)", v.Type(), dims(vals)))
}

// Int is a const int32 scalar.
func (b *Builder) Int(role, name string, val int) Var {
	return b.konst(role, name, Var{DType: "int32"}, fmt.Sprintf("int32(%d)", val))
}

// Bool is a const bool scalar.
func (b *Builder) Bool(role, name string, val bool) Var {
	return b.konst(role, name, Var{DType: "bool"}, fmt.Sprintf("bool(%t)", val))
}

// FP16 is a const fp16 scalar; val is rounded to fp16 and printed exactly.
func (b *Builder) FP16(name string, val float64) Var {
	r := fp16.Round(float32(val))
	return b.konst("fp16", name, Var{DType: "fp16"}, fmt.Sprintf("fp16(%s)", strconv.FormatFloat(float64(r), 'g', -1, 32)))
}

// Blob is an fp16 tensor const stored in the BLOBFILE @model_path/weights/<file>.
func (b *Builder) Blob(name, file string, shape []int, data []float32) Var {
	if n := prod(shape); n != len(data) {
		panic(fmt.Sprintf("mil: blob %s: %d values for shape %v", file, len(data), shape))
	}
	path := "@model_path/weights/" + file
	if _, dup := b.blobs[path]; dup {
		panic("mil: duplicate blob " + path)
	}
	b.blobs[path] = BuildBlob(data)
	v := Var{DType: "fp16", Shape: shape}
	return b.konst("blob", name, v, fmt.Sprintf("%s(BLOBFILE(path=string(%q), offset=uint64(%d)))", v.Type(), path, BlobChunkOffset))
}

// Slice is slice_by_size(x, begin, size).
func (b *Builder) Slice(name string, x Var, begin, size []int) Var {
	if len(begin) != len(x.Shape) || len(size) != len(x.Shape) {
		panic(fmt.Sprintf("mil: slice %s: rank mismatch", name))
	}
	for i := range begin {
		if begin[i] < 0 || size[i] <= 0 || begin[i]+size[i] > x.Shape[i] {
			panic(fmt.Sprintf("mil: slice %s: begin %v size %v out of %v", name, begin, size, x.Shape))
		}
	}
	bv := b.Ints("begin", name+"_b", begin...)
	sv := b.Ints("size", name+"_s", size...)
	return b.emit(Var{Name: name, DType: x.DType, Shape: clone(size)}, "slice_by_size", "x="+x.Name, "begin="+bv.Name, "size="+sv.Name)
}

// Reshape is reshape(x, shape).
func (b *Builder) Reshape(name string, x Var, shape ...int) Var {
	if prod(shape) != prod(x.Shape) {
		panic(fmt.Sprintf("mil: reshape %s: %v → %v changes the element count", name, x.Shape, shape))
	}
	sv := b.Ints("shape", name+"_sh", shape...)
	return b.emit(Var{Name: name, DType: x.DType, Shape: clone(shape)}, "reshape", "shape="+sv.Name, "x="+x.Name)
}

// Transpose is transpose(x, perm).
func (b *Builder) Transpose(name string, x Var, perm ...int) Var {
	out := make([]int, len(perm))
	for i, p := range perm {
		out[i] = x.Shape[p]
	}
	pn := name + "_pm"
	if len(perm) == 4 && perm[0] == 0 && perm[1] == 1 && perm[2] == 3 && perm[3] == 2 {
		pn = "pm"
	}
	pv := b.Ints("perm", pn, perm...)
	return b.emit(Var{Name: name, DType: x.DType, Shape: out}, "transpose", "perm="+pv.Name, "x="+x.Name)
}

// Swap transposes the last two dimensions of a rank-4 tensor (perm [0,1,3,2]).
func (b *Builder) Swap(name string, x Var) Var { return b.Transpose(name, x, 0, 1, 3, 2) }

// Matmul is matmul(x, y) over the last two dimensions, with the transpose flags as named bool
// consts (the ANE compiler wants named consts, ane-facts §B2).
func (b *Builder) Matmul(name string, x, y Var, tx, ty bool) Var {
	r := len(x.Shape)
	if r != len(y.Shape) || r < 2 {
		panic(fmt.Sprintf("mil: matmul %s: ranks %v, %v", name, x.Shape, y.Shape))
	}
	m, k := x.Shape[r-2], x.Shape[r-1]
	if tx {
		m, k = k, m
	}
	k2, n := y.Shape[r-2], y.Shape[r-1]
	if ty {
		k2, n = n, k2
	}
	if k != k2 {
		panic(fmt.Sprintf("mil: matmul %s: inner dims %d vs %d (%v, %v)", name, k, k2, x.Shape, y.Shape))
	}
	batch := broadcast(name, x.Shape[:r-2], y.Shape[:r-2])
	b.flops += 2 * int64(prod(batch)) * int64(m) * int64(k) * int64(n)
	fx, fy := b.flag(tx), b.flag(ty)
	return b.emit(Var{Name: name, DType: "fp16", Shape: append(batch, m, n)}, "matmul",
		"transpose_x="+fx.Name, "transpose_y="+fy.Name, "x="+x.Name, "y="+y.Name)
}

func (b *Builder) flag(v bool) Var {
	if v {
		return b.Bool("flag", "bT", true)
	}
	return b.Bool("flag", "bF", false)
}

func (b *Builder) binary(op, name string, x, y Var) Var {
	var s []int
	switch {
	case y.Shape == nil:
		s = clone(x.Shape)
	case x.Shape == nil:
		s = clone(y.Shape)
	default:
		if len(x.Shape) != len(y.Shape) {
			panic(fmt.Sprintf("mil: %s %s: ranks %v, %v", op, name, x.Shape, y.Shape))
		}
		s = broadcast(name, x.Shape, y.Shape)
	}
	return b.emit(Var{Name: name, DType: "fp16", Shape: s}, op, "x="+x.Name, "y="+y.Name)
}

// Mul is mul(x, y) with broadcasting.
func (b *Builder) Mul(name string, x, y Var) Var { return b.binary("mul", name, x, y) }

// Add is add(x, y) with broadcasting.
func (b *Builder) Add(name string, x, y Var) Var { return b.binary("add", name, x, y) }

// Sub is sub(x, y) with broadcasting.
func (b *Builder) Sub(name string, x, y Var) Var { return b.binary("sub", name, x, y) }

// Sigmoid is sigmoid(x).
func (b *Builder) Sigmoid(name string, x Var) Var {
	return b.emit(Var{Name: name, DType: "fp16", Shape: clone(x.Shape)}, "sigmoid", "x="+x.Name)
}

// Softmax is softmax(x) along axis.
func (b *Builder) Softmax(name string, x Var, axis int) Var {
	av := b.Int("axis", "sax", axis)
	return b.emit(Var{Name: name, DType: "fp16", Shape: clone(x.Shape)}, "softmax", "axis="+av.Name, "x="+x.Name)
}

// ReduceSumLast is reduce_sum(x) over the last axis, keeping it (size 1).
func (b *Builder) ReduceSumLast(name string, x Var) Var {
	av := b.Ints("axes", "rax", -1)
	kv := b.Bool("keep", "kd", true)
	s := clone(x.Shape)
	s[len(s)-1] = 1
	return b.emit(Var{Name: name, DType: "fp16", Shape: s}, "reduce_sum", "x="+x.Name, "axes="+av.Name, "keep_dims="+kv.Name)
}

// Concat is concat(values) along axis (interleave false).
func (b *Builder) Concat(name string, axis int, xs ...Var) Var {
	s := clone(xs[0].Shape)
	ax := axis
	if ax < 0 {
		ax += len(s)
	}
	names := []string{xs[0].Name}
	for _, x := range xs[1:] {
		for i := range s {
			if i != ax && x.Shape[i] != s[i] {
				panic(fmt.Sprintf("mil: concat %s: %v vs %v", name, xs[0].Shape, x.Shape))
			}
		}
		s[ax] += x.Shape[ax]
		names = append(names, x.Name)
	}
	av := b.Int("caxis", fmt.Sprintf("cax%d", axis), axis)
	iv := b.Bool("interleave", "cid", false)
	return b.emit(Var{Name: name, DType: "fp16", Shape: s}, "concat",
		"axis="+av.Name, "interleave="+iv.Name, "values=("+strings.Join(names, ",")+")")
}

// Program returns the complete MIL text returning out, and the BLOBFILEs.
func (b *Builder) Program(out Var) (string, map[string][]byte) {
	var sb strings.Builder
	sb.WriteString(Header)
	s := b.in.Shape
	fmt.Fprintf(&sb, "    func main<ios18>(tensor<fp16, [%d, %d, %d, %d]> x) {\n", s[0], s[1], s[2], s[3])
	for _, l := range b.lines {
		sb.WriteString(l)
		sb.WriteByte('\n')
	}
	fmt.Fprintf(&sb, "    } -> (%s);\n}\n", out.Name)
	return sb.String(), b.blobs
}

// FLOPs is 2·(multiply-adds) of the matmuls emitted so far.
func (b *Builder) FLOPs() int64 { return b.flops }

// BlobPaths lists the blob paths in sorted order.
func BlobPaths(m map[string][]byte) []string {
	p := make([]string, 0, len(m))
	for k := range m {
		p = append(p, k)
	}
	sort.Strings(p)
	return p
}

func broadcast(name string, a, b []int) []int {
	if len(a) != len(b) {
		panic(fmt.Sprintf("mil: %s: cannot broadcast %v with %v", name, a, b))
	}
	out := make([]int, len(a))
	for i := range a {
		switch {
		case a[i] == b[i] || b[i] == 1:
			out[i] = a[i]
		case a[i] == 1:
			out[i] = b[i]
		default:
			panic(fmt.Sprintf("mil: %s: cannot broadcast %v with %v", name, a, b))
		}
	}
	return out
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func clone(s []int) []int { return append([]int(nil), s...) }
