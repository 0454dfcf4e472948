package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/anelab/anelab/anert/model"
	"github.com/anelab/anelab/anert/optim"
)

// TestHostStepperMatchesPasses: the loop's host stepper (optim.Prepare, then Update unscaling,
// clipping and zeroing each gradient as it reads it) leaves the weights bit for bit where the
// separate passes leave them — PrepareGrads rewriting G, Update on it (optim.AsIs), Model.ZeroGrad — over several
// updates of gradient accumulation with loss scaling (a partial accumulation among them), clipping
// on and off, for each optimizer. A gradient the update failed to zero would be accumulated into
// the next update's and show in the weights. On 16 goroutines the stepper hands Lion's and AdamW's
// updates to the model (Model.DeferUpdate), and ToHost makes the weights current.
func TestHostStepperMatchesPasses(t *testing.T) {
	for _, threads := range []int{2, 16} {
		for _, name := range []string{"lion", "adamw", "muon"} {
			for _, clip := range []float64{0.05, 0} {
				testHostStepper(t, threads, name, clip)
			}
		}
	}
}

func testHostStepper(t *testing.T, threads int, name string, clip float64) {
	t.Helper()
	cfg := tinyConfig()
	cfg.Optim.Name, cfg.Optim.Accum, cfg.Optim.LossScale, cfg.Optim.GradClip = name, 3, 1024, clip
	mk := func() (*model.Model, optim.Optimizer) {
		m, err := model.New(cfg.Model, 7, nil, model.Threads(threads))
		if err != nil {
			t.Fatal(err)
		}
		opt, err := optim.New(cfg.Optim, m.Params(), optim.Threads(threads))
		if err != nil {
			t.Fatal(err)
		}
		return m, opt
	}
	mf, of := mk()
	st := &hostStepper{m: mf, opt: of, o: cfg.Optim, ps: mf.Params(), threads: threads}
	mp, op := mk()
	r := rand.New(rand.NewPCG(1, 2))
	n := cfg.Train.Batch * cfg.Model.Seq
	in, tgt := make([]uint16, n), make([]uint16, n)
	gs := float32(optim.GradScale(cfg.Optim))
	for update, micro := range []int{3, 3, 2, 3} { // 2: a final partial accumulation
		for range micro {
			for i := range in {
				in[i], tgt[i] = uint16(r.IntN(cfg.Model.Vocab)), uint16(r.IntN(cfg.Model.Vocab))
			}
			if _, err := st.ForwardBackward(in, tgt, cfg.Train.Batch, gs); err != nil {
				t.Fatal(err)
			}
			if _, err := mp.ForwardBackward(in, tgt, cfg.Train.Batch, gs); err != nil {
				t.Fatal(err)
			}
		}
		norm, _ := st.PrepareGrads(micro)
		if want := optim.PrepareGrads(mp.Params(), cfg.Optim, micro, threads); norm != want {
			t.Fatalf("%s clip %g, update %d: norm %g, the passes' %g", name, clip, update, norm, want)
		}
		if clip > 0 && !(norm > clip) {
			t.Fatalf("%s: norm %g does not exceed the clip %g: clipping is not tested", name, norm, clip)
		}
		lr := optim.LR(cfg.Optim, update)
		if err := st.Update(lr); err != nil {
			t.Fatal(err)
		}
		if deferred := mf.DefersUpdate() && name != "muon"; deferred != (threads == 16 && name != "muon") {
			t.Fatalf("%s on %d goroutines: update deferred %v", name, threads, deferred)
		}
		if err := st.ToHost(); err != nil {
			t.Fatal(err)
		}
		op.Update(mp.Params(), lr, optim.AsIs)
		mp.WeightsChanged()
		mp.ZeroGrad()
		for i, p := range mf.Params() {
			q := mp.Params()[i]
			for j := range p.W {
				if math.Float32bits(p.W[j]) != math.Float32bits(q.W[j]) || p.G[j] != 0 {
					t.Fatalf("%d goroutines, %s clip %g, update %d: %s.W[%d] = %g, the passes' %g; G = %g (want 0)",
						threads, name, clip, update, p.Name, j, p.W[j], q.W[j], p.G[j])
				}
			}
		}
	}
}
