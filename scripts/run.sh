#!/usr/bin/env bash
# `make run`: set up, start Redis (AOF on), train if needed, start the action server, the
# Rasa server (REST channel, Redis tracker and lock stores) and the gateway with the staff
# console. Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
source scripts/env.sh
PY=.venv/bin/python
mkdir -p "$BEACON_STATE_DIR/redis" "$BEACON_STATE_DIR/logs"
BEACON_STATE_DIR=$(cd "$BEACON_STATE_DIR" && pwd)  # relative or absolute, from here on absolute

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo "[run] stopping..." >&2
  # Everything that uses Redis first, Redis (pids[0]) last, so nothing loses it mid-request.
  for pid in "${pids[@]:1}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
  kill "${pids[0]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

redis-server --bind 127.0.0.1 --port "$BEACON_REDIS_PORT" --dir "$BEACON_STATE_DIR/redis" \
  --appendonly yes --appendfsync everysec --save 60 1 --protected-mode yes \
  --logfile "$BEACON_STATE_DIR/logs/redis.log" &
pids+=($!)
for _ in $(seq 50); do
  redis-cli -p "$BEACON_REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$BEACON_REDIS_PORT" ping >/dev/null || { echo "[run] Redis did not start; see $BEACON_STATE_DIR/logs/redis.log" >&2; exit 1; }

$PY -m bot check
model=$($PY -m bot train)

# Rasa's HTTP API needs this token; the REST channel does not.
token_file="$BEACON_STATE_DIR/rasa_token"
if [[ -z "${RASA_AUTH_TOKEN:-}" ]]; then
  [[ -f "$token_file" ]] || (umask 077; $PY -c 'import secrets; print(secrets.token_urlsafe(32))' > "$token_file")
  RASA_AUTH_TOKEN=$(cat "$token_file")
fi
# The key of the logs' conversation pseudonyms (bot/logs.py), the same for every process.
key_file="$BEACON_STATE_DIR/log_key"
if [[ -z "${BEACON_LOG_KEY:-}" ]]; then
  [[ -f "$key_file" ]] || (umask 077; $PY -c 'import secrets; print(secrets.token_hex(32))' > "$key_file")
  BEACON_LOG_KEY=$(cat "$key_file")
fi
export BEACON_LOG_KEY

# Rasa and its action server yield the CPU to the gateway (nice): on a small machine they
# take all of it under load, and the gateway's 911 fast path must not wait for a core.
# Sanic's 5 s keep-alive closes connections Rasa is about to reuse when it is busy, and
# Rasa then answers nothing (measured: 58 of 800 messages at 200 concurrent senders).
SANIC_HOST=127.0.0.1 SANIC_KEEP_ALIVE_TIMEOUT=75 nice -n "$BEACON_RASA_NICE" $PY -m rasa_sdk --actions actions --port "$BEACON_ACTION_PORT" &
pids+=($!)
nice -n "$BEACON_RASA_NICE" $PY -m bot.rasa_launcher run --model "$model" --endpoints endpoints.yml --credentials credentials.yml \
  --interface 127.0.0.1 --port "$BEACON_RASA_PORT" --enable-api --auth-token="$RASA_AUTH_TOKEN" &
pids+=($!)

$PY -m bot serve &
pids+=($!)

gateway="http://$BEACON_HTTP_HOST:$BEACON_HTTP_PORT"
cat >&2 <<MSG
[run] Redis        redis://127.0.0.1:$BEACON_REDIS_PORT (data in $BEACON_STATE_DIR/redis, AOF on)
[run] Actions      http://127.0.0.1:$BEACON_ACTION_PORT/webhook
[run] Rasa         $BEACON_RASA_URL  (REST channel: POST /webhooks/rest/webhook;
                   API token in $token_file)
[run] Gateway      $gateway/webhooks/meta  $gateway/webhooks/instagram  $gateway/webhooks/x  $gateway/healthz
[run] Web chat     $gateway/chat
[run] Console      $gateway/console/   (add a user: .venv/bin/python -m bot staff add NAME)
[run] Try it:      curl -s $BEACON_RASA_URL/webhooks/rest/webhook -d '{"sender":"me","message":"what are your hours?"}'
[run] Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
echo "[run] a process exited; stopping the rest" >&2
