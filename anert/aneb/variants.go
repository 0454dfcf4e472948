package aneb

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/anelab/anelab/anert/device"
	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/anert/mil/emu"
	"github.com/anelab/anelab/internal/num"
)

// Kernel variants. Two kernels fuse work no public ANE project compiles: sdpaWoFwd applies RoPE
// to q and k inside the kernel, sdpaBwd2 undoes it on dq and dk (maderix rotates on the CPU; the
// original's larger backward graphs hit "Graph has a cycle path"). Each has a conservative
// variant that leaves the rotation to the CPU (fp32, as the model's CPU backend does it):
//
//	attention forward   "fused"    sdpaWoFwd                       xn → o, a, q, k (rotated), v
//	                    "split"    qkvFwd; RoPE on the CPU; sdpaWo xn → q, k, v; q, k rotated; → o, a
//	attention dS→dQ,dK  "fused"    sdpaBwd2 (inverse RoPE inside)  P, dP, q, k → dq, dk
//	                    "cpu-rope" sdpaBwd2Raw; inverse RoPE on the CPU
//
// (NoPE configs have no rotation to move: their sdpaBwd2 is the raw one, and only the forward has
// a variant.) NewWith tries the fused kernel first and takes its variant when the fused one fails
// to compile, or — on a device other than the emulator itself — when its first evaluation, on
// random inputs through two input surfaces (the model's own and a second one, as layers > 0 use),
// differs from the emulator's by more than Options.Tol. Every kernel that runs is verified the same
// way; one without a variant that disagrees fails NewWith (silent wrong data is the dominant
// failure mode on the ANE, ane-facts §B4). Choices says what ran and why.

// Variant names.
const (
	Fused   = "fused"
	Split   = mil.VariantSplit
	CPURope = mil.VariantCPURope
)

// Slot names: the two fused kernels with a variant.
const (
	SlotAttnFwd  = mil.AttnFwd
	SlotAttnBwd2 = mil.AttnBwd2
)

// Options tune NewWith.
type Options struct {
	// Force picks a variant per slot (SlotAttnFwd: Fused or Split; SlotAttnBwd2: Fused or
	// CPURope) instead of trying the fused one first.
	Force map[string]string
	// Tol is the largest ‖device − emulator‖/‖emulator‖ of any output a kernel's verification
	// accepts (0: DefaultTol).
	Tol float64
	// Verify forces the verification against the emulator even on the emulator (tests).
	Verify bool
	// Gate, when set, is asked before a fused kernel that has a variant is compiled
	// (anert/mil/check.CheckKernelFor for the device's chip): one it refuses is never compiled,
	// exactly as if compiling it had failed — its variant runs instead, and Choices gives the
	// gate's reason. (The other kernels are the config check's: a config whose kernels without a
	// variant break an error rule is refused before any backend is built.)
	Gate func(*mil.Kernel) error
	// WholeOutputs selects the data path before device.Program had Read and CopyTo: every
	// evaluation copies its whole output surface into Go, and da, P, dP, dq, dk, dv go back to
	// the next kernel's surface from there. Same numbers, more bytes (StepTraffic); kept to
	// measure the difference (TestTrafficPerStep) and as a fallback should a device's CopyTo
	// misbehave.
	WholeOutputs bool
}

// DefaultTol is the verification tolerance: fp16 kernels agree with the emulator to ~1e-3 (the
// ANE accumulates in a different order); a wrong layout or silent zeros are off by O(1).
const DefaultTol = 2e-2

// Choice is the variant one slot runs and why.
type Choice struct {
	Slot    string   // the fused kernel's name
	Variant string   // Fused, Split or CPURope
	Kernels []string // the kernels that run for it
	Why     string   // why this variant (empty for the fused one when it just worked)
}

func (c Choice) String() string {
	s := fmt.Sprintf("%s=%s", c.Slot, c.Variant)
	if c.Variant != Fused || c.Why != "" {
		s += " (" + strings.Join(c.Kernels, " + ")
		if c.Why != "" {
			s += ": " + c.Why
		}
		s += ")"
	}
	return s
}

// Choices are the variants chosen, one per slot that has a variant.
func (b *Backend) Choices() []Choice { return append([]Choice(nil), b.choices...) }

// Variants is Choices as one line, e.g. "sdpaWoFwd=fused sdpaBwd2=cpu-rope (sdpaBwd2Raw: sdpaBwd2
// failed to compile: …)".
func (b *Backend) Variants() string {
	var p []string
	for _, c := range b.choices {
		p = append(p, c.String())
	}
	return strings.Join(p, " ")
}

// VariantsShort is the variant per slot without the reasons, e.g. "sdpaWoFwd=fused sdpaBwd2=cpu-rope".
func (b *Backend) VariantsShort() string {
	var p []string
	for _, c := range b.choices {
		p = append(p, c.Slot+"="+c.Variant)
	}
	return strings.Join(p, " ")
}

// FallbackWhy says, for each slot that runs its conservative variant, why ("" when none does).
func (b *Backend) FallbackWhy() string {
	var p []string
	for _, c := range b.choices {
		if c.Variant != Fused {
			p = append(p, c.Slot+": "+c.Why)
		}
	}
	return strings.Join(p, "; ")
}

// Fallbacks is the number of slots that run their conservative variant.
func (b *Backend) Fallbacks() int {
	n := 0
	for _, c := range b.choices {
		if c.Variant != Fused {
			n++
		}
	}
	return n
}

type slot struct {
	name    string
	fused   []int
	variant string
	alt     []int
}

// compileAll compiles the fixed kernels and, per slot (mil.Slots), the fused kernel or its variant.
func (b *Backend) compileAll() error {
	_, onEmu := b.dev.(*device.Emu)
	verify := !onEmu || b.opts.Verify
	index := map[string]int{}
	for i, n := range kernelNames {
		index[n] = i
	}
	indices := func(ns []string) []int {
		var is []int
		for _, n := range ns {
			is = append(is, index[n])
		}
		return is
	}
	var slots []slot
	inSlot := map[string]bool{}
	for _, sl := range mil.Slots(b.kc) {
		slots = append(slots, slot{sl.Fused, []int{index[sl.Fused]}, sl.Variant, indices(sl.Kernels)})
		inSlot[sl.Fused] = true
	}
	for _, n := range mil.Names {
		if inSlot[n] {
			continue
		}
		if err := b.compileOne(index[n], verify, false); err != nil {
			return err
		}
	}
	for _, s := range slots {
		force := b.opts.Force[s.name]
		if force != "" && force != Fused && force != s.variant {
			return fmt.Errorf("aneb: variant %q for %s: want %q or %q", force, s.name, Fused, s.variant)
		}
		c := Choice{Slot: s.name, Variant: Fused, Kernels: names(s.fused)}
		if force == s.variant {
			c.Why = "forced"
		} else {
			err := b.compileSet(s.fused, verify, true)
			if err == nil {
				if force == Fused {
					c.Why = "forced"
				}
				b.choices = append(b.choices, c)
				continue
			}
			if force == Fused {
				return err
			}
			c.Why = err.Error()
		}
		c.Variant, c.Kernels = s.variant, names(s.alt)
		if err := b.compileSet(s.alt, verify, false); err != nil {
			if force == s.variant {
				return err
			}
			return fmt.Errorf("aneb: %s: neither the fused kernel (%s) nor its %s variant runs: %w", s.name, c.Why, s.variant, err)
		}
		b.split = b.split || s.name == SlotAttnFwd
		b.rawBwd2 = b.rawBwd2 || s.name == SlotAttnBwd2
		b.choices = append(b.choices, c)
	}
	return nil
}

func names(is []int) []string {
	var n []string
	for _, i := range is {
		n = append(n, kernelNames[i])
	}
	return n
}

// compileSet compiles (and verifies) the kernels of one variant, asking Options.Gate first if
// gated; on failure it releases what it compiled and says which kernel failed and how.
func (b *Backend) compileSet(is []int, verify, gated bool) error {
	for j, i := range is {
		if err := b.compileOne(i, verify, gated); err != nil {
			for _, k := range is[:j+1] {
				b.drop(k)
			}
			return err
		}
	}
	return nil
}

// compileOne generates kernel i, asks Options.Gate (if gated), compiles it and (if verify) checks
// it against the emulator.
func (b *Backend) compileOne(i int, verify, gated bool) error {
	c := b.kc
	if i == kFFNFwd {
		c.Alpha = 1 // x_next = 0 + 1·W2·gate = Y, see the package doc
	}
	k, err := mil.Generate(kernelNames[i], c)
	if err != nil {
		return fmt.Errorf("aneb: %w", err)
	}
	if gated && b.opts.Gate != nil {
		if err := b.opts.Gate(k); err != nil {
			return fmt.Errorf("%s %w", k.Name, err)
		}
	}
	p, err := b.dev.Compile(k)
	if err != nil {
		return fmt.Errorf("%s failed to compile on %s: %w", k.Name, b.dev.Name(), err)
	}
	b.ks[i], b.progs[i], b.use[i] = k, p, true
	if b.opts.WholeOutputs {
		b.outs[i] = make([]uint16, k.Out.Elems())
	}
	b.weighty[i] = false
	for _, f := range k.Inputs {
		b.weighty[i] = b.weighty[i] || f.Role == mil.Weight
	}
	if verify {
		if err := b.verify(i); err != nil {
			b.drop(i)
			return err
		}
	}
	return nil
}

// drop releases kernel i.
func (b *Backend) drop(i int) {
	for _, in := range b.spare[i] {
		in.Close()
	}
	if b.progs[i] != nil {
		b.progs[i].Close()
	}
	b.ks[i], b.progs[i], b.outs[i], b.use[i], b.spare[i] = nil, nil, nil, false, nil
}

// verify evaluates kernel i on random inputs through two of its input surfaces (kept for the first
// layers) and in the emulator (anert/mil/emu directly: no device, no compile counted), and compares
// every output field.
func (b *Backend) verify(i int) error {
	k := b.ks[i]
	ep, err := emu.Compile(k.MIL, k.Blobs)
	if err != nil {
		return fmt.Errorf("%s: the emulator refuses it: %w", k.Name, err)
	}
	r := rand.New(rand.NewPCG(uint64(i)+1, 12))
	n := 2
	if !b.weighty[i] {
		n = 1
	}
	for s := range n {
		in, err := b.progs[i].NewInput()
		if err != nil {
			return fmt.Errorf("%s: input surface %d: %w", k.Name, s, err)
		}
		b.spare[i] = append(b.spare[i], in)
		surf := make([]uint16, k.In.Elems())
		for _, f := range k.Inputs {
			src := RandomField(r, f, b.cfg.Seq)
			if err := in.Write(f, src); err != nil {
				return fmt.Errorf("%s: %w", k.Name, err)
			}
			f.Pack(surf, src)
		}
		got, want := make([]uint16, k.Out.Elems()), make([]uint16, k.Out.Elems())
		if err := b.progs[i].Eval(in); err != nil {
			return fmt.Errorf("%s: first evaluation failed: %w", k.Name, err)
		}
		if err := b.progs[i].Read(k.WholeOutput(), got); err != nil {
			return fmt.Errorf("%s: reading the first evaluation: %w", k.Name, err)
		}
		if err := ep.Run(surf, want); err != nil {
			return fmt.Errorf("%s: emulator: %w", k.Name, err)
		}
		for _, f := range k.Outputs {
			rel := FieldError(f, got, want)
			if !(rel <= b.tol()) {
				return fmt.Errorf("%s disagrees with the emulator on its first evaluation (input surface %d, output %s: ‖device − emu‖/‖emu‖ = %.3g > %g)",
					k.Name, s, f.Name, rel, b.tol())
			}
		}
		// A layer gets this surface next: clear it, as NewInput would (ffnFused's x2 columns, which
		// the backend never writes, must stay 0).
		if err := in.WriteFP16(k.Whole(), make([]uint16, k.In.Elems())); err != nil {
			return fmt.Errorf("%s: %w", k.Name, err)
		}
	}
	return nil
}

func (b *Backend) tol() float64 {
	if b.opts.Tol > 0 {
		return b.opts.Tol
	}
	return DefaultTol
}

// RandomField draws test values for an input field: weights N(0, 1/channels), intermediates
// (P-like) N(0, 1/seq)², activations N(0, 1).
func RandomField(r *rand.Rand, f mil.Field, seq int) []float32 {
	src := make([]float32, f.Len())
	scale := 1.0
	switch f.Role {
	case mil.Weight:
		scale = 1 / math.Sqrt(float64(f.Channels))
	case mil.Intermediate:
		scale = 1 / float64(seq)
	}
	for j := range src {
		src[j] = float32(r.NormFloat64() * scale)
	}
	return src
}

// FieldError is ‖got − want‖/‖want‖ over output field f of two output surfaces (NaN when either
// holds a NaN; the absolute error when want is 0).
func FieldError(f mil.Field, got, want []uint16) float64 {
	a, e := make([]float32, f.Len()), make([]float32, f.Len())
	f.Unpack(a, got)
	f.Unpack(e, want)
	return num.RelErr(a, e)
}
