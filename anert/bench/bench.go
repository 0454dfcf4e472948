// Package bench measures the CPU training speed of the model: for a config it times optimizer
// steps (forward + backward + optimizer update) on random tokens, splits them by phase, compares
// the process's peak memory with the analytic need, and divides the model's FLOP rate by the
// sgemm throughput measured in the same process at the same thread count (MFU). Results print as a
// table and as benchstat lines (`benchstat old.txt new.txt` compares two runs), and can be set
// beside the PyTorch reference trainer of anert/bench/pytorch.
//
// Each config runs in its own process (Child), so that its peak RSS is its own.
//
// Timing on a shared machine: the timed steps run in groups, each right after a burst of 1024³
// sgemm products (~¼ s; see burster), and a step's MFU is its model FLOP rate over the sgemm rate
// of the bursts on either side of its group, so that contention from other processes lowers both
// sides of the ratio alike. The first step of a group finds its weights, optimizer state and
// activations displaced from the caches by the burst's operands (72 MB on 16 goroutines); the
// others follow a step, as every step of a training run does, and only they make the headline
// figures (the first ones are reported apart, as "after a burst"). The report gives the median
// over steps, and the fastest step's rate over the fastest single sgemm product of the run (what
// a quiet machine would show).
package bench

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/anelab/anelab/anert/blas"
	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/model"
	"github.com/anelab/anelab/anert/optim"
	"github.com/anelab/anelab/anert/tensor"
	"github.com/anelab/anelab/internal/par"
)

// Spec is one benchmarked config: its name and the run config whose model, optimizer and batch
// are used.
type Spec struct {
	Name   string
	Config config.Config
	Steps  int // timed optimizer steps
}

// Specs are the configs `make bench` measures: "default", the default config (dim 256, 6 layers,
// 4 heads, FFN 768, seq 256, vocab 4096, batch 4), and "original", the original system's shape
// (dim 768, 6 layers, 12 heads, FFN 2048, seq 512, vocab 9216 as after its vocab compaction,
// batch 1). Both train with Lion, soft-cap 30 and RoPE, as anert/bench/pytorch/train_ref.py does.
func Specs() []Spec {
	def := config.Default()
	orig := config.Default()
	orig.Model.Dim, orig.Model.Layers, orig.Model.Heads, orig.Model.FFN = 768, 6, 12, 2048
	orig.Model.Seq, orig.Model.Vocab = 512, 9216
	orig.Train.Batch = 1
	return []Spec{{"default", def, 16}, {"original", orig, 8}}
}

// SpecByName returns the named Spec.
func SpecByName(name string) (Spec, error) {
	var names []string
	for _, s := range Specs() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Spec{}, fmt.Errorf("bench: no config %q: the configs are %v", name, names)
}

// Options are the measurement settings.
type Options struct {
	Threads int // cores used: goroutines and BLAS threads (0: all, GOMAXPROCS)
	Warmup  int // untimed steps first (0: 2)
	Steps   int // overrides Spec.Steps when > 0
	// Group is the timed steps run back to back after each sgemm burst (0: 4): the first after
	// the burst (Step.AfterBurst), the rest as in training. 1 times every step right after a burst.
	Group   int
	PeakDur time.Duration // sgemm burst before each group of steps (0: 250 ms)
	PeakN   int           // size n of the bursts' n×n×n products (0: 1024)
	// ProfileLoops records a loop profile (LoopProfile) of a few more steps after the timed ones.
	ProfileLoops bool
	// Trace, with ProfileLoops, is a file prefix: the profiled steps' timeline (par.Profile.Record:
	// every loop and part, on which goroutine, when) goes to Trace.<config>.txt (WriteTimeline).
	Trace string
	// Alt, when set, is a second CPU step scheduling ("key=value,…", ANELAB_CPU_TUNE's keys, on
	// top of the process's): every other group of steps runs with it (Step.Alt), twice the steps
	// in all, so that the two are compared in the same process, group by group, under the same
	// load (WriteAB).
	Alt string
	// Batch overrides the sequences per step of the configs it names (0 or absent: the config's
	// own), e.g. to see how the step scales with the work each goroutine gets per loop.
	Batch map[string]int
}

// peakN is o.PeakN or its default, 1024.
func (o Options) peakN() int {
	if o.PeakN <= 0 {
		return 1024
	}
	return o.PeakN
}

// Check reports a negative setting, naming its anebench flag (0 is each one's default).
func (o Options) Check() error {
	fs := []flagValue{{"threads", int64(o.Threads)}, {"warmup", int64(o.Warmup)},
		{"steps", int64(o.Steps)}, {"group", int64(o.Group)},
		{"peak-dur", int64(o.PeakDur)}, {"peak-n", int64(o.PeakN)}}
	for _, name := range slices.Sorted(maps.Keys(o.Batch)) {
		fs = append(fs, flagValue{"batch " + name, int64(o.Batch[name])})
	}
	return nonNegative(fs...)
}

// flagValue is a setting and the anebench flag that sets it.
type flagValue struct {
	flag string
	v    int64
}

// nonNegative reports the first negative value among fs, naming its flag.
func nonNegative(fs ...flagValue) error {
	for _, f := range fs {
		if f.v < 0 {
			return fmt.Errorf("bench: --%s is negative; want 0 (the default) or more", f.flag)
		}
	}
	return nil
}

// group is o.Group or its default, 4.
func (o Options) group() int {
	if o.Group <= 0 {
		return 4
	}
	return o.Group
}

// burstDur is o.PeakDur or its default, 250 ms.
func (o Options) burstDur() time.Duration {
	if o.PeakDur <= 0 {
		return 250 * time.Millisecond
	}
	return o.PeakDur
}

// Step is one timed optimizer step and the sgemm burst before its group (Options.Group).
type Step struct {
	Ns         int64 // wall time of the step
	Forward    int64 // ns by phase (model.Timings; the optimizer timed here)
	Backward   int64
	WeightGrad int64
	Optimizer  int64
	Loops      int64 // parallel loops the step ran (par.Loops): each ends in a wait for its slowest part
	Sgemm      Burst // before the step's group, w goroutines on one BLAS thread each
	// AfterBurst: the first step of its group, right after the burst rather than after a step.
	AfterBurst bool
	// Next is the burst after the step's group (the next group's, or Result.SgemmAfter).
	Next Burst
	// Alt: the step ran with Options.Alt's scheduling.
	Alt bool
}

// Burst is the sgemm throughput of back-to-back 1024³ products, in GFLOP/s: the burst's mean rate
// and its fastest product's.
type Burst struct{ Mean, Best float64 }

// Memory is the analytic memory need of training, in bytes.
type Memory struct {
	Weights, Grads, OptState, Activations int64
}

// Total is the sum of the parts.
func (m Memory) Total() int64 { return m.Weights + m.Grads + m.OptState + m.Activations }

// Result is one config's measurements.
type Result struct {
	Name          string
	Threads       int
	BLAS, Kernels string // sgemm backend and element-wise kernel implementation
	Core          string // the BLAS's kernel set (OpenBLAS's core), as blas.Info.String says it
	Params        int
	Batch, Seq    int
	FLOPsPerToken float64
	Steps         []Step
	SgemmN        int      // the bursts' products are SgemmN³
	SgemmAfter    Burst    // the parallel burst after the last step
	Threaded      [2]Burst // one product at a time on w BLAS threads: before the steps, after them
	PeakRSS       int64    // bytes, the process's high-water mark (0 where unknown)
	Need          Memory
	Loss          float64      // last step's loss (a sanity check: about ln(vocab) at init)
	Loops         *LoopProfile `json:",omitempty"` // with Options.ProfileLoops
	// AltTune is the scheduling the Alt steps ran with (model.TuneString), with Options.Alt.
	AltTune string `json:",omitempty"`
	// AltNeed is Need under that scheduling (its split's gradient sets, wt's copies), with Options.Alt.
	AltNeed *Memory `json:",omitempty"`
}

// Tokens is the number of tokens per optimizer step.
func (r Result) Tokens() int { return r.Batch * r.Seq }

// Rig is a model and its optimizer set up to run timed optimizer steps on random tokens.
type Rig struct {
	Model   *model.Model
	cfg     config.Config
	opt     optim.Optimizer
	ins     [4][]uint16 // random batches, drawn before timing (data sampling is not measured)
	tgts    [4][]uint16
	k       int
	threads int
	timings model.Timings
}

// NewRig builds cfg's model (weights from cfg.Train.Seed) and optimizer on cfg.Train.Threads
// threads (0: all cores), with phase timing on.
func NewRig(cfg config.Config) (*Rig, error) {
	threads := par.Threads(cfg.Train.Threads)
	m, err := model.New(cfg.Model, uint64(cfg.Train.Seed), nil, model.Threads(threads))
	if err != nil {
		return nil, err
	}
	opt, err := optim.New(cfg.Optim, m.Params(), optim.Threads(threads))
	if err != nil {
		return nil, err
	}
	r := &Rig{Model: m, cfg: cfg, opt: opt, threads: threads}
	n := cfg.Train.Batch * cfg.Model.Seq
	rng := rand.New(rand.NewPCG(uint64(cfg.Train.Seed), 1))
	for i := range r.ins {
		r.ins[i], r.tgts[i] = make([]uint16, n), make([]uint16, n)
		for j := range n {
			r.ins[i][j], r.tgts[i][j] = uint16(rng.IntN(cfg.Model.Vocab)), uint16(rng.IntN(cfg.Model.Vocab))
		}
	}
	m.SetTimings(&r.timings)
	return r, nil
}

// Step runs one optimizer step as the training loop does — ForwardBackward on the next random
// batch, Prepare (the gradient norm and clip factor), the optimizer update (unscaling, clipping and
// zeroing the gradients as it reads them), WeightsChanged — and returns its phase times and loss.
// On many cores the update is deferred work in the next step's forward pass (Model.DeferUpdate,
// as in training): its time is then in that step's Forward, and Optimizer is the norm's alone;
// each timed step still does one update's work (the previous step's).
func (r *Rig) Step() (st Step, loss float64, err error) {
	r.timings = model.Timings{}
	loops0 := par.Loops()
	t0 := time.Now()
	loss, err = r.Model.ForwardBackward(r.ins[r.k%4], r.tgts[r.k%4], r.cfg.Train.Batch, float32(optim.GradScale(r.cfg.Optim)))
	if err != nil {
		return st, 0, err
	}
	t1 := time.Now()
	ps := r.Model.Params()
	p := optim.Prepare(ps, r.cfg.Optim, 1, r.threads)
	if !optim.UpdateOrDefer(r.opt, ps, optim.LR(r.cfg.Optim, r.opt.T()), p, r.Model) {
		r.Model.WeightsChanged()
	}
	r.k++
	t2 := time.Now()
	st.Loops = int64(par.Loops() - loops0)
	st.Ns, st.Optimizer = t2.Sub(t0).Nanoseconds(), t2.Sub(t1).Nanoseconds()
	st.Forward, st.Backward, st.WeightGrad = int64(r.timings.Forward), int64(r.timings.Backward), int64(r.timings.WeightGrad)
	return st, loss, nil
}

// Need is the analytic memory need of training (see Memory).
func (r *Rig) Need() Memory {
	p := int64(r.Model.NumParams()) * 4
	states := p // Lion: m
	switch r.cfg.Optim.Name {
	case "adamw":
		states = 2 * p // m, v
	case "muon": // m for every parameter, v for the AdamW ones (not the 2-D matrices)
		for _, q := range r.Model.Params() {
			if q.Group != tensor.Matrix || len(q.Shape) != 2 {
				states += int64(q.Size()) * 4
			}
		}
	}
	// A split step's replicas each hold a set of gradients; the shares' activations add up to the batch's.
	grads := p * int64(r.Model.SplitShares(r.cfg.Train.Batch))
	// On many cores the layer matrices' transposed copies (model's wt) are weights too.
	return Memory{Weights: p + int64(r.Model.TransposedFloats())*4, Grads: grads, OptState: states, Activations: int64(r.Model.SavedFloats(r.cfg.Train.Batch)) * 4}
}

// Measure builds the spec's model with random weights and times optimizer steps on random tokens,
// in groups of o.Group after sgemm bursts. It sets GOMAXPROCS and the BLAS thread count to o.Threads
// and leaves them so (GOMAXPROCS to $ANELAB_GOMAXPROCS instead when that is set: a measurement
// knob for the Go scheduler's side of a step, as ANELAB_CPU_TUNE is for the model's).
func Measure(spec Spec, o Options) (Result, error) {
	if err := o.Check(); err != nil {
		return Result{}, err
	}
	cfg := spec.Config
	if b := o.Batch[spec.Name]; b > 0 {
		cfg.Train.Batch = b
	}
	threads := o.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	procs := threads
	if v := os.Getenv("ANELAB_GOMAXPROCS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Result{}, fmt.Errorf("ANELAB_GOMAXPROCS=%q: want a positive number of processors", v)
		}
		procs = n
	}
	runtime.GOMAXPROCS(procs)
	blas.SetThreads(threads)
	cfg.Train.Threads = threads
	steps := spec.Steps
	if o.Steps > 0 {
		steps = o.Steps
	}
	warmup := o.Warmup
	if warmup <= 0 {
		warmup = 2
	}
	burstDur := o.burstDur()
	rig, err := NewRig(cfg)
	if err != nil {
		return Result{}, err
	}
	for range warmup {
		if _, _, err := rig.Step(); err != nil {
			return Result{}, err
		}
	}
	m := rig.Model
	res := Result{Name: spec.Name, Threads: threads, BLAS: blas.Backend, Core: blas.Describe().String(), Kernels: model.Kernels,
		Params: m.NumParams(), Batch: cfg.Train.Batch, Seq: cfg.Model.Seq, FLOPsPerToken: m.FLOPsPerToken()}
	res.SgemmN = o.peakN()
	b := newBurster(res.SgemmN, threads)
	res.Threaded[0] = b.threaded(burstDur)
	if o.Alt != "" {
		steps *= 2
		restore, err := model.WithTune(o.Alt) // a bad alternative fails before any step
		if err != nil {
			return Result{}, err
		}
		need := rig.Need()
		res.AltNeed = &need
		restore()
	}
	var sg Burst
	var restore func() // set while Options.Alt's scheduling is on
	own := func() {    // back to the process's scheduling, with no update in flight
		if restore != nil {
			m.FinishUpdate()
			restore()
			restore = nil
		}
	}
	defer own() // error returns too
	for i := range steps {
		first := i%o.group() == 0
		alt := o.Alt != "" && (i/o.group())%2 == 1
		if first {
			own()
			if alt {
				m.FinishUpdate()
				if restore, err = model.WithTune(o.Alt); err != nil {
					return Result{}, err
				}
				res.AltTune = model.TuneString()
			}
			sg = b.parallel(burstDur)
		}
		st, loss, err := rig.Step()
		if err != nil {
			return Result{}, err
		}
		st.Sgemm, st.AfterBurst, st.Alt, res.Loss = sg, first, alt, loss
		res.Steps = append(res.Steps, st)
	}
	own()
	res.SgemmAfter = b.parallel(burstDur)
	for i := range res.Steps {
		res.Steps[i].Next = res.burstAfter(i)
	}
	res.Threaded[1] = b.threaded(burstDur)
	blas.SetSerial(true)
	if o.ProfileLoops {
		if res.Loops, err = profileLoops(rig, res.SgemmN, burstDur, res.FLOPsPerToken*float64(res.Tokens()), traceFile(o.Trace, spec.Name)); err != nil {
			return Result{}, err
		}
	}
	res.Need = rig.Need()
	res.PeakRSS = peakRSS()
	return res, nil
}

// burster runs sgemm bursts of n×n×n products on its own matrices (one C per goroutine), at the
// same thread count w as the steps, two ways. Threaded: one product at a time on w BLAS threads.
// Parallel: w goroutines each multiplying on one BLAS thread, as a training step uses the cores.
// On a quiet machine the two agree; on a loaded one Threaded drops well below, because OpenBLAS's
// threads wait for each other at barriers. Threaded is measured before and after the steps only,
// then left to rest: OpenBLAS's idle threads spin for a while after a call, and would slow a step.
type burster struct {
	n, w int
	a, b []float32
	c    [][]float32
}

func newBurster(n, w int) *burster {
	bu := &burster{n: n, w: w, a: make([]float32, n*n), b: make([]float32, n*n), c: make([][]float32, w)}
	for i := range bu.a {
		bu.a[i], bu.b[i] = float32(i%7)*0.25, float32(i%5)*0.5
	}
	for i := range bu.c {
		bu.c[i] = make([]float32, n*n)
	}
	return bu
}

func (bu *burster) mul(i int) time.Duration {
	t := time.Now()
	blas.Sgemm(false, false, bu.n, bu.n, bu.n, 1, bu.a, bu.n, bu.b, bu.n, 0, bu.c[i], bu.n)
	return time.Since(t)
}

func (bu *burster) rate(products int, seconds float64) float64 {
	return 2 * float64(bu.n) * float64(bu.n) * float64(bu.n) * float64(products) / seconds / 1e9
}

// threaded measures for about d on w BLAS threads (after a warm-up product), then rests 300 ms.
func (bu *burster) threaded(d time.Duration) Burst {
	blas.SetSerial(false)
	bu.mul(0)
	best, iters, start := time.Duration(math.MaxInt64), 0, time.Now()
	for ; iters < 2 || time.Since(start) < d; iters++ {
		best = min(best, bu.mul(0))
	}
	b := Burst{bu.rate(iters, time.Since(start).Seconds()), bu.rate(1, best.Seconds())}
	time.Sleep(300 * time.Millisecond)
	return b
}

// parallel measures for about d with w goroutines on one BLAS thread each (BLAS's serial mode,
// which a training step uses too).
func (bu *burster) parallel(d time.Duration) Burst {
	blas.SetSerial(true)
	var wg sync.WaitGroup
	bests, counts := make([]time.Duration, bu.w), make([]int, bu.w)
	start := time.Now()
	for g := range bu.w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bests[g] = time.Duration(math.MaxInt64)
			for ; counts[g] < 2 || time.Since(start) < d; counts[g]++ {
				bests[g] = min(bests[g], bu.mul(g))
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	var b Burst
	for g := range bu.w {
		b.Mean += bu.rate(counts[g], el)
		b.Best += bu.rate(1, bests[g].Seconds())
	}
	return b
}

// TokensPerS is the step's rate.
func (r Result) TokensPerS(s Step) float64 { return float64(r.Tokens()) / (float64(s.Ns) / 1e9) }

// Sgemm is the sgemm rate step i is measured against: the mean of the parallel bursts on either
// side of its group, or the threaded rate (the mean of the two threaded bursts) if that is higher.
func (r Result) Sgemm(i int) float64 {
	after := r.Steps[i].Next
	if after.Mean == 0 { // a Result not made by Measure (Step.Next unset)
		after = r.burstAfter(i)
	}
	return max((r.Steps[i].Sgemm.Mean+after.Mean)/2, (r.Threaded[0].Mean+r.Threaded[1].Mean)/2)
}

// burstAfter is the burst after step i's group: the next group's, or SgemmAfter after the last.
func (r Result) burstAfter(i int) Burst {
	for k := i + 1; k < len(r.Steps); k++ {
		if r.Steps[k].AfterBurst {
			return r.Steps[k].Sgemm
		}
	}
	return r.SgemmAfter
}

// Variant is r with only the steps that ran with Options.Alt's scheduling (alt) or without it,
// named NAME+alt for the former, whose Result has no loop profile (the profile's steps run
// after the timed ones, with the process's own scheduling).
func (r Result) Variant(alt bool) Result {
	v := r
	v.Steps = nil
	for _, st := range r.Steps {
		if st.Alt == alt {
			v.Steps = append(v.Steps, st)
		}
	}
	if alt {
		v.Name += "+alt"
		v.Loops = nil
		if r.AltNeed != nil {
			v.Need = *r.AltNeed
		}
	}
	return v
}

// MFU is step i's model FLOP rate (FLOPsPerToken × tokens/s) over Sgemm(i), in percent: the step
// and the sgemm bursts on either side of its group are measured within a second or two, under the
// same load.
func (r Result) MFU(i int) float64 {
	return 100 * r.FLOPsPerToken * r.TokensPerS(r.Steps[i]) / 1e9 / r.Sgemm(i)
}

// BestSgemm is the fastest single sgemm product of the run, either way (GFLOP/s).
func (r Result) BestSgemm() float64 {
	best := max(r.SgemmAfter.Best, r.Threaded[0].Best, r.Threaded[1].Best)
	for _, s := range r.Steps {
		best = max(best, s.Sgemm.Best)
	}
	return best
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
