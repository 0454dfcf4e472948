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

static inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

namespace emu {
struct Fiber {
    ucontext_t ctx;
    std::vector<char> stack;
    bool done;
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
    fibers[cur].done = true;
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
            f.done = false;
        }
        for (;;) { // one phase: every thread runs to its next barrier or its end
            unsigned nd = 0;
            shuffle(block);
            for (unsigned k = 0; k < block; k++) {
                unsigned t = order[k];
                cur = t;
                threadIdx = {t, 0, 0};
                swapcontext(&sched, &fibers[t].ctx);
                nd += fibers[t].done;
            }
            rounds++;
            if (nd == block) break;
            if (nd != 0) {
                fprintf(stderr, "emu: block %u: %u of %u threads ended while the others wait at __syncthreads\n", b,
                        nd, block);
                exit(3);
            }
        }
    }
}
} // namespace emu

static inline void __syncthreads() { swapcontext(&emu::fibers[emu::cur].ctx, &emu::sched); }
