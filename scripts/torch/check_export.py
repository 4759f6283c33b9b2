#!/usr/bin/python3
"""The checks test/torch-export.test.ts runs on an export (one JSON line on stdout):

    check_export.py eval FILE              → {"evalLoss": …}  the held-out loss of the exported model, in torch
    check_export.py order FILE K           → {"batches": [...]}  the example indices of the next K global batches
    check_export.py step FILE SEED OUT     → draws a gradient per parameter (seeded, torch layout), writes it to
                                             OUT.grads.safetensors, applies one optimizer step with it, and
                                             writes the parameters and Adam state after it to OUT
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shardtrain_torch as st  # noqa: E402


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        b = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    what, path = sys.argv[1], sys.argv[2]
    run = st.load_export(path)
    if what == "eval":
        print(json.dumps({"evalLoss": run.eval_loss()}))
        return
    if what == "order":
        k = int(sys.argv[3])
        print(json.dumps({"batch": run.batch, "batches": [run.order.slice(run.batch + i, 0, run.global_batch) for i in range(k)]}))
        return
    seed, out = int(sys.argv[3]), sys.argv[4]
    g = torch.Generator().manual_seed(seed)
    grads = {name: torch.randn(p.shape, generator=g) * 0.1 for name, p in run.model.named_parameters()}
    write_safetensors(out + ".grads.safetensors", grads)
    for name, p in run.model.named_parameters():
        p.grad = grads[name].clone()
    run.apply_step()
    after = {name: p for name, p in run.model.named_parameters()}
    for name, p in run.model.named_parameters():
        state = run.optimizer.state[p]
        after["optimizer.exp_avg." + name] = state["exp_avg"]
        after["optimizer.exp_avg_sq." + name] = state["exp_avg_sq"]
        if "max_exp_avg_sq" in state:
            after["optimizer.max_exp_avg_sq." + name] = state["max_exp_avg_sq"]
    write_safetensors(out, after)
    print(json.dumps({"step": run.step, "lr": run.optimizer.param_groups[0]["lr"]}))


if __name__ == "__main__":
    main()
