package device

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/anert/mil/fp16"
)

func TestOpen(t *testing.T) {
	d, err := Open("emu")
	if err != nil || d.Name() != "emu" {
		t.Fatalf("Open(emu) = %v, %v", d, err)
	}
	if d, err := Open("auto"); err != nil || (d.Name() != "emu" && d.Name() != "ane") {
		t.Fatalf("Open(auto) = %v, %v", d, err)
	}
	if _, err := Open("gpu"); err == nil || !strings.Contains(err.Error(), `"emu", "ane" or "auto"`) {
		t.Errorf("Open(gpu) error %v", err)
	}
	if runtime.GOOS != "darwin" {
		_, err := Open("ane")
		if !errors.Is(err, ErrNoANE) || err.Error() != "the ANE device needs macOS on Apple silicon; use --device emu or --backend cpu" {
			t.Errorf("Open(ane) error %v", err)
		}
	}
}

// wotBwd computes da = Woᵀ·dy. With Wo = 2·I on one input (layer) and Wo = 3·I on another,
// da = 2·dy and 3·dy; rewriting only the activation keeps each input's weights.
func TestEmuProgramInputsPerLayer(t *testing.T) {
	c := mil.Config{Dim: 32, Heads: 1, FFN: 32, Seq: 16, Alpha: 1}
	k, err := mil.Generate(mil.WoBwd, c)
	if err != nil {
		t.Fatal(err)
	}
	d := NewEmu()
	before := d.CompileCount()
	p, err := d.Compile(k)
	if err != nil {
		t.Fatal(err)
	}
	if d.CompileCount() != before+1 {
		t.Errorf("compile count %d, want %d", d.CompileCount(), before+1)
	}
	eye := func(s float32) []float32 {
		w := make([]float32, 32*32)
		for i := 0; i < 32; i++ {
			w[i*32+i] = s
		}
		return w
	}
	in2, _ := p.NewInput()
	in3, _ := p.NewInput()
	if err := in2.Write(k.Input("Wo"), eye(2)); err != nil {
		t.Fatal(err)
	}
	if err := in3.Write(k.Input("Wo"), eye(3)); err != nil {
		t.Fatal(err)
	}
	out := make([]uint16, k.Out.Elems())
	da := make([]float32, 16*32)
	for step := 0; step < 2; step++ {
		dy := make([]float32, 16*32) // token-major [S][D]
		for i := range dy {
			dy[i] = float32(i%7-3) * 0.25 * float32(step+1)
		}
		for _, c := range []struct {
			in Input
			s  float32
		}{{in2, 2}, {in3, 3}} {
			if err := c.in.Write(k.Input("dy"), dy); err != nil {
				t.Fatal(err)
			}
			if err := p.Eval(c.in); err != nil {
				t.Fatal(err)
			}
			if err := p.Read(k.WholeOutput(), out); err != nil {
				t.Fatal(err)
			}
			k.Output("da").Unpack(da, out)
			for i := range da {
				if da[i] != fp16.Round(c.s*dy[i]) {
					t.Fatalf("step %d, Wo=%g·I: da[%d] = %g, want %g", step, c.s, i, da[i], c.s*dy[i])
				}
			}
		}
	}
	// Raw fp16 staging of the whole surface gives the same result.
	raw := make([]uint16, k.In.Elems())
	k.Input("Wo").Pack(raw, eye(2))
	ones := make([]float32, 16*32)
	for i := range ones {
		ones[i] = 1
	}
	k.Input("dy").Pack(raw, ones)
	in4, _ := p.NewInput()
	if err := in4.WriteFP16(k.Whole(), raw); err != nil {
		t.Fatal(err)
	}
	if err := p.Eval(in4); err != nil {
		t.Fatal(err)
	}
	if err := p.Read(k.WholeOutput(), out); err != nil {
		t.Fatal(err)
	}
	k.Output("da").Unpack(da, out)
	if da[0] != 2 || da[len(da)-1] != 2 {
		t.Errorf("raw staging: da = %g … %g, want 2", da[0], da[len(da)-1])
	}
}

func TestEmuErrors(t *testing.T) {
	c := mil.Config{Dim: 32, Heads: 1, FFN: 32, Seq: 16, Alpha: 1}
	k1, _ := mil.Generate(mil.WoBwd, c)
	k2, _ := mil.Generate(mil.FFNFwd, c) // input width 2S+3F differs from wotBwd's S+D
	d := NewEmu()
	p1, _ := d.Compile(k1)
	p2, _ := d.Compile(k2)
	in2, _ := p2.NewInput()
	if err := p1.Eval(in2); err == nil {
		t.Error("an input of another program was accepted")
	}
	in1, _ := p1.NewInput()
	if err := in1.Write(k1.Input("Wo"), make([]float32, 5)); err == nil || !strings.Contains(err.Error(), "Wo") {
		t.Errorf("short weight: %v", err)
	}
	if err := in1.Write(k2.Input("W2"), make([]float32, k2.Input("W2").Len())); err == nil {
		t.Error("a field of another kernel that does not fit was accepted")
	}
	if err := p1.Read(k1.Output("da"), make([]uint16, 3)); err == nil || !strings.Contains(err.Error(), "da") {
		t.Errorf("short read buffer: %v", err)
	}
	if err := p1.Read(k2.Output("h1"), make([]uint16, k2.Output("h1").Len())); err == nil {
		t.Error("reading a field of another kernel's output that does not fit was accepted")
	}
	if err := p1.CopyTo(k1.Output("da"), in2, k2.Input("W1")); err == nil || !strings.Contains(err.Error(), "W1") {
		t.Errorf("copying a 32×16 block into a 32×32 field: %v", err)
	}
	bad := *k1
	bad.MIL = strings.Replace(k1.MIL, "matmul(", "gelu(", 1)
	if _, err := d.Compile(&bad); err == nil || !strings.Contains(err.Error(), "gelu") || !strings.Contains(err.Error(), "line") {
		t.Errorf("bad MIL: %v", err)
	}
}

// CopyBlock makes one copy when both fields span whole rows of equal stride and one per row
// otherwise, and moves exactly the block in either case (checked against UnpackFP16/PackFP16).
func TestCopyBlock(t *testing.T) {
	src := make([]uint16, 6*8) // 6 rows of 8
	for i := range src {
		src[i] = uint16(i + 1)
	}
	rows := mil.Field{Name: "P", Ch0: 2, Channels: 3, Cols: 8, Width: 8}
	for _, c := range []struct {
		name      string
		df        mil.Field
		stride    int
		from      mil.Field
		n, copies int
	}{
		{"whole rows, equal stride", mil.Field{Name: "P", Ch0: 1, Channels: 3, Cols: 8, Width: 8}, 8, rows, 5 * 8, 1},
		{"into columns of a wider surface", mil.Field{Name: "dq", Ch0: 0, Channels: 3, Col0: 4, Cols: 8, Width: 12}, 12, rows, 3 * 12, 3},
		{"padded destination rows", mil.Field{Name: "P", Ch0: 0, Channels: 3, Cols: 8, Width: 8}, 16, rows, 3 * 16, 3},
		{"first 5 columns", mil.Field{Name: "a", Ch0: 0, Channels: 3, Cols: 5, Width: 8}, 8, rows.FirstCols(5), 3 * 8, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := make([]uint16, c.n)
			k, err := CopyBlock(dst, c.stride, c.df, src, 8, c.from)
			if err != nil || k != c.copies {
				t.Fatalf("CopyBlock = %d, %v; want %d copies", k, err, c.copies)
			}
			want, got := make([]uint16, c.from.Len()), make([]uint16, c.from.Len())
			c.from.UnpackFP16(want, src)
			for i := range c.df.Channels {
				copy(got[i*c.df.Cols:(i+1)*c.df.Cols], dst[(c.df.Ch0+i)*c.stride+c.df.Col0:])
			}
			if !slices.Equal(got, want) {
				t.Errorf("block %v, want %v", got, want)
			}
			var n int
			for _, v := range dst {
				if v != 0 {
					n++
				}
			}
			if n != c.from.Len() {
				t.Errorf("%d values written, want the block's %d", n, c.from.Len())
			}
		})
	}
	if _, err := CopyBlock(make([]uint16, 48), 8, mil.Field{Name: "x", Channels: 2, Cols: 8, Width: 8}, src, 8, rows); err == nil {
		t.Error("blocks of different shapes copied")
	}
	if _, err := CopyBlock(make([]uint16, 16), 8, mil.Field{Name: "x", Ch0: 1, Channels: 3, Cols: 8, Width: 8}, src, 8, rows); err == nil ||
		!strings.Contains(err.Error(), "does not fit") {
		t.Errorf("a destination too small: %v", err)
	}
}

// The emulator's surfaces move data as a device does: Read returns a field (or its first
// columns), CopyTo moves an output field into another kernel's input without Go seeing it, and
// Traffic counts each move's bytes: wotBwd's da = 2·dy copied into the dy columns of a second
// wotBwd input with Wo = 3·I gives 6·dy.
func TestEmuReadCopyTraffic(t *testing.T) {
	const D, S = 32, 16
	c := mil.Config{Dim: D, Heads: 1, FFN: 32, Seq: S, Alpha: 1}
	k, err := mil.Generate(mil.WoBwd, c)
	if err != nil {
		t.Fatal(err)
	}
	d := NewEmu()
	p, err := d.Compile(k)
	if err != nil {
		t.Fatal(err)
	}
	eye := func(s float32) []float32 {
		w := make([]float32, D*D)
		for i := range D {
			w[i*D+i] = s
		}
		return w
	}
	in2, _ := p.NewInput()
	in3, _ := p.NewInput()
	dy := make([]float32, S*D)
	for i := range dy {
		dy[i] = float32(i%9-4) * 0.125
	}
	for _, e := range []error{in2.Write(k.Input("Wo"), eye(2)), in3.Write(k.Input("Wo"), eye(3)), in2.Write(k.Input("dy"), dy)} {
		if e != nil {
			t.Fatal(e)
		}
	}
	t0 := d.Traffic()
	if want := (Traffic{In: 2 * (2*D*D + S*D)}); t0 != want {
		t.Errorf("traffic after the writes %+v, want %+v", t0, want)
	}
	if err := p.Eval(in2); err != nil {
		t.Fatal(err)
	}
	const T = 5
	first := make([]uint16, D*T)
	if err := p.Read(k.Output("da").FirstCols(T), first); err != nil {
		t.Fatal(err)
	}
	if err := p.CopyTo(k.Output("da"), in3, k.Input("dy")); err != nil {
		t.Fatal(err)
	}
	if err := p.Eval(in3); err != nil {
		t.Fatal(err)
	}
	da := make([]uint16, D*S)
	if err := p.Read(k.Output("da"), da); err != nil {
		t.Fatal(err)
	}
	for ch := range D {
		for tok := range S {
			want := fp16.Round(6 * dy[tok*D+ch])
			if got := fp16.ToFloat32(da[ch*S+tok]); got != want {
				t.Fatalf("da[%d][%d] = %g after the copy, want 6·dy = %g", ch, tok, got, want)
			}
			if tok < T {
				if got := fp16.ToFloat32(first[ch*T+tok]); got != fp16.Round(2*dy[tok*D+ch]) {
					t.Fatalf("first columns: da[%d][%d] = %g, want 2·dy", ch, tok, got)
				}
			}
		}
	}
	if got, want := d.Traffic().Sub(t0), (Traffic{Out: 2 * (D*T + D*S), Copy: 2 * D * S}); got != want {
		t.Errorf("traffic of two reads and a copy %+v, want %+v", got, want)
	}
	if tr := d.Traffic(); tr.Go() != tr.In+tr.Out || tr.Total() != tr.Go()+tr.Copy {
		t.Errorf("Go/Total of %+v", tr)
	}
}
