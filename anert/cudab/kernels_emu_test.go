package cudab

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"

	"github.com/anelab/anelab/anert/cuda"
)

//go:embed testdata/kernels_emu_main.cpp
var kernelsEmuMain string

// kemu is a batch of emulated launches of kernels.cu's kernels (testdata/kernels_emu_main.cpp):
// buffers and launches are queued, run runs them all in one harness process, and the buffers
// asked for are read back into the slices given.
type kemu struct {
	in    bytes.Buffer
	n     int32
	reads []any // pointers to slices, in the order of the 'R' commands
}

// ebuf is an emulated device buffer; null is a null pointer argument.
type ebuf struct{ id int32 }

var null = ebuf{-1}

func (e *kemu) w(v any) { binary.Write(&e.in, binary.LittleEndian, v) }

// buf is a buffer holding data ([]float32, []uint16, []int32 or []float64).
func (e *kemu) buf(data any) ebuf {
	b := ebuf{e.n}
	e.n++
	e.in.WriteByte('B')
	e.w(b.id)
	e.w(int64(binary.Size(data)))
	e.w(data)
	return b
}

// launch queues kernel name on grid × block threads; args as for cuda.Ctx.Launch, with ebuf
// for device pointers.
func (e *kemu) launch(name string, grid, block int, args ...any) {
	e.in.WriteByte('L')
	e.w(int32(len(name)))
	e.in.WriteString(name)
	e.w([]int32{int32(grid), int32(block), int32(len(args))})
	for _, a := range args {
		switch x := a.(type) {
		case ebuf:
			e.in.WriteByte('p')
			e.w(x.id)
		case int:
			e.in.WriteByte('i')
			e.w(int32(x))
		case int64:
			e.in.WriteByte('l')
			e.w(x)
		case float32:
			e.in.WriteByte('f')
			e.w(x)
		default:
			panic(fmt.Sprintf("kemu: argument of type %T", a))
		}
	}
}

// read fills *dst (a pointer to a slice of the buffer's element type) with b after run.
func (e *kemu) read(b ebuf, dst any) {
	e.in.WriteByte('R')
	e.w(b.id)
	e.reads = append(e.reads, dst)
}

// kernelsEmuBin compiles the harness once per test process, in dir (removed by TestMain).
var kernelsEmuBin = struct {
	dir, path string
	err       error
	done      bool
}{}

// TestMain removes the harness's folder after the tests: each test process left one in the
// temporary folder before.
func TestMain(m *testing.M) {
	code := m.Run()
	if kernelsEmuBin.dir != "" {
		os.RemoveAll(kernelsEmuBin.dir)
	}
	os.Exit(code)
}

func emuHarness(t *testing.T) string {
	t.Helper()
	gxx := emuCompiler(t, "kernels.cu")
	if !kernelsEmuBin.done {
		kernelsEmuBin.done = true
		dir, err := os.MkdirTemp("", "cudab-kemu")
		if err != nil {
			t.Fatal(err)
		}
		kernelsEmuBin.dir = dir
		kernelsEmuBin.path, kernelsEmuBin.err = compileEmu(gxx, dir, "kernels.cu", kernelSrc, kernelsEmuMain)
	}
	if kernelsEmuBin.err != nil {
		t.Fatal(kernelsEmuBin.err)
	}
	return kernelsEmuBin.path
}

// run runs the queued commands and fills the slices read asked for.
func (e *kemu) run(t *testing.T) {
	t.Helper()
	bin := emuHarness(t)
	e.in.WriteByte('Q')
	cmd := exec.Command(bin)
	cmd.Stdin = &e.in
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the emulated kernels failed: %v\n%s", err, stderr.String())
	}
	for _, dst := range e.reads {
		var n int64
		if err := binary.Read(&out, binary.LittleEndian, &n); err != nil {
			t.Fatal(err)
		}
		raw := out.Next(int(n))
		var err error
		switch d := dst.(type) {
		case *[]float32:
			*d = make([]float32, n/4)
			err = binary.Read(bytes.NewReader(raw), binary.LittleEndian, *d)
		case *[]uint16:
			*d = make([]uint16, n/2)
			err = binary.Read(bytes.NewReader(raw), binary.LittleEndian, *d)
		case *[]float64:
			*d = make([]float64, n/8)
			err = binary.Read(bytes.NewReader(raw), binary.LittleEndian, *d)
		default:
			t.Fatalf("kemu: read into %T", dst)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func randF32(r *rand.Rand, n int, std float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(std * r.NormFloat64())
	}
	return x
}

func toBF(x []float32) []uint16 {
	h := make([]uint16, len(x))
	for i, v := range x {
		h[i] = cuda.ToBF16(v)
	}
	return h
}

func fromBF(h []uint16) []float32 {
	x := make([]float32, len(h))
	for i, v := range h {
		x[i] = cuda.FromBF16(v)
	}
	return x
}

// sameBF checks that a bf16 kernel's output is exactly its fp32 twin's output rounded to bf16
// (the variants share one template body; only the store differs).
func sameBF(t *testing.T, what string, bf []uint16, f32 []float32) {
	t.Helper()
	if len(bf) != len(f32) {
		t.Fatalf("%s: %d bf16 values, %d fp32", what, len(bf), len(f32))
	}
	for i, v := range f32 {
		if want := cuda.ToBF16(v); bf[i] != want {
			t.Fatalf("%s[%d] = %#04x (%g), want bf16(%g) = %#04x", what, i, bf[i], cuda.FromBF16(bf[i]), v, want)
		}
	}
}

// maxRel is max_i |got−want| / max(|want|, floor).
func maxRel(got []float32, want []float64, floor float64) float64 {
	w := 0.0
	for i, x := range want {
		w = max(w, math.Abs(float64(got[i])-x)/max(math.Abs(x), floor))
	}
	return w
}

// TestKernelsEmulated runs kernels.cu's bf16 variants and the fp32 kernels they share a body
// with, compiled by g++ over the emulation header, on the launch geometry the trainer uses:
// every bf16 output is exactly the fp32 twin's output rounded to nearest-even bf16 (the kernels'
// f2bf is checked bit for bit against cuda.ToBF16 on special values too), a bf16 input is read
// exactly, and the fp32 outputs match float64 references of the formulas. Needs g++; no GPU.
func TestKernelsEmulated(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var e kemu
	blocks := func(n int) int { return max(1, min((n+255)/256, maxBlocks)) }

	// to_bf16 on special bit patterns and random values.
	var conv []float32
	for _, b := range []uint32{0x3f800000, 0x3f808000, 0x3f818000, 0x3f808001, 0x3f807fff, 0xbf818000, 0x7f7fffff,
		0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffffffff, 0x00000001, 0x80000000, 0x00800000, 0x007fffff} {
		conv = append(conv, math.Float32frombits(b))
	}
	conv = append(conv, randF32(r, 1000, 50)...)
	convOut := e.buf(make([]uint16, len(conv)))
	e.launch("to_bf16", blocks(len(conv)), 256, convOut, e.buf(conv), int64(len(conv)))
	var gotConv []uint16
	e.read(convOut, &gotConv)

	// RMSNorm forward, rows shorter and longer than the block.
	type rmsCase struct {
		n, d            int
		x, g            []float32
		out, outB, rinv ebuf
		gotF, gotR      []float32
		gotB            []uint16
	}
	var rms []*rmsCase
	for _, nd := range [][2]int{{5, 96}, {3, 300}} {
		c := &rmsCase{n: nd[0], d: nd[1], x: randF32(r, nd[0]*nd[1], 2), g: randF32(r, nd[1], 1)}
		x, g := e.buf(c.x), e.buf(c.g)
		c.out, c.outB, c.rinv = e.buf(make([]float32, c.n*c.d)), e.buf(make([]uint16, c.n*c.d)), e.buf(make([]float32, c.n))
		e.launch("rmsnorm_fwd", c.n, 256, c.out, c.rinv, x, g, c.d, float32(1e-5))
		e.launch("rmsnorm_fwd_bf", c.n, 256, c.outB, e.buf(make([]float32, c.n)), x, g, c.d, float32(1e-5))
		e.read(c.out, &c.gotF)
		e.read(c.outB, &c.gotB)
		e.read(c.rinv, &c.gotR)
		rms = append(rms, c)
	}

	// Head merge into bf16 (with RoPE, as dQKV's, and at an element offset of a wider row) and
	// split from bf16.
	const N, T, H, HD = 12, 6, 2, 8
	D := H * HD
	cs, sn := make([]float32, T*HD/2), make([]float32, T*HD/2)
	for i := range cs {
		a := r.Float64() * 6
		cs[i], sn[i] = float32(math.Cos(a)), float32(math.Sin(a))
	}
	heads := randF32(r, N*D, 1)
	pairs := N * D / 2
	csB, snB, headsB := e.buf(cs), e.buf(sn), e.buf(heads)
	mergeF, mergeB := e.buf(make([]float32, N*3*D)), e.buf(make([]uint16, N*3*D))
	// into the first D columns of [N, 3D] rows (dQ's place in dQKV); the others stay zero.
	e.launch("merge_heads", blocks(pairs), 256, mergeF, headsB, N, 3*D, T, H, HD, csB, snB, float32(-1))
	var gotMergeF []float32
	e.read(mergeF, &gotMergeF)
	e.launch("merge_heads_bf", blocks(pairs), 256, mergeB, headsB, N, 3*D, T, H, HD, csB, snB, float32(-1))
	var gotMergeB []uint16
	e.read(mergeB, &gotMergeB)
	rowsBF := toBF(randF32(r, N*D, 1))
	splitF, splitB := e.buf(make([]float32, N*D)), e.buf(make([]float32, N*D))
	e.launch("split_heads", blocks(pairs), 256, splitF, e.buf(fromBF(rowsBF)), N, D, T, H, HD, csB, snB, float32(1))
	e.launch("split_heads_bf", blocks(pairs), 256, splitB, e.buf(rowsBF), N, D, T, H, HD, csB, snB, float32(1))
	var gotSplitF, gotSplitB []float32
	e.read(splitF, &gotSplitF)
	e.read(splitB, &gotSplitB)

	// SwiGLU forward and backward on bf16 h1, h3.
	const nf = 700
	h1b, h3b := toBF(randF32(r, nf, 2)), toBF(randF32(r, nf, 1))
	dg := randF32(r, nf, 1)
	h1, h3 := fromBF(h1b), fromBF(h3b)
	bh1f, bh3f, bh1b, bh3b, bdg := e.buf(h1), e.buf(h3), e.buf(h1b), e.buf(h3b), e.buf(dg)
	gateF, gateB := e.buf(make([]float32, nf)), e.buf(make([]uint16, nf))
	e.launch("swiglu_fwd", blocks(nf), 256, gateF, bh1f, bh3f, int64(nf))
	e.launch("swiglu_fwd_bf", blocks(nf), 256, gateB, bh1b, bh3b, int64(nf))
	d1F, d3F, d1B, d3B := e.buf(make([]float32, nf)), e.buf(make([]float32, nf)), e.buf(make([]uint16, nf)), e.buf(make([]uint16, nf))
	e.launch("swiglu_bwd", blocks(nf), 256, d1F, d3F, bdg, bh1f, bh3f, int64(nf))
	e.launch("swiglu_bwd_bf", blocks(nf), 256, d1B, d3B, bdg, bh1b, bh3b, int64(nf))
	var gotGateF, gotD1F, gotD3F []float32
	var gotGateB, gotD1B, gotD3B []uint16
	e.read(gateF, &gotGateF)
	e.read(gateB, &gotGateB)
	e.read(d1F, &gotD1F)
	e.read(d3F, &gotD3F)
	e.read(d1B, &gotD1B)
	e.read(d3B, &gotD3B)

	// scale_to into bf16.
	sy := randF32(r, 900, 3)
	sF, sB := e.buf(make([]float32, len(sy))), e.buf(make([]uint16, len(sy)))
	e.launch("scale_to", blocks(len(sy)), 256, sF, e.buf(sy), float32(0.37), int64(len(sy)))
	e.launch("scale_to_bf", blocks(len(sy)), 256, sB, e.buf(sy), float32(0.37), int64(len(sy)))
	var gotSF []float32
	var gotSB []uint16
	e.read(sF, &gotSF)
	e.read(sB, &gotSB)

	// Soft-capped cross-entropy: the fp32 kernel writes dl over z, the bf16 one to dz.
	type ceCase struct {
		rows, C          int
		capc             float32
		z                []float32
		tgt              []int32
		zF, zB, dzB      ebuf
		lF, lB           ebuf
		gotZF, gotZB     []float32
		gotDZ            []uint16
		gotLossF, gotLsB []float64
	}
	var ces []*ceCase
	for _, cc := range []struct {
		rows, C int
		capc    float32
	}{{4, 100, 30}, {3, 300, 0}, {2, 517, 15}} {
		c := &ceCase{rows: cc.rows, C: cc.C, capc: cc.capc, z: randF32(r, cc.rows*cc.C, 8)}
		for range cc.rows {
			c.tgt = append(c.tgt, int32(r.IntN(cc.C)))
		}
		tg := e.buf(c.tgt)
		c.zF, c.zB, c.dzB = e.buf(c.z), e.buf(c.z), e.buf(make([]uint16, len(c.z)))
		c.lF, c.lB = e.buf(make([]float64, c.rows)), e.buf(make([]float64, c.rows))
		scale := float32(0.25)
		e.launch("softcap_ce", c.rows, 256, c.zF, c.lF, tg, c.C, c.capc, scale, 1)
		e.launch("softcap_ce_bf", c.rows, 256, c.zB, c.dzB, c.lB, tg, c.C, c.capc, scale, 1)
		e.read(c.zF, &c.gotZF)
		e.read(c.zB, &c.gotZB)
		e.read(c.dzB, &c.gotDZ)
		e.read(c.lF, &c.gotLossF)
		e.read(c.lB, &c.gotLsB)
		ces = append(ces, c)
	}

	// Lion and AdamW with and without the bf16 weight copy.
	const nw = 1000
	w0, g0, m0, v0 := randF32(r, nw, 0.1), randF32(r, nw, 1), randF32(r, nw, 0.5), make([]float32, nw)
	for i := range v0 {
		v0[i] = float32(r.Float64())
	}
	type optRun struct {
		w, wb, m, v  ebuf
		gw, gm, gv   []float32
		gwb          []uint16
		name         string
		withBF16Copy bool
	}
	var opts []*optRun
	for _, name := range []string{"lion", "adamw"} {
		for _, withCopy := range []bool{false, true} {
			o := &optRun{name: name, withBF16Copy: withCopy, w: e.buf(w0), m: e.buf(m0), v: e.buf(v0), wb: null}
			if withCopy {
				o.wb = e.buf(make([]uint16, nw))
			}
			if name == "lion" {
				e.launch("lion", blocks(nw), 256, o.w, o.wb, e.buf(g0), o.m, int64(nw), float32(1e-3), float32(0.999),
					float32(0.9), float32(0.1), float32(0.99), float32(0.01))
			} else {
				e.launch("adamw", blocks(nw), 256, o.w, o.wb, e.buf(g0), o.m, o.v, int64(nw), float32(1e-3), float32(1.2),
					float32(0.999), float32(0.9), float32(0.1), float32(0.95), float32(0.05), float32(1e-8))
			}
			e.read(o.w, &o.gw)
			e.read(o.m, &o.gm)
			e.read(o.v, &o.gv)
			if withCopy {
				e.read(o.wb, &o.gwb)
			}
			opts = append(opts, o)
		}
	}

	// gather_rows_bf (the compacted classifier from the bf16 weights).
	src := toBF(randF32(r, 10*D, 1))
	rows := []int32{7, 0, 3, 9}
	gB := e.buf(make([]uint16, len(rows)*D))
	e.launch("gather_rows_bf", blocks(len(rows)*D), 256, gB, e.buf(src), e.buf(rows), len(rows), D)
	var gotGather []uint16
	e.read(gB, &gotGather)

	e.run(t)

	// to_bf16 is cuda.ToBF16, bit for bit.
	for i, f := range conv {
		if want := cuda.ToBF16(f); gotConv[i] != want {
			t.Errorf("to_bf16(%#08x) = %#04x, want %#04x", math.Float32bits(f), gotConv[i], want)
		}
	}
	for _, c := range rms {
		want := make([]float64, c.n*c.d)
		for i := range c.n {
			ss := 0.0
			for j := range c.d {
				x := float64(c.x[i*c.d+j])
				ss += x * x
			}
			rinv := 1 / math.Sqrt(ss/float64(c.d)+1e-5)
			if e := math.Abs(float64(c.gotR[i])-rinv) / rinv; e > 1e-6 {
				t.Errorf("rmsnorm d=%d row %d: rinv %g, want %g", c.d, i, c.gotR[i], rinv)
			}
			for j := range c.d {
				want[i*c.d+j] = float64(c.g[j]) * float64(c.x[i*c.d+j]) * rinv
			}
		}
		if e := maxRel(c.gotF, want, 1e-3); e > 2e-6 {
			t.Errorf("rmsnorm_fwd d=%d: relative error %.3g against float64", c.d, e)
		}
		sameBF(t, fmt.Sprintf("rmsnorm_fwd_bf d=%d", c.d), c.gotB, c.gotF)
	}
	half := HD / 2
	for row := range N {
		b, tt := row/T, row%T
		for h := range H {
			for i := range half {
				k := ((b*H+h)*T+tt)*HD + 2*i
				a, bb := float64(heads[k]), float64(heads[k+1])
				c, s := float64(cs[tt*half+i]), -float64(sn[tt*half+i])
				want := [2]float64{a*c - bb*s, a*s + bb*c}
				for q := range 2 {
					got := gotMergeF[row*3*D+h*HD+2*i+q]
					if math.Abs(float64(got)-want[q]) > 1e-6 {
						t.Fatalf("merge_heads row %d head %d pair %d: %g, want %g", row, h, i, got, want[q])
					}
				}
			}
		}
	}
	for i, v := range gotMergeF {
		if col := i % (3 * D); col >= D && v != 0 {
			t.Fatalf("merge_heads wrote column %d outside its D columns", col)
		}
	}
	sameBF(t, "merge_heads_bf", gotMergeB, gotMergeF)
	// merge is split's inverse: merging the split rows (same sign) gives them back.
	for i := range gotSplitF {
		if gotSplitB[i] != gotSplitF[i] {
			t.Fatalf("split_heads_bf[%d] = %g, split_heads of the same values %g", i, gotSplitB[i], gotSplitF[i])
		}
	}
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	wantGate, wantD1, wantD3 := make([]float64, nf), make([]float64, nf), make([]float64, nf)
	for i := range nf {
		x, y, g := float64(h1[i]), float64(h3[i]), float64(dg[i])
		s := sig(x)
		wantGate[i] = x * s * y
		wantD3[i] = g * x * s
		wantD1[i] = g * y * s * (1 + x*(1-s))
	}
	for _, c := range []struct {
		name string
		got  []float32
		want []float64
	}{{"swiglu_fwd", gotGateF, wantGate}, {"swiglu_bwd dh1", gotD1F, wantD1}, {"swiglu_bwd dh3", gotD3F, wantD3}} {
		if e := maxRel(c.got, c.want, 1e-2); e > 1e-5 {
			t.Errorf("%s: relative error %.3g against float64", c.name, e)
		}
	}
	sameBF(t, "swiglu_fwd_bf", gotGateB, gotGateF)
	sameBF(t, "swiglu_bwd_bf dh1", gotD1B, gotD1F)
	sameBF(t, "swiglu_bwd_bf dh3", gotD3B, gotD3F)
	sameBF(t, "scale_to_bf", gotSB, gotSF)
	for i, y := range sy {
		if gotSF[i] != 0.37*y {
			t.Fatalf("scale_to[%d] = %g, want %g", i, gotSF[i], 0.37*y)
		}
	}
	for _, c := range ces {
		for i := range c.rows {
			// float64 reference: capped logits, loss, and dl = scale·(softmax − onehot)·(1 − (z/c)²).
			zc := make([]float64, c.C)
			m := math.Inf(-1)
			for j := range c.C {
				z := float64(c.z[i*c.C+j])
				if c.capc > 0 {
					z = float64(c.capc) * math.Tanh(z/float64(c.capc))
				}
				zc[j] = z
				m = max(m, z)
			}
			sum := 0.0
			for _, z := range zc {
				sum += math.Exp(z - m)
			}
			tg := int(c.tgt[i])
			loss := m + math.Log(sum) - zc[tg]
			if e := math.Abs(c.gotLossF[i]-loss) / loss; e > 1e-6 {
				t.Errorf("softcap_ce C=%d row %d: loss %g, want %g", c.C, i, c.gotLossF[i], loss)
			}
			if c.gotLsB[i] != c.gotLossF[i] {
				t.Errorf("softcap_ce_bf C=%d row %d: loss %g, the fp32 kernel's %g", c.C, i, c.gotLsB[i], c.gotLossF[i])
			}
			dl := make([]float64, c.C)
			for j, z := range zc {
				g := 0.25 * math.Exp(z-m) / sum
				if j == tg {
					g -= 0.25
				}
				if c.capc > 0 {
					u := z / float64(c.capc)
					g *= 1 - u*u
				}
				dl[j] = g
				// the bf16 kernel leaves the capped logits in z
				if e := math.Abs(float64(c.gotZB[i*c.C+j]) - z); e > 1e-5*max(1, math.Abs(z)) {
					t.Fatalf("softcap_ce_bf C=%d row %d: z[%d] = %g, want the capped logit %g", c.C, i, j, c.gotZB[i*c.C+j], z)
				}
			}
			if e := maxRel(c.gotZF[i*c.C:(i+1)*c.C], dl, 1e-4); e > 1e-4 {
				t.Errorf("softcap_ce C=%d row %d: dl relative error %.3g against float64", c.C, i, e)
			}
		}
		sameBF(t, fmt.Sprintf("softcap_ce_bf C=%d dz", c.C), c.gotDZ, c.gotZF)
	}
	for i := 0; i < len(opts); i += 2 {
		plain, withCopy := opts[i], opts[i+1]
		for j := range nw {
			if plain.gw[j] != withCopy.gw[j] || plain.gm[j] != withCopy.gm[j] || plain.gv[j] != withCopy.gv[j] {
				t.Fatalf("%s: element %d differs with the bf16 copy: w %g/%g m %g/%g", plain.name, j, plain.gw[j], withCopy.gw[j], plain.gm[j], withCopy.gm[j])
			}
			if plain.gw[j] == w0[j] {
				t.Fatalf("%s: weight %d did not move", plain.name, j)
			}
		}
		sameBF(t, plain.name+" bf16 weight copy", withCopy.gwb, withCopy.gw)
	}
	for i, row := range rows {
		for j := range D {
			if gotGather[i*D+j] != src[int(row)*D+j] {
				t.Fatalf("gather_rows_bf: row %d column %d = %#04x, want %#04x", i, j, gotGather[i*D+j], src[int(row)*D+j])
			}
		}
	}
}
