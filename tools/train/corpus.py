"""The training corpus: the King James Bible from Debian's `bible-kjv` packages (public domain text).

`bible -l10000 gen1:1-rev22:21` prints every chapter as a line "Book N" followed by verse lines "  V text".
We turn each chapter into one document:

    Genesis 1\n\nIn the beginning God created the heaven and the earth.\nAnd the earth was ...\n

Held-out rule: chapters are numbered 0..1188 in canonical order; chapter i is held out when i % 50 == 25
(24 chapters, about 2% of the text). heldout.txt holds them, each document followed by one blank line.
"""
import os
import re
import subprocess

HELDOUT_MOD, HELDOUT_REM = 50, 25


def read_bible(cache="/tmp/mimo-train-kjv.txt"):
    """Returns [(book, chapter, [verse texts])] for all 1189 chapters."""
    if not os.path.exists(cache):
        out = subprocess.run(["bible", "-l10000", "gen1:1-rev22:21"], stdin=subprocess.DEVNULL,
                             capture_output=True, check=True, text=True).stdout
        with open(cache + ".part", "w") as f:
            f.write(out)
        os.replace(cache + ".part", cache)
    chapters = []
    head = re.compile(r"^(\S.*) (\d+)$")
    verse = re.compile(r"^\s+(\d+) (.*)$")
    for line in open(cache, encoding="ascii"):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        m = head.match(line)
        if m:
            chapters.append((m.group(1), int(m.group(2)), []))
            continue
        m = verse.match(line)
        assert m and chapters, "unexpected line in bible output: %r" % line
        assert int(m.group(1)) == len(chapters[-1][2]) + 1, line
        chapters[-1][2].append(" ".join(m.group(2).split()))
    assert len(chapters) == 1189, len(chapters)
    return chapters


def chapter_text(ch):
    book, num, verses = ch
    return "%s %d\n\n%s\n" % (book, num, "\n".join(verses))


def is_heldout(i):
    return i % HELDOUT_MOD == HELDOUT_REM


def split(chapters):
    train = [c for i, c in enumerate(chapters) if not is_heldout(i)]
    held = [c for i, c in enumerate(chapters) if is_heldout(i)]
    return train, held


def heldout_file_text(held):
    return "".join(chapter_text(c) + "\n" for c in held)


def parse_heldout_file(text):
    """Inverse of heldout_file_text: the chapter documents (header, blank line, verses; no blank lines inside)."""
    parts = text.split("\n\n")
    assert parts[-1] == "" and len(parts) % 2 == 1, "not a heldout.txt"
    return [parts[i] + "\n\n" + parts[i + 1] + "\n" for i in range(0, len(parts) - 1, 2)]


def chat_turns(ch):
    """Chat-format examples from one chapter: (user, assistant) pairs asking for single verses."""
    book, num, verses = ch
    return [("Recite %s %d:%d." % (book, num, v + 1), text) for v, text in enumerate(verses)]
