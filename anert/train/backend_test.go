package train

import (
	"bytes"
	"context"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/anelab/anelab/anert/aneb"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/device"
	"github.com/anelab/anelab/anert/mil"
	"github.com/anelab/anelab/anert/model"
)

// valid256 passes every ANE rule (dim 256, 4 heads of 64, ffn 768, seq 256).
func valid256() config.Model {
	m := config.Default().Model
	m.Dim, m.Heads, m.FFN, m.Seq, m.Layers, m.Vocab = 256, 4, 768, 256, 1, 320
	return m
}

func TestBackendSelection(t *testing.T) {
	onMac := runtime.GOOS == "darwin" && runtime.GOARCH == "arm64"
	tiny := config.Tiny()

	// cpu
	var out bytes.Buffer
	if b, err := newBackend(tiny, &out); err != nil || b.Name() != "cpu" {
		t.Errorf("cpu: %v, %v", b, err)
	}

	// ane on the emulator: built; the tiny config breaks ANE rules, which is a printed warning.
	c := tiny
	c.Backend, c.Device = "ane", "emu"
	out.Reset()
	b, err := newBackend(c, &out)
	if err != nil {
		t.Fatal(err)
	}
	defer closeBackend(b)
	if ab, ok := b.(*aneb.Backend); !ok || ab.DeviceName() != "emu" {
		t.Errorf("ane/emu gave %T %v", b, b.Name())
	}
	for _, want := range []string{"warning: the real ANE would refuse this config (rules dim-128, matmul-inner-32, min-surface)", "anelab check",
		"backend ane on emu: 8 kernels compiled", "the host CPU's measured BLAS peak"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ane/emu output lacks %q:\n%s", want, out.String())
		}
	}

	// ane on the ANE where there is none: device.ErrNoANE.
	if !onMac {
		c.Device = "ane"
		if _, err := newBackend(c, &out); !errors.Is(err, device.ErrNoANE) {
			t.Errorf("ane/ane off Apple silicon: error %v, want ErrNoANE", err)
		}
		// auto: the CPU, saying why.
		c.Backend = "auto"
		out.Reset()
		if b, err := newBackend(c, &out); err != nil || b.Name() != "cpu" || !strings.Contains(out.String(), "backend auto: cpu (no Neural Engine on") {
			t.Errorf("auto off Apple silicon: %v, %v, %q", b, err, out.String())
		}
	}
	c.Backend = "gpu"
	if _, err := newBackend(c, &out); err == nil || !strings.Contains(err.Error(), `"cpu", "ane" or "auto"`) {
		t.Errorf("backend gpu: %v", err)
	}
}

// fakeANE is a device that is not the emulator; the checker must refuse before it compiles.
type fakeANE struct{ compiled int }

func (*fakeANE) Name() string { return "ane (fake)" }
func (f *fakeANE) Compile(*mil.Kernel) (device.Program, error) {
	f.compiled++
	return nil, errors.New("fake")
}
func (f *fakeANE) CompileCount() int { return f.compiled }
func (*fakeANE) PeakTFLOPS() float64 { return 15.8 }
func (*fakeANE) Close() error        { return nil }

// On the Neural Engine a config that breaks a rule is refused before any compile, naming each
// rule, its source and the fix; a valid config passes the check.
func TestCheckRefusesOnTheANE(t *testing.T) {
	m := valid256()
	m.FFN = 784 // W1ᵀ·dh1 contracts over 784: not a multiple of 32
	var out bytes.Buffer
	dev := &fakeANE{}
	err := checkConfig(m, dev, &out)
	if err == nil || dev.compiled != 0 {
		t.Fatalf("error %v, %d compiles", err, dev.compiled)
	}
	for _, want := range []string{"refuses it before compiling", "[matmul-inner-32]", "contracts over 784",
		"Fix: make head dim (dim/heads), dim, ffn and seq multiples of 32", "Source: imperatormk", "--device emu"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q:\n%v", want, err)
		}
	}
	out.Reset()
	if err := checkConfig(valid256(), dev, &out); err != nil || out.Len() != 0 {
		t.Errorf("valid config: %v, %q", err, out.String())
	}
}

// util_pct of the ANE backend is the original's FLOP model over the training time against the
// device's peak, or the measured BLAS peak on the emulator (hand-computed here).
func TestBackendStats(t *testing.T) {
	m := valid256()
	b, err := aneb.New(device.NewEmu(), m)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// fwd = 4·256·512·256 + 4·256·768·256 + 2·768·256·256 = 134217728 + 201326592 + 100663296
	//     = 436207616;  sdpa = 2·4·5·256²·64 = 167772160;  2·fwd + sdpa = 1040187392 per sequence.
	const perSeq = 1040187392.0
	if b.FLOPsPerSequence() != perSeq {
		t.Fatalf("FLOPs per sequence %g, want %g", b.FLOPsPerSequence(), perSeq)
	}
	var r Result
	backendStats(&r, b, 10, 2*time.Second, 50) // 10 sequences in 2 s against 50 GFLOP/s
	if want := 100 * perSeq * 10 / 2 / 50e9; math.Abs(r.UtilPct-want) > 1e-9 || r.Backend != "ane" || r.Device != "emu" || r.CompileTimeS <= 0 {
		t.Errorf("stats %+v, want util %g", r, want)
	}
	var rc Result
	rc.UtilPct = 7
	backendStats(&rc, model.NewCPU(), 10, time.Second, 50)
	if rc.Backend != "cpu" || rc.UtilPct != 7 {
		t.Errorf("cpu stats changed: %+v", rc)
	}
}

// A short run on the ANE backend (emulator) reports its backend, device, compile time, kernel
// evaluations per update (8·layers·batch) and a utilisation.
func TestRunOnANEBackend(t *testing.T) {
	cfg := tinyConfig()
	cfg.Backend, cfg.Device = "ane", "emu"
	cfg.Train.Steps = 3
	var out bytes.Buffer
	res, err := Run(context.Background(), cfg, Options{DataDir: tinyData(t), Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	want := aneb.EvalsPerLayer * cfg.Model.Layers * cfg.Train.Batch
	if res.Backend != "ane" || res.Device != "emu" || res.CompileTimeS <= 0 || res.EvalsPerStep != want || !(res.UtilPct > 0) || res.Steps != 3 {
		t.Errorf("result %+v (want %d evals per step)\n%s", res, want, out.String())
	}
}

// renamedEmu is the emulator posing as a Neural Engine (for the pool, which keeps only those).
type renamedEmu struct{ *device.Emu }

func (renamedEmu) Name() string        { return "ane (pool test)" }
func (renamedEmu) PeakTFLOPS() float64 { return 15.8 }

// A Neural Engine backend goes back to the pool when its run ends, and the next run with the same
// kernel shapes reuses it without compiling; its new model's weights are staged (same loss as the
// CPU backend on a new model), and its counters start again.
func TestANEPool(t *testing.T) {
	cfg := config.Tiny()
	m := cfg.Model
	var out bytes.Buffer
	before := device.NewEmu().CompileCount()
	b1, err := acquireANE(renamedEmu{device.NewEmu()}, cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	step := func(b model.Backend, seed uint64) (float64, float64) {
		t.Helper()
		n := 2 * m.Seq
		in, tgt := make([]uint16, n), make([]uint16, n)
		for i := range in {
			in[i], tgt[i] = uint16((7*i+int(seed))%m.Vocab), uint16((5*i+1)%m.Vocab)
		}
		ma, _ := model.New(m, seed, b)
		mc, _ := model.New(m, seed, model.NewCPU())
		la, err := ma.ForwardBackward(in, tgt, 2, 1)
		if err != nil {
			t.Fatal(err)
		}
		lc, _ := mc.ForwardBackward(in, tgt, 2, 1)
		return la, lc
	}
	if la, lc := step(b1, 1); math.Abs(la-lc) > 1e-4*lc {
		t.Errorf("first run: loss %g, cpu %g", la, lc)
	}
	closeBackend(b1)
	compiled := device.NewEmu().CompileCount()
	out.Reset()
	b2, err := acquireANE(renamedEmu{device.NewEmu()}, cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if b2 != b1 || device.NewEmu().CompileCount() != compiled || compiled != before+8 || !strings.Contains(out.String(), "reusing the 8 kernels") {
		t.Errorf("second run: same backend %t, compiles %d → %d (first: %d → %d), %q", b2 == b1, compiled,
			device.NewEmu().CompileCount(), before, compiled, out.String())
	}
	if b2.Evals() != 0 || b2.CompileTime() != 0 {
		t.Errorf("reused backend: %d evals, compile time %v", b2.Evals(), b2.CompileTime())
	}
	if la, lc := step(b2, 2); math.Abs(la-lc) > 1e-4*lc {
		t.Errorf("second run on the reused backend: loss %g, cpu %g (stale weights?)", la, lc)
	}
	other := cfg
	other.Model.Seq = 32
	b3, err := acquireANE(renamedEmu{device.NewEmu()}, other, &out)
	if err != nil || b3 == b1 {
		t.Errorf("another shape: %v, reused %t", err, b3 == b1)
	}
	b1.Close()
	b3.Close()
}
