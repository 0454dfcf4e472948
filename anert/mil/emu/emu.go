// Package emu executes MIL program text the way the ANE would, as far as the numbers go, so that
// every kernel can be tested on any machine. It parses the very text that is sent to the ANE
// compiler (mil.Parse), loads and validates the BLOBFILE constants, checks every declared type
// against the shape it computes, and runs the ops with fp16 semantics:
//
//   - every tensor is stored in fp16: each op's result is rounded to fp16 (round to nearest even);
//   - matmul and reduce_sum accumulate in fp32, then round once;
//   - softmax and sigmoid are computed in fp32 (exp in float64) from the fp16 inputs, then rounded;
//   - elementwise mul/add/sub compute in fp32, then round (a product of two fp16 values is exact in
//     fp32; a sum may be rounded twice, fp32 then fp16, which differs from one rounding only in rare
//     ties).
//
// Ops it knows: const, slice_by_size, reshape, transpose, matmul (transpose_x/transpose_y), mul,
// add, sub, softmax, sigmoid, reduce_sum, concat (interleave false), identity. Any other op fails at
// Compile with its name and line; so does any shape or type error.
package emu

import (
	"fmt"
	"slices"
	"strings"

	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/anert/mil/fp16"
	"github.com/anelab/anelab/internal/par"
)

// Ops lists the op kinds the emulator executes.
var Ops = []string{"const", "slice_by_size", "reshape", "transpose", "matmul", "mul", "add", "sub",
	"softmax", "sigmoid", "reduce_sum", "concat", "identity"}

// value is a tensor or scalar. fp16 data is kept as float32 values that are exactly fp16.
type value struct {
	dtype   string
	shape   []int // nil for scalars
	f       []float32
	ints    []int
	b       bool
	isConst bool
}

func (v *value) elems() int { return prod(v.shape) }

// step is one runtime op.
type step struct {
	line int
	out  int
	run  func(env []*value) *value
}

// Program is a compiled (parsed, shape-checked) MIL program ready to run.
type Program struct {
	Parsed  *mil.Program
	in, out []int
	inID    int
	outID   int
	steps   []step
	nvars   int
	consts  map[int]*value
	release [][]int // ids whose last use is step i
}

// InputShape is the shape of the input x.
func (p *Program) InputShape() []int { return p.in }

// OutputShape is the shape of the output.
func (p *Program) OutputShape() []int { return p.out }

// Compile parses src, loads blobs (keyed by their MIL path, "@model_path/weights/…") and checks
// every op. Errors name the line.
func Compile(src string, blobs map[string][]byte) (*Program, error) {
	prog, err := mil.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("emu: %w", err)
	}
	if len(prog.Inputs) != 1 || len(prog.Outputs) != 1 {
		return nil, fmt.Errorf("emu: the program has %d inputs and %d outputs; kernels have exactly one of each (ane-facts §B2 single-input)", len(prog.Inputs), len(prog.Outputs))
	}
	c := &compiler{ids: map[string]int{}, vals: map[int]*value{}, blobs: blobs, used: map[string]bool{}}
	p := &Program{Parsed: prog, consts: c.vals}
	in := prog.Inputs[0]
	if !in.Type.Tensor || in.Type.DType != "fp16" {
		return nil, fmt.Errorf("emu: line %d: input %s is %v; only fp16 tensors are supported (no cast ops: the CPU converts)", in.Line, in.Name, in.Type)
	}
	p.in = in.Type.Shape
	p.inID = c.define(in.Name)
	c.shapes = map[int]*value{p.inID: {dtype: "fp16", shape: in.Type.Shape}}
	lastUse := map[int]int{}
	for _, op := range prog.Ops {
		st, err := c.op(op)
		if err != nil {
			return nil, fmt.Errorf("emu: line %d: %s %q: %w", op.Line, op.Kind, op.Out, err)
		}
		if st != nil {
			p.steps = append(p.steps, *st)
			for _, a := range c.lastArgs {
				lastUse[a] = len(p.steps) - 1
			}
		}
	}
	for path := range blobs {
		if !c.used[path] {
			return nil, fmt.Errorf("emu: blob %s is not referenced by the program", path)
		}
	}
	oid, ok := c.ids[prog.Outputs[0]]
	if !ok {
		return nil, fmt.Errorf("emu: line %d: output %q is not defined", prog.OutLine, prog.Outputs[0])
	}
	ov := c.shapes[oid]
	if ov.dtype != "fp16" || ov.shape == nil {
		return nil, fmt.Errorf("emu: line %d: output %q is %s, want an fp16 tensor", prog.OutLine, prog.Outputs[0], ov.dtype)
	}
	if _, isConst := c.vals[oid]; isConst {
		return nil, fmt.Errorf("emu: line %d: output %q is a constant, not a live node (ane-facts §B2)", prog.OutLine, prog.Outputs[0])
	}
	p.outID, p.out, p.nvars = oid, ov.shape, len(c.ids)
	p.release = make([][]int, len(p.steps))
	for id, s := range lastUse {
		if id != oid {
			p.release[s] = append(p.release[s], id)
		}
	}
	return p, nil
}

// Run evaluates the program on in (fp16 bits, the input shape in row-major order) and writes the
// output's fp16 bits to out.
func (p *Program) Run(in []uint16, out []uint16) error {
	if len(in) != prod(p.in) {
		return fmt.Errorf("emu: input has %d values, the program takes %v = %d", len(in), p.in, prod(p.in))
	}
	if len(out) != prod(p.out) {
		return fmt.Errorf("emu: output buffer has %d values, the program returns %v = %d", len(out), p.out, prod(p.out))
	}
	env := make([]*value, p.nvars)
	for id, v := range p.consts {
		env[id] = v
	}
	x := &value{dtype: "fp16", shape: p.in, f: make([]float32, len(in))}
	fp16.Decode(x.f, in)
	env[p.inID] = x
	for i, s := range p.steps {
		env[s.out] = s.run(env)
		for _, id := range p.release[i] {
			if _, c := p.consts[id]; !c {
				env[id] = nil
			}
		}
	}
	fp16.Encode(out, env[p.outID].f)
	return nil
}

// compiler resolves names, evaluates consts and infers shapes.
type compiler struct {
	ids      map[string]int
	vals     map[int]*value // consts
	shapes   map[int]*value // every defined value's dtype and shape (data only for consts)
	blobs    map[string][]byte
	used     map[string]bool
	lastArgs []int
}

func (c *compiler) define(name string) int {
	id := len(c.ids)
	c.ids[name] = id
	return id
}

func (c *compiler) op(op *mil.Op) (*step, error) {
	if _, dup := c.ids[op.Out]; dup {
		return nil, fmt.Errorf("variable %q defined twice", op.Out)
	}
	if op.Name == "" {
		return nil, fmt.Errorf("op has no [name=string(\"…\")] (the ANE compiler requires one, ane-facts §B2)")
	}
	c.lastArgs = c.lastArgs[:0]
	if op.Kind == "const" {
		v, err := c.constant(op)
		if err != nil {
			return nil, err
		}
		id := c.define(op.Out)
		v.isConst = true
		c.vals[id], c.shapes[id] = v, v
		return nil, nil
	}
	impl, ok := impls[op.Kind]
	if !ok {
		return nil, fmt.Errorf("unsupported op %q: the emulator runs only %s", op.Kind, strings.Join(Ops, ", "))
	}
	a := &args{c: c, op: op}
	res, run, err := impl(a)
	if err != nil {
		return nil, err
	}
	if a.err != nil {
		return nil, a.err
	}
	for _, k := range op.Order {
		if !a.seen[k] {
			return nil, fmt.Errorf("unknown argument %q", k)
		}
	}
	if res.dtype != op.Type.DType || !op.Type.Tensor || !slices.Equal(res.shape, op.Type.Shape) {
		return nil, fmt.Errorf("declared %v, but the op computes tensor<%s, %s>", op.Type, res.dtype, dimsText(res.shape))
	}
	id := c.define(op.Out)
	c.shapes[id] = res
	return &step{line: op.Line, out: id, run: run}, nil
}

func (c *compiler) constant(op *mil.Op) (*value, error) {
	l := op.Val
	if l == nil {
		return nil, fmt.Errorf("const without a val")
	}
	if l.Type.String() != op.Type.String() {
		return nil, fmt.Errorf("declared %v but val is %v", op.Type, l.Type)
	}
	t := l.Type
	v := &value{dtype: t.DType}
	if t.Tensor {
		v.shape = t.Shape
	}
	n := 1
	if t.Tensor {
		n = prod(t.Shape)
	}
	if l.BlobPath != "" {
		if t.DType != "fp16" {
			return nil, fmt.Errorf("BLOBFILE of %s; only fp16 blobs are supported", t.DType)
		}
		b, ok := c.blobs[l.BlobPath]
		if !ok {
			return nil, fmt.Errorf("BLOBFILE %s is not among the kernel's blobs", l.BlobPath)
		}
		c.used[l.BlobPath] = true
		h, err := mil.ParseBlob(b, l.BlobOff, n)
		if err != nil {
			return nil, fmt.Errorf("BLOBFILE %s: %w", l.BlobPath, err)
		}
		v.f = make([]float32, n)
		fp16.Decode(v.f, h)
		return v, nil
	}
	switch t.DType {
	case "fp16", "fp32":
		if len(l.Nums) != n {
			return nil, fmt.Errorf("%d values for %v", len(l.Nums), t)
		}
		v.dtype = "fp16" // fp32 consts are rounded: the runtime is fp16
		v.f = make([]float32, n)
		for i, x := range l.Nums {
			v.f[i] = fp16.Round(float32(x))
		}
	case "int32", "int64", "uint64":
		if len(l.Nums) != n {
			return nil, fmt.Errorf("%d values for %v", len(l.Nums), t)
		}
		v.dtype = "int32"
		for _, x := range l.Nums {
			v.ints = append(v.ints, int(x))
		}
	case "bool":
		if t.Tensor {
			return nil, fmt.Errorf("bool tensors are not supported")
		}
		v.b = l.Bool
	case "string":
	default:
		return nil, fmt.Errorf("unsupported const type %v", t)
	}
	return v, nil
}

// args gives an op implementation typed access to its arguments.
type args struct {
	c    *compiler
	op   *mil.Op
	seen map[string]bool
	err  error
}

func (a *args) fail(format string, x ...any) {
	if a.err == nil {
		a.err = fmt.Errorf(format, x...)
	}
}

func (a *args) mark(k string) (mil.Arg, bool) {
	if a.seen == nil {
		a.seen = map[string]bool{}
	}
	a.seen[k] = true
	v, ok := a.op.Args[k]
	return v, ok
}

func (a *args) resolve(k, name string) (int, *value) {
	id, ok := a.c.ids[name]
	if !ok {
		a.fail("argument %s: %q is not defined above", k, name)
		return -1, &value{dtype: "fp16", shape: []int{0}}
	}
	a.c.lastArgs = append(a.c.lastArgs, id)
	return id, a.c.shapes[id]
}

// tensor returns the id and shape-value of an fp16 tensor (or scalar, if scalarOK) argument.
func (a *args) tensor(k string, scalarOK bool) (int, *value) {
	arg, ok := a.mark(k)
	if !ok {
		a.fail("missing argument %s", k)
		return -1, &value{dtype: "fp16", shape: []int{0}}
	}
	if arg.Ref == "" {
		a.fail("argument %s must name a variable", k)
		return -1, &value{dtype: "fp16", shape: []int{0}}
	}
	id, v := a.resolve(k, arg.Ref)
	if a.err == nil && v.dtype != "fp16" {
		a.fail("argument %s (%s) is %s, want fp16", k, arg.Ref, v.dtype)
	}
	if a.err == nil && v.shape == nil && !scalarOK {
		a.fail("argument %s (%s) is a scalar, want a tensor", k, arg.Ref)
	}
	return id, v
}

// konst returns a const argument's value (named const or inline literal).
func (a *args) konst(k string) *value {
	arg, ok := a.mark(k)
	if !ok {
		a.fail("missing argument %s", k)
		return &value{}
	}
	if arg.Lit != nil {
		v, err := a.c.constant(&mil.Op{Type: arg.Lit.Type, Val: arg.Lit})
		if err != nil {
			a.fail("argument %s: %v", k, err)
			return &value{}
		}
		return v
	}
	if arg.Ref == "" {
		a.fail("argument %s must be a const", k)
		return &value{}
	}
	id, ok := a.c.ids[arg.Ref]
	if !ok {
		a.fail("argument %s: %q is not defined above", k, arg.Ref)
		return &value{}
	}
	v, ok := a.c.vals[id]
	if !ok {
		a.fail("argument %s (%s) must be a const", k, arg.Ref)
		return &value{}
	}
	return v
}

func (a *args) ints(k string) []int {
	v := a.konst(k)
	if a.err == nil && v.dtype != "int32" {
		a.fail("argument %s must be int32, is %s", k, v.dtype)
	}
	if a.err == nil && v.shape == nil {
		return []int{v.ints[0]}
	}
	return v.ints
}

func (a *args) int1(k string) int {
	v := a.ints(k)
	if a.err == nil && len(v) != 1 {
		a.fail("argument %s must be one int", k)
		return 0
	}
	if a.err != nil {
		return 0
	}
	return v[0]
}

func (a *args) boolean(k string, def bool) bool {
	if _, ok := a.op.Args[k]; !ok {
		a.mark(k)
		return def
	}
	v := a.konst(k)
	if a.err == nil && v.dtype != "bool" {
		a.fail("argument %s must be bool, is %s", k, v.dtype)
	}
	return v.b
}

func (a *args) tuple(k string) ([]int, []*value) {
	arg, ok := a.mark(k)
	if !ok || arg.Tuple == nil {
		a.fail("argument %s must be a tuple (a, b, …)", k)
		return nil, nil
	}
	var ids []int
	var vs []*value
	for _, n := range arg.Tuple {
		id, v := a.resolve(k, n)
		if a.err == nil && (v.dtype != "fp16" || v.shape == nil) {
			a.fail("argument %s: %s is not an fp16 tensor", k, n)
		}
		ids, vs = append(ids, id), append(vs, v)
	}
	return ids, vs
}

// ---- helpers ----

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

func dimsText(s []int) string {
	p := make([]string, len(s))
	for i, d := range s {
		p[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(p, ",") + "]"
}

// parallel runs fn over [0, n) in contiguous chunks on all cores when work (a rough cost) is
// large: the emulator stands in for a device of its own, so its budget is the whole CPU.
func parallel(n int, work int, fn func(lo, hi int)) {
	if work < 1<<16 {
		fn(0, n)
		return
	}
	w := par.Threads(0)
	par.Run(w, n, w, par.Func(func(_, lo, hi int) { fn(lo, hi) }))
}
