"""`python -m bot triage` and `python -m bot duty`, as subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bot.settings import PROJECT_ROOT


def run_bot(*args: str, stdin: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=600)


def test_triage_cli_writes_only_json_lines(model_path, redis_server):
    lines = [
        "what time does the lobby open",
        json.dumps({"text": "someone is shooting outside", "id": 7}),
        "",
        "{not json",
        json.dumps({"no_text": 1}),
        "me quiero morir",
    ]
    run = run_bot("triage", "--monitoring", "off", stdin="\n".join(lines) + "\n",
                  env={"BEACON_REDIS_URL": redis_server["url"]})
    assert run.returncode == 0, run.stderr[-3000:]
    records = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(records) == 5
    lobby, shooting, bad_json, no_text, crisis = records
    assert set(lobby) == {"text", "outcome", "topic", "intent", "confidence", "safety_net",
                          "tier", "urgency", "language", "replies"}
    assert (lobby["outcome"], lobby["topic"]) == ("faq", "hours_location")
    assert shooting["outcome"] == "emergency" and "call 911" in shooting["replies"][0]
    assert "error" in bad_json and "error" in no_text
    assert crisis["outcome"] == "crisis" and crisis["safety_net"] == "crisis"
    assert any("988" in r for r in crisis["replies"])


def test_duty_cli(redis_server):
    from redis import Redis

    # Start from an empty database: an earlier test's officer may still be on duty.
    with Redis.from_url(redis_server["url"]) as db:
        db.flushdb()
    env = {"BEACON_REDIS_URL": redis_server["url"]}
    on = run_bot("duty", "on", "dispatcher-kim", "--ttl", "30", env=env)
    assert on.returncode == 0, on.stderr
    assert json.loads(on.stdout)["on_duty"] == ["dispatcher-kim"]
    status = json.loads(run_bot("duty", "status", env=env).stdout)
    assert status == {"on_duty": ["dispatcher-kim"], "monitoring": True}
    off = json.loads(run_bot("duty", "off", "dispatcher-kim", env=env).stdout)
    assert off == {"on_duty": [], "monitoring": False}
    assert run_bot("duty", "on", env=env).returncode == 2
