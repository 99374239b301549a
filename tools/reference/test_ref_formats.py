#!/usr/bin/python3
"""Self-checks of mimo_ref.py's loader paths that the golden fixture does not exercise:
hub-style config.json, sharded checkpoints, BF16 / F16 / FP8 (e4m3fn, block and per-KV-head scale grids)
weights, and MTP layers (causality + CLI). Works on a converted copy of the fixture in a temp dir.

  /usr/bin/python3 tools/reference/test_ref_formats.py [FIXTURE_DIR]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mimo_ref as R  # noqa: E402


def fp8_decode_independent(b):
    """e4m3fn decode written with ldexp, independent of mimo_ref's table."""
    b = b.astype(np.int64)
    s, e, m = (b >> 7) & 1, (b >> 3) & 15, b & 7
    v = np.where(e == 0, np.ldexp(m / 8.0, -6), np.ldexp(1.0 + m / 8.0, e - 7))
    return np.where(s == 1, -v, v)


def write_model(d, cfg, tensors, shards=1):
    """tensors: name -> (dtype_code, raw numpy array)."""
    os.makedirs(d, exist_ok=True)
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"))
    names = sorted(tensors)
    parts = [names[i::shards] for i in range(shards)]
    wmap = {}
    for i, part in enumerate(parts):
        fn = "model.safetensors" if shards == 1 else "model-%05d-of-%05d.safetensors" % (i + 1, shards)
        hdr, blobs, off = {}, [], 0
        for n in part:
            code, arr = tensors[n]
            b = np.ascontiguousarray(arr).tobytes()
            hdr[n] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
            blobs.append(b)
            off += len(b)
            wmap[n] = fn
        h = json.dumps(hdr).encode()
        with open(os.path.join(d, fn), "wb") as f:
            f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))
    if shards > 1:
        json.dump({"weight_map": wmap}, open(os.path.join(d, "model.safetensors.index.json"), "w"))


def hub_config(native):
    c = {k: v for k, v in native.items() if k not in ("layer_types", "mlp_layer_types", "rope_parameters", "rms_norm_eps")}
    c.update(hybrid_layer_pattern=[1 if t == "sliding_attention" else 0 for t in native["layer_types"]],
             moe_layer_freq=[1 if t == "sparse" else 0 for t in native["mlp_layer_types"]],
             swa_num_attention_heads=native["num_attention_heads"],
             swa_num_key_value_heads=2 * native["num_key_value_heads"],
             swa_head_dim=native["head_dim"], swa_v_head_dim=native["v_head_dim"],
             sliding_window_size=native["sliding_window"], sliding_window=None,
             add_swa_attention_sink_bias=True, add_full_attention_sink_bias=False,
             rope_theta=native["rope_parameters"]["full_attention"]["rope_theta"],
             swa_rope_theta=native["rope_parameters"]["sliding_attention"]["rope_theta"],
             partial_rotary_factor=native["rope_parameters"]["full_attention"]["partial_rotary_factor"],
             layernorm_epsilon=native["rms_norm_eps"], routed_scaling_factor=None)
    return c


def main():
    fx = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MIMO_FIXTURE", "/work/shared/fixtures/mimo-tiny-a")
    rng = np.random.default_rng(0)
    native = json.load(open(os.path.join(fx, "config.json")))
    base = R.MiMoRef(fx)
    ids = rng.integers(0, native["vocab_size"], 40)
    want = base.forward(ids)
    f32 = {n: ("F32", base.W.raw(n)) for n in base.W.where}
    fails = []

    def check(label, got, ref, tol):
        d = float(np.abs(got - ref).max())
        print("%-44s max|diff| %.3e  %s" % (label, d, "ok" if d <= tol else "FAIL"))
        if d > tol:
            fails.append(label)

    # FP8 table spot values
    t = R.FP8_TABLE
    check("fp8 table vs ldexp decode", t[np.r_[0:127, 128:255]], fp8_decode_independent(np.r_[0:127, 128:255]), 0)
    check("fp8 0x7e=448 0x38=1 0x01=2^-9 0xb8=-1", t[[0x7E, 0x38, 0x01, 0xB8]], np.array([448, 1, 2.0 ** -9, -1]), 0)
    assert np.isnan(t[0x7F]) and np.isnan(t[0xFF])

    tmp = tempfile.mkdtemp(prefix="mimo_ref_fmt_")
    try:
        # 1. hub config + 3 shards, same F32 weights -> identical logits
        d = os.path.join(tmp, "hub")
        write_model(d, hub_config(native), f32, shards=3)
        check("hub config + 3 shards", R.MiMoRef(d).forward(ids), want, 0)

        # 2. BF16 / F16 weights: compare with the same rounding applied to the F32 weights
        for code in ("BF16", "F16"):
            tens, ref_t = {}, {}
            for n, (_, a) in f32.items():
                if code == "BF16":  # round to nearest even
                    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
                    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
                    tens[n] = ("BF16", r)
                    ref_t[n] = ("F32", (r.astype(np.uint32) << 16).view(np.float32))
                else:
                    tens[n] = ("F16", a.astype(np.float16))
                    ref_t[n] = ("F32", a.astype(np.float16).astype(np.float32))
            write_model(os.path.join(tmp, code), native, tens)
            write_model(os.path.join(tmp, code + "ref"), native, ref_t)
            check(code + " weights", R.MiMoRef(os.path.join(tmp, code)).forward(ids),
                  R.MiMoRef(os.path.join(tmp, code + "ref")).forward(ids), 0)

        # 3. FP8 weights with exact (5-bit mantissa) scales; full-attn k_proj uses the per-KV-head grid
        tens, ref_t = dict(f32), dict(f32)
        hd = native["head_dim"]
        for n, (_, a) in f32.items():
            if not n.endswith("proj.weight") or n.endswith("o_proj.weight"):
                continue
            out, inp = a.shape
            q = rng.integers(0, 256, a.shape).astype(np.uint8)
            q[(q & 0x7F) == 0x7F] = 0x38  # no NaNs
            per_head = n.endswith("k_proj.weight") and out == native["num_key_value_heads"] * hd
            rows = out // hd * -(-hd // 128) if per_head else -(-out // 128)
            s = (rng.integers(16, 32, (rows, -(-inp // 128))) / 16.0 * 2.0 ** rng.integers(-12, -6, (rows, 1))).astype(np.float32)
            rb = (np.arange(out) // hd) * -(-hd // 128) + (np.arange(out) % hd) // 128 if per_head else np.arange(out) // 128
            w = fp8_decode_independent(q) * s.astype(np.float64)[rb][:, np.arange(inp) // 128]
            tens[n] = ("F8_E4M3", q)
            tens[n + "_scale_inv"] = ("F32", s)
            ref_t[n] = ("F32", w.astype(np.float32))
            assert np.array_equal(w.astype(np.float32).astype(np.float64), w)
        write_model(os.path.join(tmp, "fp8"), hub_config(native), tens, shards=2)
        write_model(os.path.join(tmp, "fp8ref"), native, ref_t)
        check("FP8 block + per-KV-head scale grids", R.MiMoRef(os.path.join(tmp, "fp8")).forward(ids),
              R.MiMoRef(os.path.join(tmp, "fp8ref")).forward(ids), 0)

        # 4. MTP: random layers; causality (prefix == full) and the CLI writer
        H, I = native["hidden_size"], native["intermediate_size"]
        nh, nkv, vhd = native["num_attention_heads"], 2 * native["num_key_value_heads"], native["v_head_dim"]
        mt = dict(f32)
        shapes = {"enorm.weight": (H,), "hnorm.weight": (H,), "eh_proj.weight": (H, 2 * H), "input_layernorm.weight": (H,),
                  "self_attn.q_proj.weight": (nh * hd, H), "self_attn.k_proj.weight": (nkv * hd, H),
                  "self_attn.v_proj.weight": (nkv * vhd, H), "self_attn.o_proj.weight": (H, nh * vhd),
                  "self_attn.attention_sink_bias": (nh,), "pre_mlp_layernorm.weight": (H,),
                  "mlp.gate_proj.weight": (I, H), "mlp.up_proj.weight": (I, H), "mlp.down_proj.weight": (H, I),
                  "final_layernorm.weight": (H,)}
        for k in range(2):
            for sfx, shp in shapes.items():
                a = 1.0 + 0.1 * rng.standard_normal(shp) if sfx.endswith("norm.weight") else 0.1 * rng.standard_normal(shp)
                mt["model.mtp.layers.%d.%s" % (k, sfx)] = ("F32", a.astype(np.float32))
        d = os.path.join(tmp, "mtp")
        write_model(d, native, mt)
        m = R.MiMoRef(d)
        assert m.mtp_layers == [0, 1]
        h = m.forward_hidden(ids)
        for k in (0, 1):
            full = m.mtp_forward(k, h, ids)
            assert full.shape == (len(ids) - k - 1, native["vocab_size"])
            n = 23  # a prefix of the sequence must give the same rows (causal, own KV)
            check("MTP layer %d prefix == full" % k, m.mtp_forward(k, m.forward_hidden(ids[:n]), ids[:n]),
                  full[:n - k - 1], 1e-12)
        out = os.path.join(tmp, "mtp_out.safetensors")
        lo = os.path.join(tmp, "logits.safetensors")
        subprocess.check_call([sys.executable, os.path.join(HERE, "mimo_ref.py"), "--model", d, "--input-ids",
                               ",".join(map(str, ids)), "--out", lo, "--mtp-logits", out])
        got = R.st_read_all(out)
        check("CLI --mtp-logits layer 1", got["mtp.1.logits"], m.mtp_forward(1, h, ids), 1e-5)
        check("CLI --out logits", R.st_read_all(lo)["logits"], want, 1e-5)
    finally:
        shutil.rmtree(tmp)
    print("PASS" if not fails else "FAIL: " + ", ".join(fails))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
