#!/usr/bin/python3
"""What a user would pick instead: PyTorch CPU training the same char-lm (embedding → [dense → LayerNorm → tanh]* → logits),
AdamW, same batch. Prints samples/s for 1 and 2 intra-op threads (best of 3 timed windows).

usage: torch_charlm_bench.py CONTEXT EMB HIDDEN[,HIDDEN..] BATCH [SECONDS]
e.g.   torch_charlm_bench.py 5 16 192 512        (config/char-lm.json)
       torch_charlm_bench.py 8 24 256,256 1024   (config/char-lm-large.json)
(shardtrain's copy of ../shared/anchors/torch_charlm_bench.py, run by npm run bench:train)
"""
import sys, time
import torch

ctx, emb, hidden, batch = int(sys.argv[1]), int(sys.argv[2]), [int(h) for h in sys.argv[3].split(",")], int(sys.argv[4])
secs = float(sys.argv[5]) if len(sys.argv) > 5 else 4.0
V = 28

def model():
    layers = [torch.nn.Embedding(V, emb), torch.nn.Flatten()]
    d = ctx * emb
    for h in hidden:
        layers += [torch.nn.Linear(d, h), torch.nn.LayerNorm(h), torch.nn.Tanh()]
        d = h
    layers.append(torch.nn.Linear(d, V))
    return torch.nn.Sequential(*layers)

g = torch.Generator().manual_seed(0)
X = torch.randint(0, V, (200_000, ctx), generator=g)
Y = torch.randint(0, V, (200_000,), generator=g)
for threads in (1, 2):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    m = model()
    nparams = sum(p.numel() for p in m.parameters())
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01)
    lossf = torch.nn.CrossEntropyLoss()
    best = 0.0
    i = 0
    for window in range(4):
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < secs:
            j = (i * batch) % (X.shape[0] - batch); i += 1
            loss = lossf(m(X[j:j + batch]), Y[j:j + batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            n += batch
        if window: best = max(best, n / (time.perf_counter() - t0))
    print("torch %s, %d params, batch %d, threads %d: %.0f samples/s" % (torch.__version__, nparams, batch, threads, best))
