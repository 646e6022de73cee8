"""The Page's Messenger Profile (Get Started button, greeting, menu, ice breakers) and the Graph calls that set it.

`expensebot setup-page` reads the profile the Page has, and posts this one only when they differ,
so running it twice changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import hmac

import requests

from expensebot.config import Config, ConfigError

GET_STARTED = "GET_STARTED"
MENU_SUMMARY = "MENU_SUMMARY"
MENU_UNDO = "MENU_UNDO"
MENU_HELP = "MENU_HELP"
MENU_REPORT = "MENU_REPORT"
FIELDS = ("get_started", "greeting", "persistent_menu", "ice_breakers")
TIMEOUT = (5, 15)  # connect, read: an operator waits at the terminal
# Meta shows the greeting before the first message; at most 160 characters.
GREETING = ("Hi {{user_first_name}}! Text what you spend, like \"coffee 3.50\" or \"lunch 12 #food\", "
            "and I keep the list and the totals.")


class GraphError(Exception):
    """Graph could not be reached or refused the call; `code` is Graph's error code when it answered."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.code = code


def messenger_profile(config: Config) -> dict:
    """The profile to set: Report is in the menu only when report links can be made (EXPENSEBOT_PUBLIC_URL)."""
    menu = [_postback("Summary", MENU_SUMMARY), _postback("Undo last", MENU_UNDO), _postback("Help", MENU_HELP)]
    if config.public_url:
        menu.append(_postback("Report", MENU_REPORT))
    return {
        "get_started": {"payload": GET_STARTED},
        "greeting": [{"locale": "default", "text": GREETING}],
        "persistent_menu": [{"locale": "default", "composer_input_disabled": False, "call_to_actions": menu}],
        "ice_breakers": [{"locale": "default", "call_to_actions": [
            {"question": "How do I log an expense?", "payload": MENU_HELP},
            {"question": "What did I spend this month?", "payload": MENU_SUMMARY},
        ]}],
    }


def set_up_page(config: Config) -> bool:
    """Make the Page's profile ours; return False when it already was (nothing posted)."""
    wanted = messenger_profile(config)
    current = graph_get(config, "/me/messenger_profile", {"fields": ",".join(FIELDS)})
    data = current.get("data") or [{}]
    if _normal(data[0]) == _normal(wanted):
        return False
    answer = graph_post(config, "/me/messenger_profile", wanted)
    if answer.get("result") != "success":
        raise GraphError(f"Graph did not confirm the profile: {str(answer)[:200]}")
    return True


def appsecret_proof(app_secret: str, token: str) -> str:
    """Hex HMAC-SHA256 of the access token keyed with the app secret, which Graph can require on every call."""
    return hmac.new(app_secret.encode("utf-8"), token.encode("utf-8"), hashlib.sha256).hexdigest()


def graph_get(config: Config, path: str, params: dict | None = None) -> dict:
    """GET {FB_GRAPH_URL}{path} with the Page token; return the JSON answer or raise GraphError."""
    return _call(config, "GET", path, params or {}, None)


def graph_post(config: Config, path: str, body: dict) -> dict:
    """POST JSON body to {FB_GRAPH_URL}{path} with the Page token; return the JSON answer or raise GraphError."""
    return _call(config, "POST", path, {}, body)


def _call(config: Config, method: str, path: str, params: dict, body: dict | None) -> dict:
    token = _require_token(config)
    # The token goes in a header: in a URL it would reach proxy logs. The proof is not a secret.
    params = {**params, "appsecret_proof": appsecret_proof(config.fb_app_secret, token)}
    try:
        response = requests.request(method, config.fb_graph_url + path, params=params, json=body,
                                    headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise GraphError(f"FB_GRAPH_URL: cannot reach {config.fb_graph_url} ({type(exc).__name__})") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise GraphError(f"FB_GRAPH_URL: {config.fb_graph_url} answered {response.status_code} without JSON")
    if response.status_code >= 400 or "error" in answer:
        error = answer.get("error") if isinstance(answer.get("error"), dict) else {}
        code = error.get("code")
        raise GraphError(f"Graph answered {response.status_code}, code {code}: "
                         f"{str(error.get('message', ''))[:200]}", code if isinstance(code, int) else None)
    return answer


def _require_token(config: Config) -> str:
    missing = [name for name, value in (("FB_PAGE_ACCESS_TOKEN", config.fb_page_access_token),
                                        ("FB_APP_SECRET", config.fb_app_secret)) if not value]
    if missing:
        raise ConfigError(*(f"{name}: required to call the Graph API" for name in missing))
    return config.fb_page_access_token


def _postback(title: str, payload: str) -> dict:
    return {"type": "postback", "title": title, "payload": payload}


def _normal(profile: dict) -> dict:
    """The fields we set, as comparable values (Graph answers with the same shapes it was sent)."""
    return {field: profile.get(field) for field in FIELDS}
