"""Token streams for training and evaluation (shared by train.py and evaluate.py)."""
import os

import numpy as np

import bpe
import corpus

CHAT_SYSTEMLESS = "<|im_start|>user\n{u}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n{a}<|im_end|>\n"


def load_tokenizer(work, vocab_size, chapters=None):
    """Trains the BPE on the training chapters once and caches the merges in WORK/merges.json."""
    path = os.path.join(work, "merges.json")
    if not os.path.exists(path):
        chapters = chapters or corpus.read_bible()
        train, _ = corpus.split(chapters)
        merges = bpe.train_bpe([corpus.chapter_text(c) for c in train], vocab_size)
        bpe.save_merges(path + ".part", merges)
        os.replace(path + ".part", path)
    tok = bpe.Tokenizer(bpe.load_merges(path))
    assert tok.vocab_size == vocab_size, (tok.vocab_size, vocab_size)
    return tok


def text_stream(tok, chapters):
    """<|endoftext|> + chapter text, for every chapter, concatenated."""
    eot = tok.id("<|endoftext|>")
    out = []
    for c in chapters:
        out.append(eot)
        out.extend(tok.encode(corpus.chapter_text(c)))
    return np.array(out, dtype=np.int64)


def chat_stream(tok, chapters):
    """Single-turn chats asking for one verse (thinking disabled), each after <|endoftext|>."""
    eot = tok.id("<|endoftext|>")
    out = []
    for c in chapters:
        for u, a in corpus.chat_turns(c):
            out.append(eot)
            out.extend(tok.encode_with_special(CHAT_SYSTEMLESS.format(u=u, a=a)))
    return np.array(out, dtype=np.int64)


class Batches:
    """Random windows of T+1 tokens; a fraction chat_frac of the rows come from the chat stream."""

    def __init__(self, text, chat, T, B, chat_frac, seed):
        self.text, self.chat, self.T, self.B, self.chat_frac = text, chat, T, B, chat_frac
        self.rng = np.random.default_rng(seed)

    def next(self):
        rows = []
        for _ in range(self.B):
            src = self.chat if self.rng.random() < self.chat_frac else self.text
            s = int(self.rng.integers(0, len(src) - self.T - 1))
            rows.append(src[s:s + self.T + 1])
        return np.stack(rows)


def eval_windows(stream, T):
    """Non-overlapping windows of T+1 tokens (each predicts T tokens); the tail that does not fill one is dropped."""
    n = (len(stream) - 1) // T
    return np.stack([stream[i * T:i * T + T + 1] for i in range(n)])
