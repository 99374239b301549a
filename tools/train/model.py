"""PyTorch MiMo-V2-Flash (small) with MTP layers, for training on CPU.

Follows /work/shared/docs/mimo-v2-flash.md exactly: pre-norm layers, hybrid sliding-window (with per-head
attention sink logits) / full attention, partial NeoX RoPE with a theta per layer type, value scale, GQA with
different q.k and v head sizes, a dense first layer, sigmoid-routed MoE (noaux_tc: e_score_correction_bias
picks the experts, unbiased scores weight them, norm_topk_prob), untied lm_head, and MiMo's MTP layers
(each reads the TARGET hidden state after the final norm; not chained).

The config is a dict with the hub config.json keys (see default_config()).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def default_config():
    L = 8
    full = {0, 5}
    return {
        "hidden_size": 192,
        "num_hidden_layers": L,
        "vocab_size": 2048,
        "num_attention_heads": 4,
        "swa_num_attention_heads": 4,
        "num_key_value_heads": 1,  # full-attention layers
        "swa_num_key_value_heads": 2,  # = 2x full
        "head_dim": 48,
        "swa_head_dim": 48,
        "v_head_dim": 32,
        "swa_v_head_dim": 32,
        "hybrid_layer_pattern": [0 if i in full else 1 for i in range(L)],  # 1 = SWA, 0 = full
        "moe_layer_freq": [0] + [1] * (L - 1),
        "sliding_window_size": 64,
        "sliding_window": 64,
        "rope_theta": 5000000.0,
        "swa_rope_theta": 10000.0,
        "partial_rotary_factor": 0.334,
        "add_swa_attention_sink_bias": True,
        "add_full_attention_sink_bias": False,
        "attention_value_scale": 0.707,
        "layernorm_epsilon": 1e-5,
        "intermediate_size": 512,
        "moe_intermediate_size": 128,
        "n_routed_experts": 16,
        "num_experts_per_tok": 2,
        "n_shared_experts": None,
        "scoring_func": "sigmoid",
        "topk_method": "noaux_tc",
        "n_group": 1,
        "topk_group": 1,
        "norm_topk_prob": True,
        "routed_scaling_factor": None,
        "num_nextn_predict_layers": 3,
    }


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        return self.weight * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps))


def rope_tables(T, d_r, theta, device=None):
    half = d_r // 2
    inv = theta ** (-torch.arange(half, dtype=torch.float64) * 2.0 / d_r)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def apply_rope(x, cos, sin, d_r):
    """x: [B, n, T, d]; NeoX rotate-half on dims [0, d_r)."""
    half = d_r // 2
    x1, x2, rest = x[..., :half], x[..., half:d_r], x[..., d_r:]
    c, s = cos[None, None], sin[None, None]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s, rest], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg, swa):
        super().__init__()
        H = cfg["hidden_size"]
        if swa:
            self.nh, self.nkv = cfg["swa_num_attention_heads"], cfg["swa_num_key_value_heads"]
            self.hd, self.vhd = cfg["swa_head_dim"], cfg["swa_v_head_dim"]
            self.theta, self.window = cfg["swa_rope_theta"], cfg["sliding_window_size"]
            sink = cfg["add_swa_attention_sink_bias"]
        else:
            self.nh, self.nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
            self.hd, self.vhd = cfg["head_dim"], cfg["v_head_dim"]
            self.theta, self.window = cfg["rope_theta"], None
            sink = cfg["add_full_attention_sink_bias"]
        self.d_r = int(self.hd * cfg["partial_rotary_factor"])
        self.v_scale = cfg["attention_value_scale"]
        self.q_proj = nn.Linear(H, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(H, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(H, self.nkv * self.vhd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.vhd, H, bias=False)
        self.attention_sink_bias = nn.Parameter(torch.zeros(self.nh)) if sink else None
        self._cache = {}

    def _tables(self, T, device):
        key = (T, str(device))
        if key not in self._cache:
            cos, sin = rope_tables(T, self.d_r, self.theta)
            pos = torch.arange(T)
            allowed = pos[None, :] <= pos[:, None]
            if self.window is not None:
                allowed &= pos[None, :] > pos[:, None] - self.window
            mask = torch.zeros(T, T).masked_fill(~allowed, float("-inf"))
            self._cache = {key: (cos.to(device), sin.to(device), mask.to(device))}
        return self._cache[key]

    def forward(self, x):
        B, T, _ = x.shape
        cos, sin, mask = self._tables(T, x.device)
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = (self.v_proj(x) * self.v_scale).view(B, T, self.nkv, self.vhd).transpose(1, 2)
        q, k = apply_rope(q, cos, sin, self.d_r), apply_rope(k, cos, sin, self.d_r)
        g = self.nh // self.nkv
        if g > 1:  # query head h uses kv head h // g
            k = k.repeat_interleave(g, dim=1)
            v = v.repeat_interleave(g, dim=1)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hd) + mask  # [B, nh, T, T]
        if self.attention_sink_bias is not None:
            sink = self.attention_sink_bias.view(1, self.nh, 1, 1).expand(B, self.nh, T, 1)
            p = torch.softmax(torch.cat([s, sink], dim=-1), dim=-1)[..., :T]  # sink: logit without value
        else:
            p = torch.softmax(s, dim=-1)
        o = torch.matmul(p, v).transpose(1, 2).reshape(B, T, self.nh * self.vhd)
        return self.o_proj(o)


class MLP(nn.Module):
    def __init__(self, H, inter):
        super().__init__()
        self.gate_proj = nn.Linear(H, inter, bias=False)
        self.up_proj = nn.Linear(H, inter, bias=False)
        self.down_proj = nn.Linear(inter, H, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MoE(nn.Module):
    """Sigmoid router + noaux_tc top-k; experts stored stacked: gate/up [E, I, H], down [E, H, I]."""

    def __init__(self, cfg):
        super().__init__()
        H, I, E = cfg["hidden_size"], cfg["moe_intermediate_size"], cfg["n_routed_experts"]
        self.E, self.K = E, cfg["num_experts_per_tok"]
        self.n_group, self.topk_group = cfg["n_group"], cfg["topk_group"]
        self.norm_topk = cfg["norm_topk_prob"]
        self.scaling = cfg["routed_scaling_factor"] or 1.0
        self.gate_weight = nn.Parameter(torch.randn(E, H) * 0.02)
        self.register_buffer("e_score_correction_bias", torch.zeros(E))
        self.w_gate = nn.Parameter(torch.randn(E, I, H) * 0.02)
        self.w_up = nn.Parameter(torch.randn(E, I, H) * 0.02)
        self.w_down = nn.Parameter(torch.randn(E, H, I) * 0.02)
        self.last_load = None  # tokens per expert in the last forward (for bias balancing)

    def route(self, x):
        s = torch.sigmoid(x.float() @ self.gate_weight.t())  # [N, E]
        c = s.detach() + self.e_score_correction_bias
        if self.n_group > 1:
            N = c.shape[0]
            grp = c.view(N, self.n_group, -1)
            gscore = grp.topk(min(2, grp.shape[-1]), dim=-1).values.sum(-1)
            keep = gscore.topk(self.topk_group, dim=-1).indices
            gmask = torch.zeros(N, self.n_group, dtype=torch.bool).scatter_(1, keep, True)
            c = c.masked_fill(~gmask.repeat_interleave(self.E // self.n_group, dim=1), float("-inf"))
        idx = c.topk(self.K, dim=-1).indices  # [N, K]
        w = s.gather(1, idx)
        if self.norm_topk:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        return idx, w * self.scaling

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        idx, w = self.route(x)
        self.last_load = torch.bincount(idx.flatten(), minlength=self.E).float()
        y = torch.zeros_like(x)
        flat_idx = idx.flatten()
        tok = torch.arange(x.shape[0]).repeat_interleave(self.K)
        wf = w.flatten()
        order = torch.argsort(flat_idx)
        counts = self.last_load.long().tolist()
        start = 0
        for e in range(self.E):
            n = counts[e]
            if n == 0:
                continue
            sel = order[start:start + n]
            start += n
            rows = tok[sel]
            xe = x.index_select(0, rows)
            h = F.silu(xe @ self.w_gate[e].t()) * (xe @ self.w_up[e].t())
            ye = (h @ self.w_down[e].t()) * wf[sel].unsqueeze(1)
            y.index_add_(0, rows, ye)
        return y.view(shape)


class DecoderLayer(nn.Module):
    def __init__(self, cfg, i):
        super().__init__()
        H, eps = cfg["hidden_size"], cfg["layernorm_epsilon"]
        self.input_layernorm = RMSNorm(H, eps)
        self.self_attn = Attention(cfg, swa=cfg["hybrid_layer_pattern"][i] == 1)
        self.post_attention_layernorm = RMSNorm(H, eps)
        self.is_moe = cfg["moe_layer_freq"][i] == 1
        self.mlp = MoE(cfg) if self.is_moe else MLP(H, cfg["intermediate_size"])

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class MTPLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        H, eps = cfg["hidden_size"], cfg["layernorm_epsilon"]
        self.enorm, self.hnorm = RMSNorm(H, eps), RMSNorm(H, eps)
        self.eh_proj = nn.Linear(2 * H, H, bias=False)
        self.input_layernorm = RMSNorm(H, eps)
        c = dict(cfg, add_swa_attention_sink_bias=True)  # MTP attention: always SWA with sink
        self.self_attn = Attention(c, swa=True)
        self.pre_mlp_layernorm = RMSNorm(H, eps)
        self.mlp = MLP(H, cfg["intermediate_size"])
        self.final_layernorm = RMSNorm(H, eps)

    def forward(self, emb, h_in):
        """emb: embeddings of the next tokens, h_in: target hidden (post final norm); returns normed hidden."""
        x = self.eh_proj(torch.cat([self.enorm(emb), self.hnorm(h_in)], dim=-1))
        x = x + self.self_attn(self.input_layernorm(x))
        x = x + self.mlp(self.pre_mlp_layernorm(x))
        return self.final_layernorm(x)


class MiMo(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        H, V = cfg["hidden_size"], cfg["vocab_size"]
        self.embed_tokens = nn.Embedding(V, H)
        self.layers = nn.ModuleList([DecoderLayer(cfg, i) for i in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(H, cfg["layernorm_epsilon"])
        self.lm_head = nn.Linear(H, V, bias=False)
        self.mtp = nn.ModuleList([MTPLayer(cfg) for _ in range(cfg["num_nextn_predict_layers"])])
        self.reset_parameters()

    def reset_parameters(self):
        std = 0.02
        n_res = 2 * self.cfg["num_hidden_layers"]
        for name, p in self.named_parameters():
            if name.endswith("attention_sink_bias"):
                nn.init.zeros_(p)
            elif p.dim() == 1:
                nn.init.ones_(p)
            elif name.endswith(("o_proj.weight", "down_proj.weight", "w_down")):
                nn.init.normal_(p, std=std / math.sqrt(n_res))
            else:
                nn.init.normal_(p, std=std)

    def moe_layers(self):
        return [l.mlp for l in self.layers if l.is_moe]

    def hidden(self, ids):
        """ids [B, T] -> hidden after the final norm [B, T, H]."""
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)

    def mtp_hidden(self, k, h, ids):
        """MTP layer k at position p takes (h[p], ids[p+k+1]); returns hidden [B, T-k-1, H] (predicts ids[p+k+2])."""
        n = ids.shape[1] - k - 1
        return self.mtp[k](self.embed_tokens(ids[:, k + 1:k + 1 + n]), h[:, :n])

    def losses(self, ids, mtp_rows=None):
        """ids [B, T+1]. Returns (lm_loss, [mtp_loss_k]). MTP layer k predicts ids[p+k+2] from (H_p, ids[p+k+1]).
        mtp_rows: compute the MTP losses on the first mtp_rows rows only (cheaper)."""
        inp, tgt = ids[:, :-1], ids[:, 1:]
        h = self.hidden(inp)
        lm = F.cross_entropy(self.lm_head(h).flatten(0, 1), tgt.flatten())
        if mtp_rows is not None:
            ids, inp, h = ids[:mtp_rows], inp[:mtp_rows], h[:mtp_rows]
        mtp = []
        T = inp.shape[1]
        for k in range(len(self.mtp)):
            n = T - k - 1
            hk = self.mtp_hidden(k, h, inp)  # positions 0..n-1 use inp[k+1 .. k+n]
            tk = ids[:, k + 2:k + 2 + n]
            mtp.append(F.cross_entropy(self.lm_head(hk).flatten(0, 1), tk.flatten()))
        return lm, mtp

    @torch.no_grad()
    def update_router_bias(self, gamma):
        """Aux-loss-free balancing: bias += gamma * sign(mean_load - load)."""
        for m in self.moe_layers():
            if m.last_load is not None:
                m.e_score_correction_bias += gamma * torch.sign(m.last_load.mean() - m.last_load)


def count_params(model):
    n = sum(p.numel() for p in model.parameters())
    n += sum(m.e_score_correction_bias.numel() for m in model.moe_layers())
    return n
