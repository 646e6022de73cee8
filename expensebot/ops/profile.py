"""The Page's Messenger Profile (Get Started button, greeting, menu, ice breakers) and the Graph calls that set it.

`expensebot setup-page` reads the profile the Page has, and posts this one only when they differ,
so running it twice changes nothing the second time.
"""

from __future__ import annotations

from expensebot.config import Config, ConfigError
from expensebot.replies import graph

TIMEOUT = 15.0  # seconds for the whole call: an operator waits at the terminal
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
    menu = [_postback("Summary", "MENU_SUMMARY"), _postback("Undo last", "MENU_UNDO"), _postback("Help", "MENU_HELP")]
    if config.public_url:
        menu.append(_postback("Report", "MENU_REPORT"))
    return {
        "get_started": {"payload": "GET_STARTED"},
        "greeting": [{"locale": "default", "text": GREETING}],
        "persistent_menu": [{"locale": "default", "composer_input_disabled": False, "call_to_actions": menu}],
        "ice_breakers": [{"locale": "default", "call_to_actions": [
            {"question": "How do I log an expense?", "payload": "MENU_HELP"},
            {"question": "What did I spend this month?", "payload": "MENU_SUMMARY"},
        ]}],
    }


def set_up_page(config: Config) -> bool:
    """Make the Page's profile ours; return False when it already was (nothing posted)."""
    wanted = messenger_profile(config)
    current = call_graph(config, "GET", "me/messenger_profile", {"fields": ",".join(wanted)})
    have = (current.get("data") or [{}])[0]
    if {field: have.get(field) for field in wanted} == wanted:  # Graph answers in the shapes it was sent
        return False
    answer = call_graph(config, "POST", "me/messenger_profile", wanted)
    if answer.get("result") != "success":
        raise GraphError(f"Graph did not confirm the profile: {str(answer)[:200]}")
    return True


def call_graph(config: Config, method: str, path: str, data: dict) -> dict:
    """GET (data as the query) or POST (data as JSON) {FB_GRAPH_URL}/{path}; the JSON answer, or GraphError.

    One call through the bot's own Graph client: the Page token in a header, appsecret_proof, a deadline.
    """
    client = graph.GraphClient(config.fb_graph_url, _require_token(config), config.fb_app_secret,
                               timeout=TIMEOUT)
    try:
        answer = client.get(path, data) if method == "GET" else client.post_json(path, data)
    except graph.GraphError as exc:
        if exc.status is None:
            raise GraphError(f"FB_GRAPH_URL: cannot reach {config.fb_graph_url} ({exc})") from None
        raise GraphError(f"Graph answered {exc}", exc.code) from None
    finally:
        client.close()
    if not isinstance(answer, dict):
        raise GraphError(f"FB_GRAPH_URL: {config.fb_graph_url} answered without a JSON object")
    return answer


def _require_token(config: Config) -> str:
    missing = [name for name, value in (("FB_PAGE_ACCESS_TOKEN", config.fb_page_access_token),
                                        ("FB_APP_SECRET", config.fb_app_secret)) if not value]
    if missing:
        raise ConfigError(*(f"{name}: required to call the Graph API" for name in missing))
    return config.fb_page_access_token


def _postback(title: str, payload: str) -> dict:
    return {"type": "postback", "title": title, "payload": payload}
