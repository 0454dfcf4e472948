// Harness for TestFlashEmulated: runs flash.cu's kernels (compiled as host C++ over flash_emu.h)
// on the cases read from stdin and writes their outputs to stdout. Little-endian binary:
// in:  per case int32 BH, T, HD, then the launch geometry the Go side computed
//      (int32 grid, block for fwd, pre, dq, dkdv), then float32 Q, K, V, dO ([BH, T, HD] each);
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
    int hdr[11];
    while (fread(hdr, sizeof(int), 1, stdin) == 1) {
        readN(hdr + 1, 10 * sizeof(int));
        int BH = hdr[0], T = hdr[1], HD = hdr[2];
        size_t n = (size_t)BH * T * HD, nr = (size_t)BH * T;
        std::vector<float> Q(n), K(n), V(n), dO(n), O(n), dQ(n), dK(n), dV(n), lse(nr), Dv(nr);
        readN(Q.data(), n * 4);
        readN(K.data(), n * 4);
        readN(V.data(), n * 4);
        readN(dO.data(), n * 4);
        float scale = (float)(1.0 / sqrt((double)HD));
#define RUN(H)                                                                                                     \
    case H:                                                                                                        \
        emu::launch(hdr[3], hdr[4], [&] { flash_fwd_##H(O.data(), lse.data(), Q.data(), K.data(), V.data(), T, BH, scale); }); \
        emu::launch(hdr[5], hdr[6], [&] { flash_bwd_pre_k(Dv.data(), dO.data(), O.data(), (long long)nr, HD); });            \
        emu::launch(hdr[7], hdr[8], [&] {                                                                          \
            flash_bwd_dq_##H(dQ.data(), Q.data(), K.data(), V.data(), dO.data(), lse.data(), Dv.data(), T, BH, scale);       \
        });                                                                                                        \
        emu::launch(hdr[9], hdr[10], [&] {                                                                         \
            flash_bwd_dkdv_##H(dK.data(), dV.data(), Q.data(), K.data(), V.data(), dO.data(), lse.data(), Dv.data(), T, BH, \
                               scale);                                                                             \
        });                                                                                                        \
        break;
        switch (HD) {
            RUN(8)
            RUN(16)
            RUN(32)
            RUN(48)
            RUN(64)
        default:
            fprintf(stderr, "harness: no kernels for head dim %d\n", HD);
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
