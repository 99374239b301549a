"""Byte-level BPE (GPT-2 / Qwen2 style), trained here from scratch, written as Hugging Face tokenizer.json.

Pre-tokenization: tokenizer.json carries the exact Qwen2 Split pattern (QWEN2_PATTERN). Python's `re` has no
\\p{L}/\\p{N}, so training uses ASCII_PATTERN, which is the same regex with \\p{L} = [A-Za-z], \\p{N} = [0-9] and
\\s = [\\t-\\r ] (re.ASCII). On ASCII text the two give the same pre-tokens (leftmost-first alternation and
backtracking are the same in `re`, Oniguruma and PCRE2), and the corpus is checked to be ASCII. encode() refuses
non-ASCII text for the same reason.

Then each pre-token's UTF-8 bytes are mapped to printable characters (GPT-2's bytes_to_unicode) and merged by
rank: repeatedly merge every occurrence (left to right) of the adjacent pair with the lowest merge rank.
"""
import collections
import json
import re

QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
ASCII_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]| ?[^\sA-Za-z0-9]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_SPLIT = re.compile(ASCII_PATTERN, re.ASCII)

# added tokens, in id order after the BPE vocabulary; (content, special)
SPECIAL_TOKENS = [("<|endoftext|>", True), ("<|im_start|>", True), ("<|im_end|>", True),
                  ("<think>", False), ("</think>", False), ("<tool_call>", False), ("</tool_call>", False)]


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()


def pretokenize(text):
    assert text.isascii(), "the training tokenizer's split is exact only for ASCII text"
    return _SPLIT.findall(text)


def train_bpe(texts, vocab_size):
    """texts: iterable of str. Returns merges [(a_id, b_id)] so that 256 + len(merges) + specials = vocab_size."""
    n_merges = vocab_size - 256 - len(SPECIAL_TOKENS)
    counts = collections.Counter()
    for t in texts:
        counts.update(pretokenize(t))
    words = [list(w.encode()) for w in counts]
    freqs = list(counts.values())
    pairs = collections.Counter()
    where = collections.defaultdict(set)
    for wi, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pairs[(a, b)] += freqs[wi]
            where[(a, b)].add(wi)
    merges = []
    for _ in range(n_merges):
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))[0]
        new = 256 + len(merges)
        merges.append(best)
        for wi in list(where[best]):
            w, f = words[wi], freqs[wi]
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] -= f
                if pairs[(a, b)] <= 0:
                    del pairs[(a, b)]
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(new)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            words[wi] = out
            for a, b in zip(out, out[1:]):
                pairs[(a, b)] += f
                where[(a, b)].add(wi)
        del where[best]
    return merges


class Tokenizer:
    def __init__(self, merges):
        self.merges = [tuple(m) for m in merges]
        self.rank = {m: i for i, m in enumerate(self.merges)}
        self.n_bpe = 256 + len(self.merges)
        self.pieces = {i: bytes([i]) for i in range(256)}
        for i, (a, b) in enumerate(self.merges):
            self.pieces[256 + i] = self.pieces[a] + self.pieces[b]
        self.special = {s: self.n_bpe + i for i, (s, _) in enumerate(SPECIAL_TOKENS)}
        self.vocab_size = self.n_bpe + len(SPECIAL_TOKENS)
        self._cache = {}

    def id(self, special):
        return self.special[special]

    def _word(self, w):
        ids = self._cache.get(w)
        if ids is not None:
            return ids
        ids = list(w.encode())
        while len(ids) > 1:
            r = min((self.rank.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(ids, ids[1:])))
            if r[0] == 1 << 30:
                break
            pair, new = self.merges[r[0]], 256 + r[0]
            out, i = [], 0
            while i < len(ids):
                if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                    out.append(new)
                    i += 2
                else:
                    out.append(ids[i])
                    i += 1
            ids = out
        self._cache[w] = ids
        return ids

    def encode(self, text):
        """Plain text (no special-token parsing) -> ids."""
        out = []
        for w in pretokenize(text):
            out.extend(self._word(w))
        return out

    def encode_with_special(self, text):
        """Text in which the added tokens' strings become their ids (as the Hugging Face tokenizer does)."""
        pat = "(" + "|".join(re.escape(s) for s, _ in SPECIAL_TOKENS) + ")"
        out = []
        for i, part in enumerate(re.split(pat, text)):
            if i % 2:
                out.append(self.special[part])
            elif part:
                out.extend(self.encode(part))
        return out

    def decode(self, ids):
        inv = {v: k for k, v in self.special.items()}
        b = b"".join(inv[i].encode() if i in inv else self.pieces[i] for i in ids)
        return b.decode("utf-8", errors="replace")

    # --------------------------------------------------------------------------------------------
    # Hugging Face files
    # --------------------------------------------------------------------------------------------

    def tokenizer_json(self):
        tok = lambda i: "".join(B2U[b] for b in self.pieces[i])
        vocab = {tok(i): i for i in range(self.n_bpe)}
        assert len(vocab) == self.n_bpe
        merges = [[tok(a), tok(b)] for a, b in self.merges]
        added = [{"id": self.special[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": False, "special": sp} for s, sp in SPECIAL_TOKENS]
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": {"type": "NFC"},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                               "use_regex": False},
            "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab, "merges": merges},
        }

    def tokenizer_config(self, chat_template):
        dec = {str(self.special[s]): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                      "single_word": False, "special": sp} for s, sp in SPECIAL_TOKENS}
        return {
            "add_bos_token": False,
            "add_prefix_space": False,
            "added_tokens_decoder": dec,
            "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
            "bos_token": None,
            "chat_template": chat_template,
            "clean_up_tokenization_spaces": False,
            "eos_token": "<|im_end|>",
            "errors": "replace",
            "model_max_length": 4096,
            "pad_token": "<|endoftext|>",
            "split_special_tokens": False,
            "tokenizer_class": "Qwen2Tokenizer",
            "unk_token": None,
        }

    def generation_config(self):
        return {"bos_token_id": self.special["<|endoftext|>"],
                "eos_token_id": [self.special["<|im_end|>"], self.special["<|endoftext|>"]],
                "pad_token_id": self.special["<|endoftext|>"], "do_sample": False}


def from_tokenizer_json(path):
    """Our Tokenizer from a tokenizer.json written by Tokenizer.tokenizer_json()."""
    j = json.load(open(path, encoding="utf-8"))
    vocab = j["model"]["vocab"]
    for i in range(256):
        assert vocab[B2U[i]] == i
    merges = [(vocab[a], vocab[b]) for a, b in j["model"]["merges"]]
    tok = Tokenizer(merges)
    for i, (a, b) in enumerate(j["model"]["merges"]):
        assert vocab[a + b] == 256 + i, "merge %d does not make token %d" % (i, 256 + i)
    for t in j["added_tokens"]:
        assert tok.special[t["content"]] == t["id"]
    return tok


def save_merges(path, merges):
    with open(path, "w") as f:
        json.dump(merges, f)


def load_merges(path):
    return [tuple(m) for m in json.load(open(path))]
