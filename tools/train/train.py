#!/usr/bin/python3
"""Train a small MiMo-V2-Flash-architecture model (with 3 MTP layers) on the King James Bible, on CPU.

  /usr/bin/python3 tools/train/train.py --work /tmp/mimo-tiny-train --minutes 50 [--threads 1] [--resume]

Training stops after --minutes of wall clock (the learning-rate schedule runs on elapsed time, so a busy machine
gives fewer steps but the same schedule shape). Every --ckpt-minutes it writes WORK/ckpt.pt (resumable with
--resume); at the end WORK/final.pt. Logs go to stdout and WORK/train.log. Then run export.py and evaluate.py.
"""
import argparse
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402
import data  # noqa: E402
from model import MiMo, count_params, default_config  # noqa: E402


def lr_at(frac, step, a):
    """Linear warmup over warmup steps, then cosine on the elapsed-time fraction down to lr * min_lr_frac."""
    warm = min(1.0, (step + 1) / a.warmup)
    cos = 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
    return a.lr * warm * (a.min_lr_frac + (1 - a.min_lr_frac) * cos)


def mtp_weight(frac, a):
    return a.mtp_weight if frac < a.mtp_late_at else a.mtp_weight_late


@torch.no_grad()
def evaluate(model, windows, bs=16):
    """Mean held-out LM loss and per-MTP-layer losses over the windows."""
    model.eval()
    lm_sum, mtp_sum, n = 0.0, None, 0
    for i in range(0, len(windows), bs):
        ids = torch.from_numpy(windows[i:i + bs])
        lm, mtp = model.losses(ids)
        w = ids.shape[0]
        lm_sum += float(lm) * w
        mtp_sum = [float(x) * w + (mtp_sum[k] if mtp_sum else 0.0) for k, x in enumerate(mtp)]
        n += w
    model.train()
    return lm_sum / n, [x / n for x in mtp_sum]


def param_groups(model, wd):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and "gate_weight" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def save(path, model, opt, state):
    torch.save({"model": model.state_dict(), "opt": opt.state_dict() if opt else None, "state": state,
                "config": model.cfg}, path + ".part")
    os.replace(path + ".part", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/mimo-tiny-train")
    ap.add_argument("--minutes", type=float, default=50.0, help="wall-clock training budget")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--mtp-weight", type=float, default=0.3, help="lambda on the mean MTP loss (early phase)")
    ap.add_argument("--mtp-rows", type=int, default=2, help="early phase: MTP losses on this many rows of a batch")
    ap.add_argument("--mtp-weight-late", type=float, default=1.0, help="lambda after --mtp-late-at (all rows)")
    ap.add_argument("--mtp-late-at", type=float, default=0.7, help="fraction of the time budget")
    ap.add_argument("--bias-gamma", type=float, default=1e-2,
                    help="router bias update speed (aux-loss-free; DeepSeek-V3 uses 1e-3 over far more steps)")
    ap.add_argument("--chat-frac", type=float, default=0.1, help="fraction of rows from the chat stream")
    ap.add_argument("--ckpt-minutes", type=float, default=5.0)
    ap.add_argument("--eval-minutes", type=float, default=12.0)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    os.makedirs(a.work, exist_ok=True)
    log_f = open(os.path.join(a.work, "train.log"), "a")

    def log(msg):
        line = "[%s] %s" % (time.strftime("%H:%M:%S"), msg)
        print(line, flush=True)
        log_f.write(line + "\n")
        log_f.flush()

    cfg = default_config()
    chapters = corpus.read_bible()
    train_ch, held_ch = corpus.split(chapters)
    tok = data.load_tokenizer(a.work, cfg["vocab_size"], chapters)
    text = data.text_stream(tok, train_ch)
    chat = data.chat_stream(tok, train_ch)
    held = data.eval_windows(data.text_stream(tok, held_ch), a.seq)
    log("train tokens %d (chat stream %d), held-out windows %d x %d" % (len(text), len(chat), len(held), a.seq))

    model = MiMo(cfg)
    log("params %d (%.1f MB in bf16)" % (count_params(model), count_params(model) * 2 / 1e6))
    opt = torch.optim.AdamW(param_groups(model, a.wd), lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    state = {"step": 0, "elapsed": 0.0, "tokens": 0, "evals": []}
    ckpt = os.path.join(a.work, "ckpt.pt")
    if a.resume and os.path.exists(ckpt):
        d = torch.load(ckpt)
        model.load_state_dict(d["model"])
        opt.load_state_dict(d["opt"])
        state = d["state"]
        log("resumed at step %d, %.1f min" % (state["step"], state["elapsed"] / 60))
    batches = data.Batches(text, chat, a.seq, a.batch, a.chat_frac, a.seed + state["step"])
    budget = a.minutes * 60
    t0 = time.time() - state["elapsed"]
    last_ckpt = last_eval = time.time()
    run_lm = run_mtp = None
    while True:
        elapsed = time.time() - t0
        frac = elapsed / budget
        if frac >= 1.0:
            break
        lr = lr_at(frac, state["step"], a)
        for g in opt.param_groups:
            g["lr"] = lr
        lam = mtp_weight(frac, a)
        ids = torch.from_numpy(batches.next())
        lm, mtp = model.losses(ids, a.mtp_rows if frac < a.mtp_late_at else None)
        loss = lm + lam * sum(mtp) / len(mtp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        model.update_router_bias(a.bias_gamma)
        state["step"] += 1
        state["tokens"] += ids.numel() - ids.shape[0]
        ml = [float(x) for x in mtp]
        run_lm = float(lm) if run_lm is None else 0.95 * run_lm + 0.05 * float(lm)
        run_mtp = ml if run_mtp is None else [0.95 * r + 0.05 * x for r, x in zip(run_mtp, ml)]
        if state["step"] % 10 == 0:
            loads = [m.last_load for m in model.moe_layers()]
            imb = [float(l.max() / l.mean()) for l in loads]
            log("step %d  %.1f min  lr %.2e  lam %.2f  lm %.3f  mtp %s  gnorm %.2f  max-load/mean %.2f (max) %.2f (avg)  %d tok/s"
                % (state["step"], elapsed / 60, lr, lam, run_lm, " ".join("%.3f" % x for x in run_mtp), float(gn),
                   max(imb), sum(imb) / len(imb), state["tokens"] / max(elapsed, 1e-9)))
        now = time.time()
        if now - last_eval > a.eval_minutes * 60:
            hl, hm = evaluate(model, held[:32])  # a third of the held-out set, to keep it quick
            state["evals"].append({"step": state["step"], "minutes": (now - t0) / 60, "lm": hl, "mtp": hm})
            log("EVAL step %d  held-out[:32] lm %.4f (ppl %.2f)  mtp %s" % (state["step"], hl, math.exp(hl),
                                                                     " ".join("%.3f" % x for x in hm)))
            last_eval = time.time()
            t0 += last_eval - now  # evaluation time does not count against the training budget
        if time.time() - last_ckpt > a.ckpt_minutes * 60:
            state["elapsed"] = time.time() - t0
            save(ckpt, model, opt, state)
            last_ckpt = time.time()
    state["elapsed"] = time.time() - t0
    save(ckpt, model, opt, state)
    hl, hm = evaluate(model, held)
    state["evals"].append({"step": state["step"], "minutes": state["elapsed"] / 60, "lm": hl, "mtp": hm})
    log("FINAL step %d  tokens %d  %.1f min  held-out lm %.4f (ppl %.2f)  mtp %s"
        % (state["step"], state["tokens"], state["elapsed"] / 60, hl, math.exp(hl), " ".join("%.3f" % x for x in hm)))
    save(os.path.join(a.work, "final.pt"), model, None, state)
    with open(os.path.join(a.work, "train_summary.json"), "w") as f:
        json.dump({"args": vars(a), "state": state, "params": count_params(model)}, f, indent=1)


if __name__ == "__main__":
    main()
