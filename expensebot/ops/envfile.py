"""Read an environment file the way systemd's EnvironmentFile= does, so commands see what the service sees.

systemd's rules (its env-file parser, v254 and later), which a shell's `. file` does not follow:
- a line whose first non-blank character is `#` or `;` is a comment; nothing else is: a `#` after
  a value is part of the value (`KEY=abc # note` gives `abc # note`);
- blanks around the key, before the value and at the end of an unquoted value are dropped;
- a quote counts only where the value starts (or right after a closing quote): 'single quotes'
  keep everything literally, newlines included; "double quotes" keep everything, except that a
  backslash before `"`, `\\`, `` ` `` or `$` stands for that character, and a backslash before a
  newline joins the lines; blanks between a closing quote and more text are dropped;
- elsewhere a backslash keeps the next character literally, and one at the end of a line joins
  it with the next;
- a line without `=` is ignored (systemd only warns); `\\r` ends a line like `\\n`.
A comment ending in a backslash is refused: systemd before v254 (Debian 12 has v252) reads the next
line as part of the comment, later versions do not, so the file means different things to them.
"""

from __future__ import annotations

import re
from pathlib import Path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NEWLINE = "\n\r"
_BLANK = " \t\n\r"


class EnvFileError(Exception):
    """The file cannot be read; the message names it."""


def read(path: Path) -> dict[str, str]:
    """Parse the file at path; raise EnvFileError when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise EnvFileError(f"{path}: cannot read the environment file (not UTF-8 text)") from None
    except OSError as exc:
        raise EnvFileError(f"{path}: cannot read the environment file ({exc.strerror or type(exc).__name__})") from None
    try:
        return parse(text)
    except EnvFileError as exc:
        raise EnvFileError(f"{path}: {exc}") from None


def parse(text: str) -> dict[str, str]:
    """Return the assignments of an environment file's text, later ones winning; EnvFileError if ambiguous."""
    values: dict[str, str] = {}
    position, length = 0, len(text)
    while position < length:
        char = text[position]
        if char in _BLANK:
            position += 1
        elif char in "#;":
            end = _line_end(text, position)
            comment = text[position:end]
            if (len(comment) - len(comment.rstrip("\\"))) % 2:
                raise EnvFileError(f"line {text.count(chr(10), 0, position) + 1}: a comment ends in a backslash, "
                                   f"which systemd 252 (Debian 12) reads as joining the next line to the comment "
                                   f"and later versions do not; remove the backslash")
            position = end + 1
        else:
            end = _line_end(text, position)
            equals = text.find("=", position, end)
            if equals < 0:  # no "=" on this line: ignored
                position = end + 1
                continue
            key = text[position:equals].rstrip(_BLANK)
            value, position = _value(text, equals + 1)
            if _NAME.match(key):
                values[key] = value
    return values


def _value(text: str, position: int) -> tuple[str, int]:
    """Read a value that starts at position; return it and where reading goes on."""
    out: list[str] = []
    while position < len(text):  # before the value, or after a closing quote
        char = text[position]
        if char in _NEWLINE:
            return "".join(out), position + 1
        if char == "'":
            closing = text.find("'", position + 1)
            closing = len(text) if closing < 0 else closing
            out.append(text[position + 1:closing])
            position = closing + 1
        elif char == '"':
            position = _double_quoted(text, position + 1, out)
        elif char in _BLANK:
            position += 1
        else:
            return _unquoted(text, position, out)
    return "".join(out), position


def _unquoted(text: str, position: int, out: list[str]) -> tuple[str, int]:
    kept = len(out)  # out without the blanks at its end, which are dropped
    while position < len(text):
        char = text[position]
        if char in _NEWLINE:
            return "".join(out[:kept]), position + 1
        if char == "\\":
            following = text[position + 1:position + 2]
            if following and following not in _NEWLINE:
                out.append(following)
            kept = len(out)
            position += 2
            continue
        out.append(char)
        if char not in _BLANK:
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
            if following in '"\\`$':
                out.append(following)
            elif following != "\n":
                out.append("\\" + following)
            position += 2
            continue
        out.append(char)
        position += 1
    return position


def _line_end(text: str, position: int) -> int:
    ends = [found for found in (text.find("\n", position), text.find("\r", position)) if found >= 0]
    return min(ends) if ends else len(text)
