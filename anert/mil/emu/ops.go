package emu

import (
	"fmt"
	"math"
	"slices"

	"github.com/anelab/anelab/anert/mil/fp16"
)

// impl checks an op's arguments at compile time and returns its result type and its runtime.
type impl func(a *args) (*value, func(env []*value) *value, error)

var impls map[string]impl

func init() {
	impls = map[string]impl{
		"identity":      opIdentity,
		"slice_by_size": opSlice,
		"reshape":       opReshape,
		"transpose":     opTranspose,
		"matmul":        opMatmul,
		"mul":           binary(func(x, y float32) float32 { return x * y }),
		"add":           binary(func(x, y float32) float32 { return x + y }),
		"sub":           binary(func(x, y float32) float32 { return x - y }),
		"sigmoid":       opSigmoid,
		"softmax":       opSoftmax,
		"reduce_sum":    opReduceSum,
		"concat":        opConcat,
	}
}

func fp16t(shape []int) *value { return &value{dtype: "fp16", shape: shape} }

func opIdentity(a *args) (*value, func([]*value) *value, error) {
	x, xv := a.tensor("x", false)
	return fp16t(xv.shape), func(env []*value) *value { return env[x] }, nil
}

// slice_by_size: out = x[begin : begin+size] per axis (size −1: to the end).
func opSlice(a *args) (*value, func([]*value) *value, error) {
	x, xv := a.tensor("x", false)
	begin, size := a.ints("begin"), a.ints("size")
	if a.err != nil {
		return nil, nil, a.err
	}
	r := len(xv.shape)
	if len(begin) != r || len(size) != r {
		return nil, nil, fmt.Errorf("begin %v and size %v must have one entry per axis of x %v", begin, size, xv.shape)
	}
	out := make([]int, r)
	for i := range out {
		s := size[i]
		if s == -1 {
			s = xv.shape[i] - begin[i]
		}
		if begin[i] < 0 || s <= 0 || begin[i]+s > xv.shape[i] {
			return nil, nil, fmt.Errorf("begin %v size %v is outside x %v on axis %d", begin, size, xv.shape, i)
		}
		out[i] = s
	}
	if r != 4 {
		return nil, nil, fmt.Errorf("slice_by_size of a rank-%d tensor; the emulator handles rank 4", r)
	}
	in := xv.shape
	return fp16t(out), func(env []*value) *value {
		src := env[x].f
		dst := make([]float32, prod(out))
		i := 0
		for a0 := 0; a0 < out[0]; a0++ {
			for a1 := 0; a1 < out[1]; a1++ {
				for a2 := 0; a2 < out[2]; a2++ {
					o := (((a0+begin[0])*in[1]+a1+begin[1])*in[2]+a2+begin[2])*in[3] + begin[3]
					copy(dst[i:i+out[3]], src[o:o+out[3]])
					i += out[3]
				}
			}
		}
		return &value{dtype: "fp16", shape: out, f: dst}
	}, nil
}

// reshape: same row-major data, new shape (one −1 is inferred).
func opReshape(a *args) (*value, func([]*value) *value, error) {
	x, xv := a.tensor("x", false)
	shape := slices.Clone(a.ints("shape"))
	if a.err != nil {
		return nil, nil, a.err
	}
	infer := -1
	n := 1
	for i, d := range shape {
		switch {
		case d == -1 && infer < 0:
			infer = i
		case d <= 0:
			return nil, nil, fmt.Errorf("bad shape %v", shape)
		default:
			n *= d
		}
	}
	if infer >= 0 && n > 0 && xv.elems()%n == 0 {
		shape[infer] = xv.elems() / n
		n *= shape[infer]
	}
	if n != xv.elems() {
		return nil, nil, fmt.Errorf("cannot reshape %v (%d elements) to %v", xv.shape, xv.elems(), shape)
	}
	return fp16t(shape), func(env []*value) *value {
		return &value{dtype: "fp16", shape: shape, f: env[x].f}
	}, nil
}

// transpose: out[i_perm[0], …] = x[i_0, …], out.shape[k] = x.shape[perm[k]].
func opTranspose(a *args) (*value, func([]*value) *value, error) {
	x, xv := a.tensor("x", false)
	perm := a.ints("perm")
	if a.err != nil {
		return nil, nil, a.err
	}
	r := len(xv.shape)
	if len(perm) != r {
		return nil, nil, fmt.Errorf("perm %v for x %v", perm, xv.shape)
	}
	seen := make([]bool, r)
	out := make([]int, r)
	for k, p := range perm {
		if p < 0 {
			p += r
		}
		if p < 0 || p >= r || seen[p] {
			return nil, nil, fmt.Errorf("perm %v is not a permutation of 0..%d", perm, r-1)
		}
		seen[p] = true
		out[k] = xv.shape[p]
	}
	if r != 4 {
		return nil, nil, fmt.Errorf("transpose of a rank-%d tensor; the emulator handles rank 4", r)
	}
	in := xv.shape
	st := []int{in[1] * in[2] * in[3], in[2] * in[3], in[3], 1}
	var s [4]int // source stride for each output axis
	for k, p := range perm {
		if p < 0 {
			p += r
		}
		s[k] = st[p]
	}
	return fp16t(out), func(env []*value) *value {
		src := env[x].f
		dst := make([]float32, len(src))
		i := 0
		for a0 := 0; a0 < out[0]; a0++ {
			for a1 := 0; a1 < out[1]; a1++ {
				for a2 := 0; a2 < out[2]; a2++ {
					o := a0*s[0] + a1*s[1] + a2*s[2]
					for a3 := 0; a3 < out[3]; a3++ {
						dst[i] = src[o+a3*s[3]]
						i++
					}
				}
			}
		}
		return &value{dtype: "fp16", shape: out, f: dst}
	}, nil
}

// matmul: out[b, i, j] = Σ_k X[b, i, k]·Y[b, k, j], X = x or xᵀ, Y = y or yᵀ over the last two
// axes, batch axes broadcast; fp32 accumulation, one fp16 rounding.
func opMatmul(a *args) (*value, func([]*value) *value, error) {
	tx, ty := a.boolean("transpose_x", false), a.boolean("transpose_y", false)
	x, xv := a.tensor("x", false)
	y, yv := a.tensor("y", false)
	if a.err != nil {
		return nil, nil, a.err
	}
	xs, ys := xv.shape, yv.shape
	r := len(xs)
	if r != len(ys) || r != 4 {
		return nil, nil, fmt.Errorf("x %v and y %v must both be rank 4", xs, ys)
	}
	m, k := xs[2], xs[3]
	if tx {
		m, k = k, m
	}
	k2, n := ys[2], ys[3]
	if ty {
		k2, n = n, k2
	}
	if k != k2 {
		return nil, nil, fmt.Errorf("inner dimensions differ: x %v (transpose_x=%t) and y %v (transpose_y=%t)", xs, tx, ys, ty)
	}
	var out [4]int
	for i := 0; i < 2; i++ {
		switch {
		case xs[i] == ys[i] || ys[i] == 1:
			out[i] = xs[i]
		case xs[i] == 1:
			out[i] = ys[i]
		default:
			return nil, nil, fmt.Errorf("batch dims of x %v and y %v do not broadcast", xs, ys)
		}
	}
	out[2], out[3] = m, n
	shape := out[:]
	return fp16t(slices.Clone(shape)), func(env []*value) *value {
		X, Y := env[x].f, env[y].f
		if tx {
			X = swapLast(X, xs)
		}
		if !ty { // the kernel wants Y as [n][k] rows
			Y = swapLast(Y, ys)
		}
		dst := make([]float32, out[0]*out[1]*m*n)
		nb := out[0] * out[1]
		parallel(nb*m, nb*m*n*k, func(lo, hi int) {
			for row := lo; row < hi; row++ {
				bi, i := row/m, row%m
				b0, b1 := bi/out[1], bi%out[1]
				xb := (b0%xs[0])*xs[1] + b1%xs[1]
				yb := (b0%ys[0])*ys[1] + b1%ys[1]
				xr := X[(xb*m+i)*k:][:k]
				yB := Y[yb*n*k:][:n*k]
				dr := dst[row*n:][:n]
				for j := range dr {
					dr[j] = fp16.Round(dot(xr, yB[j*k:][:k]))
				}
			}
		})
		return &value{dtype: "fp16", shape: shape, f: dst}
	}, nil
}

// dot is Σ x[t]·y[t] in fp32, with four interleaved partial sums (t mod 4) added at the end.
func dot(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	t := 0
	for ; t+4 <= len(x); t += 4 {
		s0 += x[t] * y[t]
		s1 += x[t+1] * y[t+1]
		s2 += x[t+2] * y[t+2]
		s3 += x[t+3] * y[t+3]
	}
	for ; t < len(x); t++ {
		s0 += x[t] * y[t]
	}
	return (s0 + s1) + (s2 + s3)
}

// swapLast transposes the last two axes of a rank-4 tensor.
func swapLast(src []float32, s []int) []float32 {
	dst := make([]float32, len(src))
	r, c := s[2], s[3]
	for b := 0; b < s[0]*s[1]; b++ {
		in, out := src[b*r*c:][:r*c], dst[b*r*c:][:r*c]
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				out[j*r+i] = in[i*c+j]
			}
		}
	}
	return dst
}

// binary: elementwise with numpy broadcasting (equal ranks, or a scalar operand).
func binary(f func(x, y float32) float32) impl {
	return func(a *args) (*value, func([]*value) *value, error) {
		x, xv := a.tensor("x", true)
		y, yv := a.tensor("y", true)
		if a.err != nil {
			return nil, nil, a.err
		}
		xs, ys := xv.shape, yv.shape
		if xs == nil && ys == nil {
			return nil, nil, fmt.Errorf("both operands are scalars")
		}
		if xs == nil {
			xs = make([]int, len(ys))
			for i := range xs {
				xs[i] = 1
			}
		}
		if ys == nil {
			ys = make([]int, len(xs))
			for i := range ys {
				ys[i] = 1
			}
		}
		if len(xs) != len(ys) || len(xs) != 4 {
			return nil, nil, fmt.Errorf("x %v and y %v: the emulator broadcasts rank-4 tensors and scalars", xv.shape, yv.shape)
		}
		var out, sx, sy [4]int
		stx, sty := 1, 1
		for i := 3; i >= 0; i-- {
			switch {
			case xs[i] == ys[i]:
				out[i] = xs[i]
			case xs[i] == 1:
				out[i] = ys[i]
			case ys[i] == 1:
				out[i] = xs[i]
			default:
				return nil, nil, fmt.Errorf("x %v and y %v do not broadcast", xv.shape, yv.shape)
			}
			if xs[i] != 1 {
				sx[i] = stx
			}
			if ys[i] != 1 {
				sy[i] = sty
			}
			stx *= xs[i]
			sty *= ys[i]
		}
		shape := out[:]
		return fp16t(slices.Clone(shape)), func(env []*value) *value {
			X, Y := env[x].f, env[y].f
			dst := make([]float32, prod(shape))
			if len(X) == len(dst) && len(Y) == len(dst) {
				for i := range dst {
					dst[i] = fp16.Round(f(X[i], Y[i]))
				}
			} else if len(X) == len(dst) && len(Y) == 1 {
				s := Y[0]
				for i := range dst {
					dst[i] = fp16.Round(f(X[i], s))
				}
			} else {
				i := 0
				for a0 := 0; a0 < out[0]; a0++ {
					for a1 := 0; a1 < out[1]; a1++ {
						for a2 := 0; a2 < out[2]; a2++ {
							ox := a0*sx[0] + a1*sx[1] + a2*sx[2]
							oy := a0*sy[0] + a1*sy[1] + a2*sy[2]
							for a3 := 0; a3 < out[3]; a3++ {
								dst[i] = fp16.Round(f(X[ox+a3*sx[3]], Y[oy+a3*sy[3]]))
								i++
							}
						}
					}
				}
			}
			return &value{dtype: "fp16", shape: shape, f: dst}
		}, nil
	}
}

// sigmoid: 1/(1+e^−x), computed in float64 from the fp16 input, rounded.
func opSigmoid(a *args) (*value, func([]*value) *value, error) {
	x, xv := a.tensor("x", false)
	if a.err != nil {
		return nil, nil, a.err
	}
	return fp16t(xv.shape), func(env []*value) *value {
		src := env[x].f
		dst := make([]float32, len(src))
		for i, v := range src {
			dst[i] = fp16.Round(float32(1 / (1 + math.Exp(-float64(v)))))
		}
		return &value{dtype: "fp16", shape: xv.shape, f: dst}
	}, nil
}

// axisSplit views shape as [outer, n, inner] around axis.
func axisSplit(shape []int, axis int) (outer, n, inner int) {
	return prod(shape[:axis]), shape[axis], prod(shape[axis+1:])
}

func normAxis(ax, r int) (int, error) {
	if ax < 0 {
		ax += r
	}
	if ax < 0 || ax >= r {
		return 0, fmt.Errorf("axis %d is out of range for rank %d", ax, r)
	}
	return ax, nil
}

// softmax along axis: e^(x−max)/Σe^(x−max), in fp32 (exp in float64), rounded to fp16.
func opSoftmax(a *args) (*value, func([]*value) *value, error) {
	ax := a.int1("axis")
	x, xv := a.tensor("x", false)
	if a.err != nil {
		return nil, nil, a.err
	}
	axis, err := normAxis(ax, len(xv.shape))
	if err != nil {
		return nil, nil, err
	}
	outer, n, inner := axisSplit(xv.shape, axis)
	return fp16t(xv.shape), func(env []*value) *value {
		src := env[x].f
		dst := make([]float32, len(src))
		parallel(outer, outer*n*inner*8, func(lo, hi int) {
			e := make([]float32, n)
			for o := lo; o < hi; o++ {
				for in := 0; in < inner; in++ {
					base := o*n*inner + in
					mx := float32(math.Inf(-1))
					for j := 0; j < n; j++ {
						mx = max(mx, src[base+j*inner])
					}
					var sum float32
					for j := 0; j < n; j++ {
						e[j] = float32(math.Exp(float64(src[base+j*inner] - mx)))
						sum += e[j]
					}
					for j := 0; j < n; j++ {
						dst[base+j*inner] = fp16.Round(e[j] / sum)
					}
				}
			}
		})
		return &value{dtype: "fp16", shape: xv.shape, f: dst}
	}, nil
}

// reduce_sum over axes (fp32 accumulation, one rounding), keep_dims keeps them as size 1.
func opReduceSum(a *args) (*value, func([]*value) *value, error) {
	x, xv := a.tensor("x", false)
	axes := a.ints("axes")
	keep := a.boolean("keep_dims", false)
	if a.err != nil {
		return nil, nil, a.err
	}
	r := len(xv.shape)
	red := make([]bool, r)
	for _, ax := range axes {
		n, err := normAxis(ax, r)
		if err != nil {
			return nil, nil, err
		}
		red[n] = true
	}
	kept := make([]int, r) // shape with reduced axes = 1
	var out []int
	for i, d := range xv.shape {
		kept[i] = d
		if red[i] {
			kept[i] = 1
			if keep {
				out = append(out, 1)
			}
		} else {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("reducing every axis without keep_dims gives a scalar; not supported")
	}
	// strides of the kept shape, 0 on reduced axes: source index → destination index.
	st := make([]int, r)
	s := 1
	for i := r - 1; i >= 0; i-- {
		if !red[i] {
			st[i] = s
		}
		s *= kept[i]
	}
	shape := xv.shape
	if len(axes) == 1 && red[r-1] { // the common case: the last axis, contiguous rows
		n := shape[r-1]
		return fp16t(out), func(env []*value) *value {
			src := env[x].f
			acc := make([]float32, len(src)/n)
			for i := range acc {
				var s float32
				for _, v := range src[i*n : (i+1)*n] {
					s += v
				}
				acc[i] = fp16.Round(s)
			}
			return &value{dtype: "fp16", shape: out, f: acc}
		}, nil
	}
	return fp16t(out), func(env []*value) *value {
		src := env[x].f
		acc := make([]float32, prod(kept))
		idx := make([]int, r)
		for _, v := range src {
			o := 0
			for d := range idx {
				o += idx[d] * st[d]
			}
			acc[o] += v
			for d := r - 1; d >= 0; d-- {
				idx[d]++
				if idx[d] < shape[d] {
					break
				}
				idx[d] = 0
			}
		}
		fp16.RoundSlice(acc)
		return &value{dtype: "fp16", shape: out, f: acc}
	}, nil
}

// concat along axis (interleave false).
func opConcat(a *args) (*value, func([]*value) *value, error) {
	ax := a.int1("axis")
	if a.boolean("interleave", false) {
		return nil, nil, fmt.Errorf("interleave=true is not supported")
	}
	ids, vs := a.tuple("values")
	if a.err != nil {
		return nil, nil, a.err
	}
	if len(vs) == 0 {
		return nil, nil, fmt.Errorf("no values")
	}
	r := len(vs[0].shape)
	axis, err := normAxis(ax, r)
	if err != nil {
		return nil, nil, err
	}
	out := slices.Clone(vs[0].shape)
	out[axis] = 0
	for _, v := range vs {
		if len(v.shape) != r {
			return nil, nil, fmt.Errorf("values of different ranks")
		}
		for i := range out {
			if i != axis && v.shape[i] != out[i] {
				return nil, nil, fmt.Errorf("value %v does not match %v off axis %d", v.shape, vs[0].shape, axis)
			}
		}
		out[axis] += v.shape[axis]
	}
	outer, n, inner := axisSplit(out, axis)
	return fp16t(out), func(env []*value) *value {
		dst := make([]float32, outer*n*inner)
		off := 0
		for i, id := range ids {
			src := env[id].f
			w := vs[i].shape[axis] * inner
			for o := 0; o < outer; o++ {
				copy(dst[o*n*inner+off:][:w], src[o*w:(o+1)*w])
			}
			off += w
		}
		return &value{dtype: "fp16", shape: out, f: dst}
	}, nil
}
