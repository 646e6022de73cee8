"""Read an environment file the way systemd's EnvironmentFile= does, so commands see what the service sees.

systemd's rules, which a shell's `. file` does not follow:
- a line whose first non-blank character is `#` or `;` is a comment; nothing else is: a `#` after
  a value is part of the value (`KEY=abc # note` gives `abc # note`);
- blanks around the key and at both ends of an unquoted value are dropped;
- 'single quotes' keep everything literally, newlines included; "double quotes" keep everything
  except that a backslash escapes `"`, `\\`, `` ` `` and `$`, and a backslash before a newline
  joins the lines;
- outside quotes a backslash keeps the next character literally, and a backslash at the end of
  a line joins it with the next;
- a line without `=` is ignored (systemd only warns).
"""

from __future__ import annotations

import re
from pathlib import Path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_DOUBLE_QUOTE_ESCAPES = '"\\`$'


class EnvFileError(Exception):
    """The file cannot be read; the message names it."""


def read(path: Path) -> dict[str, str]:
    """Parse the file at path; raise EnvFileError when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvFileError(f"{path}: cannot read the environment file ({_reason(exc)})") from None
    return parse(text)


def parse(text: str) -> dict[str, str]:
    """Return the assignments of an environment file's text, later ones winning."""
    values: dict[str, str] = {}
    position = 0
    while position < len(text):
        position = _skip_blanks(text, position)
        if position >= len(text):
            break
        if text[position] in "#;":
            position = _skip_comment(text, position)
            continue
        end = _line_end(text, position)
        key, equals, _ = text[position:end].partition("=")
        if not equals:
            position = end + 1
            continue
        value, position = _value(text, position + len(key) + 1)
        key = key.strip()
        if _NAME.match(key):
            values[key] = value
    return values


def _value(text: str, position: int) -> tuple[str, int]:
    """Read a value starting at position; return it and where the next line starts."""
    out: list[str] = []
    kept = 0  # length of out without trailing blanks written unquoted
    started = False
    while position < len(text):
        char = text[position]
        if char == "\n":
            return "".join(out[:kept]), position + 1
        if char in " \t" and not started:
            position += 1
            continue
        started = True
        if char == "'":
            closing = text.find("'", position + 1)
            closing = len(text) if closing < 0 else closing
            out.extend(text[position + 1:closing])
            kept, position = len(out), closing + 1
        elif char == '"':
            position = _double_quoted(text, position + 1, out)
            kept = len(out)
        elif char == "\\":
            following = text[position + 1:position + 2]
            if following not in ("\n", ""):
                out.append(following)
                kept = len(out)
            position += 2
        else:
            out.append(char)
            if char not in " \t":
                kept = len(out)
            position += 1
    return "".join(out[:kept]), position


def _double_quoted(text: str, position: int, out: list[str]) -> int:
    while position < len(text):
        char = text[position]
        if char == '"':
            return position + 1
        if char == "\\" and position + 1 < len(text):
            following = text[position + 1]
            if following in _DOUBLE_QUOTE_ESCAPES:
                out.append(following)
            elif following != "\n":
                out.extend(("\\", following))
            position += 2
            continue
        out.append(char)
        position += 1
    return position


def _skip_blanks(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _skip_comment(text: str, position: int) -> int:
    """Skip a comment line; like systemd, a backslash at its end continues the comment."""
    while position < len(text):
        if text[position] == "\\":
            position += 2
            continue
        if text[position] == "\n":
            return position + 1
        position += 1
    return position


def _line_end(text: str, position: int) -> int:
    end = text.find("\n", position)
    return len(text) if end < 0 else end


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return exc.strerror or type(exc).__name__
