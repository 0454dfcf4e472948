"""Memory bandwidth of this machine's cores, as PyTorch's element-wise kernels stream it.

A copy (b = a) and an add (b = a + c) of 1 GiB float32 arrays, 6 rounds each, on THREADS threads
(default 16), in GB/s counting every byte read and written once. The optimizer's update is such a
stream (Lion reads w, g, m and writes them back: README "Performance (CPU)"), so this rate bounds
how fast it can go on the machine, whichever framework runs it.

    python3 anert/bench/pytorch/membw.py            # THREADS=16
"""
import os
import time

import torch

torch.set_num_threads(int(os.environ.get("THREADS", "16")))
n = 256 * 2**20  # 1 GiB of float32
a, b, c = torch.ones(n), torch.empty(n), torch.ones(n)
for name, f, nbytes in [("copy", lambda: b.copy_(a), 8 * n), ("add", lambda: torch.add(a, c, out=b), 12 * n)]:
    f()  # first touch
    rates = []
    for _ in range(6):
        t = time.perf_counter()
        f()
        rates.append(nbytes / (time.perf_counter() - t) / 1e9)
    print(f"{name}: GB/s per round ({torch.get_num_threads()} threads, 1 GiB arrays, bytes = reads + writes): "
          + " ".join(f"{r:.0f}" for r in rates))
