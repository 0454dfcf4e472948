package device

import (
	"errors"
	"runtime"
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
			if err := p.Eval(c.in, out); err != nil {
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
	if err := p.Eval(in4, out); err != nil {
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
	if err := p1.Eval(in2, make([]uint16, k1.Out.Elems())); err == nil {
		t.Error("an input of another program was accepted")
	}
	in1, _ := p1.NewInput()
	if err := in1.Write(k1.Input("Wo"), make([]float32, 5)); err == nil || !strings.Contains(err.Error(), "Wo") {
		t.Errorf("short weight: %v", err)
	}
	if err := in1.Write(k2.Input("W2"), make([]float32, k2.Input("W2").Len())); err == nil {
		t.Error("a field of another kernel that does not fit was accepted")
	}
	if err := p1.Eval(in1, make([]uint16, 3)); err == nil {
		t.Error("short output buffer accepted")
	}
	bad := *k1
	bad.MIL = strings.Replace(k1.MIL, "matmul(", "gelu(", 1)
	if _, err := d.Compile(&bad); err == nil || !strings.Contains(err.Error(), "gelu") || !strings.Contains(err.Error(), "line") {
		t.Errorf("bad MIL: %v", err)
	}
}
