// Kernels of the CUDA training backend (package cudab), compiled at run time by NVRTC.
// Layouts match anert/model: token-major [N, C] row-major, row r = b*T + t. Each kernel's formula
// is the one in the doc comment of the Go function that launches it (cudab/ops.go).
// No fast-math: fp32 mode must agree with the CPU backend to 1e-4.

#define BLOCK 256
#define NEG_INF (-__int_as_float(0x7f800000)) // NVRTC has no math.h INFINITY

// bf16 (bf16 mode's GEMM operands): the top half of an fp32, kept as its bits so that NVRTC needs
// no cuda_bf16.h. f2bf rounds to nearest, ties to even (a NaN stays a quiet NaN), as
// __float2bfloat16_rn does and as cuda.ToBF16 does on the host; bf2f is exact.
typedef unsigned short bf16;

__device__ __forceinline__ bf16 f2bf(float f) {
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16)(u >> 16);
}

__device__ __forceinline__ float bf2f(bf16 h) { return __uint_as_float(((unsigned)h) << 16); }

// getf/putf read and write an element of either type as fp32, so that one template body serves
// the fp32 kernels (unchanged arithmetic: getf and putf are plain loads and stores) and the bf16 ones.
__device__ __forceinline__ float getf(const float* p, long long i) { return p[i]; }
__device__ __forceinline__ float getf(const bf16* p, long long i) { return bf2f(p[i]); }
__device__ __forceinline__ void putf(float* p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ void putf(bf16* p, long long i, float v) { p[i] = f2bf(v); }

// block_sum returns the sum of v over the block (blockDim.x a multiple of 32, ≤ 1024) to every thread.
__device__ float block_sum(float v) {
    __shared__ float sh[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = lane < nw ? sh[lane] : 0.f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    return v;
}

__device__ float block_max(float v) {
    __shared__ float sh[32];
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = lane < nw ? sh[lane] : NEG_INF;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, o));
    return v;
}

__device__ double block_sum_d(double v) {
    __shared__ double sh[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    int nw = blockDim.x >> 5;
    v = lane < nw ? sh[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    return v;
}

#define GRID_STRIDE(i, n) for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

// Template bodies of the kernels that come in an fp32 and a bf16 variant; the extern "C"
// kernels below instantiate them (names ending _bf write, or read, bf16 where their comment says).

template <class T>
__device__ void gather_rows_t(T* dst, const T* src, const int* rows, int nrows, int d) {
    GRID_STRIDE(i, (long long)nrows * d) {
        long long c = i / d; int j = i % d;
        dst[i] = src[(long long)rows[c] * d + j];
    }
}

// One block per row.
template <class O>
__device__ void rmsnorm_fwd_t(O* out, float* rinv, const float* x, const float* g, int d, float eps) {
    long long row = blockIdx.x;
    const float* xr = x + row * d;
    float ss = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_sum(ss);
    float r = (float)(1.0 / sqrt((double)(ss / (float)d + eps)));
    if (threadIdx.x == 0) rinv[row] = r;
    for (int i = threadIdx.x; i < d; i += blockDim.x) putf(out, row * d + i, g[i] * xr[i] * r);
}

// RoPE on one pair: (a, b) ← (a·cos − b·sin, a·sin + b·cos); the backward pass rotates by −θ
// (sin negated by the caller's sign).
__device__ __forceinline__ void rope_rotate(float* a, float* b, float c, float s) {
    float a2 = *a * c - *b * s, b2 = *a * s + *b * c;
    *a = a2; *b = b2;
}

// Head split (+ RoPE): in [N, ld] has head h of row r = b·T + t at columns h·HD..; out is
// [B·H, T, HD]. With cos != 0 each pair (2i, 2i+1) is rotated by sign·θ_{t,i}.
template <class I>
__device__ void split_heads_t(float* out, const I* in, int n, int ld, int T, int H, int HD,
                              const float* cs, const float* sn, float sign) {
    int half = HD / 2;
    GRID_STRIDE(k, (long long)n * H * half) {
        int i = k % half; long long rh = k / half; int h = rh % H; long long r = rh / H;
        long long b = r / T; int t = r % T;
        long long src = r * ld + h * HD + 2 * i;
        float a = getf(in, src), bb = getf(in, src + 1);
        if (cs) rope_rotate(&a, &bb, cs[t * half + i], sign * sn[t * half + i]);
        float* dst = out + ((b * H + h) * T + t) * HD + 2 * i;
        dst[0] = a; dst[1] = bb;
    }
}

// The inverse of split_heads: in [B·H, T, HD] → out [N, ld] at column h·HD (+ RoPE by sign·θ).
template <class O>
__device__ void merge_heads_t(O* out, const float* in, int n, int ld, int T, int H, int HD,
                              const float* cs, const float* sn, float sign) {
    int half = HD / 2;
    GRID_STRIDE(k, (long long)n * H * half) {
        int i = k % half; long long rh = k / half; int h = rh % H; long long r = rh / H;
        long long b = r / T; int t = r % T;
        const float* src = in + ((b * H + h) * T + t) * HD + 2 * i;
        float a = src[0], bb = src[1];
        if (cs) rope_rotate(&a, &bb, cs[t * half + i], sign * sn[t * half + i]);
        long long dst = r * ld + h * HD + 2 * i;
        putf(out, dst, a); putf(out, dst + 1, bb);
    }
}

__device__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

template <class H, class G>
__device__ void swiglu_fwd_t(G* gate, const H* h1, const H* h3, long long n) {
    GRID_STRIDE(i, n) { float x = getf(h1, i); putf(gate, i, x * sigmoid(x) * getf(h3, i)); }
}

template <class H, class D>
__device__ void swiglu_bwd_t(D* dh1, D* dh3, const float* dg, const H* h1, const H* h3, long long n) {
    GRID_STRIDE(i, n) {
        float x = getf(h1, i), s = sigmoid(x), g = dg[i];
        putf(dh3, i, g * x * s);
        putf(dh1, i, g * getf(h3, i) * s * (1.f + x * (1.f - s)));
    }
}

// Soft-cap + cross-entropy per row, one block per row of z [N, C]: z ← c·tanh(z/c) (c > 0),
// loss_row = m + log Σ exp(z − m) − z_tgt (in double), and with train dz (z itself in fp32) gets
// dl = scale·(softmax(z) − [j = tgt])·(1 − (z/c)²).
template <class D>
__device__ void softcap_ce_t(float* z, D* dz, double* lossrow, const int* tgt, int C, float capc, float scale, int train) {
    long long row = blockIdx.x;
    float* r = z + row * C;
    int tg = tgt[row];
    float inv = capc > 0.f ? 1.f / capc : 0.f;
    float m = NEG_INF;
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        float v = r[j];
        if (capc > 0.f) { v = capc * tanhf(v * inv); r[j] = v; }
        m = fmaxf(m, v);
    }
    m = block_max(m);
    float sum = 0.f;
    for (int j = threadIdx.x; j < C; j += blockDim.x) sum += expf(r[j] - m);
    sum = block_sum(sum);
    __syncthreads();
    float zt = r[tg];
    if (threadIdx.x == 0) lossrow[row] = (double)m + log((double)sum) - (double)zt;
    __syncthreads();
    if (!train) return;
    float k = scale / sum;
    for (int j = threadIdx.x; j < C; j += blockDim.x) {
        float x = r[j];
        float gg = k * expf(x - m);
        if (j == tg) gg -= scale;
        if (capc > 0.f) { float u = x * inv; gg *= 1.f - u * u; }
        putf(dz, row * C + j, gg);
    }
}

extern "C" {

// out = bf16(in): bf16 mode's weight copy after an upload.
__global__ void to_bf16(bf16* out, const float* in, long long n) {
    GRID_STRIDE(i, n) out[i] = f2bf(in[i]);
}

__global__ void embed_fwd(float* x, const float* E, const int* ids, int n, int d) {
    GRID_STRIDE(i, (long long)n * d) {
        long long t = i / d; int j = i % d;
        x[i] = E[(long long)ids[t] * d + j];
    }
}

__global__ void embed_bwd(float* dE, const float* dx, const int* ids, int n, int d) {
    GRID_STRIDE(i, (long long)n * d) {
        long long t = i / d; int j = i % d;
        atomicAdd(&dE[(long long)ids[t] * d + j], dx[i]);
    }
}

__global__ void gather_rows(float* dst, const float* src, const int* rows, int nrows, int d) {
    gather_rows_t(dst, src, rows, nrows, d);
}

__global__ void gather_rows_bf(bf16* dst, const bf16* src, const int* rows, int nrows, int d) {
    gather_rows_t(dst, src, rows, nrows, d);
}

// rows are unique, so no two threads add to one element.
__global__ void scatter_add_rows(float* dst, const float* src, const int* rows, int nrows, int d) {
    GRID_STRIDE(i, (long long)nrows * d) {
        long long c = i / d; int j = i % d;
        dst[(long long)rows[c] * d + j] += src[i];
    }
}

// One block per row: out = g·x·r, r = 1/√(mean(x²) + eps) saved per row.
__global__ void rmsnorm_fwd(float* out, float* rinv, const float* x, const float* g, int d, float eps) {
    rmsnorm_fwd_t(out, rinv, x, g, d, eps);
}

// rmsnorm_fwd with out in bf16 (it feeds only GEMMs).
__global__ void rmsnorm_fwd_bf(bf16* out, float* rinv, const float* x, const float* g, int d, float eps) {
    rmsnorm_fwd_t(out, rinv, x, g, d, eps);
}

// One block per row: dx += r·(g·dy − x·r²·Σ(g·dy·x)/d); gpart[row] = dy·x·r (summed over rows by col_sum_add).
__global__ void rmsnorm_bwd(float* dx, float* gpart, const float* dout, const float* x, const float* rinv,
                            const float* g, int d) {
    long long row = blockIdx.x;
    const float* xr = x + row * d;
    const float* dy = dout + row * d;
    float r = rinv[row];
    float dot = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) dot += g[i] * dy[i] * xr[i];
    dot = block_sum(dot);
    float c = r * r * dot / (float)d;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        dx[row * d + i] += r * (g[i] * dy[i] - xr[i] * c);
        gpart[row * d + i] = dy[i] * xr[i] * r;
    }
}

// dst[j] += Σ_rows part[row, j]: block (x: 256 columns, y: a range of rows), one atomic per column and block.
__global__ void col_sum_add(float* dst, const float* part, int n, int d, int rowsPerBlock) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    int r0 = blockIdx.y * rowsPerBlock, r1 = min(n, r0 + rowsPerBlock);
    float s = 0.f;
    for (int r = r0; r < r1; r++) s += part[(long long)r * d + j];
    atomicAdd(&dst[j], s);
}

// split_heads_t: [N, ld] → head-major [B·H, T, HD] (+ RoPE).
__global__ void split_heads(float* out, const float* in, int n, int ld, int T, int H, int HD,
                            const float* cs, const float* sn, float sign) {
    split_heads_t(out, in, n, ld, T, H, HD, cs, sn, sign);
}

// split_heads from a bf16 [N, ld] (bf16 mode's merged attention output, for flash's D pass).
__global__ void split_heads_bf(float* out, const bf16* in, int n, int ld, int T, int H, int HD,
                               const float* cs, const float* sn, float sign) {
    split_heads_t(out, in, n, ld, T, H, HD, cs, sn, sign);
}

// merge_heads_t: head-major [B·H, T, HD] → [N, ld] (+ RoPE).
__global__ void merge_heads(float* out, const float* in, int n, int ld, int T, int H, int HD,
                            const float* cs, const float* sn, float sign) {
    merge_heads_t(out, in, n, ld, T, H, HD, cs, sn, sign);
}

// merge_heads into bf16 (the attention output A and dQKV, which feed only GEMMs).
__global__ void merge_heads_bf(bf16* out, const float* in, int n, int ld, int T, int H, int HD,
                               const float* cs, const float* sn, float sign) {
    merge_heads_t(out, in, n, ld, T, H, HD, cs, sn, sign);
}

// Causal softmax in place, one block per score row (row k is query t = k mod T of its (b, h)):
// P_{t,s} = exp(S_{t,s} − m)/Σ for s ≤ t, 0 beyond.
__global__ void softmax_causal_fwd(float* s, int T) {
    long long row = blockIdx.x;
    int t = row % T;
    float* p = s + row * T;
    float m = NEG_INF;
    for (int j = threadIdx.x; j <= t; j += blockDim.x) m = fmaxf(m, p[j]);
    m = block_max(m);
    float sum = 0.f;
    for (int j = threadIdx.x; j <= t; j += blockDim.x) { float e = expf(p[j] - m); p[j] = e; sum += e; }
    sum = block_sum(sum);
    float inv = 1.f / sum;
    for (int j = threadIdx.x; j < T; j += blockDim.x) p[j] = j <= t ? p[j] * inv : 0.f;
}

// Softmax backward in place on dp: dS = scale·P·(dP − Σ_s P·dP) for s ≤ t, 0 beyond.
__global__ void softmax_causal_bwd(float* dp, const float* p, int T, float scale) {
    long long row = blockIdx.x;
    int t = row % T;
    float* g = dp + row * T;
    const float* pr = p + row * T;
    float dot = 0.f;
    for (int j = threadIdx.x; j <= t; j += blockDim.x) dot += pr[j] * g[j];
    dot = block_sum(dot);
    for (int j = threadIdx.x; j < T; j += blockDim.x) g[j] = j <= t ? scale * pr[j] * (g[j] - dot) : 0.f;
}

// gate = silu(h1)·h3
__global__ void swiglu_fwd(float* gate, const float* h1, const float* h3, long long n) {
    swiglu_fwd_t(gate, h1, h3, n);
}

// swiglu_fwd on bf16 h1, h3 (GEMM outputs) into a bf16 gate.
__global__ void swiglu_fwd_bf(bf16* gate, const bf16* h1, const bf16* h3, long long n) {
    swiglu_fwd_t(gate, h1, h3, n);
}

// dh3 = dg·silu(h1);  dh1 = dg·h3·σ(h1)·(1 + h1·(1 − σ(h1)))
__global__ void swiglu_bwd(float* dh1, float* dh3, const float* dg, const float* h1, const float* h3, long long n) {
    swiglu_bwd_t(dh1, dh3, dg, h1, h3, n);
}

// swiglu_bwd on bf16 h1, h3 into bf16 dh1, dh3 (they feed only GEMMs); dg stays fp32.
__global__ void swiglu_bwd_bf(bf16* dh1, bf16* dh3, const float* dg, const bf16* h1, const bf16* h3, long long n) {
    swiglu_bwd_t(dh1, dh3, dg, h1, h3, n);
}

// out = x + a·y
__global__ void axpy(float* out, const float* x, const float* y, float a, long long n) {
    GRID_STRIDE(i, n) out[i] = x[i] + a * y[i];
}

// out = a·y
__global__ void scale_to(float* out, const float* y, float a, long long n) {
    GRID_STRIDE(i, n) out[i] = a * y[i];
}

// out = bf16(a·y) (the residual branches' output gradients, which feed only GEMMs)
__global__ void scale_to_bf(bf16* out, const float* y, float a, long long n) {
    GRID_STRIDE(i, n) out[i] = f2bf(a * y[i]);
}

// softcap_ce_t with dl written over z.
__global__ void softcap_ce(float* z, double* lossrow, const int* tgt, int C, float capc, float scale, int train) {
    softcap_ce_t(z, z, lossrow, tgt, C, capc, scale, train);
}

// softcap_ce_t with dl written to dz in bf16 (it feeds only GEMMs); z keeps the capped logits.
__global__ void softcap_ce_bf(float* z, bf16* dz, double* lossrow, const int* tgt, int C, float capc, float scale, int train) {
    softcap_ce_t(z, dz, lossrow, tgt, C, capc, scale, train);
}

// Block partial sums of a double vector (for the loss): part[block] = Σ of its slice.
__global__ void sum_d(double* part, const double* x, long long n) {
    double s = 0.0;
    GRID_STRIDE(i, n) s += x[i];
    s = block_sum_d(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

// g ← f·g (skipped for f = 1) and per-block Σ g² in double.
__global__ void scale_sumsq(double* part, float* g, float f, long long n) {
    double s = 0.0;
    GRID_STRIDE(i, n) {
        float v = g[i];
        if (f != 1.f) { v *= f; g[i] = v; }
        s += (double)v * (double)v;
    }
    s = block_sum_d(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void scale_inplace(float* g, float f, long long n) {
    GRID_STRIDE(i, n) g[i] *= f;
}

// Lion: c = b1·m + a1·g;  w ← w·f − lr·sign(c) (sign(±0) = 0);  m ← b2·m + a2·g. With wb
// (bf16 mode) also wb ← bf16(w), the GEMMs' copy, in the same pass.
__global__ void lion(float* w, bf16* wb, const float* g, float* m, long long n, float lr, float f,
                     float b1, float a1, float b2, float a2) {
    GRID_STRIDE(i, n) {
        float gi = g[i], mi = m[i];
        float c = b1 * mi + a1 * gi;
        float s = c == 0.f ? 0.f : copysignf(lr, c);
        float wi = w[i] * f - s;
        w[i] = wi;
        if (wb) wb[i] = f2bf(wi);
        m[i] = b2 * mi + a2 * gi;
    }
}

// AdamW: m ← b1·m + a1·g;  v ← b2·v + a2·g²;  w ← w·f − k·m/(√(r·v) + eps); with wb also
// wb ← bf16(w).
__global__ void adamw(float* w, bf16* wb, const float* g, float* m, float* v, long long n, float k, float r, float f,
                      float b1, float a1, float b2, float a2, float eps) {
    GRID_STRIDE(i, n) {
        float gi = g[i];
        float mi = b1 * m[i] + a1 * gi;
        float vi = b2 * v[i] + a2 * gi * gi;
        m[i] = mi; v[i] = vi;
        float wi = w[i] * f - k * mi / (sqrtf(r * vi) + eps);
        w[i] = wi;
        if (wb) wb[i] = f2bf(wi);
    }
}

} // extern "C"

// ---- Architecture options (anert/model/arch.go): the plain MLP activations and QK-norm. ----

// Plain (non-gated) MLP activations, gate = f(h), dh = dg·f'(h) (f' recomputed from h); model's
// actForward and actBackward (arch.go), tanh-approximated GELU as GPT-2's:
//   relu2: f(x) = max(x, 0)²,                f'(x) = 2·max(x, 0)
//   gelu:  f(x) = ½·x·(1 + tanh u),          u = √(2/π)·(x + 0.044715·x³)
//          f'(x) = ½·(1 + tanh u) + ½·x·(1 − tanh² u)·√(2/π)·(1 + 3·0.044715·x²)
#define ACT_RELU2 0
#define ACT_GELU 1
#define GELU_C 0.7978845608028654f
#define GELU_A 0.044715f

template <int A>
__device__ __forceinline__ float act_f(float x) {
    if (A == ACT_RELU2) { x = fmaxf(x, 0.f); return x * x; }
    return 0.5f * x * (1.f + tanhf(GELU_C * (x + GELU_A * x * x * x)));
}

template <int A>
__device__ __forceinline__ float act_df(float dg, float x) {
    if (A == ACT_RELU2) return dg * 2.f * fmaxf(x, 0.f);
    float th = tanhf(GELU_C * (x + GELU_A * x * x * x));
    return dg * (0.5f * (1.f + th) + 0.5f * x * (1.f - th * th) * GELU_C * (1.f + 3.f * GELU_A * x * x));
}

template <int A, class H, class G>
__device__ void act_fwd_t(G* gate, const H* h, long long n) {
    GRID_STRIDE(i, n) putf(gate, i, act_f<A>(getf(h, i)));
}

template <int A, class H, class D>
__device__ void act_bwd_t(D* dh, const float* dg, const H* h, long long n) {
    GRID_STRIDE(i, n) putf(dh, i, act_df<A>(dg[i], getf(h, i)));
}

// QK-norm's launch geometry (qkGeometry in arch.go): one thread per pair (2i, 2i+1) of a head,
// whole heads per block: blockDim.x = (HD/2)·⌊256/(HD/2)⌋, head k = r·H + h (row r, head h) of
// block b at k = b·⌊256/(HD/2)⌋ + threadIdx.x/(HD/2). A head's sum is its threads' pair terms
// added in pair order by its first thread (no atomics: the same result every run). Reads and
// writes of a head's values are coalesced across its threads.
#define QK_HEADS_MAX BLOCK

// qknorm_split's backward, per head k: dy = RoPE⁻¹ of the head-major gradient dh (rotation by
// −θ), then RMSNorm's backward (model's rmsnormBackward, overwriting):
//   dx_i = r·(g_i·dy_i − x_i·r²·(Σ_j g_j·dy_j·x_j)/HD)   into dx [N, ld] at column h·HD,
//   gpart[k, i] = dy_i·x_i·r                           (col_sum_add sums it into the gain's gradient).
template <class O>
__device__ void qknorm_merge_bwd_t(O* dx, float* gpart, const float* dh, const float* x, const float* rinv,
                                   const float* g, int n, int ld, int T, int H, int HD, const float* cs, const float* sn) {
    __shared__ float part[BLOCK];
    __shared__ float coef[QK_HEADS_MAX];
    int half = HD / 2, lh = threadIdx.x / half, i = threadIdx.x % half;
    long long k = (long long)blockIdx.x * (blockDim.x / half) + lh;
    bool on = k < (long long)n * H;
    float a = 0.f, bb = 0.f, x0 = 0.f, x1 = 0.f, rr = 0.f;
    long long r = 0; int h = 0;
    if (on) {
        h = k % H; r = k / H;
        long long b = r / T; int t = r % T;
        const float* src = dh + ((b * H + h) * T + t) * HD;
        a = src[2 * i]; bb = src[2 * i + 1];
        if (cs) rope_rotate(&a, &bb, cs[t * half + i], -sn[t * half + i]);
        const float* xr = x + r * ld + h * HD;
        x0 = xr[2 * i]; x1 = xr[2 * i + 1];
        rr = rinv[k];
        part[threadIdx.x] = g[2 * i] * a * x0 + g[2 * i + 1] * bb * x1;
    }
    __syncthreads();
    if (on && i == 0) {
        float dot = 0.f;
        for (int j = 0; j < half; j++) dot += part[lh * half + j];
        coef[lh] = rr * rr * dot / (float)HD;
    }
    __syncthreads();
    if (!on) return;
    float c = coef[lh];
    float* gp = gpart + k * HD;
    gp[2 * i] = a * x0 * rr; gp[2 * i + 1] = bb * x1 * rr;
    long long o = r * ld + h * HD + 2 * i;
    putf(dx, o, rr * (g[2 * i] * a - x0 * c));
    putf(dx, o + 1, rr * (g[2 * i + 1] * bb - x1 * c));
}

extern "C" {

// QK-norm (model's qkvForward): RMSNorm over each head's HD values of q (or k) with a gain g [HD]
// shared by the heads, before RoPE. Per head k = r·H + h (QK-norm's geometry, above), reading in
// [N, ld] at column h·HD (the raw projection, kept for the backward pass):
//   rinv[k] = (Σ_i x_i²/HD + eps)^(−1/2),  y_i = g_i·x_i·rinv[k],
// then RoPE on the pairs of y (cos != 0) and y stored head-major as split_heads does.
__global__ void qknorm_split(float* out, float* rinv, const float* in, const float* g, int n, int ld, int T, int H,
                             int HD, float eps, const float* cs, const float* sn) {
    __shared__ float part[BLOCK];
    __shared__ float rs[QK_HEADS_MAX];
    int half = HD / 2, lh = threadIdx.x / half, i = threadIdx.x % half;
    long long k = (long long)blockIdx.x * (blockDim.x / half) + lh;
    bool on = k < (long long)n * H;
    float x0 = 0.f, x1 = 0.f;
    if (on) {
        long long r = k / H;
        const float* x = in + r * ld + (k % H) * HD;
        x0 = x[2 * i]; x1 = x[2 * i + 1];
        part[threadIdx.x] = x0 * x0 + x1 * x1;
    }
    __syncthreads();
    if (on && i == 0) {
        float ss = 0.f;
        for (int j = 0; j < half; j++) ss += part[lh * half + j];
        float rr = (float)(1.0 / sqrt((double)(ss / (float)HD + eps)));
        rs[lh] = rr;
        rinv[k] = rr;
    }
    __syncthreads();
    if (!on) return;
    int h = k % H; long long r = k / H;
    long long b = r / T; int t = r % T;
    float rr = rs[lh];
    float a = g[2 * i] * x0 * rr, bb = g[2 * i + 1] * x1 * rr;
    if (cs) rope_rotate(&a, &bb, cs[t * half + i], sn[t * half + i]);
    float* dst = out + ((b * H + h) * T + t) * HD + 2 * i;
    dst[0] = a; dst[1] = bb;
}

__global__ void relu2_fwd(float* gate, const float* h, long long n) { act_fwd_t<ACT_RELU2>(gate, h, n); }
__global__ void gelu_fwd(float* gate, const float* h, long long n) { act_fwd_t<ACT_GELU>(gate, h, n); }
// bf16 h (a GEMM output) into a bf16 gate (it feeds only W2's GEMMs).
__global__ void relu2_fwd_bf(bf16* gate, const bf16* h, long long n) { act_fwd_t<ACT_RELU2>(gate, h, n); }
__global__ void gelu_fwd_bf(bf16* gate, const bf16* h, long long n) { act_fwd_t<ACT_GELU>(gate, h, n); }

__global__ void relu2_bwd(float* dh, const float* dg, const float* h, long long n) { act_bwd_t<ACT_RELU2>(dh, dg, h, n); }
__global__ void gelu_bwd(float* dh, const float* dg, const float* h, long long n) { act_bwd_t<ACT_GELU>(dh, dg, h, n); }
// bf16 h into a bf16 dh (it feeds only GEMMs); dg stays fp32.
__global__ void relu2_bwd_bf(bf16* dh, const float* dg, const bf16* h, long long n) { act_bwd_t<ACT_RELU2>(dh, dg, h, n); }
__global__ void gelu_bwd_bf(bf16* dh, const float* dg, const bf16* h, long long n) { act_bwd_t<ACT_GELU>(dh, dg, h, n); }

// qknorm_merge_bwd_t into an fp32 dQKV.
__global__ void qknorm_merge_bwd(float* dx, float* gpart, const float* dh, const float* x, const float* rinv,
                                 const float* g, int n, int ld, int T, int H, int HD, const float* cs, const float* sn) {
    qknorm_merge_bwd_t(dx, gpart, dh, x, rinv, g, n, ld, T, H, HD, cs, sn);
}

// qknorm_merge_bwd_t into bf16 mode's bf16 dQKV.
__global__ void qknorm_merge_bwd_bf(bf16* dx, float* gpart, const float* dh, const float* x, const float* rinv,
                                    const float* g, int n, int ld, int T, int H, int HD, const float* cs, const float* sn) {
    qknorm_merge_bwd_t(dx, gpart, dh, x, rinv, g, n, ld, T, H, HD, cs, sn);
}

} // extern "C"

// Muon (anert/optim/muon.go; launched by cudab/muon.go). The 2-D weight matrices of one shape go
// together: a group of k matrices whose Newton–Schulz operand X is [s, l] (s ≤ l). The grid is
// k·nb blocks, nb per matrix: matrix y = blockIdx.x / nb, whose blocks stride over its n = s·l
// elements. tab[2y] is the matrix's element offset in the flat weight/gradient/momentum buffers
// and tab[2y+1] says whether it is stored [l, s] (1: a tall matrix, X its transpose) or [s, l]
// (0). X, like the rest of the scratch, is [k, s, l], matrix after matrix.
#define MUON_STRIDE(k, n, nb) for (long long k = (long long)(blockIdx.x % (nb)) * blockDim.x + threadIdx.x; k < (n); k += (long long)(nb) * blockDim.x)

extern "C" {

// Momentum and the Nesterov mix, per element k = i·c + j of the r×c parameter:
//   m ← mu·m + am·g;  u = am·g + mu·m;  X[y] = u (at j·r + i when the matrix is tall, else at k);
// part[blockIdx.x] = the block's Σ u², in double (muon_scale adds matrix y's nb partial sums in a
// fixed order: the norm is deterministic).
__global__ void muon_momentum(float* x, double* part, float* m, const float* g, const int* tab, int nb,
                              int s, int l, float mu, float am) {
    int y = blockIdx.x / nb;
    long long off = tab[2 * y];
    int tall = tab[2 * y + 1];
    long long n = (long long)s * l;
    int c = tall ? s : l, r = tall ? l : s;
    float* my = m + off;
    const float* gy = g + off;
    float* xy = x + (long long)y * n;
    double ss = 0.0;
    MUON_STRIDE(k, n, nb) {
        float gk = gy[k];
        float mk = mu * my[k] + am * gk;
        my[k] = mk;
        float uk = am * gk + mu * mk;
        if (tall) {
            long long i = k / c, j = k % c;
            xy[j * r + i] = uk;
        } else {
            xy[k] = uk;
        }
        ss += (double)uk * (double)uk;
    }
    ss = block_sum_d(ss);
    if (threadIdx.x == 0) part[blockIdx.x] = ss;
}

// X[y] ← X[y]·(1/(‖U‖_F + 1e-7)), the norm from muon_momentum's nb partial sums of matrix y
// (every block adds them in the same order, so all agree on the factor).
__global__ void muon_scale(float* x, const double* part, int nb, long long n) {
    int y = blockIdx.x / nb;
    double ss = 0.0;
    for (int j = threadIdx.x; j < nb; j += blockDim.x) ss += part[(long long)y * nb + j];
    ss = block_sum_d(ss);
    float inv = (float)(1.0 / (sqrt(ss) + 1e-7));
    float* xy = x + (long long)y * n;
    MUON_STRIDE(k, n, nb) xy[k] *= inv;
}

// The update from the orthogonalised X: w ← w·f − step·O with O read back through the same
// transposition (step = stepTall for a tall matrix: its √(r/c) factor); with wb (bf16 mode) also
// wb ← bf16(w), the GEMMs' copy, in the same pass.
__global__ void muon_update(float* w, bf16* wb, const float* x, const int* tab, int nb, int s, int l,
                            float step, float stepTall, float f) {
    int y = blockIdx.x / nb;
    long long off = tab[2 * y];
    int tall = tab[2 * y + 1];
    long long n = (long long)s * l;
    int c = tall ? s : l, r = tall ? l : s;
    float st = tall ? stepTall : step;
    const float* xy = x + (long long)y * n;
    MUON_STRIDE(k, n, nb) {
        float o = tall ? xy[(k % c) * r + k / c] : xy[k];
        float wi = w[off + k] * f - st * o;
        w[off + k] = wi;
        if (wb) wb[off + k] = f2bf(wi);
    }
}

} // extern "C" (Muon)
