#!/usr/bin/python3
"""Go on training a shardtrain run in PyTorch, from `shardtrain export RUN --to torch --out FILE`:

    /usr/bin/python3 scripts/torch/continue.py FILE [--steps N] [--total-steps T] [--save OUT.pt] [--log-every K]

The model, AdamW (or Adam) with its parameter groups, moments and step, the lr schedule and the data order
are shardtrain's, so the first step here is the step shardtrain would have taken next. Under torchrun
(`torchrun --nproc_per_node=R scripts/torch/continue.py FILE ...`) each rank computes its slice of the global
batch, as a shardtrain replica does, and DDP averages the gradients.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shardtrain_torch as st  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("export", help="the file `shardtrain export --to torch` wrote")
    ap.add_argument("--steps", type=int, default=100, help="steps to train here (default 100)")
    ap.add_argument("--save", help="torch.save the model and optimizer state dicts here at the end")
    ap.add_argument("--total-steps", type=int, help="the schedule's new length (as shardtrain's --steps on a resume); default: the exported one")
    ap.add_argument("--log-every", type=int, default=10)
    a = ap.parse_args()

    run = st.load_export(a.export)
    if a.total_steps is not None:
        run.schedule["totalSteps"] = a.total_steps
    if run.optimizer is None:
        sys.exit("continue.py: %s has no optimizer state (convention %s has no torch optimizer)" % (a.export, run.meta["convention"]))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        torch.distributed.init_process_group("gloo")
        if run.global_batch % world:
            sys.exit("continue.py: global batch %d is not divisible by %d ranks" % (run.global_batch, world))
        run.use_ddp()
    say = print if rank == 0 else (lambda *_: None)
    say("continuing %s at step %d (torch %s, %s, %d rank%s); held-out loss %.4f" % (a.export, run.step, torch.__version__, run.meta["optimizer"], world, "s" if world > 1 else "", run.eval_loss()))
    t0 = time.perf_counter()
    for i in range(a.steps):
        loss = run.train_step(rank, world)
        if (i + 1) % a.log_every == 0 or i + 1 == a.steps:
            say("step %d  loss %.4f  lr %.3e" % (run.step, loss, run.optimizer.param_groups[0]["lr"]))
    say("%d steps in %.1f s; held-out loss %.4f" % (a.steps, time.perf_counter() - t0, run.eval_loss()))
    if a.save and rank == 0:
        torch.save({"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(), "step": run.step}, a.save)
        say("saved %s" % a.save)


if __name__ == "__main__":
    main()
