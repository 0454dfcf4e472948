package emu_test

import (
	"math"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/anert/mil/emu"
	"github.com/anelab/anelab/anert/mil/fp16"
)

// prog wraps op lines into a program with input x of shape in.
func prog(in string, body string, out string) string {
	return mil.Header + "    func main<ios18>(tensor<fp16, " + in + "> x) {\n" + body + "    } -> (" + out + ");\n}\n"
}

func runF(t *testing.T, src string, blobs map[string][]byte, in []float32) []float32 {
	t.Helper()
	p, err := emu.Compile(src, blobs)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]uint16, len(in))
	fp16.Encode(x, in)
	n := 1
	for _, d := range p.OutputShape() {
		n *= d
	}
	y := make([]uint16, n)
	if err := p.Run(x, y); err != nil {
		t.Fatal(err)
	}
	out := make([]float32, n)
	fp16.Decode(out, y)
	return out
}

func near(a, b []float32, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > tol {
			return false
		}
	}
	return true
}

// Hand-computed results of each op on small tensors.
func TestOps(t *testing.T) {
	cases := []struct {
		name, in, body, out string
		x, want             []float32
	}{
		{"matmul", "[1,1,2,3]", `
        tensor<int32, [4]> s = const()[name=string("s"), val=tensor<int32, [4]>([1,1,3,2])];
        tensor<fp16, [1,1,3,2]> y = reshape(shape=s,x=x)[name=string("y")];
        bool bF = const()[name=string("bF"), val=bool(false)];
        tensor<fp16, [1,1,2,2]> z = matmul(transpose_x=bF,transpose_y=bF,x=x,y=y)[name=string("z")];
`, "z", []float32{1, 2, 3, 4, 5, 6},
			// x = [[1,2,3],[4,5,6]], y = [[1,2],[3,4],[5,6]]: x·y = [[22,28],[49,64]]
			[]float32{22, 28, 49, 64}},
		{"matmul-transposes", "[1,1,2,3]", `
        bool bT = const()[name=string("bT"), val=bool(true)];
        bool bF = const()[name=string("bF"), val=bool(false)];
        tensor<fp16, [1,1,2,2]> a = matmul(transpose_x=bF,transpose_y=bT,x=x,y=x)[name=string("a")];
        tensor<fp16, [1,1,3,3]> b = matmul(transpose_x=bT,transpose_y=bF,x=x,y=x)[name=string("b")];
        tensor<int32, [4]> s = const()[name=string("s"), val=tensor<int32, [4]>([1,1,1,4])];
        tensor<fp16, [1,1,1,4]> a1 = reshape(shape=s,x=a)[name=string("a1")];
        tensor<int32, [4]> s9 = const()[name=string("s9"), val=tensor<int32, [4]>([1,1,1,9])];
        tensor<fp16, [1,1,1,9]> b1 = reshape(shape=s9,x=b)[name=string("b1")];
        int32 ax = const()[name=string("ax"), val=int32(3)];
        tensor<fp16, [1,1,1,13]> z = concat(axis=ax,interleave=bF,values=(a1,b1))[name=string("z")];
`, "z", []float32{1, 2, 3, 4, 5, 6},
			// x·xᵀ = [[14,32],[32,77]]; xᵀ·x = [[17,22,27],[22,29,36],[27,36,45]]
			[]float32{14, 32, 32, 77, 17, 22, 27, 22, 29, 36, 27, 36, 45}},
		{"broadcast-add-sub-mul", "[1,2,1,2]", `
        tensor<fp16, [1,1,1,2]> r = const()[name=string("r"), val=tensor<fp16, [1,1,1,2]>([10,20])];
        tensor<fp16, [1,2,1,2]> a = add(x=x,y=r)[name=string("a")];
        fp16 two = const()[name=string("two"), val=fp16(2)];
        tensor<fp16, [1,2,1,2]> m = mul(x=a,y=two)[name=string("m")];
        tensor<fp16, [1,2,1,2]> z = sub(x=m,y=x)[name=string("z")];
`, "z", []float32{1, 2, 3, 4},
			// (x + [10,20])·2 − x = x + [20,40]
			[]float32{21, 42, 23, 44}},
		{"softmax-reduce-sum", "[1,1,2,2]", `
        int32 ax = const()[name=string("ax"), val=int32(-1)];
        tensor<fp16, [1,1,2,2]> p = softmax(axis=ax,x=x)[name=string("p")];
        tensor<int32, [1]> rax = const()[name=string("rax"), val=tensor<int32, [1]>([-1])];
        bool kd = const()[name=string("kd"), val=bool(true)];
        tensor<fp16, [1,1,2,1]> s = reduce_sum(x=x,axes=rax,keep_dims=kd)[name=string("s")];
        tensor<fp16, [1,1,2,2]> z = add(x=p,y=s)[name=string("z")];
`, "z", []float32{0, float32(math.Log(3)), 1, 1},
			// softmax([0, ln 3]) = [1/4, 3/4]; softmax([1,1]) = [1/2,1/2]; row sums ln 3, 2
			[]float32{0.25 + float32(math.Log(3)), 0.75 + float32(math.Log(3)), 2.5, 2.5}},
		{"slice-transpose-sigmoid", "[1,2,1,3]", `
        tensor<int32, [4]> b = const()[name=string("b"), val=tensor<int32, [4]>([0,0,0,1])];
        tensor<int32, [4]> s = const()[name=string("s"), val=tensor<int32, [4]>([1,2,1,-1])];
        tensor<fp16, [1,2,1,2]> c = slice_by_size(x=x,begin=b,size=s)[name=string("c")];
        tensor<int32, [4]> pm = const()[name=string("pm"), val=tensor<int32, [4]>([0,3,2,1])];
        tensor<fp16, [1,2,1,2]> tr = transpose(perm=pm,x=c)[name=string("tr")];
        tensor<fp16, [1,2,1,2]> z = sigmoid(x=tr)[name=string("z")];
`, "z", []float32{9, 0, 1, 9, 2, 3},
			// slice columns 1..2 → [[0,1],[2,3]]; transpose → [[0,2],[1,3]]; sigmoid
			[]float32{0.5, fp16.Round(float32(1 / (1 + math.Exp(-2)))), fp16.Round(float32(1 / (1 + math.Exp(-1)))), fp16.Round(float32(1 / (1 + math.Exp(-3))))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := runF(t, prog(c.in, c.body, c.out), nil, c.x)
			if !near(got, c.want, 2e-3) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

// Each op rounds its result to fp16: 1 + 2^-11 is a tie between 1 and 1+2^-10 and rounds to 1,
// and 60000 + 60000 overflows to +Inf.
func TestRoundingAfterEveryOp(t *testing.T) {
	src := prog("[1,1,1,2]", `
        tensor<fp16, [1,1,1,2]> h = const()[name=string("h"), val=tensor<fp16, [1,1,1,2]>([0.00048828125,60000])];
        tensor<fp16, [1,1,1,2]> z = add(x=x,y=h)[name=string("z")];
`, "z")
	got := runF(t, src, nil, []float32{1, 60000})
	if got[0] != 1 || !math.IsInf(float64(got[1]), 1) {
		t.Fatalf("got %v, want [1 +Inf]", got)
	}
}

func TestBlobConstant(t *testing.T) {
	src := prog("[1,1,1,2]", `
        tensor<fp16, [1,1,1,2]> w = const()[name=string("w"), val=tensor<fp16, [1,1,1,2]>(BLOBFILE(path=string("@model_path/weights/w.bin"), offset=uint64(64)))];
        tensor<fp16, [1,1,1,2]> z = mul(x=x,y=w)[name=string("z")];
`, "z")
	blobs := map[string][]byte{"@model_path/weights/w.bin": mil.BuildBlob([]float32{3, -0.5})}
	if got := runF(t, src, blobs, []float32{2, 4}); !near(got, []float32{6, -2}, 0) {
		t.Fatalf("got %v", got)
	}
}

// Errors name the op and the line.
func TestErrors(t *testing.T) {
	good := mil.BuildBlob([]float32{1, 2})
	bad := append([]byte(nil), good...)
	bad[64] = 0 // break the DEADBEEF marker
	cases := []struct {
		name, body string
		blobs      map[string][]byte
		want       []string
	}{
		{"unknown op", `
        tensor<fp16, [1,1,1,2]> z = gelu(x=x)[name=string("z")];
`, nil, []string{"line 6", `unsupported op "gelu"`}},
		{"declared shape wrong", `
        tensor<int32, [4]> s = const()[name=string("s"), val=tensor<int32, [4]>([1,2,1,1])];
        tensor<fp16, [1,1,2,1]> z = reshape(shape=s,x=x)[name=string("z")];
`, nil, []string{"line 7", "declared tensor<fp16, [1,1,2,1]>", "computes tensor<fp16, [1,2,1,1]>"}},
		{"inner dims", `
        bool bF = const()[name=string("bF"), val=bool(false)];
        tensor<fp16, [1,1,1,2]> z = matmul(transpose_x=bF,transpose_y=bF,x=x,y=x)[name=string("z")];
`, nil, []string{"line 7", "inner dimensions differ"}},
		{"undefined", `
        tensor<fp16, [1,1,1,2]> z = add(x=x,y=nope)[name=string("z")];
`, nil, []string{"line 6", `"nope" is not defined`}},
		{"no name", `
        tensor<fp16, [1,1,1,2]> z = add(x=x,y=x);
`, nil, []string{"line 6", "name"}},
		{"bad blob", `
        tensor<fp16, [1,1,1,2]> w = const()[name=string("w"), val=tensor<fp16, [1,1,1,2]>(BLOBFILE(path=string("@model_path/weights/w.bin"), offset=uint64(64)))];
        tensor<fp16, [1,1,1,2]> z = add(x=x,y=w)[name=string("z")];
`, map[string][]byte{"@model_path/weights/w.bin": bad}, []string{"line 6", "DEADBEEF"}},
		{"blob size", `
        tensor<fp16, [1,1,1,3]> w = const()[name=string("w"), val=tensor<fp16, [1,1,1,3]>(BLOBFILE(path=string("@model_path/weights/w.bin"), offset=uint64(64)))];
        tensor<fp16, [1,1,1,2]> z = add(x=x,y=x)[name=string("z")];
`, map[string][]byte{"@model_path/weights/w.bin": good}, []string{"line 6", "declares 3"}},
		{"missing blob", `
        tensor<fp16, [1,1,1,2]> w = const()[name=string("w"), val=tensor<fp16, [1,1,1,2]>(BLOBFILE(path=string("@model_path/weights/w.bin"), offset=uint64(64)))];
        tensor<fp16, [1,1,1,2]> z = add(x=x,y=w)[name=string("z")];
`, nil, []string{"line 6", "not among the kernel's blobs"}},
		{"syntax", `
        tensor<fp16, [1,1,1,2]> z = add(x=x,y=x)[name=string("z")]
`, nil, []string{"line 6", "expected ;"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := emu.Compile(prog("[1,1,1,2]", c.body, "z"), c.blobs)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func BenchmarkFFNFwd768(b *testing.B) {
	k, err := mil.Generate(mil.FFNFwd, mil.Config{Dim: 768, Heads: 12, FFN: 2048, Seq: 64, Rope: true, RopeTheta: 10000, Alpha: 0.3})
	if err != nil {
		b.Fatal(err)
	}
	p, err := emu.Compile(k.MIL, k.Blobs)
	if err != nil {
		b.Fatal(err)
	}
	x, y := make([]uint16, k.In.Elems()), make([]uint16, k.Out.Elems())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Run(x, y); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(k.FLOPs)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// reduce_sum over a middle axis (the general path) and without keep_dims.
func TestReduceSumAxes(t *testing.T) {
	src := prog("[1,2,1,3]", `
        tensor<int32, [1]> ax = const()[name=string("ax"), val=tensor<int32, [1]>([1])];
        bool kd = const()[name=string("kd"), val=bool(false)];
        tensor<fp16, [1,1,3]> s = reduce_sum(x=x,axes=ax,keep_dims=kd)[name=string("s")];
        tensor<int32, [4]> sh = const()[name=string("sh"), val=tensor<int32, [4]>([1,1,1,3])];
        tensor<fp16, [1,1,1,3]> z = reshape(shape=sh,x=s)[name=string("z")];
`, "z")
	// [[1,2,3],[10,20,30]] summed over channels: [11,22,33]
	if got := runF(t, src, nil, []float32{1, 2, 3, 10, 20, 30}); !near(got, []float32{11, 22, 33}, 0) {
		t.Fatalf("got %v", got)
	}
}
