// Reference ids for tokenizer_hf_test: encodes every corpus line with
// @lenml/tokenizers (a JavaScript port of Hugging Face tokenizers, installed
// by the tokenizer_npm_install ctest fixture) from the same tokenizer.json
// the C++ side loads.
//
// Usage: node hf_encode.mjs NPM_PREFIX MODEL_DIR DIR
// Reads DIR/corpus.jsonl and DIR/divergence.jsonl (from make_corpus.mjs).
// Writes DIR/expected.jsonl and DIR/divergence_expected.jsonl, one line per
// input: {"ids": [...], "decoded": "...", "nfc": "..."}, and
// DIR/decode_expected.jsonl: {"ids": [...], "decoded": "..."} for random id
// sequences (mostly byte tokens, so the text is often broken UTF-8).
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [prefix, modelDir, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error("usage: node hf_encode.mjs NPM_PREFIX MODEL_DIR DIR");
  process.exit(2);
}
// ESM ignores NODE_PATH, so load the package from the fixture's prefix by path.
const libPath = path.join(prefix, "node_modules", "@lenml", "tokenizers", "dist", "main.mjs");
const { TokenizerLoader } = await import(pathToFileURL(libPath).href);
const readJson = (name) => JSON.parse(fs.readFileSync(path.join(modelDir, name), "utf8"));
const tokenizerJSON = readJson("tokenizer.json");
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON,
  tokenizerConfig: readJson("tokenizer_config.json"),
});

function encodeFile(input, output) {
  const lines = fs.readFileSync(path.join(outDir, input), "utf8").split("\n").filter((l) => l.length > 0);
  const results = lines.map((line) => {
    const text = JSON.parse(line);
    const ids = tok.encode(text, { add_special_tokens: false });
    const decoded = tok.decode(ids, { skip_special_tokens: false });
    return JSON.stringify({ ids, decoded, nfc: text.normalize("NFC") });
  });
  fs.writeFileSync(path.join(outDir, output), results.join("\n") + "\n");
  return results.length;
}
const encoded = encodeFile("corpus.jsonl", "expected.jsonl");
encodeFile("divergence.jsonl", "divergence_expected.jsonl");

// Decode cases: a fixed-seed mix of single-byte tokens (ids 0..255 of a
// byte-level vocab are the 256 byte characters), ordinary tokens and special
// tokens, to pin U+FFFD placement for broken sequences.
let state = 12345;
const rnd = () => {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 4294967296;
};
const bpeSize = Object.keys(tokenizerJSON.model.vocab).length;
const addedIds = tokenizerJSON.added_tokens.map((t) => t.id);
const decodeCases = [];
for (let i = 0; i < 500; ++i) {
  const n = 1 + Math.floor(rnd() * 12);
  const ids = [];
  for (let k = 0; k < n; ++k) {
    const r = rnd();
    if (r < 0.6) ids.push(Math.floor(rnd() * 256));
    else if (r < 0.9) ids.push(Math.floor(rnd() * bpeSize));
    else ids.push(addedIds[Math.floor(rnd() * addedIds.length)]);
  }
  decodeCases.push(JSON.stringify({ ids, decoded: tok.decode(ids, { skip_special_tokens: false }) }));
}
fs.writeFileSync(path.join(outDir, "decode_expected.jsonl"), decodeCases.join("\n") + "\n");
console.log(`hf_encode: ${encoded} encodings, ${decodeCases.length} decodings -> ${outDir}`);
