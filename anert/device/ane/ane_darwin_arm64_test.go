//go:build darwin && arm64

package ane

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/anelab/anelab/anert/device"
	"github.com/anelab/anelab/anert/mil"
)

// Every kernel of a checker-clean config runs on the ANE and agrees with the emulator, on two
// inputs (layers) with different weights. This is the silent-wrong-data guard of ane-facts §B4.
func TestKernelsMatchEmulator(t *testing.T) {
	d, err := device.Open("ane")
	if errors.Is(err, device.ErrNoANE) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
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
			if err := pa.Eval(ia, oa); err != nil {
				t.Fatal(err)
			}
			if err := pe.Eval(ie, oe); err != nil {
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
