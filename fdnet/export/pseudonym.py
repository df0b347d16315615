"""Keyed pseudonyms for exports given to auditors.

Every person ID becomes ``"P" + the first 20 hex digits of
HMAC-SHA256(key, person_id)``: the same ID gives the same pseudonym in
every file and in every export made with the same key, and nobody without
the key can compute the pseudonym of a known ID (a plain hash could be
reversed by hashing every ID in the records system).

20 hex digits are 80 bits. Among ``n`` people the chance that two share a
pseudonym is about ``n**2 / 2**81``: 4e-13 for a million people. An export
still checks that every pseudonym is distinct and refuses otherwise.

Free text (list reasons, group names, exclusion notes) is scanned for
person IDs too. An ID is recognised where it stands on its own: not
preceded or followed by a letter or digit, so ``P1`` is found in
"with P1." but not inside ``P12``. IDs that are plain numbers are replaced
wherever that number stands alone in free text, even where it was a count;
privacy wins over readability, and the counts are in their own columns.

The key is at least 256 random bits (:func:`new_key` writes 32 bytes from
the operating system's CSPRNG, mode 0600): either a file of raw bytes, or a
text file holding them in hex or base64 (``openssl rand -hex 32``). A key a
person chose is refused (:func:`parse_key`): fewer than 32 bytes, text that
is neither hex nor base64 (a passphrase), or bytes whose estimated entropy
is low (few distinct values, a repeated or arithmetic pattern); a 16-byte
human-chosen key was guessed in seconds. It must lie outside the run folder
and the export folder. Its *fingerprint*, HMAC-SHA256(key, "fdnet key
fingerprint v1") cut to 16 hex digits, names the key in the export
manifest without revealing it.

>>> p = Pseudonymiser(b"k" * 32, ["P1", "P12"])
>>> p("P1"), p("P12") != p("P1")
('P63c8fdf889790a37571b', True)
>>> p.text("Shot with P1 and P12; not P123.") == f"Shot with {p('P1')} and {p('P12')}; not P123."
True
>>> key_fingerprint(b"k" * 32)
'25c53102057041d8'
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import os
import re
import secrets
from pathlib import Path
from typing import Iterable

from ..errors import FdnetError, UsageError

PSEUDONYM_HEX = 20
FINGERPRINT_LABEL = b"fdnet key fingerprint v1"
NEW_KEY_BYTES = 32
MIN_KEY_BYTES = 32            # 256 bits
MAX_KEY_FILE_BYTES = 4096     # a key file, not a data file
_HEX = re.compile(rb"[0-9a-fA-F]+")
_B64 = re.compile(rb"[A-Za-z0-9+/_-]+={0,2}")
HOW_TO_MAKE = ("create one with `fdnet export --new-key PATH` (32 random bytes, mode 0600), or from any "
               "cryptographic generator, e.g. `openssl rand -hex 32 > PATH`")
SCHEME = (f"'P' + first {PSEUDONYM_HEX} hex digits of HMAC-SHA256(key, UTF-8 person ID); "
          "key fingerprint: first 16 hex digits of HMAC-SHA256(key, 'fdnet key fingerprint v1')")


def key_fingerprint(key: bytes) -> str:
    """A public name for a key: equal fingerprints, same key (with overwhelming odds)."""
    return hmac.new(key, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def check_key_location(key_path: str | Path, forbidden: dict[str, str | Path]) -> Path:
    """Refuse a key path that lies inside one of ``forbidden`` (label -> folder), symlinks resolved.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> check_key_location(d / "run" / "k", {"the run folder": d / "run"})
    Traceback (most recent call last):
    ...
    fdnet.errors.UsageError: the key file ... lies inside the run folder ...
    """
    resolved = Path(key_path).expanduser().resolve()
    for label, folder in forbidden.items():
        f = Path(folder).expanduser().resolve()
        if _inside(resolved, f):
            raise UsageError(f"the key file {key_path} lies inside {label} ({folder}); keep the key apart from "
                             "the data it protects: store it outside both the run folder and the export folder")
    return resolved


def new_key(path: str | Path, forbidden: dict[str, str | Path] | None = None) -> str:
    """Write a new random 32-byte key to ``path`` (mode 0600, never overwriting); return its fingerprint."""
    path = Path(path).expanduser()
    check_key_location(path, forbidden or {})
    if not path.parent.is_dir():
        raise UsageError(f"--new-key {path}: the folder {path.parent} does not exist")
    key = secrets.token_bytes(NEW_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise UsageError(f"--new-key {path} exists; fdnet never overwrites a key (an old key may still be "
                         "needed to match earlier exports)") from None
    except OSError as exc:
        raise UsageError(f"--new-key {path} cannot be created: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, key)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    return key_fingerprint(key)


def _expected_distinct(n: int) -> float:
    """Expected number of distinct values among ``n`` uniformly random bytes."""
    return 256 * (1 - (255 / 256) ** n)


def weakness(key: bytes) -> str | None:
    """Why ``key`` does not look like CSPRNG output (None when it does).

    The tests are conservative: 32 truly random bytes fail one of them with
    odds below one in a billion (a fresh key then fixes it), while keys people
    make up (repeated bytes, a repeated word, counting bytes, a passphrase, a
    small alphabet) fail.

    >>> weakness(bytes(range(128, 160))), weakness(b"\\x9c\\x01" * 16), weakness(b"\\x00" * 40)
    ('its bytes form an arithmetic sequence', 'it repeats a 2-byte pattern', 'it repeats a 1-byte pattern')
    >>> weakness(b"correct horse battery staple police")
    'it is mostly printable text (a passphrase), not random bytes'
    >>> weakness(b"short"), weakness(hashlib.sha256(b"x").digest()) is None
    ('it holds 5 bytes; a key needs at least 32 (256 bits)', True)
    """
    n = len(key)
    if n < MIN_KEY_BYTES:
        return f"it holds {n} bytes; a key needs at least {MIN_KEY_BYTES} ({MIN_KEY_BYTES * 8} bits)"
    if _looks_like_text(key):
        return "it is mostly printable text (a passphrase), not random bytes"
    for period in range(1, n // 2 + 1):
        if key[period:] == key[:-period]:
            return f"it repeats a {period}-byte pattern"
    diffs = bytes((key[i + 1] - key[i]) % 256 for i in range(n - 1))
    if len(set(diffs)) <= 2:
        return "its bytes form an arithmetic sequence"
    distinct = len(set(key))
    # random bytes: distinct values ~ Binomial-like around E with sd < sqrt(E); 0.6 E is > 6 sd below for n >= 32
    floor = math.floor(0.6 * _expected_distinct(n))
    if distinct < floor:
        return f"it holds only {distinct} distinct byte values (random bytes of this length hold about " \
               f"{_expected_distinct(n):.0f})"
    return None


def _looks_like_text(key: bytes) -> bool:
    """UTF-8 text made at least 90% of printable characters (any script): something a person typed."""
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return sum(c.isprintable() or c.isspace() for c in text) >= 0.9 * len(text)


def parse_key(data: bytes, where: str = "the key") -> bytes:
    """The key bytes held by a key file's contents, or :class:`UsageError` for a weak or malformed key.

    A file of raw bytes is the key itself. A text file (trailing line break
    allowed) holding hex (64 digits or more) or base64 (44 characters or
    more, standard or URL-safe) is decoded, and the decoded bytes are the
    key. Either way the key must pass :func:`weakness`.

    >>> k = bytes.fromhex("8f3a2b9c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a8b9cadbecfd0e1f2")
    >>> parse_key(k.hex().encode() + b"\\n") == k == parse_key(base64.b64encode(k)) == parse_key(k)
    True
    >>> parse_key(b"Summer2024Police")
    Traceback (most recent call last):
    ...
    fdnet.errors.UsageError: the key is not a strong random key: it holds 16 bytes; a key needs at least 32 (256 bits). ...
    """
    text = data.strip()
    decoded, form = data, "raw bytes"
    if text and len(text) == len(data.rstrip(b"\r\n")) and data.lstrip() == data:
        if _HEX.fullmatch(text):
            # hex digits only: hex, never base64 (48 hex digits are 192 bits, whatever base64 makes of them)
            if len(text) % 2 == 0:
                decoded, form = bytes.fromhex(text.decode("ascii")), "hex"
        elif _B64.fullmatch(text) and len(text) >= 43:
            try:
                t = text.replace(b"-", b"+").replace(b"_", b"/")
                decoded, form = base64.b64decode(t + b"=" * (-len(t) % 4), validate=True), "base64"
            except (binascii.Error, ValueError):
                decoded, form = data, "raw bytes"
    why = weakness(decoded)
    if why is None:
        return decoded
    if form != "raw bytes":
        why = f"read as {form}, {why}"
    if form == "raw bytes" and why.startswith("it is mostly printable"):
        why = ("it is text, but neither hex (at least 64 digits) nor base64 (at least 44 characters) of "
               "256 random bits; a passphrase or a made-up key can be guessed")
    raise UsageError(f"{where} is not a strong random key: {why}. Pseudonyms are only as secret as the key: "
                     f"a 16-byte key a person chose was guessed in seconds. {HOW_TO_MAKE[0].upper() + HOW_TO_MAKE[1:]}. "
                     "(A new key gives new pseudonyms: exports made with the old one no longer match.)")


def read_key(path: str | Path, forbidden: dict[str, str | Path] | None = None) -> bytes:
    """Read and check a key file (:func:`parse_key`), refusing one inside a forbidden folder."""
    path = Path(path).expanduser()
    check_key_location(path, forbidden or {})
    if not path.is_file():
        raise UsageError(f"--key-file {path} is not a file; {HOW_TO_MAKE}")
    size = path.stat().st_size
    if size > MAX_KEY_FILE_BYTES:
        raise UsageError(f"--key-file {path} holds {size:,} bytes: that is not a key file (a key is 32 random "
                         f"bytes, or 64 hex digits); {HOW_TO_MAKE}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--key-file {path} cannot be read: {exc.strerror}") from None
    return parse_key(data, f"--key-file {path}")


def key_is_private(path: str | Path) -> bool:
    """False when group or others may read the key file (POSIX permissions)."""
    return os.name != "posix" or (Path(path).stat().st_mode & 0o077) == 0


class Pseudonymiser:
    """Maps person IDs to keyed pseudonyms, in ID columns and in free text.

    ``ids`` are every person ID the export may show; pseudonyms are checked
    to be distinct across them.
    """

    def __init__(self, key: bytes, ids: Iterable[str]):
        self._key = key
        self.map: dict[str, str] = {}
        for pid in sorted(set(ids)):
            if pid:
                self.map[pid] = self._pseudonym(pid)
        if len(set(self.map.values())) != len(self.map):
            raise FdnetError("two person IDs share a pseudonym under this key (odds below 1e-12 at city scale); "
                             "create a new key with --new-key and export again")
        self._lengths: dict[str, list[int]] = {}
        for pid in self.map:
            self._lengths.setdefault(pid[0], []).append(len(pid))
        for c in self._lengths:
            self._lengths[c] = sorted(set(self._lengths[c]), reverse=True)

    def _pseudonym(self, pid: str) -> str:
        return "P" + hmac.new(self._key, pid.encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]

    def __call__(self, pid: str) -> str:
        if pid == "":
            return ""
        p = self.map.get(pid)
        return p if p is not None else self._pseudonym(pid)

    def text(self, s: str) -> str:
        """Replace every stand-alone person ID in ``s`` (longest match first)."""
        if not s:
            return s
        out: list[str] = []
        n = len(s)
        i = last = 0
        lengths, ids = self._lengths, self.map
        while i < n:
            cands = lengths.get(s[i])
            if cands and (i == 0 or not s[i - 1].isalnum()):
                for ln in cands:
                    j = i + ln
                    if j <= n and (j == n or not s[j].isalnum()):
                        hit = ids.get(s[i:j])
                        if hit is not None:
                            out.append(s[last:i])
                            out.append(hit)
                            i = last = j
                            break
                else:
                    i += 1
                continue
            i += 1
        if not out:
            return s
        out.append(s[last:])
        return "".join(out)
