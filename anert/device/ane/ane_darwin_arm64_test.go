//go:build darwin && arm64

package ane

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/anelab/anelab/anert/device"
	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/anert/mil/fp16"
)

// Every kernel of a checker-clean config runs on the ANE and agrees with the emulator, on two
// inputs (layers) with different weights. This is the silent-wrong-data guard of ane-facts §B4.
func TestKernelsMatchEmulator(t *testing.T) {
	d := openANE(t)
	c := mil.Config{Dim: 256, Heads: 4, FFN: 768, Seq: 256, Rope: true, RopeTheta: 10000, Alpha: 1 / math.Sqrt(12)}
	ks, err := mil.Kernels(c)
	if err != nil {
		t.Fatal(err)
	}
	emu := device.NewEmu()
	r := rand.New(rand.NewPCG(1, 2))
	for _, k := range ks {
		pa, err := d.Compile(k)
		if err != nil {
			t.Fatal(err)
		}
		pe, err := emu.Compile(k)
		if err != nil {
			t.Fatal(err)
		}
		for layer := 0; layer < 2; layer++ {
			ia, err := pa.NewInput()
			if err != nil {
				t.Fatal(err)
			}
			ie, _ := pe.NewInput()
			for _, f := range k.Inputs {
				src := make([]float32, f.Len())
				scale := 1.0
				if f.Role == mil.Weight {
					scale = 1 / math.Sqrt(float64(f.Channels))
				}
				if f.Role == mil.Intermediate { // P-like values in [0, 1/S]
					scale = 1 / float64(c.Seq)
				}
				for i := range src {
					src[i] = float32(r.NormFloat64() * scale)
				}
				ia.Write(f, src)
				ie.Write(f, src)
			}
			oa, oe := make([]uint16, k.Out.Elems()), make([]uint16, k.Out.Elems())
			if err := pa.Eval(ia); err != nil {
				t.Fatal(err)
			}
			if err := pe.Eval(ie); err != nil {
				t.Fatal(err)
			}
			if err := pa.Read(k.WholeOutput(), oa); err != nil {
				t.Fatal(err)
			}
			if err := pe.Read(k.WholeOutput(), oe); err != nil {
				t.Fatal(err)
			}
			for _, f := range k.Outputs {
				a, e := make([]float32, f.Len()), make([]float32, f.Len())
				f.Unpack(a, oa)
				f.Unpack(e, oe)
				var num, den float64
				for i := range a {
					num += float64(a[i]-e[i]) * float64(a[i]-e[i])
					den += float64(e[i]) * float64(e[i])
				}
				rel := math.Sqrt(num / den)
				t.Logf("%s layer %d %s: ‖ane−emu‖/‖emu‖ = %.2e", k.Name, layer, f.Name, rel)
				if !(rel < 1e-2) {
					t.Errorf("%s layer %d %s: ANE and emulator differ, rel %.3g", k.Name, layer, f.Name, rel)
				}
			}
		}
	}
}

// openANE opens the Neural Engine, skipping the test where there is none; the device is closed
// when the test ends.
func openANE(t *testing.T) device.Device {
	t.Helper()
	d, err := device.Open("ane")
	if errors.Is(err, device.ErrNoANE) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Read and CopyTo on the Neural Engine's surfaces: wotBwd's da = 2·dy (Wo = 2·I), read in part
// (first 100 tokens) and copied surface to surface into the dy columns of a second input with
// Wo = 3·I, gives 6·dy exactly (dy on a 1/8 grid); the device counts the bytes of each move.
func TestReadCopyTo(t *testing.T) {
	d := openANE(t)
	const D, S, T = 256, 256, 100
	k, err := mil.Generate(mil.WoBwd, mil.Config{Dim: D, Heads: 4, FFN: 768, Seq: S, Rope: true, RopeTheta: 10000, Alpha: 1})
	if err != nil {
		t.Fatal(err)
	}
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
	dy := make([]float32, S*D)
	for i := range dy {
		dy[i] = float32(i%17-8) * 0.125
	}
	in2, err := p.NewInput()
	if err != nil {
		t.Fatal(err)
	}
	in3, err := p.NewInput()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []error{in2.Write(k.Input("Wo"), eye(2)), in3.Write(k.Input("Wo"), eye(3)), in2.Write(k.Input("dy"), dy)} {
		if e != nil {
			t.Fatal(e)
		}
	}
	tr, ok := d.(interface{ Traffic() device.Traffic })
	if !ok {
		t.Fatalf("%T does not count traffic", d)
	}
	t0 := tr.Traffic()
	if err := p.Eval(in2); err != nil {
		t.Fatal(err)
	}
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
			if got, want := fp16.ToFloat32(da[ch*S+tok]), 6*dy[tok*D+ch]; got != want {
				t.Fatalf("da[%d][%d] = %g after the copy, want 6·dy = %g", ch, tok, got, want)
			}
			if tok < T {
				if got, want := fp16.ToFloat32(first[ch*T+tok]), 2*dy[tok*D+ch]; got != want {
					t.Fatalf("first columns: da[%d][%d] = %g, want 2·dy = %g", ch, tok, got, want)
				}
			}
		}
	}
	if got, want := tr.Traffic().Sub(t0), (device.Traffic{Out: 2 * (D*T + D*S), Copy: 2 * D * S}); got != want {
		t.Errorf("traffic %+v, want %+v", got, want)
	}
}
