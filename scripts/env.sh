# Shared settings for scripts/run.sh; every value can be overridden from the environment or
# from a .env file (KEY=value lines) in the project root, read first.
if [[ -f .env ]]; then set -a; source .env; set +a; fi
export BEACON_REDIS_PORT="${BEACON_REDIS_PORT:-6380}"
export BEACON_REDIS_HOST="${BEACON_REDIS_HOST:-127.0.0.1}"
export BEACON_REDIS_DB="${BEACON_REDIS_DB:-0}"
export BEACON_REDIS_URL="${BEACON_REDIS_URL:-redis://$BEACON_REDIS_HOST:$BEACON_REDIS_PORT/$BEACON_REDIS_DB}"
export BEACON_ACTION_PORT="${BEACON_ACTION_PORT:-5055}"
export BEACON_ACTION_URL="${BEACON_ACTION_URL:-http://127.0.0.1:$BEACON_ACTION_PORT/webhook}"
export BEACON_RASA_PORT="${BEACON_RASA_PORT:-5005}"
export BEACON_RASA_URL="${BEACON_RASA_URL:-http://127.0.0.1:$BEACON_RASA_PORT}"
export BEACON_STATE_DIR="${BEACON_STATE_DIR:-.beacon}"
export BEACON_HTTP_HOST="${BEACON_HTTP_HOST:-127.0.0.1}"
export BEACON_HTTP_PORT="${BEACON_HTTP_PORT:-8080}"
# Niceness of Rasa and the action server (the gateway keeps 0, so its fast path comes first).
export BEACON_RASA_NICE="${BEACON_RASA_NICE:-10}"
# How long conversations, transcripts, audit entries and Rasa's trackers are kept.
export BEACON_RETENTION_DAYS="${BEACON_RETENTION_DAYS:-365}"
export BEACON_RETENTION_SECONDS=$((BEACON_RETENTION_DAYS * 86400))
# Rasa must not phone home (telemetry and crash reports go to the internet).
export RASA_TELEMETRY_ENABLED=false
