package model

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/anelab/anelab/internal/par"
)

// cpuTune is how the CPU step schedules its work on many cores, where only a measurement on such
// a machine can say what is best (this project's own machine has 2 cores). The defaults are the
// measured choices; ANELAB_CPU_TUNE overrides them for a measurement ("defer=0,dblocks=2",
// anebench sweeps with it), and New reports a malformed value.
type cpuTune struct {
	// deferMin: from this many goroutines on, a layer's weight gradients (a third of the step's
	// FLOPs, needed only by the optimizer) are deferred work (par.Defer) that goroutines take at
	// the ends of other loops instead of waiting there, rather than products of the backward's last
	// loops (fuseDW). 0: never.
	deferMin int
	// deferBlocks: the deferred products' blocks per goroutine (small blocks fill short waits, and
	// a goroutine busy with one joins the next loop late by at most a block). 4: with oneDNN on 16
	// cores (6 Dec 2026, 5 rounds over two calls) the original's shape ran 170–178 ms a step
	// with 4 against 183–191 with 2; 8 and 16 were slower than 4, the default config within noise.
	deferBlocks int
	// shareTol: a loop of several products is cut finer (up to 4 blocks per goroutine) until its
	// goroutines, taking blocks in turn, finish within this factor of a perfect share (plan).
	shareTol float64
	// loneBlocks: blocks per goroutine of a lone product (or a shared grid, or a chain's stage) on
	// more than 4 goroutines (0: 1, or 2 for 10⁸ multiply-adds or more). 4: on 16 cores (6 Dec
	// 2026, 6 rounds over two calls, in turn with the former 0) the default config ran at 48.4%
	// MFU against 46.3% (better in 5 of 6 rounds), the original's shape at 58.1% against 56.3%;
	// the timeline showed these loops' goroutines waiting 20–40% of the time at their ends with 2
	// blocks each. 3, 6 and 8 were no better than 0 or 4.
	loneBlocks int
	// loneNarrow, when set, replaces loneBlocks in a model no wider than homeDim. 8: on 16 cores
	// with home=2 (7 Dec 2026, one H100 host, anebench --alt lone=8, four runs of 12–16 groups)
	// the default config (dim 256) ran at 0.927, 0.974, 0.984 and 0.991× the ms a step, faster
	// in 38 of its 56 groups (sign test p < 0.01), while the original's shape (dim 768) ran at
	// 1.040 and 1.041× (faster in 1 and 0 of 6), so it keeps loneBlocks. 16 instead of 8, on main's
	// step (7 Dec 2026, 21:44 UTC): default config 1.025× (3 of 8), original 1.002×.
	loneNarrow int
	// fillSlack: workers take deferred parts only where they are expected to fit (par.SetFillSlack).
	fillSlack bool
	// wholePairs: the attention backward's items are whole (sequence, head) pairs when they divide
	// evenly over the goroutines (one loop instead of two; CPU.group).
	wholePairs bool
	// chain: the FFN's two GEMM loops (forward: W1|W3 then W2; backward with the weight gradients
	// deferred: W2ᵀ then W1|W3ᵀ) run as one loop whose second stage starts on each block of rows
	// as soon as the first stage has finished them (team.gemmChain).
	chain bool
	// update: when the weight gradients are deferred (deferMin), an elementwise optimizer's update
	// is deferred work too, run in the next forward pass, each layer's parts before the layer
	// (Model.DeferUpdate).
	update bool
	// fillYield: a worker yields after each deferred part it runs in a loop's wait
	// (par.SetFillYield). On 16 cores (6 Dec 2026, 5 rounds over two calls, the defaults and
	// fillyield=1 in turn) each step of the default config ran faster with it in all 5 rounds (47.5
	// against 49.8 ms on average), the original's shape at 56.3% MFU against 53.8% (better in 4).
	fillYield bool
	// ntA, ntB, nnA, nnB: what gridOf counts for each element of a block's rows of op(A) and
	// columns of op(B), in multiply-adds, for products whose B is stored transposed (nt, x·Wᵀ) or
	// not (nn, dy·W). oneDNN runs the step's blocks in its no-copy kernels, for which on one core
	// x·Wᵀ blocks ran fastest narrow (1024×256 in 8×8 blocks: 125 GFLOP/s against 102 in 16×4) and
	// dy·W blocks as whole rows (64×1: 164 against 139). On 16 cores (6 Dec 2026, two H100 hosts, 6
	// rounds in turn) nta=8,ntb=32 (narrow x·Wᵀ blocks) ran the default config at 50.9% MFU
	// against 48.7% with packAlpha for both, the original's shape at 65.3% against 63.7% (better
	// in 5 and 4 rounds, within 0.3 points in the others): the default. Whole rows for dy·W (nna=64,nnb=4) ran the
	// original's shape at 57–62% against 63.7–70.3%: nn stays at packAlpha.
	ntA, ntB, nnA, nnB int
	// tnA, tnB: the same for products whose A is stored transposed, the weight gradients
	// dW = dyᵀ·x (packAlpha each by default). Until these existed nna, nnb weighed them too.
	tnA, tnB int
	// attnBlock, when set, replaces the CPU backend's attention block (CPU.Block, 64 rows). On 16
	// cores (6 Dec 2026, one host, 4 rounds in turn) ablock=128 ran the default config at 50.7%
	// MFU against 49.5% and the original's shape at 65.5% against 66.4%: not a default.
	attnBlock int
	// deferSets: sets of the backward's shared scratch (at most the layers) when the weight
	// gradients are deferred. A deferred product reads its layer's set, so the backward drains it
	// (a loop of the parts left) before the layer that many below reuses the set: with 2, before
	// every layer's FFN and attention backward. On 16 cores (6 Dec 2026, one host, 6 rounds in
	// turn) dsets=6 ran the default config at 50.9% MFU against 52.7% (and 240 MB more): 2 stays.
	deferSets int
	// inPlaceSwiGLU: the CPU backend's SwiGLU backward writes DH1 and DH3 over the layer's H1 and
	// H3, which it reads for the last time there, instead of into the shared scratch: the writes
	// land on the lines the kernel has just read rather than on two more [N, F] matrices a layer
	// (on 16 cores the backward took 5.2% of the default config's CPU time, three times its
	// forward's). Paired A/B runs (anebench --alt swip=1, 6 Dec 2026): on 16 cores, four runs on
	// two hosts, the default config at 0.957, 1.057, 1.001, 0.951× the ms a step (medians over 8
	// groups each, spreads ±10%), the original's shape at 1.013, 0.991, 0.997, 0.927×; on 2 cores
	// 1.009× and 1.008×. Within the groups' spread: off until more say. On main's step (7 Dec 2026,
	// one host, two calls): default config 0.955× (6 of 8) and 1.008× (7 of 16), original 0.952×
	// and 0.993×. Still within the spread: off.
	inPlaceSwiGLU bool
	// home: the loops whose parts are blocks of rows (the GEMMs' grids, the row chains) split
	// their blocks into one contiguous range per goroutine, claimed first by its owner
	// (par.RunHomed): 1, the owner is the CPU (each CPU gets the same rows loop after loop, and a
	// GEMM block reads the rows of A its own core wrote); 2, the owner is the worker index (each
	// goroutine runs consecutive blocks, of the same rows of A, but not the same rows each loop).
	// 0: blocks are claimed in order by whichever goroutine is free. On 16 cores (7 Dec 2026, one
	// H100 host, anebench --alt home=2, 3 runs of 12 groups) home=2 ran the default config (dim
	// 256) at 0.946, 0.953 and 0.947× the ms a step (faster in 11, 7 and 9 of 12 groups), and the
	// original's shape (dim 768) at 1.032, 1.021 and 1.061× (faster in 2, 0 and 2 of 6): the
	// default is 2 for models no wider than homeDim, 0 above. Two shapes measured: where between
	// them the gain turns into a loss is not known.
	home int
	// homeDim: home and loneNarrow apply to models of this width or less (the team's dim).
	homeDim int
	// fusedAttn: the most goroutines a team may have for its attention to run through the fused C
	// kernels where they apply (attnFused); 0: never. Paired A/B runs (anebench --alt fattn=0): on
	// this project's 2 cores (7 Dec 2026, three runs a config) the step without them took
	// 1.015–1.026× (default config, slower in 39 of 60 groups) and 1.019–1.031× (original's shape,
	// 24 of 30) the time; on the 16 cores of an H100 host (7 Dec 2026, 07:03 UTC, 10 rounds) 0.946×
	// (default config, faster in 30 of 40 groups, sign test p < 0.01) and 0.969× (original's shape,
	// 12 of 20), though one head on one core of that Xeon ran 1.2–1.6× faster fused
	// (BenchmarkAttentionHead); on 2 and 8 of its cores, the default config 1.016× (5 of 12) and
	// 0.983× (6 of 12). Where between 8 and 16 goroutines the gain turns into a loss is not known.
	// Later builds on 16 cores (anebench --alt fattn=16: with ÷ without): default config 1.045,
	// 1.012, 0.991, 0.994, 1.016 (7 Dec 07:40–19:05 UTC), even; original's shape 0.990, 0.933,
	// 0.972, 0.973 (8 of 8), 0.978 (8 of 12), 2–3% faster. 8 stays: the default config is the one
	// short of its target, and the original's shape alone would set a rule by sequence length
	// on two shapes' evidence (RESULTS.md, "Results (16 cores, 7 Dec 2026, 18:55–19:44 UTC)").
	fusedAttn int
	// fusedAttnFwd: on teams larger than fusedAttn, up to this many goroutines, the forward pass's
	// attention alone runs through the fused kernel (attnFusedFwd), for sequences of at least
	// fusedFwdSeq tokens, the backward on BLAS; 0: as fusedAttn. What fattn=16 did for the
	// original's shape, whose 12 pairs on 16 goroutines keep the backward on BLAS anyway
	// (CPU.group: the two-loop path), was this: 0.933–0.990× the time over six calls (7 Dec 07:40
	// – 8 Dec 00:33 UTC), faster in every one; fattnf=16 itself 0.992× and 0.980× (8 Dec 00:31 and
	// 00:41 UTC). The default config (T = 256; whole pairs, whose backward fattn=16 fused too) did
	// not gain, though its forward loop ran ~1.4× faster fused on all cores at once
	// (BenchmarkAttentionHeads): fattnf=16 took 0.999× (8 of 16 groups) and 1.028× (9 of 24) the
	// time (RESULTS.md, "Results (16 cores, 8 Dec 2026, 00:30–01:22 UTC)"). 16: measured there;
	// larger teams are unmeasured and keep the BLAS forward.
	fusedAttnFwd int
	// fusedFwdSeq: fusedAttnFwd applies to sequences of at least this many tokens (fattnft). 512:
	// the original's shape (T = 512) ran faster with the fused forward on 16 cores in eight calls
	// of nine (the ninth, on a loaded host, 1.021× in 6 groups), the default config (T = 256) not; the fused kernel's lead over the BLAS path's
	// blk×T score rows should grow with T. Two shapes' evidence: 0 fuses every length.
	fusedFwdSeq int
	// attnChain: the attention's items and the product after them (the forward's O = A·Woᵀ, the
	// backward's dXn) run as one loop, each block of the product as soon as every head of its rows
	// is done (team.attnThen), where they had two; 2: the forward's projections q, k, v too, each
	// item as soon as the rows it reads are projected; 0: each in a loop of its own. On 16 cores
	// (7 Dec 2026) these loops ended with 13–32% of their goroutine time idle; with achain=2 the
	// default config ran 42 loops a step instead of 58 and its forward and backward passes took
	// 31.6 ms against 33.1 — but the deferred weight gradients that had filled those waits then
	// ran in waitDW's loops instead (weight-grad 7.3 against 5.7 ms), and the step was no faster.
	// Paired A/B runs (anebench --alt achain=0 against achain=2, two H100 hosts): default config
	// 0.994 (faster without in 9 of 16 groups), 0.966 (21 of 32, p = 0.11); original's shape 0.995
	// (4 of 8), 1.052 (4 of 16, p = 0.08); on 2 cores 0.987 and 1.006. Within the groups' spread:
	// 0 (off) until more say. (anert/bench/RESULTS.md, "Results (16 cores, 7 Dec 2026,
	// 07:40–08:25 UTC)".)
	attnChain int
	// split: on 2 to this many goroutines, a step whose batch they divide runs as one share of the
	// batch a goroutine, each share the whole pass on its goroutine alone, and their gradients
	// summed (Model.splitWays, split.go); 0: never. On this project's 2 cores (AMD EPYC, 7 Dec
	// 2026, anebench --threads 2 --alt split=0) the default config's step took 229 ms split against
	// 262 in loops (1.12×, faster split in all 8 groups, sign test p = 0.01; MFU 81% against 71%),
	// as two single-goroutine processes had trained 1.23× the tokens of one on both cores
	// (cpu16.sh teams). On 2 cores of the device's Xeon the step in loops took 0.985× the split
	// step's time (faster in 4 of 8 groups: no difference). On 4 of its cores split=4 took 0.964×,
	// 0.990× and 0.961× the time of the step in loops (three runs, faster in 35 of 52 groups, sign
	// test p ≈ 0.02): 4, so that 2 and 4 goroutines split a batch they divide (the default config's
	// 4 sequences; RESULTS.md, "Results (16 cores, 7 Dec 2026, 09:36–10:11 UTC)"). The original's
	// shape (batch 1) is never split.
	split int
	// teams: on more goroutines than split, a step whose batch and goroutines this many divide runs
	// as this many shares, each the whole pass of its sequences on a team of goroutines with a
	// pool of its own (par.Team), their gradients summed (split.go); 0 or 1: never. 0: on 16
	// cores of H100 hosts (7 Dec 2026, anebench --alt teams=…, three calls) the default config's
	// step took 1.049–1.062× (teams=4) and 1.014–1.031× (teams=2) the time of the step in loops,
	// faster in 5–6 of 12–16 groups; on 8 cores 1.017–1.048×, on 4 cores 0.986× (6 of 12). A team
	// still gets 64 rows of each product a goroutine, and the step waits for its slowest team,
	// whose work no other team can take (RESULTS.md, "Results (16 cores, 7 Dec 2026, 09:36–09:47
	// UTC)").
	teams int

	// transW: where the update is deferred (many cores), the forward products read a transposed
	// copy of each layer matrix, written by the update's parts (transposed.go): x·(Wᵀ) blocks
	// read B as it lies, which oneDNN's no-copy kernels ran 1.1–1.4× faster than x·Wᵀ blocks of
	// the same shapes on this project's 2 cores (instep, 7 Dec 2026). In the 16-core step the
	// default config took 0.951× and 0.958× the time without it (faster in 9 of 12 and 15 of 24
	// groups), the original 0.969× (5 of 6) and 1.011× (5 of 12): RESULTS.md, "Results (16
	// cores, 7 Dec 2026, 13:40–14:00 UTC)"; ALTS="wt=0" bash anert/bench/cpu16.sh ab.
	transW bool

	// headChain: on more than 4 goroutines the head's loss runs on the classifier's blocks of rows
	// as its row epilogue (gemmSpec.rowPost: each block of 64 rows of logits as soon as its
	// columns are computed, by the goroutine that computes the last of them, while they are still
	// in its cache), where it had a loop of its own over the 16 MB of logits (the default config);
	// 2: in a training step, dxf = dlogits·E_c runs in the same loop too, as a chain's second
	// stage on each block of rows whose loss is done (team.gemmChain), where it was the backward's
	// first loop. 0: a loop each. Paired A/B runs on 16 cores of H100 hosts (7 Dec 2026, two
	// calls, anebench --alt hchain=1 and hchain=2): default config 0.992 and 1.030× the ms a step
	// with 1, 1.038 and 0.981× with 2; original shape 1.011, 1.045× and 0.973, 1.029×. Within the
	// groups' spread: 0 (RESULTS.md, "Results (16 cores, 7 Dec 2026, 17:05–17:15 UTC)").
	headChain int
	// clsFirst: the classifier's weight gradient dE_c = dlogitsᵀ·xf (deferred on many cores) is
	// offered before dxf = dlogits·E_c's loop rather than after it, so that its parts fill that
	// loop's end, where on 16 cores the goroutines had no deferred work to take and waited 29% of
	// the loop's time (the default config's loop timeline, 7 Dec 2026, 17:08 UTC). Off: on 16
	// cores (ALTS="clsfirst=1 hchain=1,clsfirst=1" ROUNDS=3 bash anert/bench/cpu16.sh all, 7 Dec
	// 18:55 UTC) its parts did fill that loop's end (idle 9.2% → 4.5% of it, 8% filled), but the
	// step took 0.997× (default config, 6 of 12 groups faster) and 1.025× (original's shape, 2 of
	// 6) the time, and with hchain=1 1.000× and 1.016×.
	clsFirst bool
	// keepP: where the attention runs on the BLAS path (not attnFused: 16 goroutines by default),
	// the forward pass keeps each (sequence, head) pair's softmax P, T×T, in the layer's saved
	// activations (LayerActs.P), and the backward reads it instead of computing S = scale·Q·Kᵀ
	// and its exponentials again: one of the backward's five products, and its exp, for 4 MB a
	// layer of the default config (B·H·T² floats; 12.6 MB the original's shape). Off: on 16 cores
	// of one H100 host (7 Dec 2026, 22:25–22:31 UTC, anebench --alt keepp=1, three calls) the
	// attention backward's loop took 4.52 against 4.96 and 5.35 against 5.54 ms a step (two loop
	// profiles in turn), but the step 0.980, 0.979 and 0.998× the time (default config, faster in
	// 33 of 56 groups) and 0.991, 1.029, 0.991× (original's shape): within the groups' spread, for
	// 11% more saved activations (RESULTS.md, "Results (16 cores, 7 Dec 2026, 22:25–22:31 UTC)").
	keepP bool
}

var tune = cpuTune{deferMin: 8, deferBlocks: 4, shareTol: 1.1, loneBlocks: 4, loneNarrow: 8, wholePairs: true, chain: true, update: true, fillYield: true, ntA: 8, ntB: 32, nnA: packAlpha, nnB: packAlpha, tnA: packAlpha, tnB: packAlpha, deferSets: 2, home: 2, homeDim: 256, fusedAttn: 8, fusedAttnFwd: 16, fusedFwdSeq: 512, split: 4, transW: true}

// tuneOnce parses ANELAB_CPU_TUNE into tune once; tuneErr is what New reports.
var (
	tuneOnce sync.Once
	tuneErr  error
)

// loadTune applies ANELAB_CPU_TUNE (once) and returns its error, if any.
func loadTune() error {
	tuneOnce.Do(func() {
		if v := os.Getenv("ANELAB_CPU_TUNE"); v != "" {
			t, err := parseTune(tune, v)
			if err != nil {
				tuneErr = fmt.Errorf("ANELAB_CPU_TUNE=%q: %w", v, err)
				return
			}
			tune = t
		}
		setTune(tune)
	})
	return tuneErr
}

// knob is one of ANELAB_CPU_TUNE's keys and the field of a cpuTune it sets: a number, a 0/1
// switch or (sharetol) a float.
type knob struct {
	key string
	n   *int
	on  *bool
	f   *float64
}

// knobs are t's keys, in the order TuneString prints them.
func (t *cpuTune) knobs() []knob {
	return []knob{{key: "defer", n: &t.deferMin}, {key: "dblocks", n: &t.deferBlocks}, {key: "sharetol", f: &t.shareTol},
		{key: "lone", n: &t.loneBlocks}, {key: "lonen", n: &t.loneNarrow}, {key: "whole", on: &t.wholePairs}, {key: "fillslack", on: &t.fillSlack},
		{key: "chain", on: &t.chain}, {key: "update", on: &t.update}, {key: "fillyield", on: &t.fillYield},
		{key: "nta", n: &t.ntA}, {key: "ntb", n: &t.ntB}, {key: "nna", n: &t.nnA}, {key: "nnb", n: &t.nnB},
		{key: "tna", n: &t.tnA}, {key: "tnb", n: &t.tnB}, {key: "ablock", n: &t.attnBlock},
		{key: "dsets", n: &t.deferSets}, {key: "swip", on: &t.inPlaceSwiGLU}, {key: "home", n: &t.home}, {key: "homedim", n: &t.homeDim},
		{key: "fattn", n: &t.fusedAttn}, {key: "fattnf", n: &t.fusedAttnFwd}, {key: "fattnft", n: &t.fusedFwdSeq}, {key: "achain", n: &t.attnChain}, {key: "split", n: &t.split}, {key: "teams", n: &t.teams}, {key: "wt", on: &t.transW}, {key: "hchain", n: &t.headChain}, {key: "clsfirst", on: &t.clsFirst}, {key: "keepp", on: &t.keepP}}
}

// tuneKeys are ANELAB_CPU_TUNE's keys, for its error messages.
func tuneKeys() string {
	var keys []string
	for _, k := range new(cpuTune).knobs() {
		keys = append(keys, k.key)
	}
	return strings.Join(keys, ", ")
}

// parseTune applies "key=value,…" to t (knobs): defer (goroutines, 0 off), dblocks (0 counts as 1),
// lone, lonen (0: lone), nta, ntb, nna, nnb, tna, tnb, ablock, dsets, home, homedim, fattn, fattnf, fattnft, achain,
// split, teams, hchain (numbers), sharetol (at least 1), whole, fillslack, chain, update, fillyield,
// swip, clsfirst and keepp (0/1).
func parseTune(t cpuTune, s string) (cpuTune, error) {
	knobs := t.knobs()
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return t, fmt.Errorf("%q is not key=value (keys: %s)", kv, tuneKeys())
		}
		i := slices.IndexFunc(knobs, func(x knob) bool { return x.key == k })
		if i < 0 {
			return t, fmt.Errorf("unknown key %q (keys: %s)", k, tuneKeys())
		}
		var err error
		if x := knobs[i]; x.f != nil {
			*x.f, err = strconv.ParseFloat(v, 64)
			if err == nil && *x.f < 1 {
				err = fmt.Errorf("below 1")
			}
		} else {
			var n int
			n, err = strconv.Atoi(v)
			if err == nil && n < 0 {
				err = fmt.Errorf("negative")
			}
			if x.n != nil {
				*x.n = n
			} else {
				*x.on = n != 0
			}
		}
		if err != nil {
			return t, fmt.Errorf("%s = %q: %v", k, v, err)
		}
		if k == "dblocks" {
			t.deferBlocks = max(1, t.deferBlocks)
		}
		if k == "home" && t.home > 2 {
			return t, fmt.Errorf("home = %q: 0 (off), 1 (seats by CPU) or 2 (by worker)", v)
		}
	}
	return t, nil
}

// WithTune applies alt ("key=value,…", ANELAB_CPU_TUNE's keys) on top of the CPU step's current
// scheduling for a measurement that alternates two (anebench --alt), and returns restore, which
// puts the previous one back. A bad alt is an error naming the key, and changes nothing. Call it
// between steps only, after Model.FinishUpdate: no loop may be running, and no deferred update
// may span the change.
func WithTune(alt string) (restore func(), err error) {
	if err := loadTune(); err != nil {
		return nil, err
	}
	t, err := parseTune(tune, alt)
	if err != nil {
		return nil, fmt.Errorf("alternative CPU tune %q: %w", alt, err)
	}
	prev := tune
	setTune(t)
	return func() { setTune(prev) }, nil
}

// setTune makes t the CPU step's scheduling, internal/par's share of it included.
func setTune(t cpuTune) {
	tune = t
	par.SetFillSlack(t.fillSlack)
	par.SetFillYield(t.fillYield)
	par.SetSeatByWorker(t.home == 2)
}

// TuneString is the CPU step's scheduling (see cpuTune) as ANELAB_CPU_TUNE would set it, for
// reports.
func TuneString() string {
	_ = loadTune()
	var b strings.Builder
	t := tune
	for i, k := range t.knobs() {
		if i > 0 {
			b.WriteByte(',')
		}
		switch {
		case k.n != nil:
			fmt.Fprintf(&b, "%s=%d", k.key, *k.n)
		case k.f != nil:
			fmt.Fprintf(&b, "%s=%g", k.key, *k.f)
		case *k.on:
			fmt.Fprintf(&b, "%s=1", k.key)
		default:
			fmt.Fprintf(&b, "%s=0", k.key)
		}
	}
	return b.String()
}
