"""Continue a shardtrain run in PyTorch: read what `shardtrain export --to torch` wrote, rebuild the same model,
the same AdamW (or Adam) with its parameter groups, state and step, the same lr schedule and the same data
order. Needs torch only (Debian's python3-torch 1.13 works); the `safetensors` package is used when present,
else a reader of a few lines.

    import shardtrain_torch as st
    run = st.load_export("run.torch.safetensors")      # model, optimizer, schedule, data, step
    loss = run.train_step()                             # one more step, exactly where shardtrain stopped
"""
import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

EXPORT_FORMAT = "shardtrain-torch-1"
_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64}


def read_safetensors(path):
    """(tensors by name, __metadata__) of a safetensors file."""
    try:
        from safetensors import safe_open
    except ImportError:
        safe_open = None
    if safe_open is not None:
        with safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        dtype = _DTYPES[e["dtype"]]
        tensors[name] = (torch.frombuffer(bytearray(data[a:b]), dtype=dtype) if b > a else torch.empty(0, dtype=dtype)).reshape(e["shape"])
    return tensors, meta


# ---- models: the same forward pass as the shardtrain model modules (their torch() mapping names these) ----


class CharLM(nn.Module):
    """src/models/char-lm.ts: embedding → flatten → [Linear → LayerNorm(eps 1e-5) → tanh]* → Linear."""

    def __init__(self, vocab, contextLength, embedding, hidden):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        dims = [contextLength * embedding] + list(hidden)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        self.layer_norm = nn.ModuleList(nn.LayerNorm(h, eps=1e-5) for h in hidden)
        self.logits = nn.Linear(dims[-1], vocab)

    def forward(self, x):
        h = self.embedding(x.long()).flatten(1)
        for linear, norm in zip(self.hidden, self.layer_norm):
            h = torch.tanh(norm(linear(h)))
        return self.logits(h)

    @staticmethod
    def loss_of(logits, y):
        """Mean cross-entropy of the next character (the model module's loss()), from the forward pass's output."""
        return F.cross_entropy(logits, y.long())


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (nanoGPT's: torch 1.13's nn.LayerNorm always has one), ε 1e-5."""

    def __init__(self, embedding, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(embedding))
        self.bias = nn.Parameter(torch.zeros(embedding)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    """One fused QKV projection (rows q | k | v), softmax(q·kᵀ/√d + causal mask)·v per head, output projection."""

    def __init__(self, embedding, heads, bias=True):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(embedding, 3 * embedding, bias=bias)
        self.proj = nn.Linear(embedding, embedding, bias=bias)

    def forward(self, x):
        B, L, C = x.shape
        q, k, v = (t.view(B, L, self.heads, C // self.heads).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.heads))
        # gpt-layers.ts adds −1e9 above the diagonal (exp underflows to exactly 0 in float32): the same here.
        mask = torch.full((L, L), -1e9).triu(1)
        y = F.softmax(scores + mask, dim=-1) @ v
        return self.proj(y.transpose(1, 2).contiguous().view(B, L, C))


class MLP(nn.Module):
    def __init__(self, embedding, hidden, bias=True):
        super().__init__()
        self.fc = nn.Linear(embedding, hidden, bias=bias)
        self.proj = nn.Linear(hidden, embedding, bias=bias)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, embedding, heads, hidden, bias=True):
        super().__init__()
        self.ln_1 = LayerNorm(embedding, bias)
        self.attn = CausalSelfAttention(embedding, heads, bias)
        self.ln_2 = LayerNorm(embedding, bias)
        self.mlp = MLP(embedding, hidden, bias)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """src/models/gpt.ts: token + learned position embeddings → pre-LayerNorm blocks → LayerNorm → head
    (tied to the token embedding unless tieEmbeddings is false; no bias). bias=False: nanoGPT's bias-free GPT,
    no Linear bias and no LayerNorm β."""

    def __init__(self, vocab, contextLength, embedding, heads, layers, mlpRatio, tieEmbeddings, bias=True):
        super().__init__()
        self.wte = nn.Embedding(vocab, embedding)
        self.wpe = nn.Embedding(contextLength, embedding)
        self.blocks = nn.ModuleList(Block(embedding, heads, int(round(mlpRatio * embedding)), bias) for _ in range(layers))
        self.ln_f = LayerNorm(embedding, bias)
        self.lm_head = None if tieEmbeddings else nn.Linear(embedding, vocab, bias=False)

    def forward(self, idx):
        idx = idx.long()
        x = self.wte(idx) + self.wpe.weight[: idx.shape[1]]
        for block in self.blocks:
            x = block(x)
        x = self.ln_f(x)
        return x @ self.wte.weight.t() if self.lm_head is None else self.lm_head(x)

    @staticmethod
    def loss_of(logits, y):
        """Mean cross-entropy of the next character over every position of every window."""
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1).long())


MODELS = {"CharLM": CharLM, "GPT": GPT}


# ---- the data order of src/train/data-order.ts, bit for bit ----

_M32 = 0xFFFFFFFF


def _imul(a, b):
    return (a * b) & _M32


def mulberry32(seed):
    a = seed & _M32

    def rand():
        nonlocal a
        a = (a + 0x6D2B79F5) & _M32
        t = a
        t = _imul(t ^ (t >> 15), t | 1)
        t ^= (t + _imul(t ^ (t >> 7), t | 61)) & _M32
        return ((t ^ (t >> 14)) & _M32) / 4294967296

    return rand


def mix_seed(seed, salt):
    h = _imul((seed & _M32) ^ 0x9E3779B9, 0x85EBCA6B) ^ _imul(((salt & _M32) + 0x632BE5AB) & _M32, 0xC2B2AE35)
    h ^= h >> 16
    h = _imul(h, 0x7FEB352D)
    h ^= h >> 15
    return h & _M32


def _round(r, key):
    h = (r ^ key) & _M32
    h = _imul(h ^ (h >> 16), 0x85EBCA6B)
    h = _imul(h ^ (h >> 13), 0xC2B2AE35)
    return (h ^ (h >> 16)) & _M32


class EpochPermutation:
    """src/train/data-order.ts EpochPermutation: a 4-round Feistel network over 4^k >= n, cycle-walked into [0, n)."""

    def __init__(self, n, seed):
        self.n = n
        bits = 2
        while 2 ** bits < n:
            bits += 2
        self.half = bits // 2
        self.mask = 2 ** self.half - 1
        rand = mulberry32(seed)
        self.keys = [math.floor(rand() * 4294967296) for _ in range(4)]

    def _encrypt(self, x):
        h = 2 ** self.half
        l, r = x // h, x % h
        for key in self.keys:
            l, r = r, (l ^ (_round(r, key) & self.mask)) & _M32
        return l * h + r

    def at(self, i):
        x = self._encrypt(i)
        while x >= self.n:
            x = self._encrypt(x)
        return x


class DataOrder:
    """Epoch e visits the examples in EpochPermutation(count, mix_seed(seed, e)); batch t is positions [t·B, (t+1)·B)."""

    def __init__(self, count, global_batch, seed):
        self.count, self.global_batch, self.seed = count, global_batch, seed
        self._epochs = {}

    def _epoch(self, e):
        if e not in self._epochs:
            if len(self._epochs) > 2:
                del self._epochs[min(self._epochs)]
            self._epochs[e] = EpochPermutation(self.count, mix_seed(self.seed, e))
        return self._epochs[e]

    def slice(self, batch, start, length):
        base = batch * self.global_batch + start
        return [self._epoch((base + i) // self.count).at((base + i) % self.count) for i in range(length)]


# ---- schedules of src/optim/schedules.ts (multiplier of the base lr after t completed steps) ----


def schedule_multiplier(s, t):
    name, w, T = s["name"], s["warmupSteps"], s["totalSteps"]
    warm = lambda: t / max(1, w)
    if name == "constant":
        return 1.0
    if name == "constant-warmup":
        return warm() if t < w else 1.0
    if name == "linear":
        return warm() if t < w else max(0.0, (T - t) / max(1, T - w))
    if name == "cosine":
        if t < w:
            return warm()
        progress = (t - w) / max(1, T - w)
        return max(0.0, 0.5 * (1 + math.cos(math.pi * 2 * s["cycles"] * progress)))
    if name == "polynomial":
        lr, end = s["lr"], s["endLr"]
        if t < w:
            return warm()
        if t > T:
            return end / lr
        remaining = 1 - (t - w) / max(1, T - w)
        return ((lr - end) * remaining ** s["power"] + end) / lr
    if name == "bert":
        return t / w if t < w else 1 - min(t, T) / T
    raise ValueError("unknown schedule %r" % name)


# ---- the export ----


def data_file_of(path):
    """Where `shardtrain export` put the data: FILE.safetensors → FILE.data.safetensors."""
    return (path[: -len(".safetensors")] if path.endswith(".safetensors") else path) + ".data.safetensors"


class ExportedRun:
    """A shardtrain run rebuilt in torch: model, optimizer (with state), schedule, data, and the step counters."""

    def __init__(self, path, data_path=None):
        tensors, meta = read_safetensors(path)
        if meta.get("format") != EXPORT_FORMAT:
            raise ValueError("%s: not a shardtrain torch export (format %r, expected %r)" % (path, meta.get("format"), EXPORT_FORMAT))
        self.meta = meta
        self.step = int(meta["step"])
        model = json.loads(meta["model"])
        self.model = MODELS[model["module"]](**model["options"])
        # Where training runs the forward pass: the model, or its DistributedDataParallel wrapper (see use_ddp).
        self.forward = self.model
        state = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
        self.model.load_state_dict(state, strict=True)
        self.schedule = json.loads(meta["schedule"])
        self.clip = json.loads(meta["clip"])
        self.optimizer = self._optimizer(tensors) if meta["optimizer"] != "none" else None
        data_meta = json.loads(meta["data"])
        self.batch = int(data_meta.get("batch", self.step))
        self.global_batch = int(data_meta["globalBatch"])
        data, data_file_meta = read_safetensors(data_path or data_file_of(path))
        self.data = data
        # Token windows (sequence models): example i of a split is tokens[i·stride, +window) → the next tokens.
        self.windows = json.loads(data_file_meta.get("windows", '{"train": null, "eval": null}'))
        self.order = DataOrder(self.count("train"), self.global_batch, int(data_meta["seed"]))

    def count(self, split):
        w = self.windows[split]
        return w["count"] if w else self.data[split + ".y"].shape[0]

    def _optimizer(self, tensors):
        m = self.meta
        params = dict(self.model.named_parameters())
        base_lr = float(m["lr"])
        # One torch parameter group per (weight decay, lr multiplier), in the order they first appear.
        groups = {}
        for g in json.loads(m["param_groups"]):
            groups.setdefault((g["weight_decay"], g["lr_multiplier"]), []).append(g["name"])
        cls = {"AdamW": torch.optim.AdamW, "Adam": torch.optim.Adam}[m["optimizer"]]
        opt = cls(
            [{"params": [params[n] for n in names], "weight_decay": wd, "lr": base_lr * mult, "lr_multiplier": mult} for (wd, mult), names in groups.items()],
            lr=base_lr,
            betas=tuple(json.loads(m["betas"])),
            eps=float(m["eps"]),
            amsgrad=m["amsgrad"] == "true",
        )
        for name, p in params.items():
            st = opt.state[p]
            st["step"] = torch.tensor(float(self.step))
            st["exp_avg"] = tensors["optimizer.exp_avg." + name].clone()
            st["exp_avg_sq"] = tensors["optimizer.exp_avg_sq." + name].clone()
            if m["amsgrad"] == "true":
                st["max_exp_avg_sq"] = tensors["optimizer.max_exp_avg_sq." + name].clone()
        return opt

    def set_lr(self):
        """Each group's lr for the next step: base lr × its multiplier × schedule(step), as shardtrain computes it."""
        eta = schedule_multiplier(self.schedule, self.step)
        for g in self.optimizer.param_groups:
            g["lr"] = float(self.meta["lr"]) * g["lr_multiplier"] * eta

    def examples(self, split, indices):
        idx = torch.tensor(indices, dtype=torch.long)
        w = self.windows[split]
        if w:
            starts = (idx * w["stride"])[:, None] + torch.arange(w["window"])[None, :]
            tokens = self.data[split + ".tokens"]
            return tokens[starts], tokens[starts + 1]
        return self.data[split + ".x"][idx], self.data[split + ".y"][idx]

    def use_ddp(self):
        """Train under DistributedDataParallel (torch.distributed already initialised): each rank a slice of the batch."""
        self.forward = torch.nn.parallel.DistributedDataParallel(self.model)

    def clip_gradients(self):
        if self.clip["value"] is not None:
            torch.nn.utils.clip_grad_value_(self.model.parameters(), self.clip["value"])
        if self.clip["globalNorm"] is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip["globalNorm"])

    def apply_step(self):
        """The optimizer step on the gradients already in .grad (clipped as shardtrain clips), then step += 1."""
        self.clip_gradients()
        self.set_lr()
        self.optimizer.step()
        self.step += 1

    def train_step(self, part=0, parts=1):
        """One step on the next global batch (or part `part` of `parts` of it, for one DDP rank); returns the loss."""
        b = self.global_batch // parts
        x, y = self.examples("train", self.order.slice(self.batch, part * b, b))
        self.optimizer.zero_grad(set_to_none=True)
        # Through the DDP wrapper when there is one: its forward is what makes backward() average the gradients.
        loss = self.model.loss_of(self.forward(x), y)
        loss.backward()
        self.apply_step()
        self.batch += 1
        if parts > 1:  # the global batch's loss: the mean of the ranks' (equal-sized) parts
            loss = loss.detach().clone()
            torch.distributed.all_reduce(loss)
            loss /= parts
        return loss.item()

    @torch.no_grad()
    def eval_loss(self, chunk=4096):
        """Mean loss over every held-out example (float64 sum of chunk means × chunk sizes, as shardtrain sums)."""
        n = self.count("eval")
        total = 0.0
        for a in range(0, n, chunk):
            idx = list(range(a, min(n, a + chunk)))
            x, y = self.examples("eval", idx)
            total += self.model.loss_of(self.model(x), y).item() * len(idx)
        return total / n


def load_export(path, data_path=None):
    return ExportedRun(path, data_path)
