// Harness for TestKernelsEmulated: kernels.cu compiled as host C++ over flash_emu.h (blocks run
// in turn, a block's threads as fibers switched at __syncthreads) plus the few CUDA features
// kernels.cu uses beyond flash.cu's: warp shuffles, atomicAdd, min and the bit casts. It reads a
// little-endian command stream from stdin and writes the buffers asked for to stdout:
//   'B' int32 id, int64 n, n bytes            a buffer's initial contents
//   'L' int32 len, name, int32 grid, block,   a launch of kernel name (one-dimensional); each
//       int32 nargs, args                     argument is a kind byte and its value:
//                                             'p' int32 buffer id (−1: a null pointer),
//                                             'i' int32, 'l' int64, 'f' float32
//   'R' int32 id                              writes int64 n and the buffer's n bytes
//   'Q'                                       ends
#include <stdint.h>

#include <map>
#include <string>
#include <utility>

#include "flash_emu.h"

static inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline int min(int a, int b) { return a < b ? a : b; }

// One thread at a time runs, so a plain add is atomic.
static inline float atomicAdd(float* p, float v) {
    float o = *p;
    *p = o + v;
    return o;
}

// __shfl_xor_sync: every thread of the block posts its value, a barrier, each reads its partner
// lane's, a barrier before the slots are reused. Correct where all threads of the block shuffle
// together (kernels.cu's block reductions); the barriers are the emulation's, not CUDA's.
namespace emu {
static double shfl[1024];
}
template <class T>
static T __shfl_xor_sync(unsigned, T v, int o) {
    emu::shfl[threadIdx.x] = (double)v;
    __syncthreads();
    T r = (T)emu::shfl[threadIdx.x ^ (unsigned)o];
    __syncthreads();
    return r;
}

#include "kernels.cu"

template <class... A, size_t... I>
static void callk(void (*k)(A...), void** a, std::index_sequence<I...>) {
    k(*(A*)a[I]...);
}
template <class... A>
static std::function<void(void**)> wrap(void (*k)(A...)) {
    return [k](void** a) { callk(k, a, std::index_sequence_for<A...>{}); };
}
#define K(n) {#n, wrap(n)}

static std::map<std::string, std::function<void(void**)>> kernels = {
    K(to_bf16),      K(embed_fwd),     K(gather_rows),    K(gather_rows_bf), K(rmsnorm_fwd), K(rmsnorm_fwd_bf),
    K(rmsnorm_bwd),  K(split_heads),   K(split_heads_bf), K(merge_heads),    K(merge_heads_bf),
    K(softmax_causal_fwd), K(softmax_causal_bwd), K(swiglu_fwd), K(swiglu_fwd_bf), K(swiglu_bwd),
    K(swiglu_bwd_bf), K(axpy),         K(scale_to),       K(scale_to_bf),    K(softcap_ce), K(softcap_ce_bf),
    K(sum_d),        K(scale_sumsq),   K(scale_inplace),  K(lion),           K(adamw),
    // the architecture options' (TestArchKernelsEmulated)
    K(relu2_fwd), K(relu2_fwd_bf), K(relu2_bwd), K(relu2_bwd_bf), K(gelu_fwd), K(gelu_fwd_bf), K(gelu_bwd),
    K(gelu_bwd_bf), K(qknorm_split), K(qknorm_merge_bwd), K(qknorm_merge_bwd_bf),
    K(muon_momentum), K(muon_scale),   K(muon_update),
};

static void readN(void* p, size_t n) {
    if (fread(p, 1, n, stdin) != n) {
        fprintf(stderr, "harness: short read\n");
        exit(2);
    }
}

template <class T>
static T rd() {
    T v;
    readN(&v, sizeof v);
    return v;
}

int main() {
    std::map<int, std::vector<char>> bufs;
    for (;;) {
        char op = rd<char>();
        if (op == 'Q') break;
        if (op == 'B') {
            int id = rd<int32_t>();
            int64_t n = rd<int64_t>();
            std::vector<char>& b = bufs[id];
            b.resize(n + 16); // slack: a kernel that reads one past its end is not a crash here
            readN(b.data(), n);
            b.resize(n);
        } else if (op == 'R') {
            int id = rd<int32_t>();
            int64_t n = bufs[id].size();
            fwrite(&n, 8, 1, stdout);
            fwrite(bufs[id].data(), 1, n, stdout);
        } else if (op == 'L') {
            int len = rd<int32_t>();
            std::string name(len, '\0');
            readN(&name[0], len);
            int grid = rd<int32_t>(), block = rd<int32_t>(), nargs = rd<int32_t>();
            std::vector<uint64_t> slot(nargs);
            std::vector<void*> argv(nargs);
            for (int i = 0; i < nargs; i++) {
                char kind = rd<char>();
                slot[i] = 0;
                if (kind == 'p') {
                    int id = rd<int32_t>();
                    void* p = id < 0 ? nullptr : (void*)bufs.at(id).data();
                    memcpy(&slot[i], &p, sizeof p);
                } else if (kind == 'i' || kind == 'f') {
                    uint32_t v = rd<uint32_t>();
                    memcpy(&slot[i], &v, 4);
                } else if (kind == 'l') {
                    slot[i] = rd<uint64_t>();
                } else {
                    fprintf(stderr, "harness: argument kind %c\n", kind);
                    return 2;
                }
                argv[i] = &slot[i];
            }
            auto k = kernels.find(name);
            if (k == kernels.end()) {
                fprintf(stderr, "harness: no kernel %s\n", name.c_str());
                return 2;
            }
            emu::launch(grid, block, [&] { k->second(argv.data()); });
        } else {
            fprintf(stderr, "harness: bad op %d\n", op);
            return 2;
        }
    }
    fprintf(stderr, "harness: %lld barrier phases\n", emu::rounds);
    return 0;
}
