"""The identity adapter: a PSID becomes psid_hash at the door and goes no further."""

import hashlib
import hmac
import re

PSID_HASH_RE = re.compile(r"[0-9a-f]{64}")


class PsidHasher:
    """Turn a PSID into its psid_hash: lowercase hex HMAC-SHA256 keyed with PSID_HASH_KEY."""

    def __init__(self, key: str):
        if not key:
            raise ValueError("PSID_HASH_KEY is empty")
        self._mac = hmac.new(key.encode("utf-8"), digestmod=hashlib.sha256)

    def __call__(self, psid: str) -> str:
        mac = self._mac.copy()
        # surrogatepass: a lone surrogate in garbage input must not raise here.
        mac.update(psid.encode("utf-8", "surrogatepass"))
        return mac.hexdigest()

    def __repr__(self) -> str:
        return "PsidHasher(***)"


def is_psid_hash(value: str) -> bool:
    """Tell whether value looks like a psid_hash (64 lowercase hex digits)."""
    return bool(PSID_HASH_RE.fullmatch(value))
