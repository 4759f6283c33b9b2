#!/usr/bin/python3
"""The built-in GPT (src/models/gpt.ts) in PyTorch, trained like `shardtrain train` trains it.

    node dist/scripts/gpt-export.js --config config/gpt-sotu.json --out /tmp/gpt-export
    /usr/bin/python3 scripts/torch/gpt_sotu.py /tmp/gpt-export [--threads 1] [--init shardtrain|torch] [--json out.json]

Same architecture (pre-LayerNorm blocks, fused QKV, causal mask, GELU tanh, final LayerNorm, tied head),
same initial values (init.f32 from the export; `--init torch` draws GPT-2's scheme from torch's own RNG
instead), torch.optim.AdamW (shardtrain's `pytorch` convention) with the config's betas, eps and weight decay
on the tensors BERT's rule does not exclude, global-norm clipping, the config's schedule (HF cosine/linear/
constant with warmup, t = completed steps), the same batches (order.u32: the window offsets shardtrain's
DataOrder gives each step) and the same held-out windows (eval_starts.u32). Prints and writes: held-out
loss (nats/char) before and after, training tokens/s, unigram and bigram baselines, and a sample.
Debian's python3-torch (1.13) runs it; the python3 on PATH may have no torch.
"""
import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shardtrain_torch as st  # noqa: E402  (the GPT module, the schedules)

p = argparse.ArgumentParser()
p.add_argument('export')
p.add_argument('--threads', type=int, default=1, help='torch intra-op threads (1 is the best setting on 2 cores)')
p.add_argument('--init', choices=['shardtrain', 'torch'], default='shardtrain')
p.add_argument('--steps', type=int, default=None)
p.add_argument('--eval-every', type=int, default=None)
p.add_argument('--json', default=None)
p.add_argument('--micro-batch', type=int, default=None, help='windows per forward/backward, gradients accumulated (default: the whole batch)')
args = p.parse_args()
torch.set_num_threads(args.threads)

d = args.export
meta = json.load(open(os.path.join(d, 'meta.json')))
cfg = meta['config']
o = cfg['model']['options']
L, nl = meta['window'], o['layers']
# A character vocabulary comes as the tokenizer's symbols; GPT-2's ids have none (sampling then prints ids).
V = meta['meta']['vocabSize']
vocab = meta['meta']['tokenizer'].get('vocab')
B = cfg['batchSize']
steps = args.steps or meta['steps']
train_tokens = torch.from_numpy(np.fromfile(os.path.join(d, 'train_tokens.i32'), dtype='<i4').astype(np.int64))
eval_tokens = torch.from_numpy(np.fromfile(os.path.join(d, 'eval_tokens.i32'), dtype='<i4').astype(np.int64))
order = np.fromfile(os.path.join(d, 'order.u32'), dtype='<u4').astype(np.int64).reshape(-1, B)
eval_starts = np.fromfile(os.path.join(d, 'eval_starts.u32'), dtype='<u4').astype(np.int64)
init = np.fromfile(os.path.join(d, 'init.f32'), dtype='<f4')
assert order.shape[0] >= steps, f'the export has {order.shape[0]} steps of data order, asked for {steps}'

# The torch GPT that `shardtrain export --to torch` loads into, with shardtrain's initial values moved into its
# names and layouts (the manifest carries gpt.ts's torch() mapping); shardtrain's names stay the keys here.
model = st.MODELS[meta['torchModel']['module']](**meta['torchModel']['options'])
torch_params = dict(model.named_parameters())
values = {}
for t in meta['tensors']:
    size = int(np.prod(t['shape']))
    values[t['name']] = torch.from_numpy(init[t['offset']:t['offset'] + size].reshape(t['shape']).copy())
if args.init == 'torch':
    torch.manual_seed(cfg['seed'])
    with torch.no_grad():
        for name, w in values.items():
            if re.search(r'layer_norm_[^/]*/gamma$', name): w.fill_(1)
            elif re.search(r'/(beta|bias)$', name): w.zero_()
            elif re.search(r'/(attn|mlp)/proj/kernel$', name): w.normal_(0, 0.02 / math.sqrt(2 * nl))
            else: w.normal_(0, 0.02)
params = {}
with torch.no_grad():
    for t in meta['tensors']:
        w = torch_params[t['torchName']]
        w.copy_(values[t['name']].t() if t['transpose'] else values[t['name']])
        params[t['name']] = w


def forward(idx):
    return model(idx)


def windows(tokens, starts):
    ix = torch.from_numpy(starts)[:, None] + torch.arange(L)[None, :]
    return tokens[ix], tokens[ix + 1]


def evaluate():
    with torch.no_grad():
        total, n = 0.0, 0
        eb = cfg.get('evalBatch', 2048)
        for a in range(0, len(eval_starts), eb):
            x, y = windows(eval_tokens, eval_starts[a:a + eb])
            total += F.cross_entropy(forward(x).view(-1, V), y.reshape(-1), reduction='sum').item()
            n += y.numel()
        return total / n


# Optimizer: AdamW on the tensors BERT's rule leaves decayed, weight decay 0 on the others.
oc = cfg['optimizer']
rule = oc.get('excludeFromWeightDecay')
patterns = ['LayerNorm', 'layer_norm', 'bias'] if rule == 'bert' else (rule or [])
assert rule != 'hf', 'the hf preset is not implemented here'
excluded = lambda name: any(re.search(pat, name) for pat in patterns)
groups = [{'params': [w for n, w in params.items() if not excluded(n)], 'weight_decay': oc['weightDecay']},
          {'params': [w for n, w in params.items() if excluded(n)], 'weight_decay': 0.0}]
opt = torch.optim.AdamW(groups, lr=oc['lr'], betas=tuple(oc['betas']), eps=oc['eps'])
sched = oc['schedule'] if isinstance(oc['schedule'], dict) else {'name': oc['schedule']}
# The schedule with shardtrain's defaults filled in (src/optim/schedules.ts), its totalSteps the run's steps.
schedule = {'warmupSteps': 0, 'totalSteps': cfg['steps'], 'power': 1, 'endLr': 1e-7, 'cycles': 0.5, 'lr': oc['lr'], **sched}


def lr_mult(t):
    return st.schedule_multiplier(schedule, t)


def baselines():
    """Unigram and bigram (add-one smoothed) models of the training stream, on the held-out windows' targets."""
    tr = train_tokens.numpy()
    uni = np.bincount(tr, minlength=V).astype(np.float64) + 1
    uni /= uni.sum()
    big = np.ones((V, V))
    np.add.at(big, (tr[:-1], tr[1:]), 1)
    big /= big.sum(axis=1, keepdims=True)
    x, y = windows(eval_tokens, eval_starts)
    x, y = x.numpy().ravel(), y.numpy().ravel()
    return float(-np.log(uni[y]).mean()), float(-np.log(big[x, y]).mean())


@torch.no_grad()
def sample(prompt='\n', n=300, seed=0):
    if vocab is None: return ''
    g = torch.Generator().manual_seed(seed)
    idx = torch.tensor([[vocab.index(c) for c in prompt]])
    for _ in range(n):
        logits = forward(idx[:, -L:])[:, -1, :]
        idx = torch.cat([idx, torch.multinomial(F.softmax(logits, dim=-1), 1, generator=g)], dim=1)
    return ''.join(vocab[i] for i in idx[0, len(prompt):].tolist())


clip = oc.get('clipGlobalNorm')
eval_every = args.eval_every or cfg.get('evalEvery')
curve = [{'step': 0, 'evalLoss': evaluate()}]
print(f'torch {torch.__version__}, {args.threads} thread(s), {sum(w.numel() for w in params.values())} params, init {args.init}; step 0 held-out loss {curve[0]["evalLoss"]:.4f}', flush=True)
train_time = 0.0
for t in range(steps):
    t0 = time.perf_counter()
    for g_ in opt.param_groups: g_['lr'] = oc['lr'] * lr_mult(t)
    opt.zero_grad(set_to_none=True)
    mb = args.micro_batch or B
    loss = 0.0
    for s0 in range(0, B, mb):
        x, y = windows(train_tokens, order[t][s0:s0 + mb])
        part = F.cross_entropy(forward(x).view(-1, V), y.reshape(-1)) * (x.shape[0] / B)
        part.backward()
        loss += part.detach()
    if clip: torch.nn.utils.clip_grad_norm_(list(params.values()), clip)
    opt.step()
    train_time += time.perf_counter() - t0
    if eval_every and (t + 1) % eval_every == 0 and t + 1 != steps:
        curve.append({'step': t + 1, 'evalLoss': evaluate()})
        print(f'step {t + 1}: train loss {loss.item():.4f}, held-out loss {curve[-1]["evalLoss"]:.4f}', flush=True)
final = evaluate()
curve.append({'step': steps, 'evalLoss': final})
uni, bi = baselines()
tps = steps * B * L / train_time
text = sample(seed=cfg['seed'])
print(f'step {steps}: train loss {loss.item():.4f}, held-out loss {final:.4f}; {tps:.0f} tokens/s ({train_time:.1f} s of training)')
print(f'baselines on the same held-out windows: unigram {uni:.4f}, bigram {bi:.4f}')
print('sample:', json.dumps(text))
if args.json:
    json.dump({'threads': args.threads, 'init': args.init, 'steps': steps, 'evalLoss': final, 'trainLoss': loss.item(), 'tokensPerSec': tps,
               'trainSeconds': train_time, 'unigram': uni, 'bigram': bi, 'curve': curve, 'sample': text}, open(args.json, 'w'), indent=1)
