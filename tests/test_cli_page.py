"""setup-page and check --online against a stand-in Graph API: a real local HTTP server on port 0."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse

import pytest
from test_cli import SECRETS, expensebot, json_lines, problems_of

from expensebot.config import Config
from expensebot.ops import profile
from expensebot.replies import graph

TOKEN = "EAAG-page-token-0123456789"


class GraphStandIn:
    """GET /me, GET and POST /me/messenger_profile, answering like Graph; records every request."""

    def __init__(self, token: str, app_secret: str):
        self.requests: list[dict] = []
        self.profile: dict = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self._answer(None)

            def do_POST(self):
                self._answer(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))

            def _answer(self, body):
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                if isinstance(body, dict) and "appsecret_proof" in body:  # Graph takes it in a POST body too
                    query["appsecret_proof"] = [body.pop("appsecret_proof")]
                outer.requests.append({"method": self.command, "path": url.path, "raw_path": self.path,
                                       "query": query, "authorization": self.headers.get("Authorization"),
                                       "json": body})
                status, answer = 200, None
                if self.headers.get("Authorization") != f"Bearer {token}":
                    status, answer = 400, {"error": {"message": "Invalid OAuth access token.", "code": 190}}
                elif query.get("appsecret_proof") != [graph.appsecret_proof(token, app_secret)]:
                    status, answer = 400, {"error": {"message": "Invalid appsecret_proof", "code": 100}}
                elif url.path == "/v25.0/me":
                    answer = {"id": "104520718523489", "name": "Expenses"}
                elif url.path == "/v25.0/me/messenger_profile" and self.command == "GET":
                    answer = {"data": [outer.profile] if outer.profile else []}
                elif url.path == "/v25.0/me/messenger_profile":
                    outer.profile.update(body)
                    answer = {"result": "success"}
                else:
                    status, answer = 404, {"error": {"message": "Unknown path", "code": 803}}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v25.0"
        threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def graph_api():
    stand_in = GraphStandIn(TOKEN, SECRETS["FB_APP_SECRET"])
    yield stand_in
    stand_in.close()


def page_env(graph_api, **extra) -> dict:
    return {**SECRETS, "FB_PAGE_ACCESS_TOKEN": TOKEN, "FB_GRAPH_URL": graph_api.url, **extra}


def test_setup_page_sets_the_profile_once(graph_api):
    env = page_env(graph_api, EXPENSEBOT_PUBLIC_URL="https://bot.example.org")
    first = expensebot("setup-page", env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert [line["event"] for line in json_lines(first.stdout)] == ["page_profile_set"]
    posts = [r for r in graph_api.requests if r["method"] == "POST"]
    assert len(posts) == 1 and posts[0]["path"] == "/v25.0/me/messenger_profile"
    sent = posts[0]["json"]
    assert sent["get_started"] == {"payload": "GET_STARTED"}
    assert [item["payload"] for item in sent["persistent_menu"][0]["call_to_actions"]] == [
        "MENU_SUMMARY", "MENU_UNDO", "MENU_HELP", "MENU_REPORT"]
    assert all(item["type"] == "postback" for item in sent["persistent_menu"][0]["call_to_actions"])
    assert sent["greeting"][0]["locale"] == "default" and len(sent["greeting"][0]["text"]) <= 160
    assert sent["ice_breakers"][0]["call_to_actions"]
    second = expensebot("setup-page", env=env)
    assert [line["event"] for line in json_lines(second.stdout)] == ["page_profile_unchanged"]
    assert len([r for r in graph_api.requests if r["method"] == "POST"]) == 1  # idempotent: nothing re-sent
    for request in graph_api.requests:
        assert request["authorization"] == f"Bearer {TOKEN}"
        assert TOKEN not in request["raw_path"]


def test_the_menu_has_report_only_with_a_public_url():
    payloads = lambda config: [i["payload"] for i in  # noqa: E731
                               profile.messenger_profile(config)["persistent_menu"][0]["call_to_actions"]]
    assert "MENU_REPORT" not in payloads(Config())
    assert "MENU_REPORT" in payloads(Config(public_url="https://bot.example.org"))


def test_setup_page_dry_run_prints_the_json_and_sends_nothing(graph_api):
    result = expensebot("setup-page", "--dry-run", env=page_env(graph_api))
    assert result.returncode == 0
    assert json.loads(result.stdout) == profile.messenger_profile(Config())
    assert graph_api.requests == []


@pytest.mark.parametrize("command", [["setup-page"], ["check", "--online"]])
def test_a_refused_token_is_one_line_naming_it(graph_api, tmp_path, command):
    env = page_env(graph_api, FB_PAGE_ACCESS_TOKEN="EAAG-wrong-token-000", EXPENSEBOT_DB=str(tmp_path / "x.db"),
                   EXPENSEBOT_PORT="0")
    result = expensebot(*command, env=env)
    assert result.returncode == 2
    (problem,) = problems_of(result)
    assert problem.startswith("FB_PAGE_ACCESS_TOKEN") and "Invalid OAuth access token" in problem
    assert "EAAG-wrong-token-000" not in result.stdout + result.stderr


def test_check_online_asks_graph_who_the_token_is(graph_api, tmp_path):
    env = page_env(graph_api, EXPENSEBOT_DB=str(tmp_path / "x.db"), EXPENSEBOT_PORT="0")
    result = expensebot("check", "--online", env=env)
    assert result.returncode == 0, result.stdout
    assert [line["event"] for line in json_lines(result.stdout)] == ["check_warning", "graph_ok", "check_ok"]
    (request,) = graph_api.requests
    assert (request["method"], request["path"]) == ("GET", "/v25.0/me")
    assert request["query"]["appsecret_proof"] == [graph.appsecret_proof(TOKEN, SECRETS["FB_APP_SECRET"])]


@pytest.mark.parametrize("command, prefix", [(["setup-page"], "setup-page: "), (["check", "--online"], "")])
def test_graph_unreachable_is_one_line_and_exit_1(tmp_path, command, prefix):
    env = {**SECRETS, "FB_PAGE_ACCESS_TOKEN": TOKEN, "FB_GRAPH_URL": "http://127.0.0.1:9/v25.0",
           "EXPENSEBOT_DB": str(tmp_path / "x.db"), "EXPENSEBOT_PORT": "0"}
    result = expensebot(*command, env=env)
    assert result.returncode == 1  # not configuration: Graph could not be asked
    assert problems_of(result) == [f"{prefix}FB_GRAPH_URL: cannot reach http://127.0.0.1:9/v25.0 "
                                   "(request failed: ConnectionRefusedError)"]


def test_appsecret_proof_is_the_documented_hmac():
    # printf token | openssl dgst -sha256 -hmac secret
    assert graph.appsecret_proof("token", "secret") == "e941110e3d2bfe82621f0e3e1434730d7305d106c5f68c87165d0b27a4611a4a"
