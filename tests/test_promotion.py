"""Promotion a team can trust: gated aliases, `zoo promote`, the history of forced moves, and events.

On both store backends. The versions are colour classifiers (tests/test_eval.py) whose accuracy on the
generated set is known: `right` is 70% top-1, `wrong` (red and green swapped) is 30%.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import cli_on, subprocess_env
from test_eval import SET, colour_classifier, picture, register

POLICY = ["eval.top1 >= prod - 0.5%"]


@pytest.fixture
def team(backend, tmp_path):
    """prod -> m@1 (right) gated by POLICY; m@2 is worse (wrong), m@3 as good as m@1 (other bytes)."""
    zoo = cli_on(backend.location)
    for i, (model, kwargs) in enumerate([("right", {}), ("wrong", {"reads": (1, 0, 2)}), ("same", {"bias_shift": 1.0})]):
        register(zoo, tmp_path, colour_classifier(tmp_path / f"{i}-{model}.onnx", **kwargs))
    data = tmp_path / "val"
    for i, (folder, colour) in enumerate(SET):
        picture(data / folder / f"{i:02d}.png", colour)
    zoo("alias", "colours@1", "prod")
    zoo("policy", "colours", "prod", *[a for r in POLICY for a in ("--require", r)])
    return zoo, data, backend


def test_a_gated_alias_refuses_a_worse_candidate_and_accepts_a_better_one(team):
    zoo, data, backend = team
    zoo("eval", "colours@2", "--data", str(data), "--against", "colours@1")
    refused = zoo("alias", "colours@2", "prod", code=13).stderr
    assert "eval.top1 >= prod - 0.5%" in refused and "0.3 >= 0.695: not met" in refused
    zoo("eval", "colours@3", "--data", str(data), "--against", "colours@1")
    zoo("alias", "colours@3", "prod", "--reason", "same accuracy, new bytes")
    registry = backend.open()
    assert registry.resolve("colours@prod").version == 3
    (last,) = registry.alias_history("colours", "prod")[-1:]
    assert last.policy["passed"] is True and not last.forced and last.reason == "same accuracy, new bytes"
    assert [e["type"] for _, e in registry.events() if e["type"] == "gate.refused"] == ["gate.refused"]


def test_force_needs_a_reason_and_is_recorded(team):
    zoo, data, backend = team
    assert "Expected a reason for a forced move" in zoo("alias", "colours@2", "prod", "--force", code=2).stderr
    zoo("alias", "colours@2", "prod", "--force", "--reason", "hotfix")
    history = json.loads(zoo("alias", "--history", "colours", "prod", "--json").stdout)
    assert [(e["from_version"], e["to_version"]) for e in history] == [(None, 1), (1, 2)]
    assert history[-1]["forced"] is True and history[-1]["reason"] == "hotfix"
    assert history[-1]["policy"]["passed"] is False


def test_promote_runs_the_eval_the_policy_needs_and_is_refused_when_worse(team):
    zoo, data, backend = team
    assert "Expected a labelled data set" in zoo("promote", "colours@2", "prod", code=2).stderr
    assert "not met" in zoo("promote", "colours@2", "prod", "--data", str(data), code=13).stderr
    out = json.loads(zoo("promote", "colours@3", "prod", "--data", str(data), "--json").stdout)
    assert out["ran"] == ["eval"] and out["version"]["version"] == 3 and out["event"]["policy"]["passed"]
    registry = backend.open()
    assert [r.payload["against"]["ref"] for r in registry.reports("colours@3", "eval")] == ["colours@1"]


def test_policy_is_validated_listed_and_cleared(team):
    zoo, _, _ = team
    assert "'eval.accuracy'" in zoo("policy", "colours", "prod", "--require", "eval.accuracy > 1", code=2).stderr
    assert json.loads(zoo("policy", "colours", "--json").stdout) == [{"name": "colours", "alias": "prod", "require": POLICY}]
    zoo("policy", "colours", "prod", "--clear")
    zoo("alias", "colours@2", "prod")  # no gate any more


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers 503 to its first ``down`` requests; counts by event id."""

    def __init__(self, down: int = 0):
        self.down, self.seen, self.requests = down, {}, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                if outer.requests <= outer.down:
                    self.send_response(503)
                else:
                    from zoo.events import verify_signature

                    assert verify_signature(body, "s3cret", self.headers.get("X-Zoo-Signature-256"))
                    event = json.loads(body)
                    outer.seen[event["id"]] = outer.seen.get(event["id"], 0) + 1
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_webhooks_get_every_event_once_through_a_down_receiver_and_a_killed_writer(team, monkeypatch):
    zoo, data, backend = team
    receiver = Receiver(down=2)
    try:
        monkeypatch.setenv("HOOK_SECRET", "s3cret")
        zoo("events", "webhook", "add", receiver.url, "--secret-env", "HOOK_SECRET")
        zoo("tag", "colours@1", "team=vision")  # no event type for tags: nothing queued
        zoo("alias", "colours@3", "staging")  # alias.moved: the first attempt meets a 503
        # A writer killed after its commit, before it delivers: the event waits in the outbox.
        kill = ("import os, zoo, zoo._promotion as p\n"
                "p.deliver = lambda *a, **k: os._exit(9)\n"
                "zoo.open_registry().set_alias('colours@1', 'staging')\n")
        child = subprocess.run([sys.executable, "-c", kill], env=subprocess_env(ZOO_STORE=backend.location),
                               capture_output=True, text=True, timeout=120)
        assert child.returncode == 9, child.stderr
        registry = backend.open()
        (hook,) = registry.webhooks()
        assert hook["pending"] == 2
        import zoo._promotion as promotion

        monkeypatch.setattr("zoo.events.backoff_s", lambda attempts: 0)  # retries due at once (from now on)
        deadline = time.monotonic() + 30  # the CLI's own failed attempt waits out the back-off it recorded (1 s)
        while registry.webhooks()[0]["pending"] and time.monotonic() < deadline:
            promotion.deliver(registry._write)
            time.sleep(0.2)
        assert registry.webhooks()[0]["pending"] == 0
        moved = [e["id"] for _, e in registry.events() if e["type"] == "alias.moved"]
        assert set(receiver.seen) == set(moved[-2:]) and all(n == 1 for n in receiver.seen.values())
        assert receiver.requests == 2 + len(receiver.seen)  # two 503s, then each event exactly once
    finally:
        receiver.close()


def test_a_webhook_redirect_is_a_failed_attempt_not_followed():
    """A receiver answering 3xx cannot send the writer's host on to another address (blind SSRF, headers re-sent)."""
    from zoo.events import SIGNATURE_HEADER, make_event, post

    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            hits.append("POST " + self.path)
            code = int(self.path.rsplit("/", 1)[-1])
            self.send_response(code)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self):
            hits.append("GET " + self.path + " " + str(self.headers.get(SIGNATURE_HEADER)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        event = make_event("alias.moved", source="test", subject="m@prod", data={})
        for code in (301, 302, 303, 307, 308):
            assert post(f"http://127.0.0.1:{server.server_port}/hook/{code}", event, "s3cret", timeout=10) == f"HTTP {code}"
        assert hits == [f"POST /hook/{code}" for code in (301, 302, 303, 307, 308)]  # nothing reached /elsewhere
    finally:
        server.shutdown()
        server.server_close()
