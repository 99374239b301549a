#!/usr/bin/python3
"""Evaluate an exported model folder: held-out perplexity, MTP accuracy, speculative-decoding accept length, and
agreement with the float64 NumPy reference (tools/reference/mimo_ref.py).

  /usr/bin/python3 tools/train/evaluate.py --model models/mimo-tiny [--json out.json] [--no-ref]

Everything here reads only the model folder (weights as stored, i.e. bf16-rounded, computed in fp32).

Accept length (greedy, 3 draft steps): prompts are the first --prompt-len tokens of each held-out chapter
(<|endoftext|> + text); the target decodes --new tokens greedily. Speculative decoding is then replayed: after the
target emits bonus token t_n (from hidden H_{n-1}), drafts d1..d3 come from MTP layers 0..2, each given
(H_{n-1}, previous token: t_n, d1, d2). The target accepts drafts while each equals its own greedy token; a step
emits accepted + 1 tokens. Because a draft is only looked at when all drafts before it were accepted, the inputs
of every looked-at draft are exactly the target's greedy sequence, so one pass of each MTP layer over that sequence
gives every draft.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import corpus  # noqa: E402
from export import load_model, read_safetensors  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))


def heldout_docs(model_dir, tok):
    text = open(os.path.join(model_dir, "heldout.txt")).read()
    eot = tok.id("<|endoftext|>")
    return [[eot] + tok.encode(d) for d in corpus.parse_heldout_file(text)]


@torch.no_grad()
def perplexity(model, docs, T=256, bs=8):
    stream = np.array([t for d in docs for t in d], dtype=np.int64)
    n = (len(stream) - 1) // T
    wins = np.stack([stream[i * T:i * T + T + 1] for i in range(n)])
    lm_sum, mtp_nll, mtp_acc, cnt = 0.0, np.zeros(3), np.zeros(3), 0
    mtp_cnt = np.zeros(3)
    for i in range(0, n, bs):
        ids = torch.from_numpy(wins[i:i + bs])
        inp = ids[:, :-1]
        h = model.hidden(inp)
        lm_sum += float(F.cross_entropy(model.lm_head(h).flatten(0, 1), ids[:, 1:].flatten(), reduction="sum"))
        cnt += inp.numel()
        for k in range(len(model.mtp)):
            lg = model.lm_head(model.mtp_hidden(k, h, inp))
            tgt = ids[:, k + 2:k + 2 + lg.shape[1]]
            mtp_nll[k] += float(F.cross_entropy(lg.flatten(0, 1), tgt.flatten(), reduction="sum"))
            mtp_acc[k] += float((lg.argmax(-1) == tgt).sum())
            mtp_cnt[k] += tgt.numel()
    lm = lm_sum / cnt
    return {"tokens": cnt, "lm_loss": lm, "ppl": math.exp(lm), "mtp_loss": list(mtp_nll / mtp_cnt),
            "mtp_top1_vs_text": list(mtp_acc / mtp_cnt)}


@torch.no_grad()
def greedy(model, prompts, n_new):
    ids = prompts
    for _ in range(n_new):
        nxt = model.lm_head(model.hidden(ids)[:, -1]).argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
    return ids


@torch.no_grad()
def accept_length(model, docs, prompt_len, n_new, steps=3):
    prompts = torch.tensor([d[:prompt_len] for d in docs if len(d) >= prompt_len])
    G = greedy(model, prompts, n_new)
    h = model.hidden(G)
    tgt = model.lm_head(h).argmax(-1)  # target's greedy token after each position (re-computed in one pass)
    consistent = float((tgt[:, prompt_len - 1:-1] == G[:, prompt_len:]).float().mean())
    drafts = [model.lm_head(model.mtp_hidden(k, h, G)).argmax(-1) for k in range(steps)]  # d_k[p] ~ G[p+k+2]
    lengths, tried, accepted = [], np.zeros(steps), np.zeros(steps)
    N = G.shape[1]
    for b in range(G.shape[0]):
        n = prompt_len  # G[:, prompt_len] is the first token the target emits (the prefill's bonus)
        while n + steps < N:
            a = 0
            for j in range(1, steps + 1):
                tried[j - 1] += 1
                if int(drafts[j - 1][b, n - 1]) != int(G[b, n + j]):
                    break
                accepted[j - 1] += 1
                a += 1
            lengths.append(a + 1)
            n += a + 1
    return {"prompts": int(G.shape[0]), "prompt_len": prompt_len, "new_tokens": n_new,
            "verify_steps": len(lengths), "accept_length": float(np.mean(lengths)),
            "draft_accept_rate_given_previous": list(accepted / np.maximum(tried, 1)),
            "greedy_self_consistency": consistent}, G


@torch.no_grad()
def compare_with_reference(model, model_dir, ids, n_greedy):
    """Runs tools/reference/mimo_ref.py on ids and compares logits, MTP logits and greedy continuation."""
    with tempfile.TemporaryDirectory() as tmp:
        out, mtp_out = os.path.join(tmp, "logits.safetensors"), os.path.join(tmp, "mtp.safetensors")
        cmd = ["/usr/bin/python3", os.path.join(REPO, "tools", "reference", "mimo_ref.py"), "--model", model_dir,
               "--input-ids", ",".join(map(str, ids)), "--out", out, "--mtp-logits", mtp_out,
               "--greedy", str(n_greedy)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        ref_greedy = json.loads(res.stdout.strip().splitlines()[-1])["output_ids"]
        ref = read_safetensors(out)["logits"]
        ref_mtp = read_safetensors(mtp_out)
    x = torch.tensor([ids])
    h = model.hidden(x)
    ours = model.lm_head(h)[0]
    r = {"tokens": len(ids), "logits_max_abs_diff": float((ours - ref).abs().max()),
         "logits_abs_max": float(ref.abs().max())}
    for k in range(len(model.mtp)):
        lg = model.lm_head(model.mtp_hidden(k, h, x))[0]
        r["mtp%d_logits_max_abs_diff" % k] = float((lg - ref_mtp["mtp.%d.logits" % k]).abs().max())
    ours_greedy = greedy(model, x, n_greedy)[0, len(ids):].tolist()
    r["greedy_ours"], r["greedy_ref"] = ours_greedy, ref_greedy
    r["greedy_equal"] = ours_greedy == ref_greedy
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(REPO, "models", "mimo-tiny"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--no-ref", action="store_true", help="skip the NumPy reference comparison")
    ap.add_argument("--ref-tokens", type=int, default=80)
    ap.add_argument("--ref-greedy", type=int, default=20)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tok = bpe.from_tokenizer_json(os.path.join(a.model, "tokenizer.json"))
    model = load_model(a.model)
    docs = heldout_docs(a.model, tok)
    res = {"perplexity": perplexity(model, docs)}
    print("held-out: %d tokens, loss %.4f, ppl %.2f, MTP loss %s, MTP top-1 vs text %s" % (
        res["perplexity"]["tokens"], res["perplexity"]["lm_loss"], res["perplexity"]["ppl"],
        " ".join("%.3f" % x for x in res["perplexity"]["mtp_loss"]),
        " ".join("%.3f" % x for x in res["perplexity"]["mtp_top1_vs_text"])), flush=True)
    acc, G = accept_length(model, docs, a.prompt_len, a.new)
    res["speculative"] = acc
    print("accept length %.3f over %d verify steps (%d prompts); per-draft acceptance %s; self-consistency %.4f" % (
        acc["accept_length"], acc["verify_steps"], acc["prompts"],
        " ".join("%.3f" % x for x in acc["draft_accept_rate_given_previous"]), acc["greedy_self_consistency"]))
    res["sample_continuations"] = [tok.decode(G[i, a.prompt_len:].tolist()) for i in range(2)]
    for i, s in enumerate(res["sample_continuations"]):
        print("--- prompt %r\n+++ %r" % (tok.decode(G[i, :a.prompt_len].tolist()), s))
    chat = "<|im_start|>user\nRecite Genesis 1:1.<|im_end|>\n<|im_start|>assistant\n"
    ids = torch.tensor([tok.encode_with_special(chat)])
    out = greedy(model, ids, 40)[0, ids.shape[1]:].tolist()
    res["chat_sample"] = {"prompt": chat, "greedy": tok.decode(out)}
    print("chat: %r -> %r" % (chat, tok.decode(out)))
    if not a.no_ref:
        ids = docs[0][:a.ref_tokens]
        r = compare_with_reference(model, a.model, ids, a.ref_greedy)
        res["reference"] = r
        print("reference (float64 NumPy) vs PyTorch fp32, %d tokens: logits max |diff| %.2e (max |logit| %.1f), MTP %s;"
              " greedy %d tokens equal: %s" % (r["tokens"], r["logits_max_abs_diff"], r["logits_abs_max"],
                                              " ".join("%.2e" % r["mtp%d_logits_max_abs_diff" % k]
                                                       for k in range(len(model.mtp))), a.ref_greedy,
                                              r["greedy_equal"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
