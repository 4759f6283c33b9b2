#!/usr/bin/python3
"""Native GEMM yardstick: float32 a @ b in PyTorch (OpenBLAS), GFLOPS for the shapes a small model's step uses.

usage: /usr/bin/python3 torch_gemm.py [THREADS [MxKxN[:TN|NT|TT],...]]
(shardtrain's copy of ../shared/anchors/torch_gemm.py; the shape list argument is ours, for npm run bench:train:
 a suffix stores A (T first) or B (T second) transposed, as the backward pass's matmuls do)
"""
import sys, time
import torch

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
shapes = [(512, 80, 192, "NN"), (1024, 192, 256, "NN"), (1024, 256, 256, "NN"), (1024, 1024, 1024, "NN"), (256, 1024, 1024, "NN")]
if len(sys.argv) > 2:
    shapes = [tuple(int(d) for d in s.split(":")[0].split("x")) + ((s.split(":") + ["NN"])[1],) for s in sys.argv[2].split(",")]
for m, k, n, tr in shapes:
    a = torch.randn(k, m).t() if tr[0] == "T" else torch.randn(m, k)
    b = torch.randn(n, k).t() if tr[1] == "T" else torch.randn(k, n)
    for _ in range(3): a @ b
    reps, t = 0, time.perf_counter()
    while time.perf_counter() - t < 1.0:
        a @ b; reps += 1
    s = (time.perf_counter() - t) / reps
    print("%dx%dx%d%s: %.1f GFLOPS" % (m, k, n, "" if tr == "NN" else ":" + tr, 2 * m * k * n / s / 1e9))
