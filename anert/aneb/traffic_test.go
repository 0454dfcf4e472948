package aneb

import (
	"math/rand/v2"
	"testing"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/device"
	"github.com/anelab/anelab/anert/model"
	"github.com/anelab/anelab/anert/optim"
	"github.com/anelab/anelab/data"
)

// The bytes one step moves, counted by the emulator device, are StepTraffic's formula for every
// variant combination, on the whole-output path and on the new one (fields read in part,
// intermediates surface to surface); both paths give bit-identical losses. At the default config
// the formula gives the numbers worked out by hand in its doc comment.
func TestTrafficPerStep(t *testing.T) {
	def := StepTraffic(config.Default(), Path{AttnFwd: Fused, AttnBwd2: Fused, WholeOutputs: true})
	cur := StepTraffic(config.Default(), Path{AttnFwd: Fused, AttnBwd2: Fused})
	if def.Total() != 206_045_184 || cur.Total() != 180_879_360 || cur.Go() != 143_130_624 || cur.Copy != 37_748_736 {
		t.Errorf("default config: whole path %v, new path %v", def, cur)
	}
	t.Logf("default config, one step: whole outputs %v; new path %v", def, cur)

	nope := config.Tiny()
	nope.Model.Pos = "nope"
	for _, c := range []struct {
		name  string
		cfg   config.Config
		force map[string]string
	}{
		{"fused", config.Tiny(), nil},
		{"split", config.Tiny(), map[string]string{SlotAttnFwd: Split}},
		{"cpu-rope", config.Tiny(), map[string]string{SlotAttnBwd2: CPURope}},
		{"split+cpu-rope", config.Tiny(), map[string]string{SlotAttnFwd: Split, SlotAttnBwd2: CPURope}},
		{"nope", nope, nil},
		{"nope-split", nope, map[string]string{SlotAttnFwd: Split}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Train.Batch, cfg.Optim.Accum = 2, 2
			var losses [2][]float64
			for i, whole := range []bool{true, false} {
				dev := device.NewEmu()
				b, err := NewWith(dev, cfg.Model, Options{Force: c.force, WholeOutputs: whole})
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				var step device.Traffic
				losses[i], step = trafficRun(t, cfg, b, dev)
				want := StepTraffic(cfg, b.Path())
				if step != want {
					t.Errorf("whole outputs %t (%s): one step moved %+v, StepTraffic says %+v", whole, b.VariantsShort(), step, want)
				}
				// A short call (sampling, T = 5 < seq) reads only the real tokens' columns of the
				// forward outputs: 5D (o, a, q, k, v) + D + 3F (x_next, h1, h3, gate) per layer.
				m, err := model.New(cfg.Model, 1, b)
				if err != nil {
					t.Fatal(err)
				}
				const T = 5
				t0 := dev.Traffic()
				if _, err := m.Logits(stream(T, cfg.Model.Vocab)); err != nil {
					t.Fatal(err)
				}
				L, D, F, S := int64(cfg.Model.Layers), int64(cfg.Model.Dim), int64(cfg.Model.FFN), int64(cfg.Model.Seq)
				read, wantRead := dev.Traffic().Sub(t0).Out, 2*L*T*(6*D+3*F)
				if whole {
					wantRead = 2 * L * S * (6*D + 3*F)
				}
				if read != wantRead {
					t.Errorf("whole outputs %t: a %d-token forward read %d bytes, want %d", whole, T, read, wantRead)
				}
			}
			for s := range losses[0] {
				if losses[0][s] != losses[1][s] {
					t.Errorf("step %d: loss %v on the whole-output path, %v on the new one", s+1, losses[0][s], losses[1][s])
				}
			}
		})
	}
}

// trafficRun trains three Lion steps of cfg (accum micro-steps of batch sequences each) on b and
// returns the losses and the device's traffic during the third step.
func trafficRun(t *testing.T, cfg config.Config, b *Backend, dev *device.Emu) ([]float64, device.Traffic) {
	t.Helper()
	m, err := model.New(cfg.Model, 1, b)
	if err != nil {
		t.Fatal(err)
	}
	opt, err := optim.New(cfg.Optim, m.Params())
	if err != nil {
		t.Fatal(err)
	}
	toks := stream(4096, cfg.Model.Vocab)
	rng := rand.New(rand.NewPCG(3, 7))
	n := cfg.Train.Batch * cfg.Model.Seq
	in, tgt := make([]uint16, n), make([]uint16, n)
	var losses []float64
	var t0, t1 device.Traffic
	for step := range 3 {
		if step == 2 {
			t0 = dev.Traffic()
		}
		for range cfg.Optim.Accum {
			if err := data.SampleBatch(toks, cfg.Model.Seq, cfg.Train.Batch, rng, in, tgt); err != nil {
				t.Fatal(err)
			}
			loss, err := m.ForwardBackward(in, tgt, cfg.Train.Batch, 1)
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, loss)
		}
		optim.PrepareGrads(m.Params(), cfg.Optim, cfg.Optim.Accum, 0)
		opt.Update(m.Params(), optim.LR(cfg.Optim, step), optim.AsIs)
		m.WeightsChanged()
		m.ZeroGrad()
	}
	t1 = dev.Traffic()
	return losses, t1.Sub(t0)
}
