#!/usr/bin/python3
"""Write a trained checkpoint as a hub-layout MiMo-V2-Flash model folder (bf16 safetensors + config + tokenizer).

  /usr/bin/python3 tools/train/export.py --work /tmp/mimo-tiny-train --out models/mimo-tiny

Reads WORK/final.pt (or WORK/ckpt.pt with --ckpt) and WORK/merges.json. Writes OUT/model.safetensors (weights in
BF16; norms, attention sinks, router weights and e_score_correction_bias in F32), config.json (hub style),
generation_config.json, tokenizer.json, tokenizer_config.json (chat template from src/chat/templates/mimo.jinja)
and heldout.txt (the held-out chapters, see corpus.py).
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bpe  # noqa: E402
import corpus  # noqa: E402
from model import MiMo  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
F32_SUFFIXES = ("layernorm.weight", "norm.weight", "attention_sink_bias", "mlp.gate.weight",
                "e_score_correction_bias")


def hub_tensors(model):
    """name -> fp32 tensor, with the checkpoint names of the doc."""
    sd = {k: v.detach().float() for k, v in model.state_dict().items()}
    out = {"model.embed_tokens.weight": sd["embed_tokens.weight"], "model.norm.weight": sd["norm.weight"],
           "lm_head.weight": sd["lm_head.weight"]}

    def attn(src, dst):
        for p in ("q_proj", "k_proj", "v_proj", "o_proj"):
            out["%s.self_attn.%s.weight" % (dst, p)] = sd["%s.self_attn.%s.weight" % (src, p)]
        if "%s.self_attn.attention_sink_bias" % src in sd:
            out["%s.self_attn.attention_sink_bias" % dst] = sd["%s.self_attn.attention_sink_bias" % src]

    def mlp(src, dst):
        for p in ("gate_proj", "up_proj", "down_proj"):
            out["%s.%s.weight" % (dst, p)] = sd["%s.%s.weight" % (src, p)]

    for i, layer in enumerate(model.layers):
        s, d = "layers.%d" % i, "model.layers.%d" % i
        for n in ("input_layernorm", "post_attention_layernorm"):
            out["%s.%s.weight" % (d, n)] = sd["%s.%s.weight" % (s, n)]
        attn(s, d)
        if layer.is_moe:
            out[d + ".mlp.gate.weight"] = sd[s + ".mlp.gate_weight"]
            out[d + ".mlp.gate.e_score_correction_bias"] = sd[s + ".mlp.e_score_correction_bias"]
            for e in range(layer.mlp.E):
                out["%s.mlp.experts.%d.gate_proj.weight" % (d, e)] = sd[s + ".mlp.w_gate"][e]
                out["%s.mlp.experts.%d.up_proj.weight" % (d, e)] = sd[s + ".mlp.w_up"][e]
                out["%s.mlp.experts.%d.down_proj.weight" % (d, e)] = sd[s + ".mlp.w_down"][e]
        else:
            mlp(s + ".mlp", d + ".mlp")
    for k in range(len(model.mtp)):
        s, d = "mtp.%d" % k, "model.mtp.layers.%d" % k
        for n in ("enorm", "hnorm", "eh_proj", "input_layernorm", "pre_mlp_layernorm", "final_layernorm"):
            out["%s.%s.weight" % (d, n)] = sd["%s.%s.weight" % (s, n)]
        attn(s, d)
        mlp(s + ".mlp", d + ".mlp")
    return out


def stored_dtype(name):
    return "F32" if name.endswith(F32_SUFFIXES) else "BF16"


def write_safetensors(path, tensors):
    """tensors: name -> fp32 torch tensor; BF16 by round-to-nearest-even (torch's conversion)."""
    hdr, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        dt = stored_dtype(name)
        if dt == "BF16":
            raw = t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
        else:
            raw = t.numpy().astype("<f4").tobytes()
        hdr[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".part", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(path + ".part", path)


def read_safetensors(path):
    """name -> fp32 torch tensor (BF16 and F32 only)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        base = 8 + n
        data = f.read()
    hdr.pop("__metadata__", None)
    out = {}
    for name, info in hdr.items():
        a, b = info["data_offsets"]
        raw = data[a:b]
        if info["dtype"] == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] == "F32":
            arr = np.frombuffer(raw, dtype="<f4").copy()
        else:
            raise ValueError("unexpected dtype %s" % info["dtype"])
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    assert base > 8
    return out


def hub_config(cfg, tok):
    c = {"architectures": ["MiMoV2FlashForCausalLM"], "model_type": "mimo_v2_flash"}
    c.update({k: v for k, v in cfg.items()})
    c.update({
        "hidden_act": "silu",
        "attention_bias": False,
        "tie_word_embeddings": False,
        "max_position_embeddings": 4096,
        "torch_dtype": "bfloat16",
        "bos_token_id": tok.id("<|endoftext|>"),
        "eos_token_id": tok.id("<|im_end|>"),
        "pad_token_id": tok.id("<|endoftext|>"),
        "initializer_range": 0.02,
        "use_cache": True,
    })
    return c


def load_model(model_dir):
    """The exported folder as a PyTorch MiMo in fp32 (weights as stored: bf16-rounded)."""
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    model = MiMo(cfg)
    hub = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    names = hub_tensors(model)  # same names, current (random) values: used for the mapping only
    assert set(names) == set(hub), set(names) ^ set(hub)
    sd = model.state_dict()
    inv = {}
    for i, layer in enumerate(model.layers):
        if layer.is_moe:
            for e in range(layer.mlp.E):
                for p, w in (("gate_proj", "w_gate"), ("up_proj", "w_up"), ("down_proj", "w_down")):
                    inv["model.layers.%d.mlp.experts.%d.%s.weight" % (i, e, p)] = ("layers.%d.mlp.%s" % (i, w), e)
            inv["model.layers.%d.mlp.gate.weight" % i] = ("layers.%d.mlp.gate_weight" % i, None)
            inv["model.layers.%d.mlp.gate.e_score_correction_bias" % i] = (
                "layers.%d.mlp.e_score_correction_bias" % i, None)
    for name, t in hub.items():
        if name in inv:
            key, e = inv[name]
        else:
            key, e = name, None
            if key.startswith("model.mtp.layers."):
                key = "mtp." + key[len("model.mtp.layers."):]
            elif key.startswith("model."):
                key = key[len("model."):]
        if e is None:
            sd[key].copy_(t)
        else:
            sd[key][e].copy_(t)
    model.eval()
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/mimo-tiny-train")
    ap.add_argument("--out", default=os.path.join(REPO, "models", "mimo-tiny"))
    ap.add_argument("--ckpt", action="store_true", help="export WORK/ckpt.pt instead of WORK/final.pt")
    a = ap.parse_args()
    d = torch.load(os.path.join(a.work, "ckpt.pt" if a.ckpt else "final.pt"))
    cfg = d["config"]
    model = MiMo(cfg)
    model.load_state_dict(d["model"])
    tok = bpe.Tokenizer(bpe.load_merges(os.path.join(a.work, "merges.json")))
    assert tok.vocab_size == cfg["vocab_size"]
    os.makedirs(a.out, exist_ok=True)
    write_safetensors(os.path.join(a.out, "model.safetensors"), hub_tensors(model))

    def dump(name, obj):
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(obj, f, indent=2, ensure_ascii=False)
            f.write("\n")

    dump("config.json", hub_config(cfg, tok))
    dump("generation_config.json", tok.generation_config())
    template = open(os.path.join(REPO, "src", "chat", "templates", "mimo.jinja")).read()
    dump("tokenizer_config.json", tok.tokenizer_config(template))
    with open(os.path.join(a.out, "tokenizer.json"), "w") as f:
        json.dump(tok.tokenizer_json(), f, ensure_ascii=False, separators=(",", ":"))
    _, held = corpus.split(corpus.read_bible())
    with open(os.path.join(a.out, "heldout.txt"), "w") as f:
        f.write(corpus.heldout_file_text(held))
    total = sum(os.path.getsize(os.path.join(a.out, n)) for n in os.listdir(a.out))
    print("wrote %s: %d files, %.2f MB" % (a.out, len(os.listdir(a.out)), total / 1e6))


if __name__ == "__main__":
    main()
