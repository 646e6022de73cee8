"""The identity adapter: a PSID becomes psid_hash at the door and goes no further."""

import base64
import hashlib
import hmac
import re
import secrets

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


# A PSID kept across a restart (a reply still queued at a stop) is sealed: encrypted with an
# HMAC-SHA256 keystream and authenticated (encrypt-then-MAC), under keys derived from
# PSID_HASH_KEY for this one purpose. 0xFF starts each purpose: no UTF-8 text (no PSID) does.
_SEAL_PURPOSE = b"\xffexpensebot sealed recipients v1"
_NONCE_BYTES, _TAG_BYTES = 16, 16


class Sealer:
    """Seal a PSID for a row that outlives the process, and open it again; nobody without the key can."""

    def __init__(self, key: str):
        if not key:
            raise ValueError("PSID_HASH_KEY is empty")
        base = hmac.new(key.encode("utf-8"), _SEAL_PURPOSE, hashlib.sha256).digest()
        self._encrypt_key = hmac.new(base, b"encrypt", hashlib.sha256).digest()
        self._mac_key = hmac.new(base, b"authenticate", hashlib.sha256).digest()

    def seal(self, psid: str, psid_hash: str) -> str:
        """Seal a PSID for the row of `psid_hash`: it opens only with that psid_hash beside it."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = nonce + self._xor_keystream(nonce, psid.encode("utf-8", "surrogatepass"))
        return base64.urlsafe_b64encode(sealed + self._tag(sealed, psid_hash)).decode("ascii")

    def open(self, token: str, psid_hash: str) -> str | None:
        """The PSID a sealed token holds; None when it was not sealed with this key for this psid_hash,
        or was changed."""
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return None
        sealed, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if len(sealed) < _NONCE_BYTES or not hmac.compare_digest(tag, self._tag(sealed, psid_hash)):
            return None
        nonce, cipher = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        return self._xor_keystream(nonce, cipher).decode("utf-8", "surrogatepass")

    def _xor_keystream(self, nonce: bytes, data: bytes) -> bytes:
        # The same step encrypts and decrypts.
        blocks = (hmac.new(self._encrypt_key, nonce + n.to_bytes(4, "big"), hashlib.sha256).digest()
                  for n in range((len(data) + 31) // 32))
        return bytes(a ^ b for a, b in zip(data, b"".join(blocks)))

    def _tag(self, sealed: bytes, psid_hash: str) -> bytes:
        # The row's psid_hash is authenticated too: a sealed PSID moved to another row does not open.
        return hmac.new(self._mac_key, psid_hash.encode("ascii", "replace") + b"\x00" + sealed,
                        hashlib.sha256).digest()[:_TAG_BYTES]

    def __repr__(self) -> str:
        return "Sealer(***)"
