"""PyTorch's float32 matmul rate on this machine, at the 1024³ product anebench's sgemm rate uses
and at the shapes of the two configs' largest products, with the precision settings it ran them at.

The README's comparison divides anelab's and PyTorch's tokens/s; where PyTorch's share of the
sgemm rate (its "torch MFU %") moves from host to host, this says whether its matmuls moved with it,
and that they ran in float32 (no bf16 or tf32 downcast allowed). Three rounds of 40 products each,
GFLOP/s per round, on THREADS threads (default 16).

    python3 anert/bench/pytorch/matmul.py            # THREADS=16
"""
import os
import time

import torch

torch.set_num_threads(int(os.environ.get("THREADS", "16")))
mm = getattr(torch.backends.mkldnn, "matmul", None)
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; float32 matmul precision "
      f"{torch.get_float32_matmul_precision()!r}, mkldnn matmul fp32_precision "
      f"{getattr(mm, 'fp32_precision', 'n/a')!r}")


def rate(m, n, k, reps=40):
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(5):
        a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * m * n * k * reps / (time.perf_counter() - t) / 1e9


# (M, N, K): the sgemm rate's product; the original shape's (512 tokens) FFN up, down and
# classifier; the default config's (1024 tokens) projection and classifier.
for shape in [(1024, 1024, 1024), (512, 2048, 768), (512, 768, 2048), (512, 9216, 768), (1024, 768, 256), (1024, 4096, 256)]:
    print("matmul M×N×K = %d×%d×%d: GFLOP/s per round %s" % (*shape, " ".join("%.0f" % rate(*shape) for _ in range(3))))
