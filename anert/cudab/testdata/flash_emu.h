// Host emulation of the CUDA features flash.cu uses, so that g++ compiles the same kernel source
// (TestFlashEmulated). A launch runs its blocks one after the other; a block's threads are fibers
// (ucontext) run in turn, each up to its next __syncthreads, so every thread of the block reaches
// a barrier before any passes it, exactly the guarantee CUDA gives. The order the threads run in
// is shuffled at every barrier (a fixed-seed generator: runs repeat), so that code which relies on
// one thread running before another without a barrier between them (a missing __syncthreads)
// reads stale shared memory here as it would on a GPU. __shared__ becomes static:
// one copy per kernel, shared by the threads of the block that runs. Deterministic, single OS
// thread. A barrier reached by some threads of a block while others have ended is reported (on
// a GPU that is undefined behaviour).
//
// Warps: the warp-level operations of the bf16 kernels (flashb_mma, the mma.sync m16n8k16 wrapper;
// __shfl_xor_sync) are emulated with a warp barrier: each lane deposits its operands in its warp's
// slot and waits until all 32 lanes of its warp have; then each lane computes its own result from
// the others' deposits and waits again before the slot can be reused. A warp whose lanes do not all
// reach the same warp operation (divergence, a lane that has ended or waits at __syncthreads) is
// reported. The mma emulation reads the 32 lanes' A, B and C fragments by the PTX ISA's layout for
// m16n8k16 with .bf16 operands (documented in flash.cu), so a kernel that builds its fragments in
// any other layout computes wrong products here as on a GPU. The environment variable
// FLASH_EMU_MISLAYOUT = A, B or C mislays one operand on purpose (A: the rows of groups 1 and 2
// swapped; B: the k pairs of threads 1 and 2 of a group swapped; C: the accumulators of groups 1
// and 2 swapped), for the test that shows a layout error is caught.
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <functional>
#include <vector>

struct dim3 {
    unsigned x, y, z;
};
static dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static
#define FLASH_EMU 1

static inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

namespace emu {
enum State { RUNNING, AT_BLOCK, AT_WARP, DONE };
struct Fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    State state;
};
static ucontext_t sched;
static std::vector<Fiber> fibers;
static unsigned cur;
static std::function<void()> body;
static long long rounds; // barrier phases run, for the harness's report
static unsigned long long rng = 0x9e3779b97f4a7c15ull;
static std::vector<unsigned> order;

// shuffle puts order[0..n) in a fresh random order (Fisher–Yates on a 64-bit LCG).
static void shuffle(unsigned n) {
    order.resize(n);
    for (unsigned i = 0; i < n; i++) order[i] = i;
    for (unsigned i = n; i > 1; i--) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        unsigned j = (unsigned)((rng >> 33) % i);
        unsigned t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

static void entry() {
    body();
    fibers[cur].state = DONE;
    swapcontext(&fibers[cur].ctx, &sched); // never resumed
}

// launch runs k() on grid × block threads (one-dimensional, as flash.cu launches).
template <class F>
void launch(unsigned grid, unsigned block, F k) {
    if (grid == 0 || block == 0 || block > 1024) {
        fprintf(stderr, "emu: bad launch grid %u block %u\n", grid, block);
        exit(3);
    }
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    body = k;
    if (fibers.size() < block) fibers.resize(block);
    for (auto& f : fibers)
        if (f.stack.empty()) f.stack.resize(256 << 10);
    for (unsigned b = 0; b < grid; b++) {
        blockIdx = {b, 0, 0};
        for (unsigned t = 0; t < block; t++) {
            Fiber& f = fibers[t];
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = f.stack.data();
            f.ctx.uc_stack.ss_size = f.stack.size();
            f.ctx.uc_link = nullptr;
            makecontext(&f.ctx, entry, 0);
            f.state = RUNNING;
        }
        for (;;) { // one phase: every running thread runs to its next barrier (block or warp) or its end
            std::vector<unsigned> run;
            for (unsigned t = 0; t < block; t++)
                if (fibers[t].state == RUNNING) run.push_back(t);
            shuffle((unsigned)run.size());
            for (unsigned k = 0; k < run.size(); k++) {
                unsigned t = run[order[k]];
                cur = t;
                threadIdx = {t, 0, 0};
                swapcontext(&sched, &fibers[t].ctx);
            }
            rounds++;
            // Release every warp whose 32 lanes all wait at a warp operation; else, when every
            // thread waits at __syncthreads, the block; else every thread has ended, or it is a deadlock.
            // Of the warps ready, a random nonempty subset goes on, so warps drift apart as they
            // may on a GPU (a missing __syncthreads between one warp's reads of a shared tile and
            // another's writes to it shows), instead of running in lockstep.
            std::vector<unsigned> ready;
            for (unsigned w = 0; w * 32 < block; w++) {
                unsigned at = 0, n = block - w * 32 < 32 ? block - w * 32 : 32;
                for (unsigned l = 0; l < n; l++) at += fibers[w * 32 + l].state == AT_WARP;
                if (at == 32) ready.push_back(w);
            }
            if (!ready.empty()) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                unsigned long long pick = rng >> 20;
                if ((pick & ((1ull << ready.size()) - 1)) == 0) pick |= 1ull << ((rng >> 8) % ready.size());
                for (unsigned k = 0; k < ready.size(); k++)
                    if (pick >> k & 1)
                        for (unsigned l = 0; l < 32; l++) fibers[ready[k] * 32 + l].state = RUNNING;
                continue;
            }
            unsigned nb = 0, nd = 0;
            for (unsigned t = 0; t < block; t++) {
                nb += fibers[t].state == AT_BLOCK;
                nd += fibers[t].state == DONE;
            }
            if (nd == block) break;
            if (nb == block) {
                for (unsigned t = 0; t < block; t++) fibers[t].state = RUNNING;
                continue;
            }
            fprintf(stderr, "emu: block %u: deadlock: %u of %u threads at __syncthreads, %u ended, %u at a warp operation "
                    "(a warp's lanes must all reach it; blocks of whole warps)\n", b, nb, block, nd, block - nb - nd);
            exit(3);
        }
    }
}

static inline void wait(State s) {
    fibers[cur].state = s;
    swapcontext(&fibers[cur].ctx, &sched);
}

// One warp's deposits: each lane's mma operands, or a shuffled value.
struct WarpSlot {
    unsigned a[32][4], b[32][2];
    float f[32];
};
static WarpSlot slots[32]; // ≤ 1024 threads per block
static inline WarpSlot& slot() { return slots[threadIdx.x / 32]; }

static inline float bf16_to_float(unsigned short h) {
    unsigned u = (unsigned)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline unsigned short float_to_bf16(float f) { // round to nearest even (finite inputs)
    unsigned u;
    memcpy(&u, &f, sizeof u);
    return (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
// Element i of register r of lane l: the low half for even i.
static inline float half(unsigned r, int i) { return bf16_to_float((unsigned short)(i & 1 ? r >> 16 : r & 0xffff)); }

// mislaid is FLASH_EMU_MISLAYOUT's letter (0 if unset), and swap12 swaps 1 and 2 where it applies.
static inline char mislaid() {
    static char m = -1;
    if (m == -1) {
        const char* e = getenv("FLASH_EMU_MISLAYOUT");
        m = e && *e ? *e : 0;
    }
    return m;
}
static inline int swap12(char which, int i) { return mislaid() == which && (i == 1 || i == 2) ? 3 - i : i; }

// A[row][k] of the 16×16 A operand from the lanes' fragments: lane 4·(row mod 8) + (k mod 8)/2,
// register (row ≥ 8) + 2·(k ≥ 8), element k mod 2 (a0..a7 of the PTX ISA's figure).
static inline float mmaA(const WarpSlot& s, int row, int k) {
    return half(s.a[4 * swap12('A', row % 8) + (k % 8) / 2][(row >= 8) + 2 * (k >= 8)], k);
}
// B[k][n] of the 16×8 B operand: lane 4·n + (k mod 8)/2, register (k ≥ 8), element k mod 2.
static inline float mmaB(const WarpSlot& s, int k, int n) {
    return half(s.b[4 * n + swap12('B', (k % 8) / 2)][k >= 8], k);
}
} // namespace emu

static inline void __syncthreads() { emu::wait(emu::AT_BLOCK); }

static inline unsigned flashb_pack(float lo, float hi) {
    return (unsigned)emu::float_to_bf16(lo) | (unsigned)emu::float_to_bf16(hi) << 16;
}

// d += A·B (mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32): lane 4g + t's accumulators are
// D[g][2t], D[g][2t+1], D[g+8][2t], D[g+8][2t+1]. Products of bf16 are exact in fp32; the sum is
// taken in fp32 in k order (the tensor core's order and internal precision may differ slightly).
static inline void flashb_mma(float* d, const unsigned* a, const unsigned* b) {
    emu::WarpSlot& s = emu::slot();
    unsigned lane = threadIdx.x % 32;
    for (int r = 0; r < 4; r++) s.a[lane][r] = a[r];
    for (int r = 0; r < 2; r++) s.b[lane][r] = b[r];
    emu::wait(emu::AT_WARP); // every lane's fragments deposited
    int g = emu::swap12('C', lane / 4), t = lane % 4;
    for (int i = 0; i < 4; i++) {
        int row = g + 8 * (i >> 1), col = 2 * t + (i & 1);
        float acc = 0.f;
        for (int k = 0; k < 16; k++) acc += emu::mmaA(s, row, k) * emu::mmaB(s, k, col);
        d[i] += acc;
    }
    emu::wait(emu::AT_WARP); // every lane has read the slot
}

static inline float __shfl_xor_sync(unsigned mask, float v, int laneMask) {
    if (mask != 0xffffffffu) {
        fprintf(stderr, "emu: __shfl_xor_sync with mask %#x: only whole warps are emulated\n", mask);
        exit(3);
    }
    emu::WarpSlot& s = emu::slot();
    unsigned lane = threadIdx.x % 32;
    s.f[lane] = v;
    emu::wait(emu::AT_WARP);
    float r = s.f[(lane ^ laneMask) % 32];
    emu::wait(emu::AT_WARP);
    return r;
}
