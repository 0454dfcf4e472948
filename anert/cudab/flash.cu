// Fused causal attention, flash-style (package cudab), compiled at run time by NVRTC; the same
// source is compiled as host C++ by TestFlashEmulated and TestFlashBF16Emulated (flash_emu.h runs
// a block's threads as fibers switched at __syncthreads and at warp operations), so it uses
// nothing beyond blockIdx/threadIdx/blockDim, __syncthreads, static __shared__ arrays,
// expf/exp2f/logf/fmaxf, __shfl_xor_sync and the two inline-PTX wrappers of the bf16 variant
// (flashb_pack, flashb_mma), which flash_emu.h defines for the CPU. No atomics.
//
// Two variants, one interface: the fp32 kernels below (cuda-fp32, the exact mode) and the bf16
// tensor-core kernels after them (bf16 mode).
//
// Layout: Q, K, V, O, dO, dQ, dK, dV are head-major fp32 [BH, T, HD] (split_heads' output), row
// i of head bh at (bh·T + i)·HD; lse and Dv are [BH, T]. scale = 1/√HD. The scores never reach
// device memory, only the log-sum-exp per query row. The fp32 kernels are fp32 throughout.
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

// ===================================================================================================
// bf16 tensor-core variant (the cuda backend's bf16 mode), FlashAttention-2 style. Same interface
// as the fp32 kernels above (fp32 head-major Q, K, V, dO in; fp32 O, lse, dQ, dK, dV out): the tiles
// are converted to bf16 as they are staged in shared memory, the products run on tensor cores
// (mma.sync m16n8k16, bf16 operands, fp32 accumulators), and the online softmax, the running sums
// and every output stay fp32. A warp owns 16 rows (query rows in the forward and dQ kernels, key
// rows in dK/dV), a block FLASHB_WARPS warps; every output element still has one writer.
//
// Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k16" with .bf16; lane = 4·g + t, g = lane/4
// the group, t = lane%4 the thread in the group; a .b32 register holds two bf16, the lower-indexed
// element in the low half):
//   A (16×16, row-major, four .b32): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..2t+1),
//                                    a2 = (g, 2t+8..2t+9), a3 = (g+8, 2t+8..2t+9)      [row, cols]
//   B (16×8, "col": k × n, two .b32): b0 = (2t..2t+1, g), b1 = (2t+8..2t+9, g)        [rows k, col n]
//   C, D (16×8, four f32):           c0 = (g, 2t), c1 = (g, 2t+1), c2 = (g+8, 2t), c3 = (g+8, 2t+1)
// So an accumulator tile pair (keys 16c..16c+7 and 16c+8..16c+15) is, packed to bf16, exactly the A
// fragment of the next product (P·V, dS·K): no shuffles between the two GEMMs. B operands whose k
// index runs along a row in memory (Kᵀ for S = Q·Kᵀ: k = head dim) are read from the row-major tile
// as one 32-bit word; those whose k runs down a column (V for P·V: k = key) are staged transposed.
// Shared tiles are arrays of 32-bit words (two bf16 each) with rows padded by 4 words, so the eight
// groups of a warp hit eight different bank quadruples (row stride ≡ 4 mod 32 words for HD = 16…64).
//
// Softmax in base 2: x = s·scale·log₂e, so e^{s−m} = 2^{x−m₂}; lse is stored in natural units.

#ifndef FLASHB_WARPS
#define FLASHB_WARPS 4 // warps per block (forward, dQ, dK/dV)
#endif
#ifndef FLASHB_BK
#define FLASHB_BK 64 // keys per shared tile (forward, dQ) = query rows per shared tile (dK/dV)
#endif
#define FLASHB_ROWS (16 * FLASHB_WARPS) // rows per block
#define FLASHB_LOG2E 1.4426950408889634f
#define FLASHB_LN2 0.6931471805599453f

#ifndef FLASH_EMU
// Two floats rounded (to nearest even) to bf16 and packed: lo in bits 0..15, hi in 16..31.
__device__ __forceinline__ unsigned flashb_pack(float lo, float hi) {
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); // d.hi = a, d.lo = b
    return r;
}
// d += A·B for one warp: A 16×16 bf16 (a[4]), B 16×8 bf16 (b[2]), d 16×8 fp32 (layouts above).
__device__ __forceinline__ void flashb_mma(float* d, const unsigned* a, const unsigned* b) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
#endif

// Maximum and sum over the four lanes of a group (the lanes holding one accumulator row).
__device__ __forceinline__ float flashb_quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float flashb_quad_sum(float v) {
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// Stage rows r0..r0+R−1 of a [T, HD] fp32 matrix as bf16 in shared memory, rows ≥ T as zeros:
// row-major (dst[r][w] = columns 2w, 2w+1 of row r0+r; consecutive threads read consecutive
// floats) or transposed (dst[d][w] = rows r0+2w, r0+2w+1 of column d; lane l of a warp takes
// column 8·i + l/4 and word 4·j + l%4, so a warp reads whole 32-byte sectors and its 32 stores
// hit 32 different banks: the row stride is ≡ 4 words mod 32).
template <int HD, int R>
__device__ __forceinline__ void flashb_stage_rows(unsigned (*dst)[HD / 2 + 4], const float* __restrict__ X, int r0, int T) {
    for (int e = threadIdx.x; e < R * HD / 2; e += blockDim.x) {
        int r = e / (HD / 2), w = e % (HD / 2), x = r0 + r;
        float a = 0.f, b = 0.f;
        if (x < T) {
            a = X[(long long)x * HD + 2 * w];
            b = X[(long long)x * HD + 2 * w + 1];
        }
        dst[r][w] = flashb_pack(a, b);
    }
}
template <int HD, int R>
__device__ __forceinline__ void flashb_stage_cols(unsigned (*dst)[R / 2 + 4], const float* __restrict__ X, int r0, int T) {
    for (int e = threadIdx.x; e < R / 2 * HD; e += blockDim.x) { // blockDim.x is a multiple of 32
        int l = e % 32, c = e / 32;
        int d = (c % (HD / 8)) * 8 + l / 4, w = (c / (HD / 8)) * 4 + l % 4, x = r0 + 2 * w;
        float a = x < T ? X[(long long)x * HD + d] : 0.f;
        float b = x + 1 < T ? X[(long long)(x + 1) * HD + d] : 0.f;
        dst[d][w] = flashb_pack(a, b);
    }
}

// A fragments of the warp's 16 rows r0..r0+15 of a [T, HD] fp32 matrix (rows ≥ T are zeros),
// one per 16 columns.
template <int HD>
__device__ __forceinline__ void flashb_load_a(unsigned (*a)[4], const float* __restrict__ X, int r0, int T) {
    int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    int ra = r0 + g, rb = r0 + g + 8;
#pragma unroll
    for (int kc = 0; kc < HD / 16; kc++) {
        int c = 16 * kc + 2 * t;
        float v[8];
#pragma unroll
        for (int h = 0; h < 2; h++) { // h = 0: cols c, c+1; h = 1: cols c+8, c+9
            v[4 * h + 0] = ra < T ? X[(long long)ra * HD + c + 8 * h] : 0.f;
            v[4 * h + 1] = ra < T ? X[(long long)ra * HD + c + 8 * h + 1] : 0.f;
            v[4 * h + 2] = rb < T ? X[(long long)rb * HD + c + 8 * h] : 0.f;
            v[4 * h + 3] = rb < T ? X[(long long)rb * HD + c + 8 * h + 1] : 0.f;
        }
        a[kc][0] = flashb_pack(v[0], v[1]);
        a[kc][1] = flashb_pack(v[2], v[3]);
        a[kc][2] = flashb_pack(v[4], v[5]);
        a[kc][3] = flashb_pack(v[6], v[7]);
    }
}

// acc[n] = A·Bᵀ over the head dim for N/8 column tiles: A = a (the warp's 16 rows, HD/16
// fragments), B row n = the row-major staged tile's row n (the B fragment's k = head dim). Tiles
// outside [nlo, nn) are left zero (all their columns are masked by causality).
template <int HD, int N>
__device__ __forceinline__ void flashb_rows_x_tileT(float (*acc)[4], unsigned (*a)[4],
                                                     unsigned (*tile)[HD / 2 + 4], int nn = N / 8, int nlo = 0) {
    int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int nt = 0; nt < N / 8; nt++) {
        acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.f;
        if (nt >= nn || nt < nlo) continue; // warp-uniform (not break: the loop stays unrolled, acc in registers)
#pragma unroll
        for (int kc = 0; kc < HD / 16; kc++) {
            unsigned b[2] = {tile[8 * nt + g][8 * kc + t], tile[8 * nt + g][8 * kc + 4 + t]};
            flashb_mma(acc[nt], a[kc], b);
        }
    }
}

// out[nd] += P·X for HD/8 column tiles, P the warp's 16×(16·NC) accumulator tiles p (packed to
// bf16 as A fragments, two 8-column tiles per fragment), X's transposed staged tile xt (k = row).
// Chunks outside [clo, nc) are skipped (their columns are all masked).
template <int HD, int NC, int W>
__device__ __forceinline__ void flashb_acc_x_tile(float (*out)[4], float (*p)[4], unsigned (*xt)[W],
                                                  int c0, int nc, int clo = 0) {
    int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int c = 0; c < NC; c++) {
        if (c >= nc || c < clo) continue; // (not break: the loop must stay fully unrolled, p in registers)
        unsigned a[4] = {flashb_pack(p[2 * c][0], p[2 * c][1]), flashb_pack(p[2 * c][2], p[2 * c][3]),
                         flashb_pack(p[2 * c + 1][0], p[2 * c + 1][1]), flashb_pack(p[2 * c + 1][2], p[2 * c + 1][3])};
#pragma unroll
        for (int nd = 0; nd < HD / 8; nd++) {
            unsigned b[2] = {xt[8 * nd + g][c0 / 2 + 8 * c + t], xt[8 * nd + g][c0 / 2 + 8 * c + 4 + t]};
            flashb_mma(out[nd], a, b);
        }
    }
}

// Forward: warp w of the block owns query rows r0 = q0 + 16w … r0+15; per key tile S = Q·Kᵀ
// (tensor cores), the causal mask, the online softmax on the accumulators, O += P·V.
template <int HD>
__device__ void flashb_fwd(float* __restrict__ O, float* __restrict__ lse, const float* __restrict__ Q,
                           const float* __restrict__ K, const float* __restrict__ V, int T, int BH, float scale) {
    __shared__ unsigned Ks[FLASHB_BK][HD / 2 + 4];
    __shared__ unsigned Vt[HD][FLASHB_BK / 2 + 4];
    int ntiles = (T + FLASHB_ROWS - 1) / FLASHB_ROWS, bh, tile;
    flash_tile(ntiles, BH, &bh, &tile);
    int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    int q0 = tile * FLASHB_ROWS, r0 = q0 + 16 * (int)(threadIdx.x / 32);
    long long base = (long long)bh * T * HD;
    unsigned qa[HD / 16][4];
    flashb_load_a<HD>(qa, Q + base, r0, T);
    float o[HD / 8][4];
#pragma unroll
    for (int nd = 0; nd < HD / 8; nd++) o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.f;
    float m[2] = {FLASH_NEG_INF, FLASH_NEG_INF}, l[2] = {0.f, 0.f}; // rows g, g+8; l per lane, summed at the end
    const float sl2 = scale * FLASHB_LOG2E;
    int kend = q0 + FLASHB_ROWS < T ? q0 + FLASHB_ROWS : T;
    for (int k0 = 0; k0 < kend; k0 += FLASHB_BK) {
        __syncthreads(); // the previous tile is no longer read
        flashb_stage_rows<HD, FLASHB_BK>(Ks, K + base, k0, T);
        flashb_stage_cols<HD, FLASHB_BK>(Vt, V + base, k0, T);
        __syncthreads();
        if (k0 > r0 + 15) continue; // warp-uniform: every key of the tile is in the warp's rows' future
        float s[FLASHB_BK / 8][4];
        int nn = (r0 + 15 - k0) / 8 + 1; // 8-key tiles with a key ≤ the warp's last row
        flashb_rows_x_tileT<HD, FLASHB_BK>(s, qa, Ks, nn);
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int nt = 0; nt < FLASHB_BK / 8; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int key = k0 + 8 * nt + 2 * t + (i & 1), row = r0 + g + 8 * (i >> 1);
                float x = key <= row ? s[nt][i] * sl2 : FLASH_NEG_INF;
                s[nt][i] = x;
                mx[i >> 1] = fmaxf(mx[i >> 1], x);
            }
        float corr[2];
#pragma unroll
        for (int h = 0; h < 2; h++) {
            mx[h] = flashb_quad_max(mx[h]);
            corr[h] = exp2f(m[h] - mx[h]); // 0 at the first tile (m = −∞); the row's key 0 makes mx finite
            m[h] = mx[h];
            l[h] *= corr[h];
        }
#pragma unroll
        for (int nt = 0; nt < FLASHB_BK / 8; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float p = exp2f(s[nt][i] - m[i >> 1]);
                s[nt][i] = p;
                l[i >> 1] += p;
            }
#pragma unroll
        for (int nd = 0; nd < HD / 8; nd++) {
            o[nd][0] *= corr[0];
            o[nd][1] *= corr[0];
            o[nd][2] *= corr[1];
            o[nd][3] *= corr[1];
        }
        int nc = (r0 + 15 - k0) / 16 + 1; // 16-key chunks with a key ≤ the warp's last row
        flashb_acc_x_tile<HD, FLASHB_BK / 16, FLASHB_BK / 2 + 4>(o, s, Vt, 0, nc);
    }
#pragma unroll
    for (int h = 0; h < 2; h++) l[h] = flashb_quad_sum(l[h]);
#pragma unroll
    for (int h = 0; h < 2; h++) {
        int row = r0 + g + 8 * h;
        if (row >= T) continue;
        float inv = 1.f / l[h];
#pragma unroll
        for (int nd = 0; nd < HD / 8; nd++) {
            O[base + (long long)row * HD + 8 * nd + 2 * t] = o[nd][2 * h] * inv;
            O[base + (long long)row * HD + 8 * nd + 2 * t + 1] = o[nd][2 * h + 1] * inv;
        }
        if (t == 0) lse[(long long)bh * T + row] = m[h] * FLASHB_LN2 + logf(l[h]);
    }
}

// dQ: warp w owns query rows r0…r0+15 (Q and dO as A fragments, lse and D in registers); per key
// tile S = Q·Kᵀ and dP = dO·Vᵀ (row-major K, V tiles), P = 2^{x − lse₂} (masked), dS = P∘(dP − D),
// dQ += dS·K (transposed K tile).
template <int HD>
__device__ void flashb_dq(float* __restrict__ dQ, const float* __restrict__ Q, const float* __restrict__ K,
                          const float* __restrict__ V, const float* __restrict__ dO, const float* __restrict__ lse,
                          const float* __restrict__ Dv, int T, int BH, float scale) {
    __shared__ unsigned Ks[FLASHB_BK][HD / 2 + 4];
    __shared__ unsigned Vs[FLASHB_BK][HD / 2 + 4];
    __shared__ unsigned Kt[HD][FLASHB_BK / 2 + 4];
    int ntiles = (T + FLASHB_ROWS - 1) / FLASHB_ROWS, bh, tile;
    flash_tile(ntiles, BH, &bh, &tile);
    int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    int q0 = tile * FLASHB_ROWS, r0 = q0 + 16 * (int)(threadIdx.x / 32);
    long long base = (long long)bh * T * HD;
    unsigned qa[HD / 16][4], da[HD / 16][4];
    flashb_load_a<HD>(qa, Q + base, r0, T);
    flashb_load_a<HD>(da, dO + base, r0, T);
    float L[2], D[2]; // rows g, g+8: lse in base-2 units, D
#pragma unroll
    for (int h = 0; h < 2; h++) {
        int row = r0 + g + 8 * h;
        L[h] = row < T ? lse[(long long)bh * T + row] * FLASHB_LOG2E : 0.f;
        D[h] = row < T ? Dv[(long long)bh * T + row] : 0.f;
    }
    float dq[HD / 8][4];
#pragma unroll
    for (int nd = 0; nd < HD / 8; nd++) dq[nd][0] = dq[nd][1] = dq[nd][2] = dq[nd][3] = 0.f;
    const float sl2 = scale * FLASHB_LOG2E;
    int kend = q0 + FLASHB_ROWS < T ? q0 + FLASHB_ROWS : T;
    for (int k0 = 0; k0 < kend; k0 += FLASHB_BK) {
        __syncthreads();
        flashb_stage_rows<HD, FLASHB_BK>(Ks, K + base, k0, T);
        flashb_stage_rows<HD, FLASHB_BK>(Vs, V + base, k0, T);
        flashb_stage_cols<HD, FLASHB_BK>(Kt, K + base, k0, T);
        __syncthreads();
        if (k0 > r0 + 15) continue;
        float s[FLASHB_BK / 8][4], dp[FLASHB_BK / 8][4];
        int nn = (r0 + 15 - k0) / 8 + 1;
        flashb_rows_x_tileT<HD, FLASHB_BK>(s, qa, Ks, nn);
        flashb_rows_x_tileT<HD, FLASHB_BK>(dp, da, Vs, nn);
#pragma unroll
        for (int nt = 0; nt < FLASHB_BK / 8; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                int key = k0 + 8 * nt + 2 * t + (i & 1), row = r0 + g + 8 * (i >> 1);
                float p = key <= row ? exp2f(s[nt][i] * sl2 - L[i >> 1]) : 0.f;
                s[nt][i] = p * (dp[nt][i] - D[i >> 1]); // dS
            }
        int nc = (r0 + 15 - k0) / 16 + 1;
        flashb_acc_x_tile<HD, FLASHB_BK / 16, FLASHB_BK / 2 + 4>(dq, s, Kt, 0, nc);
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        int row = r0 + g + 8 * h;
        if (row >= T) continue;
#pragma unroll
        for (int nd = 0; nd < HD / 8; nd++) {
            dQ[base + (long long)row * HD + 8 * nd + 2 * t] = scale * dq[nd][2 * h];
            dQ[base + (long long)row * HD + 8 * nd + 2 * t + 1] = scale * dq[nd][2 * h + 1];
        }
    }
}

// dK, dV: warp w owns key rows j0 = k0 + 16w … j0+15 (K and V as A fragments), and computes the
// transposed products: per tile of FLASHB_BK query rows (from the block's first key on), in halves
// of 32, Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ (row-major Q, dO tiles), Pᵀ = 2^{x − lse₂} (masked: query ≥ key,
// query < T), dSᵀ = Pᵀ∘(dPᵀ − D), dV += Pᵀ·dO, dK += dSᵀ·Q (transposed dO, Q tiles).
template <int HD>
__device__ void flashb_dkdv(float* __restrict__ dK, float* __restrict__ dV, const float* __restrict__ Q,
                            const float* __restrict__ K, const float* __restrict__ V, const float* __restrict__ dO,
                            const float* __restrict__ lse, const float* __restrict__ Dv, int T, int BH, float scale) {
    __shared__ unsigned Qs[FLASHB_BK][HD / 2 + 4];
    __shared__ unsigned dOs[FLASHB_BK][HD / 2 + 4];
    __shared__ unsigned Qt[HD][FLASHB_BK / 2 + 4];
    __shared__ unsigned dOt[HD][FLASHB_BK / 2 + 4];
    __shared__ float Ls[FLASHB_BK], Ds[FLASHB_BK];
    // Heaviest first here too: the first key tiles see the most query rows.
    int bh = blockIdx.x % BH, tile = blockIdx.x / BH;
    int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    int k0 = tile * FLASHB_ROWS, j0 = k0 + 16 * (int)(threadIdx.x / 32);
    long long base = (long long)bh * T * HD;
    unsigned ka[HD / 16][4], va[HD / 16][4];
    flashb_load_a<HD>(ka, K + base, j0, T);
    flashb_load_a<HD>(va, V + base, j0, T);
    float dk[HD / 8][4], dv[HD / 8][4];
#pragma unroll
    for (int nd = 0; nd < HD / 8; nd++)
#pragma unroll
        for (int i = 0; i < 4; i++) dk[nd][i] = dv[nd][i] = 0.f;
    const float sl2 = scale * FLASHB_LOG2E;
    for (int i0 = k0; i0 < T; i0 += FLASHB_BK) {
        __syncthreads(); // the previous query tile is no longer read
        flashb_stage_rows<HD, FLASHB_BK>(Qs, Q + base, i0, T);
        flashb_stage_rows<HD, FLASHB_BK>(dOs, dO + base, i0, T);
        flashb_stage_cols<HD, FLASHB_BK>(Qt, Q + base, i0, T);
        flashb_stage_cols<HD, FLASHB_BK>(dOt, dO + base, i0, T);
        for (int r = threadIdx.x; r < FLASHB_BK; r += blockDim.x) {
            int qi = i0 + r;
            Ls[r] = qi < T ? lse[(long long)bh * T + qi] * FLASHB_LOG2E : 0.f;
            Ds[r] = qi < T ? Dv[(long long)bh * T + qi] : 0.f;
        }
        __syncthreads();
#pragma unroll 1
        for (int hq = 0; hq < FLASHB_BK; hq += 32) {
            if (i0 + hq + 31 < j0) continue; // warp-uniform: every query of the half precedes the warp's keys
            if (i0 + hq >= T) break;
            float s[4][4], dp[4][4];
            // 8-query tiles before nlo precede every key of the warp (the diagonal tile only).
            int nlo = j0 - i0 - hq > 0 ? (j0 - i0 - hq) / 8 : 0;
            flashb_rows_x_tileT<HD, 32>(s, ka, Qs + hq, 4, nlo);
            flashb_rows_x_tileT<HD, 32>(dp, va, dOs + hq, 4, nlo);
#pragma unroll
            for (int nt = 0; nt < 4; nt++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    int c = hq + 8 * nt + 2 * t + (i & 1), qi = i0 + c, key = j0 + g + 8 * (i >> 1);
                    float p = qi >= key && qi < T ? exp2f(s[nt][i] * sl2 - Ls[c]) : 0.f;
                    s[nt][i] = p;
                    dp[nt][i] = p * (dp[nt][i] - Ds[c]); // dSᵀ
                }
            flashb_acc_x_tile<HD, 2, FLASHB_BK / 2 + 4>(dv, s, dOt, hq, 2, nlo / 2);
            flashb_acc_x_tile<HD, 2, FLASHB_BK / 2 + 4>(dk, dp, Qt, hq, 2, nlo / 2);
        }
    }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        int key = j0 + g + 8 * h;
        if (key >= T) continue;
#pragma unroll
        for (int nd = 0; nd < HD / 8; nd++) {
            dK[base + (long long)key * HD + 8 * nd + 2 * t] = scale * dk[nd][2 * h];
            dK[base + (long long)key * HD + 8 * nd + 2 * t + 1] = scale * dk[nd][2 * h + 1];
            dV[base + (long long)key * HD + 8 * nd + 2 * t] = dv[nd][2 * h];
            dV[base + (long long)key * HD + 8 * nd + 2 * t + 1] = dv[nd][2 * h + 1];
        }
    }
}

#define FLASHB_ENTRIES(HD)                                                                                     \
    extern "C" __global__ void __launch_bounds__(32 * FLASHB_WARPS) flash_fwd_bf16_##HD(                      \
        float* O, float* lse, const float* Q, const float* K, const float* V, int T, int BH, float scale) {   \
        flashb_fwd<HD>(O, lse, Q, K, V, T, BH, scale);                                                         \
    }                                                                                                          \
    extern "C" __global__ void __launch_bounds__(32 * FLASHB_WARPS) flash_bwd_dq_bf16_##HD(                   \
        float* dQ, const float* Q, const float* K, const float* V, const float* dO, const float* lse,         \
        const float* Dv, int T, int BH, float scale) {                                                         \
        flashb_dq<HD>(dQ, Q, K, V, dO, lse, Dv, T, BH, scale);                                                 \
    }                                                                                                          \
    extern "C" __global__ void __launch_bounds__(32 * FLASHB_WARPS) flash_bwd_dkdv_bf16_##HD(                 \
        float* dK, float* dV, const float* Q, const float* K, const float* V, const float* dO,                \
        const float* lse, const float* Dv, int T, int BH, float scale) {                                       \
        flashb_dkdv<HD>(dK, dV, Q, K, V, dO, lse, Dv, T, BH, scale);                                           \
    }

FLASHB_ENTRIES(16)
FLASHB_ENTRIES(32)
FLASHB_ENTRIES(48)
FLASHB_ENTRIES(64)
