// Package devicetest has a misbehaving device for tests of what runs on a device.Device (the ANE
// backend's fallback, the probe, training's variant choice): the failures a real Neural Engine is
// known for (ane-facts §B3–B4) on demand, without one.
package devicetest

import (
	"fmt"
	"slices"
	"sync"

	"github.com/anelab/anelab/anert/chip"
	"github.com/anelab/anelab/anert/device"
	"github.com/anelab/anelab/anert/mil"
)

// Faulty is a stand-in Neural Engine: the emulator under another name (so a backend verifies its
// kernels against the emulator and the checker's rules apply, as on a real device), whose
// compiler rejects the kernels named in Reject and whose programs for the kernels named in Zero
// compute nothing ("silent zeros": every Read and CopyTo gives zeros). Compiled lists the kernels
// it compiled, in order.
type Faulty struct {
	device.Emu
	Label        string    // Name() (default "ane (faulty)")
	Peak         float64   // PeakTFLOPS()
	Rules        chip.Chip // Chip(): the chip whose ANE rules apply (zero: the host's, as for a Mac's ANE)
	Reject, Zero []string

	mu       sync.Mutex
	compiled []string
}

func (f *Faulty) Name() string {
	if f.Label == "" {
		return "ane (faulty)"
	}
	return f.Label
}

func (f *Faulty) PeakTFLOPS() float64 { return f.Peak }

// Chip is Rules, as the Neural Engine device reports the chip it detected.
func (f *Faulty) Chip() chip.Chip { return f.Rules }

// Compile fails for the kernels in Reject with the real compiler's words; for the kernels in Zero
// it returns a program whose outputs are zeros.
func (f *Faulty) Compile(k *mil.Kernel) (device.Program, error) {
	if slices.Contains(f.Reject, k.Name) {
		return nil, fmt.Errorf("_ANECompiler : ANECCompile() FAILED (test device rejects %s)", k.Name)
	}
	p, err := f.Emu.Compile(k)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.compiled = append(f.compiled, k.Name)
	f.mu.Unlock()
	if slices.Contains(f.Zero, k.Name) {
		return zeros{p}, nil
	}
	return p, nil
}

// Compiled lists the kernels compiled so far, in order.
func (f *Faulty) Compiled() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.compiled)
}

// zeros is a program that evaluates but whose output surface reads as zeros.
type zeros struct{ device.Program }

func (z zeros) Read(fl mil.Field, dst []uint16) error {
	err := z.Program.Read(fl, dst)
	clear(dst)
	return err
}

func (z zeros) CopyTo(from mil.Field, to device.Input, fl mil.Field) error {
	return to.WriteFP16(fl, make([]uint16, from.Len()))
}
