#!/usr/bin/python3
"""Independent float64 NumPy reference for the MiMo-V2-Flash forward pass (incl. MTP layers).

Follows docs in /work/shared/docs/mimo-v2-flash.md. Slow and simple on purpose: it is a check for
the C++ engine, not an engine. Needs only Python 3 + NumPy (Debian's /usr/bin/python3 works).

  /usr/bin/python3 tools/reference/mimo_ref.py --model DIR --input-ids 1,2,3 --out logits.safetensors \
      [--window-extra 0|1] [--greedy N] [--mtp-logits mtp.safetensors]
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

# ----------------------------------------------------------------------------------------------
# safetensors I/O (no safetensors package)
# ----------------------------------------------------------------------------------------------


def _fp8_e4m3fn_table():
    """float64 value of every e4m3fn byte: 1 sign, 4 exponent (bias 7), 3 mantissa; no inf, S.1111.111 = NaN."""
    t = np.empty(256, dtype=np.float64)
    for b in range(256):
        s, e, m = (b >> 7) & 1, (b >> 3) & 0xF, b & 7
        if e == 15 and m == 7:
            v = float("nan")
        elif e == 0:
            v = (m / 8.0) * 2.0 ** -6
        else:
            v = (1.0 + m / 8.0) * 2.0 ** (e - 7)
        t[b] = -v if s else v
    return t


FP8_TABLE = _fp8_e4m3fn_table()
RAW_DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "BF16": "<u2", "F8_E4M3": "u1",
              "U8": "u1", "I8": "i1", "BOOL": "u1"}


def st_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    hdr.pop("__metadata__", None)
    return 8 + n, hdr


def st_decode(raw, dtype):
    """Raw numpy array (as stored) -> float64 (floats) or int64 (ints)."""
    if dtype == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    if dtype == "F8_E4M3":
        return FP8_TABLE[raw]
    if dtype in ("I64", "I32", "I8", "U8", "BOOL"):
        return raw.astype(np.int64)
    return raw.astype(np.float64)


class TensorStore:
    """Lazily reads tensors from a single model.safetensors or a sharded index."""

    def __init__(self, model_dir):
        idx = os.path.join(model_dir, "model.safetensors.index.json")
        if os.path.exists(idx):
            files = sorted(set(json.load(open(idx))["weight_map"].values()))
        else:
            files = ["model.safetensors"]
        self.where = {}
        for fn in files:
            path = os.path.join(model_dir, fn)
            base, hdr = st_header(path)
            mm = np.memmap(path, dtype=np.uint8, mode="r")
            for name, info in hdr.items():
                self.where[name] = (mm, base, info)
        self.cache = {}

    def has(self, name):
        return name in self.where

    def dtype(self, name):
        return self.where[name][2]["dtype"]

    def raw(self, name):
        mm, base, info = self.where[name]
        a, b = info["data_offsets"]
        return np.frombuffer(mm[base + a:base + b], dtype=RAW_DTYPES[info["dtype"]]).reshape(info["shape"])

    def get(self, name, head_dim=None):
        """float64 tensor; FP8 weights are dequantised with their `_scale_inv` block grid."""
        if name in self.cache:
            return self.cache[name]
        w = st_decode(self.raw(name), self.dtype(name))
        sname = name + "_scale_inv"
        if self.dtype(name) == "F8_E4M3" and self.has(sname):
            w = dequant_blocks(w, st_decode(self.raw(sname), self.dtype(sname)), head_dim)
        self.cache[name] = w
        return w


def dequant_blocks(w, s, head_dim=None, blk=128):
    """W[r, c] = fp8[r, c] * s[row_block(r), c // 128]. Normal grid: row_block = r // 128. Per-KV-head grid
    (full-attn k/v of the real checkpoint): rows of head h = r // d use s[h * ceil(d/128) + (r % d) // 128]."""
    out, inp = w.shape
    r = np.arange(out)
    if s.shape[0] == -(-out // blk):
        rb = r // blk
    elif head_dim and out % head_dim == 0 and s.shape[0] == (out // head_dim) * -(-head_dim // blk):
        rb = (r // head_dim) * -(-head_dim // blk) + (r % head_dim) // blk
    else:
        raise ValueError("unexpected scale grid %s for weight %s" % (s.shape, w.shape))
    assert s.shape[1] == -(-inp // blk), (s.shape, w.shape)
    return w * s[rb][:, np.arange(inp) // blk]


def st_write(path, tensors):
    """tensors: dict name -> numpy array (stored with its own dtype: float32 or int64)."""
    codes = {np.dtype("float32"): "F32", np.dtype("int64"): "I64", np.dtype("float64"): "F64"}
    hdr, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        b = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        hdr[name] = {"dtype": codes[arr.dtype], "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def st_read_all(path):
    base, hdr = st_header(path)
    data = open(path, "rb").read()
    out = {}
    for name, info in hdr.items():
        a, b = info["data_offsets"]
        raw = np.frombuffer(data[base + a:base + b], dtype=RAW_DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = st_decode(raw, info["dtype"])
    return out


# ----------------------------------------------------------------------------------------------
# config (hub style and transformers-native style)
# ----------------------------------------------------------------------------------------------


def _first(c, *keys, default=None):
    for k in keys:
        if c.get(k) is not None:
            return c[k]
    return default


def load_config(model_dir):
    c = json.load(open(os.path.join(model_dir, "config.json")))
    c = c.get("text_config", c)
    L = c["num_hidden_layers"]
    if c.get("hybrid_layer_pattern") is not None:  # hub style
        swa = [int(x) == 1 for x in c["hybrid_layer_pattern"]]
    elif c.get("layer_types") is not None:  # native style
        swa = [t == "sliding_attention" for t in c["layer_types"]]
    else:
        swa = [False] * L
    if c.get("moe_layer_freq") is not None:
        mf = c["moe_layer_freq"]
        if not isinstance(mf, list):
            raise ValueError("moe_layer_freq must be a per-layer list")
        moe = [int(x) == 1 for x in mf]
    elif c.get("mlp_layer_types") is not None:
        moe = [t == "sparse" for t in c["mlp_layer_types"]]
    else:
        moe = [False] * L
    assert len(swa) == L and len(moe) == L

    nkv = c["num_key_value_heads"]
    hd = c["head_dim"]
    vhd = _first(c, "v_head_dim", default=hd)
    # rope: hub has rope_theta/swa_rope_theta/partial_rotary_factor; native has rope_parameters[layer_type]
    rp = c.get("rope_parameters") or {}
    full_rp = rp.get("full_attention", rp if "rope_theta" in rp else {})
    swa_rp = rp.get("sliding_attention", {})
    prf = _first(c, "partial_rotary_factor", default=_first(full_rp, "partial_rotary_factor", default=1.0))
    full_theta = _first(c, "rope_theta", default=full_rp.get("rope_theta", 10000.0))
    swa_theta = _first(c, "swa_rope_theta", default=_first(swa_rp, "rope_theta", default=full_theta))
    kinds = {
        "full": dict(heads=c["num_attention_heads"], kv=nkv, hd=hd, vhd=vhd, theta=full_theta,
                     prf=_first(full_rp, "partial_rotary_factor", default=prf),
                     sink=bool(c.get("add_full_attention_sink_bias", False)), window=None),
        "swa": dict(heads=_first(c, "swa_num_attention_heads", default=c["num_attention_heads"]),
                    kv=_first(c, "swa_num_key_value_heads", default=2 * nkv),
                    hd=_first(c, "swa_head_dim", default=hd), vhd=_first(c, "swa_v_head_dim", default=vhd),
                    theta=swa_theta, prf=_first(swa_rp, "partial_rotary_factor", default=prf),
                    sink=bool(_first(c, "add_swa_attention_sink_bias", default=True)),
                    window=_first(c, "sliding_window_size", "sliding_window")),
    }
    return dict(
        L=L, swa=swa, moe=moe, kinds=kinds, vocab=c["vocab_size"], hidden=c["hidden_size"],
        eps=_first(c, "layernorm_epsilon", "rms_norm_eps", default=1e-6),
        v_scale=_first(c, "attention_value_scale", default=1.0),
        n_experts=c.get("n_routed_experts"), top_k=c.get("num_experts_per_tok"),
        n_group=_first(c, "n_group", default=1), topk_group=_first(c, "topk_group", default=1),
        norm_topk=bool(_first(c, "norm_topk_prob", default=True)),
        scaling=_first(c, "routed_scaling_factor", default=1.0),
    )


# ----------------------------------------------------------------------------------------------
# model math (float64 throughout)
# ----------------------------------------------------------------------------------------------


def rms_norm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def silu(x):
    return x / (1.0 + np.exp(-x))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def rope(x, pos, d_r, theta):
    """Partial NeoX rotate-half RoPE on the first d_r dims. x: [T, n, d], pos: [T]."""
    half = d_r // 2
    inv = theta ** (-np.arange(half, dtype=np.float64) * 2.0 / d_r)
    ang = pos.astype(np.float64)[:, None] * inv[None, :]  # [T, half]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x1, x2 = x[..., :half], x[..., half:d_r]
    out = x.copy()
    out[..., :half] = x1 * cos - x2 * sin
    out[..., half:d_r] = x2 * cos + x1 * sin
    return out


class MiMoRef:
    def __init__(self, model_dir, window_extra=0):
        self.cfg = load_config(model_dir)
        self.W = TensorStore(model_dir)
        self.window_extra = window_extra
        self.mtp_layers = sorted({int(n.split(".")[3]) for n in self.W.where if n.startswith("model.mtp.layers.")})

    def w(self, name, head_dim=None):
        return self.W.get(name, head_dim)

    def attention(self, p, kind, x, pos):
        """p: tensor prefix ('model.layers.L.self_attn'); kind: config dict; x: [T, H] (already normed)."""
        T = x.shape[0]
        nh, nkv, hd, vhd = kind["heads"], kind["kv"], kind["hd"], kind["vhd"]
        q = (x @ self.w(p + ".q_proj.weight").T).reshape(T, nh, hd)
        k = (x @ self.w(p + ".k_proj.weight", hd).T).reshape(T, nkv, hd)
        v = (x @ self.w(p + ".v_proj.weight", vhd).T).reshape(T, nkv, vhd) * self.cfg["v_scale"]
        d_r = int(hd * kind["prf"])
        q, k = rope(q, pos, d_r, kind["theta"]), rope(k, pos, d_r, kind["theta"])
        # mask: causal; SWA additionally keeps keys with pos_k > pos_q - W (W keys, W+1 with --window-extra 1)
        pq, pk = pos[:, None], pos[None, :]
        allowed = pk <= pq
        if kind["window"] is not None:
            allowed &= pk > pq - (kind["window"] + self.window_extra)
        sink = None
        if kind["sink"]:
            sname = p + ".attention_sink_bias" if self.W.has(p + ".attention_sink_bias") else p + ".sinks"
            sink = self.w(sname)
        group = nh // nkv
        out = np.empty((T, nh, vhd))
        for h in range(nh):
            kv = h // group
            s = (q[:, h, :] @ k[:, kv, :].T) / math.sqrt(hd)  # [Tq, Tk]
            s = np.where(allowed, s, -np.inf)
            m = s.max(axis=1, keepdims=True)
            if sink is not None:
                m = np.maximum(m, sink[h])
            e = np.exp(s - m)
            den = e.sum(axis=1, keepdims=True)
            if sink is not None:
                den = den + np.exp(sink[h] - m)  # extra logit in the denominator only, no value
            out[:, h, :] = (e @ v[:, kv, :]) / den
        return out.reshape(T, nh * vhd) @ self.w(p + ".o_proj.weight").T

    def mlp(self, p, x):
        g = x @ self.w(p + ".gate_proj.weight").T
        u = x @ self.w(p + ".up_proj.weight").T
        return (silu(g) * u) @ self.w(p + ".down_proj.weight").T

    def route(self, p, x):
        """Returns (idx [T, k], weights [T, k]) for noaux_tc sigmoid routing with group limit."""
        c = self.cfg
        E, K, G, TG = c["n_experts"], c["top_k"], c["n_group"], c["topk_group"]
        logits = x @ self.w(p + ".gate.weight").T  # float64 (>= fp32)
        s = sigmoid(logits)
        biased = s + self.w(p + ".gate.e_score_correction_bias")[None, :]
        T = x.shape[0]
        idx = np.zeros((T, K), dtype=np.int64)
        wts = np.zeros((T, K))
        for t in range(T):
            b = biased[t].copy()
            groups = b.reshape(G, E // G)
            gscore = np.sort(groups, axis=1)[:, ::-1][:, :min(2, E // G)].sum(axis=1)
            keep = np.argsort(-gscore, kind="stable")[:TG]
            gmask = np.zeros(G, dtype=bool)
            gmask[keep] = True
            b[~np.repeat(gmask, E // G)] = -np.inf  # (transformers' DeepseekV3 router fills 0.0; only matters
            # when n_group > 1 and kept biased scores are negative -- not the case for the real model, n_group = 1)
            sel = np.argsort(-b, kind="stable")[:K]
            ww = s[t, sel]
            if c["norm_topk"]:
                ww = ww / (ww.sum() + 1e-20)
            idx[t], wts[t] = sel, ww * c["scaling"]
        return idx, wts

    def moe(self, p, x):
        idx, wts = self.route(p, x)
        y = np.zeros_like(x)
        for e in np.unique(idx):
            rows, slot = np.nonzero(idx == e)
            y[rows] += wts[rows, slot][:, None] * self.mlp("%s.experts.%d" % (p, e), x[rows])
        return y

    def forward_hidden(self, ids):
        """Returns the hidden state after the final norm, [T, H] (what lm_head consumes)."""
        c = self.cfg
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.arange(len(ids))
        x = self.w("model.embed_tokens.weight")[ids]
        for L in range(c["L"]):
            p = "model.layers.%d" % L
            kind = c["kinds"]["swa" if c["swa"][L] else "full"]
            x = x + self.attention(p + ".self_attn", kind, rms_norm(x, self.w(p + ".input_layernorm.weight"), c["eps"]), pos)
            hn = rms_norm(x, self.w(p + ".post_attention_layernorm.weight"), c["eps"])
            x = x + (self.moe(p + ".mlp", hn) if c["moe"][L] else self.mlp(p + ".mlp", hn))
        return rms_norm(x, self.w("model.norm.weight"), c["eps"])

    def lm_head(self, h):
        return h @ self.w("lm_head.weight").T

    def forward(self, ids):
        return self.lm_head(self.forward_hidden(ids))

    def mtp_forward(self, k, h_in, ids):
        """MTP layer k (not chained): at position p it takes (h_in[p], ids[p+k+1]) at RoPE position p and
        predicts ids[p+k+2]. h_in: target hidden after final norm [T, H]. Returns logits [T-k-1, V]."""
        c = self.cfg
        ids = np.asarray(ids, dtype=np.int64)
        n = len(ids) - k - 1
        if n <= 0:
            return np.zeros((0, c["vocab"]))
        p = "model.mtp.layers.%d" % k
        e = self.w("model.embed_tokens.weight")[ids[k + 1:k + 1 + n]]
        cat = np.concatenate([rms_norm(e, self.w(p + ".enorm.weight"), c["eps"]),
                              rms_norm(h_in[:n], self.w(p + ".hnorm.weight"), c["eps"])], axis=1)
        x = cat @ self.w(p + ".eh_proj.weight").T
        pos = np.arange(n)
        kind = dict(c["kinds"]["swa"], sink=True)
        x = x + self.attention(p + ".self_attn", kind, rms_norm(x, self.w(p + ".input_layernorm.weight"), c["eps"]), pos)
        x = x + self.mlp(p + ".mlp", rms_norm(x, self.w(p + ".pre_mlp_layernorm.weight"), c["eps"]))
        return self.lm_head(rms_norm(x, self.w(p + ".final_layernorm.weight"), c["eps"]))

    def greedy(self, ids, n):
        ids, out = list(ids), []
        for _ in range(n):
            nxt = int(np.argmax(self.forward(ids)[-1]))
            out.append(nxt)
            ids.append(nxt)
        return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--input-ids", required=True, help="comma separated token ids")
    ap.add_argument("--out", help="write logits F32 [T, vocab] here (safetensors, tensor 'logits')")
    ap.add_argument("--window-extra", type=int, default=0, choices=[0, 1],
                    help="1: SWA sees W+1 keys (SGLang); default 0: W keys (transformers)")
    ap.add_argument("--greedy", type=int, default=0, help="print greedy continuation of N tokens as JSON")
    ap.add_argument("--mtp-logits", help="write per-MTP-layer logits 'mtp.K.logits' [T-K-1, vocab] here")
    a = ap.parse_args(argv)
    ids = [int(t) for t in a.input_ids.replace(" ", "").split(",") if t]
    m = MiMoRef(a.model, a.window_extra)
    if a.out or a.mtp_logits:
        h = m.forward_hidden(ids)
        if a.out:
            st_write(a.out, {"logits": m.lm_head(h).astype(np.float32)})
        if a.mtp_logits:
            if not m.mtp_layers:
                print("no model.mtp.layers.* tensors in this checkpoint; --mtp-logits skipped", file=sys.stderr)
            else:
                st_write(a.mtp_logits, {"mtp.%d.logits" % k: m.mtp_forward(k, h, ids).astype(np.float32)
                                        for k in m.mtp_layers})
    if a.greedy:
        print(json.dumps({"output_ids": m.greedy(ids, a.greedy)}))


if __name__ == "__main__":
    main()
