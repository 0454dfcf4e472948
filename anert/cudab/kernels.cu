// Kernels of the CUDA training backend (package cudab), compiled at run time by NVRTC.
// Layouts match anert/model: token-major [N, C] row-major, row r = b*T + t. Each kernel's formula
// is the one in the doc comment of the Go function that launches it (cudab/ops.go).
// No fast-math: fp32 mode must agree with the CPU backend to 1e-4.

#define BLOCK 256
#define NEG_INF (-__int_as_float(0x7f800000)) // NVRTC has no math.h INFINITY

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

extern "C" {

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
    GRID_STRIDE(i, (long long)nrows * d) {
        long long c = i / d; int j = i % d;
        dst[i] = src[(long long)rows[c] * d + j];
    }
}

// rows are unique, so no two threads add to one element.
__global__ void scatter_add_rows(float* dst, const float* src, const int* rows, int nrows, int d) {
    GRID_STRIDE(i, (long long)nrows * d) {
        long long c = i / d; int j = i % d;
        dst[(long long)rows[c] * d + j] += src[i];
    }
}

// One block per row.
__global__ void rmsnorm_fwd(float* out, float* rinv, const float* x, const float* g, int d, float eps) {
    long long row = blockIdx.x;
    const float* xr = x + row * d;
    float ss = 0.f;
    for (int i = threadIdx.x; i < d; i += blockDim.x) ss += xr[i] * xr[i];
    ss = block_sum(ss);
    float r = (float)(1.0 / sqrt((double)(ss / (float)d + eps)));
    if (threadIdx.x == 0) rinv[row] = r;
    for (int i = threadIdx.x; i < d; i += blockDim.x) out[row * d + i] = g[i] * xr[i] * r;
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

// Head split (+ RoPE): in [N, ld] has head h of row r = b·T + t at columns h·HD..; out is
// [B·H, T, HD]. With cos != 0 each pair (2i, 2i+1) is rotated by sign·θ_{t,i}.
__global__ void split_heads(float* out, const float* in, int n, int ld, int T, int H, int HD,
                            const float* cs, const float* sn, float sign) {
    int half = HD / 2;
    GRID_STRIDE(k, (long long)n * H * half) {
        int i = k % half; long long rh = k / half; int h = rh % H; long long r = rh / H;
        long long b = r / T; int t = r % T;
        const float* src = in + r * ld + h * HD + 2 * i;
        float a = src[0], bb = src[1];
        if (cs) {
            float c = cs[t * half + i], s = sign * sn[t * half + i];
            float a2 = a * c - bb * s, b2 = a * s + bb * c;
            a = a2; bb = b2;
        }
        float* dst = out + ((b * H + h) * T + t) * HD + 2 * i;
        dst[0] = a; dst[1] = bb;
    }
}

// The inverse of split_heads: in [B·H, T, HD] → out [N, ld] at column h·HD (+ RoPE by sign·θ).
__global__ void merge_heads(float* out, const float* in, int n, int ld, int T, int H, int HD,
                            const float* cs, const float* sn, float sign) {
    int half = HD / 2;
    GRID_STRIDE(k, (long long)n * H * half) {
        int i = k % half; long long rh = k / half; int h = rh % H; long long r = rh / H;
        long long b = r / T; int t = r % T;
        const float* src = in + ((b * H + h) * T + t) * HD + 2 * i;
        float a = src[0], bb = src[1];
        if (cs) {
            float c = cs[t * half + i], s = sign * sn[t * half + i];
            float a2 = a * c - bb * s, b2 = a * s + bb * c;
            a = a2; bb = b2;
        }
        float* dst = out + r * ld + h * HD + 2 * i;
        dst[0] = a; dst[1] = bb;
    }
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

__device__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

__global__ void swiglu_fwd(float* gate, const float* h1, const float* h3, long long n) {
    GRID_STRIDE(i, n) { float x = h1[i]; gate[i] = x * sigmoid(x) * h3[i]; }
}

__global__ void swiglu_bwd(float* dh1, float* dh3, const float* dg, const float* h1, const float* h3, long long n) {
    GRID_STRIDE(i, n) {
        float x = h1[i], s = sigmoid(x), g = dg[i];
        dh3[i] = g * x * s;
        dh1[i] = g * h3[i] * s * (1.f + x * (1.f - s));
    }
}

// out = x + a·y
__global__ void axpy(float* out, const float* x, const float* y, float a, long long n) {
    GRID_STRIDE(i, n) out[i] = x[i] + a * y[i];
}

// out = a·y
__global__ void scale_to(float* out, const float* y, float a, long long n) {
    GRID_STRIDE(i, n) out[i] = a * y[i];
}

// Soft-cap + cross-entropy per row, one block per row of z [N, C]: z ← c·tanh(z/c) (c > 0),
// loss_row = m + log Σ exp(z − m) − z_tgt (in double), and with train z is overwritten with
// dl = scale·(softmax(z) − [j = tgt])·(1 − (z/c)²).
__global__ void softcap_ce(float* z, double* lossrow, const int* tgt, int C, float capc, float scale, int train) {
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
        r[j] = gg;
    }
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

// Lion: c = b1·m + a1·g;  w ← w·f − lr·sign(c) (sign(±0) = 0);  m ← b2·m + a2·g.
__global__ void lion(float* w, const float* g, float* m, long long n, float lr, float f,
                     float b1, float a1, float b2, float a2) {
    GRID_STRIDE(i, n) {
        float gi = g[i], mi = m[i];
        float c = b1 * mi + a1 * gi;
        float s = c == 0.f ? 0.f : copysignf(lr, c);
        w[i] = w[i] * f - s;
        m[i] = b2 * mi + a2 * gi;
    }
}

// AdamW: m ← b1·m + a1·g;  v ← b2·v + a2·g²;  w ← w·f − k·m/(√(r·v) + eps).
__global__ void adamw(float* w, const float* g, float* m, float* v, long long n, float k, float r, float f,
                      float b1, float a1, float b2, float a2, float eps) {
    GRID_STRIDE(i, n) {
        float gi = g[i];
        float mi = b1 * m[i] + a1 * gi;
        float vi = b2 * v[i] + a2 * gi * gi;
        m[i] = mi; v[i] = vi;
        w[i] = w[i] * f - k * mi / (sqrtf(r * vi) + eps);
    }
}

} // extern "C"
