package train

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/anelab/anelab/anert/aneb"
	"github.com/anelab/anelab/anert/chip"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/device"
	_ "github.com/anelab/anelab/anert/device/ane" // registers the Neural Engine on darwin/arm64
	"github.com/anelab/anelab/anert/mil/check"
	"github.com/anelab/anelab/anert/model"
)

// newBackend builds the backend the config asks for and says on out which one runs and why:
//
//   - "cpu": the CPU backend (BLAS, fp32).
//   - "ane": the ANE backend (anert/aneb) on device.Open(cfg.Device): "ane" (the Neural Engine;
//     an error wrapping device.ErrNoANE where there is none), "emu" (the MIL emulator) or "auto"
//     (the Neural Engine where one opens, else the emulator).
//   - "auto": the ANE backend on the Neural Engine when one opens and the config passes the
//     constraint checker, else the CPU backend (never the emulator: it is far slower than BLAS).
//
// Before any kernel is compiled the constraint checker (anert/mil/check) runs on the model config.
// On the Neural Engine a config that breaks an error rule is refused, with each rule, its source
// and what to change; warnings are printed. The emulator computes any shape correctly, so there
// the broken rules are named in a one-line warning and the run goes on (the checker itself
// recommends the emulator for configs too small for the ANE).
func newBackend(cfg config.Config, out io.Writer) (model.Backend, error) {
	return newBackendOn(cfg, nil, out)
}

// noANE reports whether this platform has no Neural Engine for backend auto to pick.
func noANE() bool { return runtime.GOOS != "darwin" || runtime.GOARCH != "arm64" }

// newBackendOn is newBackend with the ane backend's device given (nil: device.Open(cfg.Device)).
func newBackendOn(cfg config.Config, dev device.Device, out io.Writer) (model.Backend, error) {
	if dev != nil && cfg.Backend != "ane" {
		dev.Close() // only the ane backend takes a given device
		dev = nil
	}
	switch cfg.Backend {
	case "cpu", "":
		return model.NewCPU(), nil
	case "ane":
		var err error
		if dev == nil {
			dev, err = device.Open(cfg.Device)
		}
		if err != nil {
			if errors.Is(err, device.ErrNoANE) {
				return nil, fmt.Errorf("backend ane on device %s: %w", cfg.Device, err)
			}
			return nil, fmt.Errorf("backend ane: %w", err)
		}
		if cfg.Device == "auto" {
			fmt.Fprintf(out, "device auto: %s\n", deviceWhy(dev))
		}
		if err := checkConfig(cfg.Model, dev, out); err != nil {
			dev.Close()
			return nil, err
		}
		return acquireANE(dev, cfg, out)
	case "auto":
		if noANE() {
			fmt.Fprintf(out, "backend auto: cpu (no Neural Engine on %s/%s)\n", runtime.GOOS, runtime.GOARCH)
			return model.NewCPU(), nil
		}
		dev, err := device.Open("ane")
		if err != nil {
			fmt.Fprintf(out, "backend auto: cpu (the Neural Engine did not open: %v)\n", err)
			return model.NewCPU(), nil
		}
		ch := chipOf(dev)
		vs := check.CheckConfigFor(cfg.Model, ch)
		if errs := check.Errors(vs); len(errs) > 0 {
			dev.Close()
			fmt.Fprintf(out, "backend auto: cpu (the config breaks %d ANE rule(s) on %s: %s; run 'anelab check' with the same flags for the details)\n",
				len(errs), ch.Name, ruleIDs(errs))
			return model.NewCPU(), nil
		}
		printWarnings(out, vs)
		b, err := acquireANE(dev, cfg, out)
		if err != nil {
			fmt.Fprintf(out, "backend auto: cpu (the ANE backend failed to start: %v)\n", err)
			return model.NewCPU(), nil
		}
		fmt.Fprintf(out, "backend auto: ane on %s (the config passes the constraint checker)\n", b.DeviceName())
		return b, nil
	}
	return nil, fmt.Errorf("backend = %q: want \"cpu\", \"ane\" or \"auto\"", cfg.Backend)
}

// isEmu reports whether dev is the emulator (it has no peak and runs any shape).
func isEmu(dev device.Device) bool { return dev.Name() == "emu" }

func deviceWhy(dev device.Device) string {
	if isEmu(dev) {
		return "emu (no Neural Engine opened here: the kernels run in the MIL emulator)"
	}
	return dev.Name()
}

// checkConfig runs the constraint checker before any compile. On the Neural Engine errors refuse
// the config, each with its rule, source and fix, and warnings are printed the same way. On the
// emulator one line names the rules the real ANE would enforce.
func checkConfig(m config.Model, dev device.Device, out io.Writer) error {
	ch := chipOf(dev)
	vs := check.CheckConfigFor(m, ch)
	errs := check.Errors(vs)
	if isEmu(dev) {
		if len(errs) > 0 {
			fmt.Fprintf(out, "warning: the real ANE would refuse this config (rules %s); the emulator runs it anyway. "+
				"Run 'anelab check' with the same flags for each rule's source and fix\n", ruleIDs(errs))
		}
		if ws := warnings(vs); len(ws) > 0 {
			fmt.Fprintf(out, "note: ANE warnings (rules %s) do not apply to the emulator\n", ruleIDs(ws))
		}
		return nil
	}
	if len(errs) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "the config breaks %d ANE rule(s), so the ANE backend refuses it before compiling "+
			"(change the config, use --backend cpu, or --device emu to run the same kernels in the emulator):", len(errs))
		for _, v := range errs {
			b.WriteString("\n  - " + v.String())
		}
		return errors.New(b.String())
	}
	printWarnings(out, vs)
	return nil
}

func warnings(vs []check.Violation) []check.Violation {
	var ws []check.Violation
	for _, v := range vs {
		if v.Rule.Severity == check.Warning {
			ws = append(ws, v)
		}
	}
	return ws
}

func printWarnings(out io.Writer, vs []check.Violation) {
	for _, v := range warnings(vs) {
		fmt.Fprintf(out, "ANE %v\n", v)
	}
}

// ruleIDs lists the rule IDs of vs once each, in order.
func ruleIDs(vs []check.Violation) string {
	var ids []string
	seen := map[string]bool{}
	for _, v := range vs {
		if !seen[v.Rule.ID] {
			seen[v.Rule.ID] = true
			ids = append(ids, v.Rule.ID)
		}
	}
	return strings.Join(ids, ", ")
}

// chipOf is the chip whose rules apply on dev: the one the device reports (the Neural Engine
// detects its Mac's; test devices name one), else this Mac's, else the strictest family.
func chipOf(dev device.Device) chip.Chip {
	if c, ok := dev.(interface{ Chip() chip.Chip }); ok && c.Chip().MaxDim > 0 {
		return c.Chip()
	}
	ch, _ := chip.Default()
	return ch
}

// newANE compiles the kernels on dev and says how long it took, what util_pct is measured
// against and how many bytes a step moves. Off the emulator the checker gates the fused kernels
// (check.Gate on dev's chip): one that breaks an error rule there while its variant breaks none is
// never compiled, and its variant runs, which the kernel_variants line names with the reason.
func newANE(dev device.Device, cfg config.Config, out io.Writer) (*aneb.Backend, error) {
	var o aneb.Options
	if !isEmu(dev) {
		o.Gate = check.Gate(cfg.Model, chipOf(dev))
	}
	b, err := aneb.NewWith(dev, cfg.Model, o) // closes dev if it fails
	if err != nil {
		return nil, err
	}
	against := fmt.Sprintf("the device's %.1f TFLOPS fp16 peak", b.PeakTFLOPS())
	if b.PeakTFLOPS() <= 0 {
		against = "the host CPU's measured BLAS peak (the emulator has no peak of its own)"
	}
	fmt.Fprintf(out, "backend ane on %s: %d kernels compiled in %.0f ms; %d evaluations per layer and sequence; "+
		"util_pct = the original's FLOP model (2·fwd + sdpa = %.3g GFLOP per sequence) against %s\n",
		b.DeviceName(), len(b.Kernels()), b.CompileTime().Seconds()*1e3, b.EvalsPerLayer(), b.FLOPsPerSequence()/1e9, against)
	fmt.Fprintf(out, "kernel variants: %s\n", b.VariantsShort())
	for _, c := range b.Choices() {
		if c.Variant != aneb.Fused {
			fmt.Fprintf(out, "kernel variant: %s runs as %s (%s) because %s\n", c.Slot, c.Variant, strings.Join(c.Kernels, " + "), c.Why)
		}
	}
	printTraffic(out, b, cfg)
	return b, nil
}

// printTraffic says how many bytes one optimizer step moves to, from and between the device's
// surfaces (aneb.StepTraffic: exact, TestTrafficPerStep counts it on the emulator).
func printTraffic(out io.Writer, b *aneb.Backend, cfg config.Config) {
	fmt.Fprintf(out, "device traffic per step (batch %d × accum %d sequences): %v\n",
		cfg.Train.Batch, max(cfg.Optim.Accum, 1), aneb.StepTraffic(cfg, b.Path()))
}

// deviceBackend is what the ANE backend (anert/aneb) reports beyond model.Backend.
type deviceBackend interface {
	DeviceName() string
	CompileTime() time.Duration
	EvalsPerStep() int
	PeakTFLOPS() float64
	FLOPsPerSequence() float64
}

// variantBackend is what the ANE backend says about its kernel variants.
type variantBackend interface {
	VariantsShort() string
	FallbackWhy() string
}

// backendStats fills the result fields that depend on the backend: the backend actually used (auto
// resolved) and, for the ANE backend, the device, compile_time_s, kernel_evals_per_step and
// util_pct by the original's FLOP model (seed-system §2.11: 2·fwd + sdpa per micro-step and
// sequence, over the training time) against the device's peak, or for the emulator, which has none,
// against the CPU's measured BLAS peak blasGFLOPS.
func backendStats(r *Result, b model.Backend, sequences int64, trainTime time.Duration, blasGFLOPS float64) {
	r.Backend = b.Name()
	db, ok := b.(deviceBackend)
	if !ok {
		return
	}
	r.Device = db.DeviceName()
	r.CompileTimeS = db.CompileTime().Seconds()
	r.EvalsPerStep = db.EvalsPerStep()
	if vb, ok := b.(variantBackend); ok {
		r.KernelVariants, r.KernelFallback = vb.VariantsShort(), vb.FallbackWhy()
	}
	r.UtilPct = 0
	peak := db.PeakTFLOPS() * 1e12
	if peak <= 0 {
		peak = blasGFLOPS * 1e9
	}
	if tt := trainTime.Seconds(); tt > 0 && peak > 0 {
		r.UtilPct = 100 * db.FLOPsPerSequence() * float64(sequences) / tt / peak
	}
}

// anePool keeps this process's ANE backends on the Neural Engine. Its compiler service fails after
// ~100 compiles per process (ane-facts §B3), 8 per backend, and a notebook or the harness runs
// many experiments in one process: so closeBackend parks a Neural Engine backend here, and a later
// run with the same kernel shapes reuses its compiled kernels (aneb.Backend.Reset: its new weights
// are staged at first use). Emulator backends are built per run and closed.
var anePool = struct {
	sync.Mutex
	idle map[poolKey][]*aneb.Backend
}{idle: map[poolKey][]*aneb.Backend{}}

// poolKey is what the compiled kernels and their inputs depend on.
type poolKey struct {
	device                       string
	dim, heads, ffn, seq, layers int
	pos                          string
	theta                        float64
}

func keyOf(dev string, m config.Model) poolKey {
	return poolKey{dev, m.Dim, m.Heads, m.FFN, m.Seq, m.Layers, m.Pos, m.RopeTheta}
}

// acquireANE returns an idle pooled backend for m on the Neural Engine (closing the freshly opened
// dev), or compiles a new one on dev.
func acquireANE(dev device.Device, cfg config.Config, out io.Writer) (*aneb.Backend, error) {
	m := cfg.Model
	if !isEmu(dev) {
		k := keyOf(dev.Name(), m)
		anePool.Lock()
		var b *aneb.Backend
		if l := anePool.idle[k]; len(l) > 0 {
			b, anePool.idle[k] = l[len(l)-1], l[:len(l)-1]
		}
		anePool.Unlock()
		if b != nil {
			dev.Close()
			b.Reset()
			fmt.Fprintf(out, "backend ane on %s: reusing the %d kernels compiled earlier in this process (util_pct against the device's %.1f TFLOPS peak)\n",
				b.DeviceName(), len(b.Kernels()), b.PeakTFLOPS())
			fmt.Fprintf(out, "kernel variants: %s\n", b.VariantsShort())
			printTraffic(out, b, cfg)
			return b, nil
		}
	}
	return newANE(dev, cfg, out)
}

// closeBackend releases what the backend holds: an emulator backend is closed, a Neural Engine
// backend goes back to anePool.
func closeBackend(b model.Backend) {
	if ab, ok := b.(*aneb.Backend); ok && ab.Device() != nil && !isEmu(ab.Device()) {
		k := keyOf(ab.DeviceName(), ab.Config())
		anePool.Lock()
		anePool.idle[k] = append(anePool.idle[k], ab)
		anePool.Unlock()
		return
	}
	if c, ok := b.(io.Closer); ok {
		c.Close()
	}
}
