#!/usr/bin/python3
"""Checks tools/reference/mimo_ref.py against the transformers-made golden fixture.

  /usr/bin/python3 tools/reference/test_ref_against_golden.py [FIXTURE_DIR]

Default fixture: $MIMO_FIXTURE or /work/shared/fixtures/mimo-tiny-a. Every case's logits must match to
max abs diff <= 1e-4 and the greedy continuation must be identical. Exit status 0 on success.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mimo_ref  # noqa: E402

TOL = 1e-4


def main():
    fx = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MIMO_FIXTURE", "/work/shared/fixtures/mimo-tiny-a")
    gold = mimo_ref.st_read_all(os.path.join(fx, "golden.safetensors"))
    m = mimo_ref.MiMoRef(fx)
    ok = True
    cases = sorted({k.split(".")[0] for k in gold if k.startswith("case")}, key=lambda s: int(s[4:]))
    for case in cases:
        ids = gold[case + ".input_ids"].astype(np.int64)
        ref = m.forward(ids)
        diff = float(np.abs(ref - gold[case + ".logits"]).max())
        same_argmax = bool((ref.argmax(-1) == gold[case + ".logits"].argmax(-1)).all())
        good = diff <= TOL
        ok &= good
        print("%s: len %3d  max|diff| %.3e  argmax %s  %s" % (case, len(ids), diff,
              "same" if same_argmax else "DIFFERS", "ok" if good else "FAIL"))
    if "greedy.prompt_ids" in gold:
        prompt = gold["greedy.prompt_ids"].astype(np.int64).tolist()
        want = gold["greedy.output_ids"].astype(np.int64).tolist()
        got = m.greedy(prompt, len(want))
        good = got == want
        ok &= good
        print("greedy: prompt %d, %d new tokens  %s" % (len(prompt), len(want), "identical" if good else "FAIL"))
        if not good:
            print("  want", want, "\n  got ", got)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
