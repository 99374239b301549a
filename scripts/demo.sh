#!/usr/bin/env bash
# The main job end to end: serve the embedded default model, answer one chat
# request with curl, stop the server.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${PORT:-30000}"
./build/mimoserve serve --port "$PORT" --reasoning-parser qwen3 --tool-call-parser mimo --enable-mtp &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break
  sleep 0.5
done
curl -sS "http://127.0.0.1:$PORT/v1/chat/completions" -H 'Content-Type: application/json' -d '{
  "model": "default",
  "messages": [{"role": "user", "content": "And God said"}],
  "max_tokens": 48, "temperature": 0,
  "chat_template_kwargs": {"enable_thinking": false}}'
echo
kill -TERM $PID
wait $PID
