package train

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/anert/ckpt"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/cuda"
	"github.com/anelab/anelab/anert/cudab"
	"github.com/anelab/anelab/anert/model"
	"github.com/anelab/anelab/anert/optim"
	"github.com/anelab/anelab/data"
	"github.com/anelab/anelab/internal/num"
	"github.com/anelab/anelab/internal/par"
)

// lossWindow is how many recent updates train_loss averages over.
const lossWindow = 20

// Run trains cfg on opts.DataDir until the budget or step limit, evaluates, checkpoints and
// returns the result. A returned error means the run could not start or crashed; a diverged run
// returns a Result with Status "diverged" and no error, a run ended by opts.Stop one with Status
// "interrupted" (checkpointed, not evaluated).
func Run(ctx context.Context, cfg config.Config, opts Options) (res Result, err error) {
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	t0 := time.Now()
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	ds, err := data.Open(opts.DataDir)
	if err != nil {
		return res, err
	}
	if err := checkData(cfg, ds); err != nil {
		return res, err
	}
	// BLAS's own threads serve only the startup sgemm measurement: the model and the optimizer
	// split their work over threads goroutines, with BLAS single-threaded.
	blas.SetThreads(par.Threads(cfg.Train.Threads))
	s, err := newSession(cfg, ds, opts, out)
	if errors.Is(err, blas.ErrInterrupted) {
		return Result{Status: StatusInterrupted, Error: err.Error(), StartupS: time.Since(t0).Seconds()}, nil
	}
	if err != nil {
		return res, err
	}
	defer s.close()
	startup := time.Since(t0).Seconds()
	fmt.Fprintf(out, "startup: %.1fs (data, init, BLAS peak %.1f GFLOP/s measured)\n", startup, s.peakGFLOPS)

	status, err := s.loop(ctx)
	if err == nil {
		err = s.st.ToHost() // the checkpoint and the caller read the host model
	}
	res = s.result()
	res.StartupS = startup
	if err != nil {
		return res, err
	}
	res.Status = status
	if status == StatusInterrupted {
		done := 0.0
		if n := len(s.curve); n > 0 {
			done = s.curve[n-1].Progress
		}
		res.Error = fmt.Sprintf("stopped by an interrupt after %d updates (%.1f%% of the budget); not evaluated", s.runSteps, 100*done)
	}
	if status == StatusOK {
		te := time.Now()
		vl, err := s.evaluate()
		if err != nil {
			return res, err
		}
		s.evalTime = time.Since(te)
		if !num.Finite(vl) {
			res.Status, res.Error = StatusDiverged, "validation loss is not finite"
		} else {
			res.ValLoss = vl
			res.ValBPB = vl / math.Ln2 / ds.Manifest.BytesPerToken
		}
	}
	res.WallTimeS = (s.trainTime + s.evalTime).Seconds()
	res.PeakMemMB = peakRSSMB()
	if opts.Checkpoint != "" && (res.Status == StatusOK || res.Status == StatusInterrupted && s.runSteps > 0) {
		if err := s.save(opts.Checkpoint); err != nil {
			return res, err
		}
		res.Checkpoint = opts.Checkpoint
	}
	if !num.Finite(res.TrainLoss) {
		res.TrainLoss = 0
	}
	return res, nil
}

// checkData refuses a config that does not fit the data, naming the field to change.
func checkData(cfg config.Config, ds *data.Dataset) error {
	var e config.Errors
	if v := ds.Manifest.VocabSize; cfg.Model.Vocab < v {
		e = append(e, fmt.Sprintf("model.vocab = %d is smaller than the data's vocabulary (%d, from %s): set model.vocab ≥ %d", cfg.Model.Vocab, v, ds.Dir, v))
	}
	for _, sp := range []struct {
		name string
		n    int
	}{{"train", len(ds.Train)}, {"val", len(ds.Val)}} {
		if sp.n < cfg.Model.Seq+1 {
			e = append(e, fmt.Sprintf("model.seq = %d is longer than the %s split (%d tokens): lower model.seq or prepare more data", cfg.Model.Seq, sp.name, sp.n))
		}
	}
	if len(e) > 0 {
		return e
	}
	return nil
}

// session is one run's state: model, optimizer, data cursor, counters.
type session struct {
	cfg  config.Config
	ds   *data.Dataset
	opts Options
	out  io.Writer

	m        *model.Model
	opt      optim.Optimizer
	st       stepper // runs the steps: m and opt on the host, or the GPU (stepper.go)
	rng      *rand.Rand
	pcg      *rand.PCG
	in, tgt  []uint16
	step     int   // optimizer updates done in this lineage (schedule position)
	runSteps int   // optimizer updates done in this run
	micro    int   // micro-steps this run
	tokens   int64 // tokens this run
	prior    ckpt.Counters
	budget   budget
	losses   []float64
	curve    []Point

	gpu *cudab.Trainer // the stepper when training on a GPU

	threads    int     // the thread budget: cfg.Train.Threads, or all cores
	peakGFLOPS float64 // sgemm rate measured at startup, on threads BLAS threads (cuBLAS's on a GPU)
	blasInfo   blas.Info
	warning    string // a loud warning for the summary (an sgemm rate far below the CPU's)
	trainTime  time.Duration
	evalTime   time.Duration
}

func newSession(cfg config.Config, ds *data.Dataset, opts Options, out io.Writer) (*session, error) {
	s := &session{cfg: cfg, ds: ds, opts: opts, out: out}
	prec, onGPU := cudaPrecision(cfg.Backend)
	if autoPicksCUDA(cfg, out) {
		prec, onGPU = cuda.BF16, true
		fmt.Fprintln(out, "backend auto: cuda (a CUDA GPU is present)")
	}
	var b model.Backend = model.NewCPU() // with cuda: the host copy for checkpoints and sampling
	var err error
	if !onGPU {
		if err := CheckMemory(cfg, AvailableMemory()); err != nil {
			return nil, err
		}
		if b, err = newBackendOn(cfg, opts.Device, out); err != nil {
			return nil, err
		}
	}
	s.threads = par.Threads(cfg.Train.Threads)
	if s.m, err = model.New(cfg.Model, uint64(cfg.Train.Seed), b, model.Threads(s.threads)); err != nil {
		return nil, err
	}
	if cfg.Model.Compact {
		if err := s.m.SetActive(ds.Seen()); err != nil {
			return nil, fmt.Errorf("vocab compaction: %w", err)
		}
	}
	if s.opt, err = optim.New(cfg.Optim, s.m.Params(), optim.Threads(s.threads)); err != nil {
		return nil, err
	}
	// Fresh windows per run: the data stream is seeded from the run's seed, never a constant.
	s.pcg = rand.NewPCG(uint64(cfg.Train.Seed), 0x9e3779b97f4a7c15)
	if opts.Resume != "" {
		if err := s.resume(opts.Resume); err != nil {
			return nil, err
		}
	}
	s.st = &hostStepper{m: s.m, opt: s.opt, o: cfg.Optim, ps: s.m.Params(), threads: s.threads}
	if onGPU {
		var active []int
		if cfg.Model.Compact {
			active = ds.Seen()
		}
		t, err := newCUDAStepper(cfg, s.m, s.opt, active, prec, opts.Attention, opts.GEMMPrecision, out)
		if err != nil {
			closeBackend(b)
			return nil, err
		}
		s.st, s.gpu = t, t
	}
	s.rng = rand.New(s.pcg)
	n := cfg.Train.Batch * cfg.Model.Seq
	s.in, s.tgt = make([]uint16, n), make([]uint16, n)
	if s.gpu != nil {
		if s.peakGFLOPS, err = s.gpu.PeakGFLOPS(); err != nil {
			s.close()
			return nil, err
		}
		fmt.Fprintf(out, "cuBLAS: %s GEMM %.0f GFLOP/s\n", s.gpu.Precision(), s.peakGFLOPS)
	} else {
		if s.peakGFLOPS, err = blas.MeasureAtStartup(512, 300*time.Millisecond, blas.StartupTimeout, opts.Stop); err != nil {
			s.close()
			return nil, err
		}
		s.blasInfo = blas.Describe()
		fmt.Fprintf(out, "blas: %s | sgemm %.0f GFLOP/s on %d threads\n", s.blasInfo, s.peakGFLOPS, s.threads)
		if s.warning = blas.RateWarning(s.peakGFLOPS, s.threads); s.warning != "" {
			fmt.Fprintf(out, "\n*** %s ***\n\n", s.warning)
		}
	}
	m := cfg.Model
	fmt.Fprintf(out, "model: dim=%d layers=%d heads=%d kv_heads=%d ffn=%d seq=%d vocab=%d pos=%s softcap=%g compact=%v "+
		"act=%s qk_norm=%v untied_head=%v zero_init=%v | params %.2fM\n",
		m.Dim, m.Layers, m.Heads, m.KV(), m.FFN, m.Seq, m.Vocab, m.Pos, m.Softcap, m.Compact,
		m.Activation(), m.QKNorm, m.UntiedHead, m.ZeroInit, float64(s.m.NumParams())/1e6)
	o := cfg.Optim
	sched := fmt.Sprintf("%s over the budget, warmup_frac=%g", o.Schedule, o.WarmupFrac)
	if o.ScheduleUnit == "updates" {
		sched = fmt.Sprintf("%s over updates, warmup=%d horizon=%d", o.Schedule, o.Warmup, o.Horizon)
	}
	if o.Schedule == "wsd" {
		sched += fmt.Sprintf(" decay_frac=%g", o.DecayFrac)
	}
	fmt.Fprintf(out, "optim: %s lr=%.3g %s min_lr_frac=%g wd=%g clip=%g accum=%d loss_scale=%g | batch %d × %d tokens\n",
		o.Name, o.LR, sched, o.MinLRFrac, o.WeightDecay, o.GradClip, o.Accum, o.LossScale, cfg.Train.Batch, m.Seq)
	s.budget = newBudget(cfg.Train, s.m.FLOPsPerToken(), cfg.Train.Batch*m.Seq*o.Accum)
	fmt.Fprintf(out, "budget: %s\n", s.budget)
	bn := b.Name()
	if s.gpu != nil {
		bn = "cuda on " + s.gpu.DeviceName()
	}
	fmt.Fprintf(out, "data: %s | train %d tokens, val %d tokens | backend %s\n", ds.Dir, len(ds.Train), len(ds.Val), bn)
	return s, nil
}

// resume loads weights, optimizer state and counters from a checkpoint. The learning rate and
// schedule come from this run's config (the original silently took them from the checkpoint).
func (s *session) resume(path string) error {
	c, err := ckpt.Load(path)
	if err != nil {
		return err
	}
	if err := ckpt.CompareModel(c.Config.Model, s.cfg.Model); err != nil {
		return fmt.Errorf("resume %s: %w", path, err)
	}
	note, err := checkResumeData(c, s.ds, s.opts.AllowDataChange)
	if err != nil {
		return fmt.Errorf("resume %s: %w", path, err)
	}
	if note != "" {
		fmt.Fprintln(s.out, note)
	}
	if err := c.Restore(s.m.Params(), ckpt.ModelPrefix, s.cfg.Model); err != nil {
		return fmt.Errorf("resume %s: %w", path, err)
	}
	s.m.WeightsChanged()
	if c.Config.Optim.Name == s.cfg.Optim.Name {
		var st []optim.NamedTensor
		for _, t := range c.WithPrefix(ckpt.OptimPrefix) {
			st = append(st, optim.NamedTensor{Name: strings.TrimPrefix(t.Name, ckpt.OptimPrefix), Data: t.Data})
		}
		if err := s.opt.SetState(int(c.Counters.Step), st); err != nil {
			return fmt.Errorf("resume %s: optimizer state: %w", path, err)
		}
	} else {
		fmt.Fprintf(s.out, "resume: optimizer changed (%s → %s): starting fresh optimizer state\n", c.Config.Optim.Name, s.cfg.Optim.Name)
	}
	s.step = int(c.Counters.Step)
	s.prior = c.Counters
	// A resumed run still draws fresh windows: mix the lineage position into this run's seed.
	s.pcg = rand.NewPCG(uint64(s.cfg.Train.Seed), uint64(c.Counters.Step)*0x9e3779b97f4a7c15+1)
	now := "restarts over this run's budget"
	if s.cfg.Optim.ScheduleUnit == "updates" {
		now = fmt.Sprintf("now %.3g", optim.LR(s.cfg.Optim, s.step))
	}
	fmt.Fprintf(s.out, "resumed %s at update %d (%d tokens seen); lr and schedule from this run's config: lr=%.3g, schedule %s\n",
		path, c.Counters.Step, c.Counters.Tokens, s.cfg.Optim.LR, now)
	return nil
}

func (s *session) close() {
	if s.st != nil {
		s.st.Close()
	}
	closeBackend(s.m.Backend())
}

// loop runs optimizer updates until the budget, the step limit or ctx ends it.
func (s *session) loop(ctx context.Context) (status string, err error) {
	cfg := s.cfg
	accum := cfg.Optim.Accum
	gradScale := float32(optim.GradScale(cfg.Optim))
	start := time.Now()
	defer func() { s.trainTime = time.Since(start) }()
	var lastUpdate time.Duration
	for {
		select {
		case <-s.opts.Stop: // nil: never
			fmt.Fprintf(s.out, "interrupted after %d updates\n", s.runSteps)
			return StatusInterrupted, nil
		default:
		}
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("stopped: %w", err)
		}
		tu := time.Now()
		var loss float64
		for k := 0; k < accum; k++ {
			if err := data.SampleBatch(s.ds.Train, cfg.Model.Seq, cfg.Train.Batch, s.rng, s.in, s.tgt); err != nil {
				return "", err
			}
			l, err := s.st.ForwardBackward(s.in, s.tgt, cfg.Train.Batch, gradScale)
			if err != nil {
				return "", err
			}
			loss += l / float64(accum)
			s.micro++
			s.tokens += int64(len(s.in))
		}
		norm, err := s.st.PrepareGrads(accum)
		if err != nil {
			return "", err
		}
		if !num.Finite(loss) || !num.Finite(norm) {
			fmt.Fprintf(s.out, "step %d: diverged (loss %v, grad norm %v)\n", s.step, loss, norm)
			s.losses = append(s.losses, math.NaN())
			return StatusDiverged, nil
		}
		// The budget decides here, before the update, whether it is the last, so that the schedule
		// gives the last update progress 1 (its floor) under every budget kind.
		progress, last := s.budget.at(s.runSteps, time.Since(start), lastUpdate)
		lr := optim.Scheduled(cfg.Optim, s.step, progress)
		if s.opts.LR != nil {
			if lr, err = callLR(s.opts.LR, s.runSteps, lr); err != nil {
				return "", err
			}
		}
		if err := s.st.Update(lr); err != nil {
			return "", err
		}
		s.step++
		s.runSteps++
		lastUpdate = time.Since(tu)
		s.losses = append(s.losses, loss)
		p := Point{Step: s.runSteps, Loss: loss, LR: lr, TimeS: time.Since(start).Seconds(), Tokens: s.tokens, Progress: progress}
		s.curve = append(s.curve, p)
		if le := cfg.Train.LogEvery; le > 0 && (s.runSteps%le == 0 || s.runSteps == 1) {
			fmt.Fprintf(s.out, "step %5d | loss %.4f | lr %.3g | grad norm %.3f | %.0f ms/step | %.0f tok/s\n",
				s.runSteps, loss, lr, norm, lastUpdate.Seconds()*1e3, float64(s.tokens)/p.TimeS)
		}
		if s.opts.OnStep != nil {
			ev := Event{Point: p, BudgetKind: s.budget.kind, BudgetS: s.budget.seconds, MaxSteps: cfg.Train.Steps, TokensPerS: float64(s.tokens) / p.TimeS}
			if err := callOnStep(s.opts.OnStep, ev); err != nil {
				return "", err
			}
		}
		if last {
			return StatusOK, nil
		}
	}
}

// HookError is a panic in a caller-supplied hook (OnStep, LR), with the stack where it happened.
type HookError struct {
	Hook  string
	Value any
	Stack string
}

func (e *HookError) Error() string { return fmt.Sprintf("panic in %s hook: %v", e.Hook, e.Value) }

func callLR(f func(int, float64) float64, step int, sched float64) (lr float64, err error) {
	defer recoverHook("LR", &err)
	lr = f(step, sched)
	if !num.Finite(lr) || lr < 0 {
		return 0, fmt.Errorf("LR hook returned %v at step %d: a learning rate must be finite and ≥ 0", lr, step)
	}
	return lr, nil
}

func callOnStep(f func(Event), ev Event) (err error) {
	defer recoverHook("OnStep", &err)
	f(ev)
	return nil
}

func recoverHook(name string, err *error) {
	if r := recover(); r != nil {
		buf := make([]byte, 16<<10)
		buf = buf[:runtime.Stack(buf, false)]
		*err = &HookError{Hook: name, Value: r, Stack: string(buf)}
	}
}

// evaluate is the mean loss over the fixed validation windows (same loss as training).
func (s *session) evaluate() (float64, error) {
	seq := s.cfg.Model.Seq
	wins, err := s.ds.ValWindows(seq, s.cfg.Train.EvalWindows)
	if err != nil {
		return 0, err
	}
	b := s.cfg.Train.Batch
	var sum float64
	var n int
	for i := 0; i < len(wins); i += b {
		j := min(i+b, len(wins))
		for w := i; w < j; w++ {
			p := wins[w]
			copy(s.in[(w-i)*seq:], s.ds.Val[p:p+seq])
			copy(s.tgt[(w-i)*seq:], s.ds.Val[p+1:p+seq+1])
		}
		l, err := s.st.Loss(s.in[:(j-i)*seq], s.tgt[:(j-i)*seq], j-i)
		if err != nil {
			return 0, err
		}
		sum += l * float64(j-i)
		n += j - i
	}
	return sum / float64(n), nil
}

func (s *session) result() Result {
	r := Result{Status: StatusOK, Steps: s.runSteps, MicroSteps: s.micro, Tokens: s.tokens,
		Params: s.m.NumParams(), Backend: s.cfg.Backend, Device: "cpu", Curve: s.curve,
		BLAS: s.blasInfo.Backend, BLASCore: s.blasInfo.Core, BLASEnvCore: s.blasInfo.EnvCore, BLASCoreFits: s.blasInfo.Fits, SgemmGFLOPS: s.peakGFLOPS, Threads: s.threads, Warning: s.warning}
	if n := len(s.losses); n > 0 {
		k := min(n, lossWindow)
		for _, l := range s.losses[n-k:] {
			r.TrainLoss += l / float64(k)
		}
	}
	if tt := s.trainTime.Seconds(); tt > 0 && s.runSteps > 0 {
		r.TokensPerS = float64(s.tokens) / tt
		r.MsPerStep = tt * 1e3 / float64(s.runSteps)
		if s.peakGFLOPS > 0 {
			r.UtilPct = 100 * r.TokensPerS * s.m.FLOPsPerToken() / (s.peakGFLOPS * 1e9)
		}
	}
	backendStats(&r, s.m.Backend(), int64(s.micro)*int64(s.cfg.Train.Batch), s.trainTime, s.peakGFLOPS)
	if s.gpu != nil {
		r.Backend, r.Device = s.cfg.Backend, s.gpu.DeviceName()
		r.KernelVariants = "attention=" + string(s.gpu.Attention())
		if p := s.gpu.Precision(); p == cuda.BF16Fast { // the default GEMMs go unnamed
			r.KernelVariants += ",gemm=" + p.String()
		}
		if r.Backend == "auto" {
			r.Backend = "cuda"
		}
	}
	b := s.budget
	r.BudgetKind, r.Budget = b.kind, b.amount()
	r.ComputeGFLOPS = s.cfg.Train.ComputeRate
	if !(r.ComputeGFLOPS > 0) {
		r.ComputeGFLOPS = config.ReferenceGFLOPS
	}
	if b.kind == BudgetCompute {
		r.BudgetFLOPs = b.seconds * b.rate
	}
	r.FLOPs = b.updateCost * float64(s.runSteps)
	r.ComputeS = r.FLOPs / (r.ComputeGFLOPS * 1e9)
	return r
}

// save writes weights, optimizer state, the RNG and counters in one self-describing file.
func (s *session) save(path string) error {
	c := &ckpt.Checkpoint{Config: s.cfg, Meta: map[string]string{"data": s.ds.Dir, "bos": strconv.Itoa(s.ds.Manifest.BOS)}}
	if s.cfg.Model.Compact {
		b, err := json.Marshal(data.IDSet(s.ds.Seen()))
		if err != nil {
			return err
		}
		c.Meta["active"] = string(b)
	}
	c.Counters = ckpt.Counters{Step: int64(s.step), Micro: s.prior.Micro + int64(s.micro),
		Tokens: s.prior.Tokens + s.tokens, Seconds: s.prior.Seconds + s.trainTime.Seconds()}
	c.AddParams(ckpt.ModelPrefix, s.m.Params())
	for _, t := range s.opt.State() {
		c.Add(ckpt.OptimPrefix+t.Name, []int{len(t.Data)}, t.Data)
	}
	rs, err := s.pcg.MarshalBinary()
	if err != nil {
		return err
	}
	c.RNG = rs
	// What data this is, so that a resume on other data is noticed (datacheck.go).
	for k, v := range dataIdentity(s.ds) {
		c.Meta[k] = v
	}
	// The tokenizer travels inside the checkpoint, so `anelab sample` works without the data folder.
	if path, err := s.ds.TokenizerFile(); err == nil {
		if b, err := os.ReadFile(path); err == nil {
			c.Meta["tokenizer_kind"] = s.ds.Manifest.Tokenizer.Kind
			c.Meta["tokenizer"] = base64.StdEncoding.EncodeToString(b)
		}
	}
	return ckpt.Save(path, c)
}
