// Fused causal attention, flash-style (package cudab), compiled at run time by NVRTC; the same
// source is compiled as host C++ by TestFlashEmulated (flash_emu.h runs a block's threads as
// fibers switched at __syncthreads), so it uses nothing beyond blockIdx/threadIdx/blockDim,
// __syncthreads, static __shared__ arrays and expf/logf/fmaxf: no warp intrinsics, no atomics.
//
// Layout: Q, K, V, O, dO, dQ, dK, dV are head-major [BH, T, HD] (split_heads' output), row i of
// head bh at (bh·T + i)·HD; lse and Dv are [BH, T]. scale = 1/√HD. fp32 throughout (the exact
// mode): the scores never reach device memory, only the log-sum-exp per query row.
//
// Forward, per query row i (online softmax over key tiles of FLASH_BK):
//   s_j = scale·q_i·k_j (j ≤ i),  m ← max(m, max_j s_j),  l ← l·e^{m_old−m} + Σ_j e^{s_j−m},
//   o ← o·e^{m_old−m} + Σ_j e^{s_j−m}·v_j;   O_i = o/l,  lse_i = m + log l.
// Backward, recomputing P_ij = e^{s_ij − lse_i} from the saved lse (no T×T buffer):
//   D_i = dO_i·O_i (= Σ_j P_ij·dP_ij),  dP_ij = dO_i·v_j,  dS_ij = P_ij·(dP_ij − D_i),
//   dQ_i = scale·Σ_j dS_ij·k_j,  dK_j = scale·Σ_i dS_ij·q_i,  dV_j = Σ_i P_ij·dO_i.
// dQ (one thread per query row) and dK/dV (one thread per key row) are separate kernels, so every
// output element has one writer: no atomics, deterministic, and the emulator needs none.
// No fast-math: fp32 must agree with the GEMM path and the CPU backend to 1e-4.

#ifndef FLASH_BQ
#define FLASH_BQ 64 // query rows per block = threads per block (forward, dQ)
#endif
#ifndef FLASH_BK
#define FLASH_BK 32 // keys per shared-memory tile (forward, dQ)
#endif
#ifndef FLASH_BKV
#define FLASH_BKV 64 // key rows per block = threads per block (dK/dV)
#endif
#ifndef FLASH_BQ2
#define FLASH_BQ2 16 // query rows per shared-memory tile (dK/dV)
#endif

#define FLASH_NEG_INF (-__int_as_float(0x7f800000)) // NVRTC has no math.h INFINITY

// Blocks are ordered heaviest first: block b is head b mod BH and the tile b/BH counted from the
// end, so the long causal rows (last tiles) start first and the short ones fill the tail.
__device__ __forceinline__ void flash_tile(int ntiles, int BH, int* bh, int* tile) {
    *bh = blockIdx.x % BH;
    *tile = ntiles - 1 - (int)(blockIdx.x / BH);
}

// Forward: one thread per query row; q and o in registers, the key/value tile in shared memory
// (every thread reads the same k_j/v_j element at once: a broadcast), the tile's scores in
// shared memory column-per-thread (conflict-free).
template <int HD>
__device__ void flash_fwd(float* __restrict__ O, float* __restrict__ lse, const float* __restrict__ Q,
                          const float* __restrict__ K, const float* __restrict__ V, int T, int BH, float scale) {
    __shared__ float Ks[FLASH_BK][HD];
    __shared__ float Vs[FLASH_BK][HD];
    __shared__ float Ss[FLASH_BK][FLASH_BQ];
    int ntiles = (T + FLASH_BQ - 1) / FLASH_BQ, bh, tile;
    flash_tile(ntiles, BH, &bh, &tile);
    int tid = threadIdx.x, q0 = tile * FLASH_BQ, i = q0 + tid;
    bool active = i < T;
    long long base = (long long)bh * T * HD;
    float q[HD], o[HD];
#pragma unroll
    for (int d = 0; d < HD; d++) {
        q[d] = active ? Q[base + (long long)i * HD + d] : 0.f;
        o[d] = 0.f;
    }
    float m = FLASH_NEG_INF, l = 0.f;
    int kend = q0 + FLASH_BQ < T ? q0 + FLASH_BQ : T; // the block's last row sees keys < kend
    for (int k0 = 0; k0 < kend; k0 += FLASH_BK) {
        __syncthreads(); // the previous tile is no longer read
        for (int e = tid; e < FLASH_BK * HD; e += FLASH_BQ) {
            int j = e / HD, d = e % HD, kj = k0 + j;
            bool in = kj < T;
            Ks[j][d] = in ? K[base + (long long)kj * HD + d] : 0.f;
            Vs[j][d] = in ? V[base + (long long)kj * HD + d] : 0.f;
        }
        __syncthreads();
        if (!active || k0 > i) continue; // every key of this tile is in this row's future
        int jn = i - k0 + 1 < FLASH_BK ? i - k0 + 1 : FLASH_BK; // keys k0..k0+jn−1 are ≤ i (and < T)
        float mt = m;
        for (int j = 0; j < jn; j++) {
            float dot = 0.f;
#pragma unroll
            for (int d = 0; d < HD; d++) dot += q[d] * Ks[j][d];
            float s = scale * dot;
            Ss[j][tid] = s;
            mt = fmaxf(mt, s);
        }
        float corr = expf(m - mt); // 0 at the first tile (m = −∞)
        l *= corr;
#pragma unroll
        for (int d = 0; d < HD; d++) o[d] *= corr;
        for (int j = 0; j < jn; j++) {
            float p = expf(Ss[j][tid] - mt);
            l += p;
#pragma unroll
            for (int d = 0; d < HD; d++) o[d] += p * Vs[j][d];
        }
        m = mt;
    }
    if (active) {
        float inv = 1.f / l;
#pragma unroll
        for (int d = 0; d < HD; d++) O[base + (long long)i * HD + d] = o[d] * inv;
        lse[(long long)bh * T + i] = m + logf(l);
    }
}

// D_i = dO_i·O_i for every row of [rows, HD] (grid-stride, one thread per row).
__device__ void flash_bwd_pre(float* __restrict__ Dv, const float* __restrict__ dO, const float* __restrict__ O,
                              long long rows, int HD) {
    for (long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += (long long)gridDim.x * blockDim.x) {
        float s = 0.f;
        for (int d = 0; d < HD; d++) s += dO[r * HD + d] * O[r * HD + d];
        Dv[r] = s;
    }
}

// dQ: one thread per query row; q and the dQ sum in registers, dO_i in shared memory
// column-per-thread, the key/value tile in shared memory (broadcast reads).
template <int HD>
__device__ void flash_bwd_dq(float* __restrict__ dQ, const float* __restrict__ Q, const float* __restrict__ K,
                             const float* __restrict__ V, const float* __restrict__ dO, const float* __restrict__ lse,
                             const float* __restrict__ Dv, int T, int BH, float scale) {
    __shared__ float Ks[FLASH_BK][HD];
    __shared__ float Vs[FLASH_BK][HD];
    __shared__ float dOs[HD][FLASH_BQ];
    int ntiles = (T + FLASH_BQ - 1) / FLASH_BQ, bh, tile;
    flash_tile(ntiles, BH, &bh, &tile);
    int tid = threadIdx.x, q0 = tile * FLASH_BQ, i = q0 + tid;
    bool active = i < T;
    long long base = (long long)bh * T * HD;
    float q[HD], dq[HD];
#pragma unroll
    for (int d = 0; d < HD; d++) {
        q[d] = active ? Q[base + (long long)i * HD + d] : 0.f;
        dOs[d][tid] = active ? dO[base + (long long)i * HD + d] : 0.f;
        dq[d] = 0.f;
    }
    float L = active ? lse[(long long)bh * T + i] : 0.f;
    float Di = active ? Dv[(long long)bh * T + i] : 0.f;
    int kend = q0 + FLASH_BQ < T ? q0 + FLASH_BQ : T;
    for (int k0 = 0; k0 < kend; k0 += FLASH_BK) {
        __syncthreads();
        for (int e = tid; e < FLASH_BK * HD; e += FLASH_BQ) {
            int j = e / HD, d = e % HD, kj = k0 + j;
            bool in = kj < T;
            Ks[j][d] = in ? K[base + (long long)kj * HD + d] : 0.f;
            Vs[j][d] = in ? V[base + (long long)kj * HD + d] : 0.f;
        }
        __syncthreads();
        if (!active || k0 > i) continue;
        int jn = i - k0 + 1 < FLASH_BK ? i - k0 + 1 : FLASH_BK;
        for (int j = 0; j < jn; j++) {
            float dot = 0.f, dp = 0.f;
#pragma unroll
            for (int d = 0; d < HD; d++) {
                dot += q[d] * Ks[j][d];
                dp += dOs[d][tid] * Vs[j][d];
            }
            float p = expf(scale * dot - L);
            float ds = p * (dp - Di);
#pragma unroll
            for (int d = 0; d < HD; d++) dq[d] += ds * Ks[j][d];
        }
    }
    if (active) {
#pragma unroll
        for (int d = 0; d < HD; d++) dQ[base + (long long)i * HD + d] = scale * dq[d];
    }
}

// dK, dV: one thread per key row j; k_j and v_j in shared memory column-per-thread, the dK and
// dV sums in registers, tiles of FLASH_BQ2 query rows (q_i, dO_i, lse_i, D_i) in shared memory
// (broadcast reads). Only rows i ≥ the block's first key are visited.
template <int HD>
__device__ void flash_bwd_dkdv(float* __restrict__ dK, float* __restrict__ dV, const float* __restrict__ Q,
                               const float* __restrict__ K, const float* __restrict__ V, const float* __restrict__ dO,
                               const float* __restrict__ lse, const float* __restrict__ Dv, int T, int BH, float scale) {
    __shared__ float Kt[HD][FLASH_BKV];
    __shared__ float Vt[HD][FLASH_BKV];
    __shared__ float Qs[FLASH_BQ2][HD];
    __shared__ float dOs[FLASH_BQ2][HD];
    __shared__ float Ls[FLASH_BQ2];
    __shared__ float Ds[FLASH_BQ2];
    int ntiles = (T + FLASH_BKV - 1) / FLASH_BKV, bh, tile;
    flash_tile(ntiles, BH, &bh, &tile);
    int tid = threadIdx.x, k0 = tile * FLASH_BKV, j = k0 + tid;
    bool active = j < T;
    long long base = (long long)bh * T * HD;
    float dk[HD], dv[HD];
#pragma unroll
    for (int d = 0; d < HD; d++) {
        Kt[d][tid] = active ? K[base + (long long)j * HD + d] : 0.f;
        Vt[d][tid] = active ? V[base + (long long)j * HD + d] : 0.f;
        dk[d] = 0.f;
        dv[d] = 0.f;
    }
    for (int i0 = k0; i0 < T; i0 += FLASH_BQ2) {
        __syncthreads(); // the previous query tile is no longer read
        for (int e = tid; e < FLASH_BQ2 * HD; e += FLASH_BKV) {
            int r = e / HD, d = e % HD, qi = i0 + r;
            bool in = qi < T;
            Qs[r][d] = in ? Q[base + (long long)qi * HD + d] : 0.f;
            dOs[r][d] = in ? dO[base + (long long)qi * HD + d] : 0.f;
        }
        for (int r = tid; r < FLASH_BQ2; r += FLASH_BKV) {
            int qi = i0 + r;
            Ls[r] = qi < T ? lse[(long long)bh * T + qi] : 0.f;
            Ds[r] = qi < T ? Dv[(long long)bh * T + qi] : 0.f;
        }
        __syncthreads();
        if (!active) continue;
        int rn = T - i0 < FLASH_BQ2 ? T - i0 : FLASH_BQ2;
        for (int r = j > i0 ? j - i0 : 0; r < rn; r++) { // rows i0+r ≥ j only (causal)
            float dot = 0.f, dp = 0.f;
#pragma unroll
            for (int d = 0; d < HD; d++) {
                dot += Qs[r][d] * Kt[d][tid];
                dp += dOs[r][d] * Vt[d][tid];
            }
            float p = expf(scale * dot - Ls[r]);
            float ds = p * (dp - Ds[r]);
#pragma unroll
            for (int d = 0; d < HD; d++) {
                dv[d] += p * dOs[r][d];
                dk[d] += ds * Qs[r][d];
            }
        }
    }
    if (active) {
#pragma unroll
        for (int d = 0; d < HD; d++) {
            dK[base + (long long)j * HD + d] = scale * dk[d];
            dV[base + (long long)j * HD + d] = dv[d];
        }
    }
}

// Entry points, one per head dim (the per-row arrays are registers only for a compile-time HD).
#define FLASH_ENTRIES(HD)                                                                                      \
    extern "C" __global__ void __launch_bounds__(FLASH_BQ) flash_fwd_##HD(                                    \
        float* O, float* lse, const float* Q, const float* K, const float* V, int T, int BH, float scale) {   \
        flash_fwd<HD>(O, lse, Q, K, V, T, BH, scale);                                                          \
    }                                                                                                          \
    extern "C" __global__ void __launch_bounds__(FLASH_BQ) flash_bwd_dq_##HD(                                 \
        float* dQ, const float* Q, const float* K, const float* V, const float* dO, const float* lse,         \
        const float* Dv, int T, int BH, float scale) {                                                         \
        flash_bwd_dq<HD>(dQ, Q, K, V, dO, lse, Dv, T, BH, scale);                                              \
    }                                                                                                          \
    extern "C" __global__ void __launch_bounds__(FLASH_BKV) flash_bwd_dkdv_##HD(                              \
        float* dK, float* dV, const float* Q, const float* K, const float* V, const float* dO,                \
        const float* lse, const float* Dv, int T, int BH, float scale) {                                       \
        flash_bwd_dkdv<HD>(dK, dV, Q, K, V, dO, lse, Dv, T, BH, scale);                                        \
    }

FLASH_ENTRIES(8)
FLASH_ENTRIES(16)
FLASH_ENTRIES(32)
FLASH_ENTRIES(48)
FLASH_ENTRIES(64)

extern "C" __global__ void flash_bwd_pre_k(float* Dv, const float* dO, const float* O, long long rows, int HD) {
    flash_bwd_pre(Dv, dO, O, rows, HD);
}
