package mil

import (
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/mil/fp16"
)

var update = flag.Bool("update", false, "rewrite testdata/*.mil from the generators")

// tiny is the golden-file config: dim 64, 2 heads, ffn 128, seq 32.
func tiny(rope bool) Config {
	return Config{Dim: 64, Heads: 2, FFN: 128, Seq: 32, Rope: rope, RopeTheta: 10000, Alpha: 0.5}
}

// The generated text is deterministic and reviewed: testdata/<kernel>[_nope].mil.
// Run `go test ./anert/mil -update` after an intended change and read the diff.
func TestGolden(t *testing.T) {
	for _, rope := range []bool{true, false} {
		ks, err := Kernels(tiny(rope))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			name := k.Name
			if !rope {
				if k.Name != AttnFwd && k.Name != AttnBwd2 {
					continue // identical to the RoPE version
				}
				name += "_nope"
			}
			path := filepath.Join("testdata", name+".mil")
			if *update {
				if err := os.WriteFile(path, []byte(k.MIL), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./anert/mil -update to create it)", err)
			}
			if string(want) != k.MIL {
				t.Errorf("%s differs from %s (run with -update if the change is intended)", k.Name, path)
			}
			again, _ := Generate(k.Name, tiny(rope))
			if again.MIL != k.MIL {
				t.Errorf("%s: two generations differ", k.Name)
			}
		}
	}
}

// Every generated program parses, starts with the fixed header, names every op after its
// variable, and declares exactly the kernel's input and output shapes.
func TestGeneratedProgramsParse(t *testing.T) {
	for _, rope := range []bool{true, false} {
		ks, err := Kernels(tiny(rope))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			if !strings.HasPrefix(k.MIL, Header) {
				t.Errorf("%s: header differs", k.Name)
			}
			p, err := Parse(k.MIL)
			if err != nil {
				t.Fatalf("%s: %v", k.Name, err)
			}
			if p.Version != "1.3" || !p.BuildInfo || p.Func != "main" || p.Target != "ios18" {
				t.Errorf("%s: program(%s) buildInfo=%t func %s<%s>", k.Name, p.Version, p.BuildInfo, p.Func, p.Target)
			}
			if len(p.Inputs) != 1 || Shape(p.Inputs[0].Type.Shape) != k.In {
				t.Errorf("%s: input %v, kernel says %v", k.Name, p.Inputs, k.In)
			}
			var last *Op
			for _, op := range p.Ops {
				if op.Name != op.Out {
					t.Errorf("%s line %d: op %s named %q", k.Name, op.Line, op.Out, op.Name)
				}
				last = op
			}
			if last.Out != p.Outputs[0] || Shape(last.Type.Shape) != k.Out {
				t.Errorf("%s: output %s %v, kernel says %v", k.Name, last.Out, last.Type, k.Out)
			}
			for _, f := range k.Inputs {
				if f.Width != k.In.S() || f.Ch0+f.Channels > k.In.C() || f.Col0+f.Cols > f.Width {
					t.Errorf("%s: input field %v outside %v", k.Name, f, k.In)
				}
			}
			for _, f := range k.Outputs {
				if f.Width != k.Out.S() || f.Ch0+f.Channels > k.Out.C() {
					t.Errorf("%s: output field %v outside %v", k.Name, f, k.Out)
				}
			}
		}
	}
}

// Fields tile the surfaces: input fields cover every input element once, output fields every
// output element once.
func TestFieldsTile(t *testing.T) {
	ks, _ := Kernels(tiny(true))
	for _, k := range ks {
		for _, side := range []struct {
			fs []Field
			s  Shape
		}{{k.Inputs, k.In}, {k.Outputs, k.Out}} {
			cover := make([]int, side.s.Elems())
			for _, f := range side.fs {
				for i := 0; i < f.Channels; i++ {
					for j := 0; j < f.Cols; j++ {
						cover[(f.Ch0+i)*f.Width+f.Col0+j]++
					}
				}
			}
			for i, n := range cover {
				if n != 1 {
					t.Fatalf("%s: surface element %d (channel %d, column %d) covered %d times", k.Name, i, i/side.s.S(), i%side.s.S(), n)
				}
			}
		}
	}
}

// FLOPs are 2·(multiply-adds) of the matmuls, counted by hand for the tiny config.
func TestFLOPs(t *testing.T) {
	c := tiny(true)
	D, S, F, H, hd := 64, 32, 128, 2, 32
	want := map[string]int{
		AttnFwd:   2 * (4*S*D*D + 2*H*S*S*hd),
		FFNFwd:    2 * 3 * S * D * F,
		FFNBwdW2:  2 * S * D * F,
		FFNBwdW13: 2 * 2 * S * F * D,
		WoBwd:     2 * S * D * D,
		AttnBwd1:  2 * 3 * H * S * S * hd,
		AttnBwd2:  2 * 2 * H * S * S * hd,
		QKVBwd:    2 * 3 * S * D * D,
	}
	ks, _ := Kernels(c)
	for _, k := range ks {
		if k.FLOPs != int64(want[k.Name]) {
			t.Errorf("%s: FLOPs %d, want %d", k.Name, k.FLOPs, want[k.Name])
		}
	}
}

func TestBlobRoundTrip(t *testing.T) {
	data := []float32{1, -2.5, 65504, 1e-7}
	b := BuildBlob(data)
	if len(b) != 128+8 || b[0] != 1 || b[4] != 2 || b[64] != 0xEF || b[65] != 0xBE || b[66] != 0xAD || b[67] != 0xDE || b[68] != 1 || b[72] != 8 || b[80] != 128 {
		t.Fatalf("header % x", b[:128])
	}
	h, err := ParseBlob(b, 64, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range data {
		if fp16.ToFloat32(h[i]) != fp16.Round(v) {
			t.Errorf("value %d: %g, want %g", i, fp16.ToFloat32(h[i]), fp16.Round(v))
		}
	}
	for _, bad := range []struct {
		name string
		mod  func([]byte) []byte
		off  uint64
	}{
		{"short", func(b []byte) []byte { return b[:100] }, 64},
		{"file header", func(b []byte) []byte { b[4] = 3; return b }, 64},
		{"offset", func(b []byte) []byte { return b }, 0},
		{"size", func(b []byte) []byte { b[72] = 200; return b }, 64},
	} {
		if _, err := ParseBlob(bad.mod(append([]byte(nil), b...)), bad.off, 4); err == nil {
			t.Errorf("%s: corrupt blob accepted", bad.name)
		}
	}
}

// Pack and Unpack place element (i, j) of the block at surface (Ch0+i)·Width + Col0+j, reading the
// model-side matrix transposed when the field says so.
func TestFieldPack(t *testing.T) {
	f := Field{Name: "w", Ch0: 1, Channels: 2, Col0: 3, Cols: 3, Width: 8}
	surf := make([]uint16, 4*8)
	src := []float32{1, 2, 3, 4, 5, 6} // [2][3]
	f.Pack(surf, src)
	for i := 0; i < 2; i++ {
		for j := 0; j < 3; j++ {
			if v := fp16.ToFloat32(surf[(1+i)*8+3+j]); v != src[i*3+j] {
				t.Errorf("direct (%d,%d) = %g", i, j, v)
			}
		}
	}
	f.Transposed = true // src is [3][2]
	src = []float32{1, 2, 3, 4, 5, 6}
	f.Pack(surf, src)
	for i := 0; i < 2; i++ {
		for j := 0; j < 3; j++ {
			if v := fp16.ToFloat32(surf[(1+i)*8+3+j]); v != src[j*2+i] {
				t.Errorf("transposed (%d,%d) = %g", i, j, v)
			}
		}
	}
	back := make([]float32, 6)
	f.Unpack(back, surf)
	for i := range back {
		if back[i] != src[i] {
			t.Fatalf("unpack %v, want %v", back, src)
		}
	}
	blk := make([]uint16, 6)
	f.UnpackFP16(blk, surf)
	s2 := make([]uint16, len(surf))
	f.PackFP16(s2, blk)
	for i := 0; i < 2; i++ {
		for j := 0; j < 3; j++ {
			k := (1+i)*8 + 3 + j
			if s2[k] != surf[k] {
				t.Fatal("PackFP16/UnpackFP16 round trip differs")
			}
		}
	}
}

func TestRopeTablesAndMask(t *testing.T) {
	cos, sin := RopeTables(4, 4, 100)
	// position 2, pair 1: θ = 2·100^(−2/4) = 0.2
	if math.Abs(float64(cos[2*4+2])-math.Cos(0.2)) > 1e-7 || cos[2*4+2] != cos[2*4+3] || math.Abs(float64(sin[2*4+3])-math.Sin(0.2)) > 1e-7 {
		t.Errorf("tables at p=2, i=1: cos %g sin %g", cos[2*4+2], sin[2*4+3])
	}
	if cos[0] != 1 || sin[0] != 0 {
		t.Error("position 0 must not rotate")
	}
	m := CausalMask(3)
	want := []float32{0, -65504, -65504, 0, 0, -65504, 0, 0, 0}
	for i := range m {
		if m[i] != want[i] {
			t.Fatalf("mask %v", m)
		}
	}
}

func TestFromModelAndValidate(t *testing.T) {
	c := FromModel(config.Default().Model)
	if c.Dim != 256 || c.Heads != 4 || c.FFN != 768 || c.Seq != 256 || !c.Rope || math.Abs(c.Alpha-1/math.Sqrt(12)) > 1e-12 {
		t.Errorf("FromModel(default) = %+v", c)
	}
	for _, bad := range []Config{
		{Dim: 10, Heads: 3, FFN: 8, Seq: 16},
		{Dim: 6, Heads: 2, FFN: 8, Seq: 16, Rope: true, RopeTheta: 1e4},
		{Dim: 8, Heads: 2, FFN: 0, Seq: 16},
		{Dim: 8, Heads: 2, FFN: 8, Seq: 16, Rope: true},
	} {
		if _, err := Kernels(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"prog(1.3)", "expected program"},
		{"program(1.3) { func main<ios18>(tensor<fp16, [1,2]> x) { tensor<fp16, [1,2]> y = add(x=x,y=x)[name=string(\"y\")]; } -> (y); } junk", "after the end"},
		{"program(1.3) { func main<ios18>(tensor<fp16, [1,2]> x) { tensor<fp17, [1,2]> y = add(x=x)[name=string(\"y\")]; } -> (y); }", "unknown element type"},
		{"program(1.3) {\n func main<ios18>(tensor<fp16, [1,2]> x) {\n  tensor<fp16, [1,2]> y = add(x=x,x=x)[name=string(\"y\")];\n } -> (y);\n}", "line 3"},
	} {
		if _, err := Parse(c.src); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%.40q…) error %v, want %q", c.src, err, c.want)
		}
	}
}
