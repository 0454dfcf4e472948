// Package probe is the first thing to run on a Mac (`anelab ane probe`): it compiles and evaluates
// every kernel variant (anert/mil AllNames) from a tiny shape up to the configured one on a device,
// compares each output with the fp16 emulator on the same random inputs, times the evaluations,
// builds the ANE backend with its fused kernels, with its conservative variants, and with its
// fused kernels on the whole-output data path, and compares each against the CPU backend, and
// writes one report (Markdown for an issue, JSON for tools):
// chip, OS, each kernel's compile result, its error against the emulator, µs per evaluation, the
// compile count. Where there is no Neural Engine the same sequence runs on the emulator, and the
// report says so.
package probe

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/anelab/anelab/anert/aneb"
	"github.com/anelab/anelab/anert/chip"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/device"
	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/anert/mil/check"
	"github.com/anelab/anelab/anert/mil/emu"
)

// Options say what to probe.
type Options struct {
	Model   config.Model  // the configured shape (the last of the ladder)
	Device  device.Device // where the kernels run; the probe does not close it
	Chip    chip.Chip     // whose rules decide which kernels are tried
	ChipWhy string        // how Chip was chosen (detected, named, strictest)
	Evals   int           // timed evaluations per kernel (0: 20 on a device, 2 on the emulator)
	Force   bool          // also compile kernels that break the chip's error rules
	Log     io.Writer     // progress lines (nil: none)
}

// Report is the probe's result.
type Report struct {
	When         time.Time       `json:"when"`
	OS           string          `json:"os"`
	GoVersion    string          `json:"go"`
	Chip         string          `json:"chip"`
	ChipWhy      string          `json:"chip_why"`
	MaxDim       int             `json:"max_dim"`
	PeakTFLOPS   float64         `json:"peak_tflops"`
	Device       string          `json:"device"`
	Emulated     bool            `json:"emulated"` // no Neural Engine: everything ran on the emulator
	Note         string          `json:"note"`
	Shapes       []Shape         `json:"shapes"`
	Backends     []BackendResult `json:"backends"`
	CompileCount int             `json:"compile_count"` // the device's compiles in this process
	Failures     int             `json:"failures"`      // kernels that failed to compile, failed, or disagree
}

// Shape is one rung of the ladder.
type Shape struct {
	Label   string   `json:"label"`
	Dim     int      `json:"dim"`
	Heads   int      `json:"heads"`
	FFN     int      `json:"ffn"`
	Seq     int      `json:"seq"`
	Kernels []Kernel `json:"kernels"`
}

// Kernel is one kernel's outcome at one shape.
type Kernel struct {
	Name      string   `json:"name"`
	Role      string   `json:"role"`        // "fused" or the fused kernel it is a variant of
	Rules     []string `json:"rules"`       // the chip's error rules it breaks (then skipped unless forced)
	Status    string   `json:"status"`      // ok, disagrees, compile-failed, eval-failed, skipped
	Error     string   `json:"error"`       // the compile or evaluation error
	CompileMS float64  `json:"compile_ms"`  //
	RelErr    float64  `json:"rel_err"`     // max over outputs of ‖device − emu‖/‖emu‖ (-1: not measured)
	Worst     string   `json:"worst"`       // the output with RelErr
	USPerEval float64  `json:"us_per_eval"` // median of Eval alone (the output stays on the device)
	GFLOPs    float64  `json:"gflops"`      // matmul GFLOP per evaluation
	TFLOPS    float64  `json:"tflops"`      // achieved, GFLOPs / µs per eval
}

// BackendResult is the ANE backend at the configured shape with one variant policy, against the
// CPU backend (fp32).
type BackendResult struct {
	Policy   string  `json:"policy"`   // "fused first (automatic fallback)" or "conservative variants"
	Variants string  `json:"variants"` // what ran and why (aneb.Backend.Variants)
	Error    string  `json:"error"`    // NewWith or CompareCPU failed
	WorstRel float64 `json:"worst_rel"`
	Worst    string  `json:"worst"`  // method/output with WorstRel
	Errors   []Err   `json:"errors"` // every output
}

// Err is one output's error against the CPU.
type Err struct {
	Kernel string  `json:"kernel"`
	Output string  `json:"output"`
	Rel    float64 `json:"rel"`
}

// Tol is the largest kernel error against the emulator counted as agreement (as aneb's
// verification).
const Tol = aneb.DefaultTol

// Ladder is the shapes probed: a tiny one that passes every rule on every chip (when the configured
// shape is larger), the configured shape at half its sequence, and the configured shape.
func Ladder(m config.Model) []Shape {
	var out []Shape
	add := func(label string, d, h, f, s int) {
		for _, x := range out {
			if x.Dim == d && x.Heads == h && x.FFN == f && x.Seq == s {
				return
			}
		}
		out = append(out, Shape{Label: label, Dim: d, Heads: h, FFN: f, Seq: s})
	}
	if m.Dim > 128 && m.FFN >= 256 && m.Seq >= 256 {
		add("tiny", 128, 2, 256, 256)
	}
	if m.Seq >= 32 {
		add("configured, half seq", m.Dim, m.Heads, m.FFN, m.Seq/2)
	}
	add("configured", m.Dim, m.Heads, m.FFN, m.Seq)
	return out
}

// Run probes and returns the report.
func Run(o Options) (*Report, error) {
	dev := o.Device
	_, emulated := dev.(*device.Emu)
	evals := o.Evals
	if evals <= 0 {
		evals = 20
		if emulated {
			evals = 2
		}
	}
	r := &Report{When: time.Now().UTC(), OS: chip.HostOS(), GoVersion: runtime.Version(), Chip: o.Chip.Name,
		ChipWhy: o.ChipWhy, MaxDim: o.Chip.MaxDim, PeakTFLOPS: o.Chip.PeakTFLOPS, Device: dev.Name(), Emulated: emulated}
	if emulated {
		r.Note = "No Neural Engine here: the same sequence ran on the fp16 emulator, so the errors against the emulator are 0 by " +
			"construction and the timings are the emulator's (the CPU's). Run `anelab ane probe` on an Apple silicon Mac for the real thing."
	} else {
		r.Note = "Kernels ran on the Neural Engine; each is compared with the fp16 emulator on the same random inputs."
	}
	logf := func(format string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", a...)
		}
	}
	variantOf := map[string]string{mil.QKVFwd: mil.AttnFwd, mil.SdpaWo: mil.AttnFwd, mil.AttnBwd2Raw: mil.AttnBwd2}
	for _, sh := range Ladder(o.Model) {
		m := o.Model
		m.Dim, m.Heads, m.FFN, m.Seq = sh.Dim, sh.Heads, sh.FFN, sh.Seq
		kc := mil.FromModel(m)
		logf("shape %s: dim %d, heads %d, ffn %d, seq %d", sh.Label, sh.Dim, sh.Heads, sh.FFN, sh.Seq)
		for i, name := range mil.AllNames() {
			k := Kernel{Name: name, Role: "fused", RelErr: -1}
			if v, ok := variantOf[name]; ok {
				k.Role = "variant of " + v
			}
			kern, err := mil.Generate(name, kc)
			if err != nil {
				return nil, fmt.Errorf("probe: shape %s: %w", sh.Label, err)
			}
			k.GFLOPs = float64(kern.FLOPs) / 1e9
			for _, v := range check.Errors(check.CheckProgramFor(kern, o.Chip)) {
				k.Rules = append(k.Rules, v.Rule.ID)
			}
			k.Rules = slices.Compact(k.Rules)
			if len(k.Rules) > 0 && !emulated && !o.Force {
				k.Status = "skipped"
				k.Error = "breaks " + strings.Join(k.Rules, ", ") + " on " + o.Chip.Name + " (--force compiles it anyway)"
			} else {
				probeKernel(&k, dev, kern, emulated, evals, uint64(i))
			}
			if k.Status != "ok" && k.Status != "skipped" {
				r.Failures++
			}
			logf("  %-12s %-14s %s", name, k.Status, summary(k))
			sh.Kernels = append(sh.Kernels, k)
		}
		r.Shapes = append(r.Shapes, sh)
	}
	// Three policies: what training runs; the conservative variants; and what training runs with
	// every output surface copied whole into Go and the intermediates passed back from there (the
	// data path before Read and CopyTo), so that a Read or CopyTo fault on a real device shows as a
	// difference between the first and the third.
	for _, pol := range []struct {
		name  string
		force map[string]string
		whole bool
	}{
		{"fused first (automatic fallback)", nil, false},
		{"conservative variants", map[string]string{aneb.SlotAttnFwd: aneb.Split, aneb.SlotAttnBwd2: aneb.CPURope}, false},
		{"fused first, whole outputs through Go", nil, true},
	} {
		if pol.force != nil && o.Model.Pos == "nope" {
			delete(pol.force, aneb.SlotAttnBwd2)
		}
		bo := aneb.Options{Force: pol.force, WholeOutputs: pol.whole}
		if !emulated && !o.Force { // as training does: the chip's rules pick the variants first
			bo.Gate = check.Gate(o.Model, o.Chip)
		}
		br := backendResult(dev, emulated, o.Model, pol.name, bo)
		logf("backend, %s: %s; worst %s %.2e %s", pol.name, br.Variants, br.Worst, br.WorstRel, br.Error)
		if br.Error != "" {
			r.Failures++
		}
		r.Backends = append(r.Backends, br)
	}
	r.CompileCount = dev.CompileCount()
	return r, nil
}

func summary(k Kernel) string {
	if k.Error != "" {
		return k.Error
	}
	s := fmt.Sprintf("compile %.0f ms, %.0f µs/eval", k.CompileMS, k.USPerEval)
	if k.RelErr >= 0 {
		s += fmt.Sprintf(", rel err %.2e (%s)", k.RelErr, k.Worst)
	}
	return s
}

// probeKernel compiles kern on dev, evaluates it on random inputs, compares with the emulator and
// times evals evaluations.
func probeKernel(k *Kernel, dev device.Device, kern *mil.Kernel, emulated bool, evals int, seed uint64) {
	t0 := time.Now()
	p, err := dev.Compile(kern)
	k.CompileMS = float64(time.Since(t0).Microseconds()) / 1e3
	if err != nil {
		k.Status, k.Error = "compile-failed", firstLine(err.Error())
		return
	}
	defer p.Close()
	in, err := p.NewInput()
	if err != nil {
		k.Status, k.Error = "eval-failed", err.Error()
		return
	}
	defer in.Close()
	r := rand.New(rand.NewPCG(seed+1, 7))
	surf := make([]uint16, kern.In.Elems())
	for _, f := range kern.Inputs {
		src := aneb.RandomField(r, f, kern.Config.Seq)
		if err := in.Write(f, src); err != nil {
			k.Status, k.Error = "eval-failed", err.Error()
			return
		}
		f.Pack(surf, src)
	}
	var times []float64
	for range max(evals, 1) {
		t := time.Now()
		if err := p.Eval(in); err != nil {
			k.Status, k.Error = "eval-failed", firstLine(err.Error())
			return
		}
		times = append(times, float64(time.Since(t).Nanoseconds())/1e3)
	}
	got := make([]uint16, kern.Out.Elems())
	if err := p.Read(kern.WholeOutput(), got); err != nil {
		k.Status, k.Error = "eval-failed", firstLine(err.Error())
		return
	}
	slices.Sort(times)
	k.USPerEval = times[len(times)/2]
	if k.USPerEval > 0 {
		k.TFLOPS = k.GFLOPs * 1e9 / (k.USPerEval * 1e-6) / 1e12
	}
	k.Status = "ok"
	if emulated {
		return // the device is the emulator: nothing to compare with
	}
	ep, err := emu.Compile(kern.MIL, kern.Blobs)
	if err != nil {
		k.Status, k.Error = "eval-failed", "the emulator refuses it: "+err.Error()
		return
	}
	want := make([]uint16, kern.Out.Elems())
	if err := ep.Run(surf, want); err != nil {
		k.Status, k.Error = "eval-failed", "emulator: "+err.Error()
		return
	}
	k.RelErr = 0
	for _, f := range kern.Outputs {
		e := aneb.FieldError(f, got, want)
		if math.IsNaN(e) || e > k.RelErr {
			k.RelErr, k.Worst = e, f.Name
		}
	}
	if !(k.RelErr <= Tol) {
		k.Status = "disagrees"
		k.Error = fmt.Sprintf("output %s differs from the emulator: rel %.3g > %g", k.Worst, k.RelErr, Tol)
		if math.IsNaN(k.RelErr) {
			k.RelErr = -2 // JSON has no NaN
		}
	}
}

// keep is a device that the backend may "close" without closing the probe's device.
type keep struct{ device.Device }

func (keep) Close() error { return nil }

func backendResult(dev device.Device, emulated bool, m config.Model, policy string, o aneb.Options) BackendResult {
	br := BackendResult{Policy: policy}
	d := device.Device(keep{dev})
	if emulated {
		d = device.NewEmu() // keeps the backend from verifying the emulator against itself
	}
	b, err := aneb.NewWith(d, m, o)
	if err != nil {
		br.Error = firstLine(err.Error())
		return br
	}
	defer b.Close()
	br.Variants = b.Variants()
	res, err := aneb.CompareCPU(b, 1, m.Seq, 1e-2, rand.New(rand.NewPCG(11, 12)))
	if err != nil {
		br.Error = firstLine(err.Error())
		return br
	}
	for _, e := range res {
		rel := e.Rel
		if math.IsNaN(rel) {
			rel = -1
		}
		br.Errors = append(br.Errors, Err{Kernel: e.Kernel, Output: e.Method + "." + e.Output, Rel: rel})
		if rel > br.WorstRel || rel < 0 {
			br.WorstRel, br.Worst = rel, e.Method+"."+e.Output
		}
	}
	return br
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// Write saves the report as dir/ane-probe.md and dir/ane-probe.json and returns their paths.
func (r *Report) Write(dir string) (md, js string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	md, js = filepath.Join(dir, "ane-probe.md"), filepath.Join(dir, "ane-probe.json")
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(js, append(b, '\n'), 0o644); err != nil {
		return "", "", err
	}
	return md, js, os.WriteFile(md, []byte(r.Markdown()), 0o644)
}

// Markdown is the report for pasting into an issue.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## anelab ane probe\n\n")
	fmt.Fprintf(&b, "- when: %s\n- os: %s (%s)\n- chip: %s — %s (max tensor dim %d, peak %.1f TFLOPS fp16)\n- device: %s\n- compiles in this process: %d\n- failures: %d\n\n%s\n",
		r.When.Format(time.RFC3339), r.OS, r.GoVersion, r.Chip, r.ChipWhy, r.MaxDim, r.PeakTFLOPS, r.Device, r.CompileCount, r.Failures, r.Note)
	for _, sh := range r.Shapes {
		fmt.Fprintf(&b, "\n### %s: dim %d, heads %d, ffn %d, seq %d\n\n", sh.Label, sh.Dim, sh.Heads, sh.FFN, sh.Seq)
		fmt.Fprintf(&b, "| kernel | role | status | compile ms | rel err vs emu | µs/eval | TFLOPS | note |\n|---|---|---|---|---|---|---|---|\n")
		for _, k := range sh.Kernels {
			rel := "—"
			if k.RelErr >= 0 {
				rel = fmt.Sprintf("%.2e (%s)", k.RelErr, k.Worst)
			}
			note := k.Error
			if note == "" && len(k.Rules) > 0 {
				note = "breaks " + strings.Join(k.Rules, ", ")
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %.1f | %s | %.0f | %.3g | %s |\n", k.Name, k.Role, k.Status, k.CompileMS, rel, k.USPerEval, k.TFLOPS,
				strings.ReplaceAll(note, "|", "\\|"))
		}
	}
	fmt.Fprintf(&b, "\n### The ANE backend at the configured shape against the CPU backend (fp32)\n\n")
	for _, br := range r.Backends {
		fmt.Fprintf(&b, "- **%s**: ", br.Policy)
		if br.Error != "" {
			fmt.Fprintf(&b, "FAILED: %s\n", br.Error)
			continue
		}
		fmt.Fprintf(&b, "%s; worst ‖ane − cpu‖/‖cpu‖ %.2e (%s)\n", br.Variants, br.WorstRel, br.Worst)
	}
	return b.String()
}
