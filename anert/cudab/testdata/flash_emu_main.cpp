// Harness for TestFlashEmulated and TestFlashBF16Emulated: runs flash.cu's kernels (compiled as
// host C++ over flash_emu.h) on the cases read from stdin and writes their outputs to stdout.
// Little-endian binary:
// in:  per case int32 variant (0: the fp32 kernels, 1: the bf16 tensor-core kernels), BH, T, HD,
//      then the launch geometry the Go side computed (int32 grid, block for fwd, pre, dq, dkdv),
//      then float32 Q, K, V, dO ([BH, T, HD] each);
// out: per case float32 O, dQ, dK, dV ([BH, T, HD]) and lse ([BH, T]).
// The backward runs on the forward's own O and lse, as the trainer does.
#include "flash_emu.h"
#include "flash.cu"

static void readN(void* p, size_t n) {
    if (fread(p, 1, n, stdin) != n) {
        fprintf(stderr, "harness: short read\n");
        exit(2);
    }
}

int main() {
    int hdr[12];
    while (fread(hdr, sizeof(int), 1, stdin) == 1) {
        readN(hdr + 1, 11 * sizeof(int));
        int variant = hdr[0], BH = hdr[1], T = hdr[2], HD = hdr[3];
        int* geo = hdr + 4;
        size_t n = (size_t)BH * T * HD, nr = (size_t)BH * T;
        std::vector<float> Q(n), K(n), V(n), dO(n), O(n), dQ(n), dK(n), dV(n), lse(nr), Dv(nr);
        readN(Q.data(), n * 4);
        readN(K.data(), n * 4);
        readN(V.data(), n * 4);
        readN(dO.data(), n * 4);
        float scale = (float)(1.0 / sqrt((double)HD));
#define RUN(VAR, HDN, H)                                                                                                  \
    case 100 * VAR + HDN:                                                                                              \
        emu::launch(geo[0], geo[1], [&] { flash_fwd_##H(O.data(), lse.data(), Q.data(), K.data(), V.data(), T, BH, scale); }); \
        emu::launch(geo[2], geo[3], [&] { flash_bwd_pre_k(Dv.data(), dO.data(), O.data(), (long long)nr, HD); });            \
        emu::launch(geo[4], geo[5], [&] {                                                                          \
            flash_bwd_dq_##H(dQ.data(), Q.data(), K.data(), V.data(), dO.data(), lse.data(), Dv.data(), T, BH, scale);       \
        });                                                                                                        \
        emu::launch(geo[6], geo[7], [&] {                                                                          \
            flash_bwd_dkdv_##H(dK.data(), dV.data(), Q.data(), K.data(), V.data(), dO.data(), lse.data(), Dv.data(), T, BH, \
                               scale);                                                                             \
        });                                                                                                        \
        break;
        switch (100 * variant + HD) {
            RUN(0, 8, 8)
            RUN(0, 16, 16)
            RUN(0, 32, 32)
            RUN(0, 48, 48)
            RUN(0, 64, 64)
            RUN(1, 16, bf16_16)
            RUN(1, 32, bf16_32)
            RUN(1, 48, bf16_48)
            RUN(1, 64, bf16_64)
        default:
            fprintf(stderr, "harness: no kernels of variant %d for head dim %d\n", variant, HD);
            return 2;
        }
        fwrite(O.data(), 4, n, stdout);
        fwrite(dQ.data(), 4, n, stdout);
        fwrite(dK.data(), 4, n, stdout);
        fwrite(dV.data(), 4, n, stdout);
        fwrite(lse.data(), 4, nr, stdout);
    }
    fprintf(stderr, "harness: %lld barrier phases\n", emu::rounds);
    return 0;
}
