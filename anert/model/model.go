// Package model is the Llama-style transformer the trainer trains: parameters, deterministic
// initialisation, forward pass, exact backward pass and loss, over batches of B sequences of
// T = Seq tokens held token-major ([N, D] with N = B·T).
//
// One block (pre-norm, no biases, α = 1/√(2·Layers)):
//
//	xn = RMSNorm(x, g_att);  q, k, v = xn·Wqᵀ, xn·Wkᵀ, xn·Wvᵀ;  q, k = RoPE(q), RoPE(k)
//	a  = causal softmax attention per head (scale 1/√HD);  x2 = x + α·(a·Woᵀ)
//	x2n = RMSNorm(x2, g_ffn);  gate = silu(x2n·W1ᵀ) ⊙ (x2n·W3ᵀ);  x' = x2 + α·(gate·W2ᵀ)
//
// then xf = RMSNorm(x, g_final), logits = xf·E_cᵀ with the classifier tied to the embedding E
// (E_c = E, or its active rows with vocab compaction), z = c·tanh(logits/c) when Softcap c > 0,
// and loss = mean over the N tokens of CE(softmax(z), target), the same in training and evaluation.
//
// Architecture options (config.Model; arch.go): the MLP may be plain, Gate = act(x2n·W1ᵀ) with
// act relu² or GELU and no W3; k and v may have fewer heads than q (GQA: query head h reads KV head
// h/(H/KV)); q and k may be RMS-normalised per head before RoPE (QK-norm); the classifier may be
// a separate head H instead of E; Wo, W2 (and H) may start at zero.
//
// Each op has its forward and backward side by side in its own file with the formula in the doc
// comment. The matmul-heavy parts of a block go through a Backend (CPU here; an ANE backend
// elsewhere); weight gradients, norms, residuals, classifier and loss stay here in fp32.
//
// Speed (CPU): every projection and weight gradient is one GEMM over all N = B·T tokens, cut into
// blocks of its output that single-threaded BLAS calls compute on the step's goroutines (BLAS
// itself is put in serial mode, beginStep). A step is a short sequence of parallel loops, each
// ending in a wait for its slowest part, so the ops that need no other loop's output share one
// (TestLoopsPerStep counts them: 10 per layer):
//   - independent GEMMs (q, k, v; a backward step's input-side sum and its weight gradients) run
//     as one loop, the goroutines shared in proportion to their work; a sum of products (dXn,
//     dX2n) and products combined element-wise (W1 and W3) on one grid (team.gemms, gemmGrid,
//     gemmLoop in linear.go);
//   - element-wise ops run on each GEMM block as it is computed (gemmSpec.post): RoPE on q and k,
//     SwiGLU on h1 and h3, its backward on dGate; in the attention backward's items, their rows of
//     dA = dO·Wo before and RoPE's backward after;
//   - the row-local chain after a GEMM — residual add and RMSNorm (forward), RMSNorm backward and
//     residual backward — runs on each block of rows of the GEMM's output as soon as the block is
//     complete (gemmSpec.rowPost; Model.fuse), or as one loop of its own (team.rowLoop).
//
// Attention is GEMMs on strided views, one loop over (sequence, head, row block) items that skip
// most of the masked triangle; its backward is two loops (row blocks, then key blocks) per group
// of heads. Every loop runs on internal/par's persistent pool with the model's explicit thread
// budget (Threads), which hands out parts of the loop dynamically, so a core taken by another
// process slows a part, not the step. The element-wise kernels (softmax, SwiGLU, soft-cap +
// cross-entropy, RMSNorm, RoPE, residuals) are C, vectorised by the compiler, on cgo builds
// (kernels.c), pure Go otherwise; each op's doc comment names what runs. Buffers are allocated for the largest batch seen and reused: after the first
// call a step allocates nothing. Phase times: SetTimings.
//
// A Model is not safe for concurrent use.
package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/anelab/anelab/anert/config"
	"github.com/anelab/anelab/anert/tensor"
	"github.com/anelab/anelab/internal/par"
)

// Model is the transformer: its parameters, backend and preallocated buffers.
type Model struct {
	Embed     *tensor.Param // E [Vocab, D], tied to the classifier unless Head is set
	Layers    []Layer
	FinalNorm *tensor.Param // g_final [D]
	Head      *tensor.Param // the untied classifier [Vocab, D] (model.untied_head); nil when tied

	cfg      config.Model
	backend  Backend
	params   []*tensor.Param
	wAll     []float32 // every parameter's values, in Params order
	gAll     []float32 // every parameter's gradient, in Params order
	alpha    float32   // residual scale 1/√(2·Layers)
	act      Act       // MLP activation
	cos, sin []float32 // RoPE tables [Seq, HD/2]; nil for NoPE

	active    []int32 // compact id → full id; nil until SetActive
	toCompact []int32 // full id → compact id, or −1 if inactive; nil until SetActive

	threads int       // thread budget (Threads option; 0: all cores)
	pool    *par.Pool // the pool its loops run on (nil: the process's; a split step's team replica: its own)
	buf     buffers
	team    *team              // the goroutines of a step (see beginStep) and its loop bodies
	dwq     dwQueue            // the weight-gradient worker of an async backend (AsyncBackend)
	dwFused [maxGemms]gemmSpec // the specs fuseDW hands to the backend (here, so that nothing allocates)
	dwd     dwDeferred         // the weight gradients as deferred work (many cores, see dwDeferred)
	upd     updDeferred        // an optimizer update as deferred work in the next forward pass (DeferUpdate)
	split   splitState         // the replicas of a step split over its goroutines (split.go)
	replica bool               // a split step's replica, reading another model's weights (sharing)
	wt      wtState            // the layer matrices transposed, on many cores (transposed.go)
	// a team replica's fences of its parent's deferred update (fenceOf)
	updOf     *updDeferred
	updFenced int
	updDrain  updDrainJob
	timings   *Timings // phase times, when enabled (SetTimings)
}

// An Option configures a Model built by New.
type Option func(*Model)

// Threads is the model's thread budget: the goroutines a forward/backward pass runs on, with
// BLAS single-threaded meanwhile (n ≤ 0: all cores, GOMAXPROCS).
func Threads(n int) Option { return func(m *Model) { m.threads = n } }

// SetThreads changes the thread budget (see Threads) from the next call on.
func (m *Model) SetThreads(n int) { m.threads = n }

// New builds a model for cfg (validated: every problem is listed) with weights drawn from seed,
// running its layers on b (NewCPU() if nil), configured by opts.
//
// Initialisation (deterministic, PCG seeded by seed, drawn in Params order):
//   - E ~ N(0, InitStd²);
//   - Wq, Wk, Wv, W1, W3 ~ N(0, 1/fan_in) (std 1/√D), so each projection of a normalised input is O(1);
//   - Wo ~ N(0, α²/D) and W2 ~ N(0, α²/F): the residual-branch output projections get an extra ×α
//     on top of the forward pass's α, so each branch adds O(α²) = O(1/(2·Layers)) to the stream and
//     the 2·Layers branches together add O(1) even if they add coherently;
//   - gains 1 (QK-norm's included);
//   - with untied_head, the head H ~ N(0, InitStd²), drawn last;
//   - with zero_init, Wo, W2 and an untied head are drawn as above (so the other weights are those
//     of the same seed without it) and then set to 0: each block starts as the identity and the
//     first updates grow the branches (modded-nanogpt's zero-init projections).
func New(cfg config.Model, seed uint64, b Backend, opts ...Option) (*Model, error) {
	c := config.Default()
	c.Model = cfg
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if err := loadTune(); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if b == nil {
		b = NewCPU()
	}
	D, F, V, HD, KVD := cfg.Dim, cfg.FFN, cfg.Vocab, cfg.HeadDim(), cfg.KV()*cfg.HeadDim()
	act, err := ActOf(cfg)
	if err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, backend: b, alpha: float32(1 / math.Sqrt(2*float64(cfg.Layers))), act: act}
	for _, o := range opts {
		o(m)
	}
	if c, cpu := b.(*CPU); cpu && m.pool != nil {
		c.pool = m.pool // the backend's loops run where the model's do
	}

	add := func(name string, g tensor.Group, shape ...int) *tensor.Param {
		p := &tensor.Param{Name: name, Shape: shape, Group: g}
		m.params = append(m.params, p)
		return p
	}
	m.Embed = add("embed", tensor.Embed, V, D)
	m.Layers = make([]Layer, cfg.Layers)
	for l := range m.Layers {
		pre := fmt.Sprintf("layers.%d.", l)
		y := &m.Layers[l]
		y.AttnNorm = add(pre+"attn_norm", tensor.Norm, D)
		if cfg.QKNorm {
			y.QNorm, y.KNorm = add(pre+"q_norm", tensor.Norm, HD), add(pre+"k_norm", tensor.Norm, HD)
		}
		y.Wq = add(pre+"wq", tensor.Matrix, D, D)
		y.Wk = add(pre+"wk", tensor.Matrix, KVD, D)
		y.Wv = add(pre+"wv", tensor.Matrix, KVD, D)
		y.Wo = add(pre+"wo", tensor.Matrix, D, D)
		y.FFNNorm = add(pre+"ffn_norm", tensor.Norm, D)
		y.W1 = add(pre+"w1", tensor.Matrix, F, D)
		y.W2 = add(pre+"w2", tensor.Matrix, D, F)
		if act == SwiGLU {
			y.W3 = add(pre+"w3", tensor.Matrix, F, D)
		}
	}
	m.FinalNorm = add("final_norm", tensor.Norm, D)
	if cfg.UntiedHead {
		// Group Embed: its learning rate and (no) decay are the embedding's, and Muon leaves it to AdamW.
		m.Head = add("head", tensor.Embed, V, D)
	}

	total := 0
	for _, p := range m.params {
		total += p.Size()
	}
	shared := m.wAll != nil // a split step's replica (sharing): another model's weights
	if shared && len(m.wAll) != total {
		panic("model: a replica shares the weights of a model of the same config")
	}
	if !shared {
		m.wAll = make([]float32, total)
	}
	if m.gAll == nil {
		m.gAll = make([]float32, total)
	} else if len(m.gAll) != total {
		panic("model: a replica shares the gradients of a model of the same config")
	}
	off := 0
	for _, p := range m.params {
		n := p.Size()
		p.W, p.G = m.wAll[off:off+n:off+n], m.gAll[off:off+n:off+n]
		off += n
	}
	if !shared {
		m.initWeights(seed)
	}

	if cfg.Pos == "rope" {
		m.cos, m.sin = RopeTables(cfg.Seq, cfg.HeadDim(), cfg.RopeTheta)
	}
	return m, nil
}

// initWeights draws every parameter as New documents, in Params order.
func (m *Model) initWeights(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x616e656c6162)) // "anelab"
	normal := func(p *tensor.Param, std float64) {
		for i := range p.W {
			p.W[i] = float32(rng.NormFloat64() * std)
		}
	}
	ones := func(p *tensor.Param) {
		for i := range p.W {
			p.W[i] = 1
		}
	}
	a, sd, sf := float64(m.alpha), 1/math.Sqrt(float64(m.cfg.Dim)), 1/math.Sqrt(float64(m.cfg.FFN))
	normal(m.Embed, m.cfg.InitStd)
	for _, l := range m.Layers {
		ones(l.AttnNorm)
		if l.QNorm != nil {
			ones(l.QNorm)
			ones(l.KNorm)
		}
		normal(l.Wq, sd)
		normal(l.Wk, sd)
		normal(l.Wv, sd)
		normal(l.Wo, a*sd)
		ones(l.FFNNorm)
		normal(l.W1, sd)
		normal(l.W2, a*sf)
		if l.W3 != nil {
			normal(l.W3, sd)
		}
		if m.cfg.ZeroInit {
			clear(l.Wo.W)
			clear(l.W2.W)
		}
	}
	ones(m.FinalNorm)
	if m.Head != nil {
		normal(m.Head, m.cfg.InitStd)
		if m.cfg.ZeroInit {
			clear(m.Head.W)
		}
	}
}

// headParam is the classifier's parameter: the untied head, or the tied embedding.
func (m *Model) headParam() *tensor.Param {
	if m.Head != nil {
		return m.Head
	}
	return m.Embed
}

// Config is the model's shape.
func (m *Model) Config() config.Model { return m.cfg }

// Backend is the backend the layers run on.
func (m *Model) Backend() Backend { return m.backend }

// Params lists the parameters in a stable order: "embed", then per layer l
// "layers.l.attn_norm", (".q_norm", ".k_norm" with QK-norm), ".wq", ".wk", ".wv", ".wo", ".ffn_norm",
// ".w1", ".w2", (".w3" for SwiGLU), then "final_norm" and ("head" when untied).
func (m *Model) Params() []*tensor.Param { return m.params }

// NumParams is the total number of parameter values (a tied embedding counted once).
func (m *Model) NumParams() int { return len(m.wAll) }

// ZeroGrad sets every gradient to 0 (ForwardBackward accumulates).
func (m *Model) ZeroGrad() {
	m.FinishUpdate()
	if m.team == nil {
		clear(m.gAll)
		return
	}
	m.team.clear(m.gAll)
}

// WeightsChanged must be called after every change of the weights (each optimizer update, a
// checkpoint load): it lets the backend restage its copy of them.
func (m *Model) WeightsChanged() {
	m.staleWT()
	m.backend.WeightsChanged()
}

// SetActive turns on vocab compaction with the given active ids (sorted, unique, in
// [0, Vocab); normally every id seen in the data, train and validation): the classifier, softmax
// and loss then run over these ids only, and every target must be one of them. It needs
// model.compact = true.
func (m *Model) SetActive(ids []int) error {
	if !m.cfg.Compact {
		return errors.New("model: SetActive needs vocab compaction: set model.compact = true")
	}
	m.FinishUpdate() // the classifier's rows change: no deferred update may be halfway through them
	if len(ids) == 0 {
		return errors.New("model: SetActive: no active ids (the data set has no tokens?)")
	}
	to := make([]int32, m.cfg.Vocab)
	for i := range to {
		to[i] = -1
	}
	act := make([]int32, len(ids))
	for c, id := range ids {
		if id < 0 || id >= m.cfg.Vocab {
			return fmt.Errorf("model: SetActive: id %d (index %d) is outside the vocabulary [0, %d) (model.vocab)", id, c, m.cfg.Vocab)
		}
		if c > 0 && id <= ids[c-1] {
			return fmt.Errorf("model: SetActive: ids must be sorted and unique, but id %d at index %d follows %d", id, c, ids[c-1])
		}
		act[c], to[id] = int32(id), int32(c)
	}
	m.active, m.toCompact = act, to
	return nil
}

// classes is the number of classifier rows: the active ids with compaction, else Vocab.
func (m *Model) classes() int {
	if m.cfg.Compact && m.active != nil {
		return len(m.active)
	}
	return m.cfg.Vocab
}

// FLOPsPerToken is the training FLOPs per token (forward + backward = 3 × forward), counted the
// usual way (PaLM appendix B):
//
//	6·P + 6·L·D·(T+1),   P = L·(2·D² + 2·D·KVD + M·D·F) + C·D,
//
// where P is the matmul parameters including the classifier (C = classes: the active ids
// with compaction, else Vocab; KVD = kv_heads·head dim; M = 3 matrices for SwiGLU, 2 for a plain
// MLP) and the second term is causal attention: Q·Kᵀ and P·V cost
// 2·D·(t+1) FLOPs each for the token at position t, which averages 2·D·(T+1) per token for the
// two together, ×3 for training. Extra work the implementation does (masked blocks, recomputing
// P in the backward pass) is not counted.
func (m *Model) FLOPsPerToken() float64 {
	L, D, T := float64(m.cfg.Layers), float64(m.cfg.Dim), float64(m.cfg.Seq)
	P := float64(layerMatrixFloats(m.cfg)) + float64(m.classes())*D
	return 6*P + 6*L*D*(T+1)
}

// layerMatrixFloats is the elements of every layer's matrices: L·(2·D² + 2·D·KVD + M·D·F), M = 3
// for SwiGLU (W1, W3, W2), 2 for a plain MLP.
func layerMatrixFloats(cfg config.Model) int {
	d, f, kvd, mats := cfg.Dim, cfg.FFN, cfg.KV()*cfg.HeadDim(), 3
	if act, _ := ActOf(cfg); act != SwiGLU {
		mats = 2
	}
	return cfg.Layers * (2*d*d + 2*d*kvd + mats*d*f)
}
