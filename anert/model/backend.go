package model

import "github.com/anelab/anelab/anert/tensor"

// Backend runs the matmul-heavy parts of a layer: QKV + attention + Wo, the SwiGLU FFN, and
// their input-side backward passes. The model keeps everything else on the CPU in fp32: the
// embedding, the norms, the residual adds, the tied classifier, the loss and every weight
// gradient (computed with BLAS from the activations and d-quantities a Backend leaves in
// LayerActs). CPU (NewCPU) is the reference implementation; an ANE backend replaces it.
//
// Every method works on the first s.N rows of the LayerActs slices (the slices may be longer)
// and must overwrite every output it is documented to produce. A method may use the outputs of
// the matching earlier call on the same layer (e.g. AttnBackward may read what AttnForward saved).
// Methods are called from one goroutine at a time.
type Backend interface {
	Name() string

	// AttnForward reads a.Xn and writes a.Q, a.K, a.V (after QK-norm when w.QNorm != nil, RoPE
	// when s.Cos != nil and the KV-head repeat with GQA, see arch.go), the
	// attention output a.A (before Wo), a.LSE (if the backend's AttnBackward uses it) and
	// a.O = a.A·Woᵀ.
	AttnForward(l int, s Shape, w *Layer, a *LayerActs) error

	// FFNForward reads a.X2n and writes a.H1 = X2n·W1ᵀ, a.H3 = X2n·W3ᵀ,
	// a.Gate = silu(H1)⊙H3 and a.Y = Gate·W2ᵀ.
	FFNForward(l int, s Shape, w *Layer, a *LayerActs) error

	// FFNBackward reads a.DY (the gradient of Y) and writes a.DGate = DY·W2, a.DH1 and a.DH3
	// (the SwiGLU backward, see swigluBackward) and a.DX2n = DH1·W1 + DH3·W3.
	FFNBackward(l int, s Shape, w *Layer, a *LayerActs) error

	// AttnBackward reads a.DO (the gradient of O) and writes a.DA = DO·Wo; a.DQ, a.DK, a.DV, the
	// gradients of the projections BEFORE RoPE (q = Xn·Wqᵀ, k = Xn·Wkᵀ, v = Xn·Wvᵀ: the SDPA
	// backward followed by the RoPE backward and the QK-norm backward, which also accumulates the
	// gains' gradients w.QNorm.G, w.KNorm.G); and a.DXn = DQ·Wq + DK·Wk + DV·Wv.
	AttnBackward(l int, s Shape, w *Layer, a *LayerActs) error

	// WeightsChanged is called (through Model.WeightsChanged) after every optimizer update;
	// a backend that keeps its own copy of the weights restages them here.
	WeightsChanged()
}

// Shape is the sizes of one forward/backward call.
type Shape struct {
	B, T, N     int     // sequences, tokens per sequence, rows N = B·T (row r = b·T + t)
	D, H, HD, F int     // model width, heads, head dim D/H, FFN width
	Scale       float32 // attention scale 1/√HD
	Workers     int     // goroutines the call may use (BLAS is single-threaded meanwhile)
	// Cos and Sin are the RoPE tables [Seq, HD/2]: entry p·HD/2 + i is cos/sin(p·θ^(−2i/HD))
	// (θ = RopeTheta) for the pair (2i, 2i+1) of each head at position p; nil for NoPE.
	Cos, Sin []float32

	// Architecture options (arch.go); their zero values are the default model.
	KV      int     // key/value heads (grouped-query attention); 0 means H
	Act     Act     // MLP activation (SwiGLU: gated, W3 present; the others use W1, W2 only)
	NormEps float32 // ε of the QK-norm (used when the Layer has QNorm, KNorm)
}

// Layer holds one transformer block's parameters. Linear weights are W[out, in] row-major
// (llama2.c layout): y = x·Wᵀ.
type Layer struct {
	AttnNorm       *tensor.Param // g_att [D]
	Wq, Wk, Wv, Wo *tensor.Param // [D, D]
	FFNNorm        *tensor.Param // g_ffn [D]
	W1, W3         *tensor.Param // [F, D]; W3 only for SwiGLU (nil for a plain MLP)
	W2             *tensor.Param // [D, F]
	QNorm, KNorm   *tensor.Param // [HD] QK-norm gains shared by the heads; nil without QK-norm

	// T, when set, is the layer's matrices transposed, current for this forward pass: the CPU
	// backend's forward products read them instead (transposed.go). Other backends ignore it.
	T *LayerT
}

// t is the layer's transposed matrices, or none (every field nil).
func (y *Layer) t() *LayerT {
	if y.T == nil {
		return &noT
	}
	return y.T
}

var noT LayerT

// LayerActs is one layer's activations and gradient scratch. Every matrix is token-major
// row-major: [N, C] has token row r = b·T + t (sequence b, position t) at offset r·C. In the
// [N, D] attention tensors head h owns columns h·HD … h·HD+HD−1.
//
// The fields above the line are saved by the forward pass for the backward pass and belong to
// this layer; O and Y and the D… fields below are scratch shared by all layers (their contents
// are only valid until the next layer's call; with an AsyncBackend, layers alternate between two
// such sets so that the queued weight gradients can read one while the next layer writes the other).
type LayerActs struct {
	X    []float32 // [N, D] layer input (the residual stream)
	Xn   []float32 // [N, D] RMSNorm(X, g_att)
	RAtt []float32 // [N]    1/rms of each X row (RMSNorm's r_t)
	Q    []float32 // [N, D] Xn·Wqᵀ, after QK-norm and RoPE
	K    []float32 // [N, D] Xn·Wkᵀ, after QK-norm and RoPE (with GQA: each KV head repeated for its query heads)
	V    []float32 // [N, D] Xn·Wvᵀ (repeated likewise with GQA)
	A    []float32 // [N, D] attention output before Wo, heads side by side
	// LSE [B·H·T]: log-sum-exp of the scaled causal scores of query t of head h in sequence b,
	// at (b·H + h)·T + t, for a backend that recomputes P in its backward pass (CPU does).
	LSE []float32
	// P [B·H·T·T]: the causal softmax of pair it = b·H + h at it·T·T (row t at t·T, zero above
	// the diagonal in the blocks the forward computed), where the CPU backend keeps it for its
	// backward (Model.keepsP, tune.keepP); nil otherwise.
	P    []float32
	X2   []float32 // [N, D] X + α·O
	X2n  []float32 // [N, D] RMSNorm(X2, g_ffn)
	RFFN []float32 // [N]    1/rms of each X2 row
	H1   []float32 // [N, F] X2n·W1ᵀ
	H3   []float32 // [N, F] X2n·W3ᵀ (SwiGLU only)
	Gate []float32 // [N, F] silu(H1)⊙H3, or act(H1) for a plain MLP
	// QK-norm only: q and k before the norm and the norm's 1/rms per (token, head).
	QRaw []float32 // [N, D]
	KRaw []float32 // [N, KV·HD]
	RQ   []float32 // [N·H]
	RK   []float32 // [N·KV]
	// ---- shared scratch ----
	O     []float32 // [N, D] A·Woᵀ
	Y     []float32 // [N, D] Gate·W2ᵀ
	DY    []float32 // [N, D] in: gradient of Y
	DGate []float32 // [N, F]
	DH1   []float32 // [N, F]
	DH3   []float32 // [N, F]
	DX2n  []float32 // [N, D]
	DO    []float32 // [N, D] in: gradient of O
	DA    []float32 // [N, D]
	DQ    []float32 // [N, D] gradient of Xn·Wqᵀ (before QK-norm and RoPE)
	DK    []float32 // [N, KV·HD] gradient of Xn·Wkᵀ (before QK-norm and RoPE)
	DV    []float32 // [N, KV·HD]
	DXn   []float32 // [N, D]
	// GQA only: the projections at KV width, and the gradients of the repeated K and V.
	KC, VC   []float32 // [N, KV·HD]
	DKE, DVE []float32 // [N, D]
	// QK-norm only: the norms' input gradients before they are copied to DQ, DK.
	DQN, DKN []float32 // [N, D], [N, KV·HD]
}
