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

The key is a file of random bytes (:func:`new_key` writes 32, mode 0600).
It must lie outside the run folder and the export folder. Its
*fingerprint*, HMAC-SHA256(key, "fdnet key fingerprint v1") cut to 16 hex
digits, names the key in the export manifest without revealing it.

>>> p = Pseudonymiser(b"k" * 32, ["P1", "P12"])
>>> p("P1"), p("P12") != p("P1")
('P63c8fdf889790a37571b', True)
>>> p.text("Shot with P1 and P12; not P123.") == f"Shot with {p('P1')} and {p('P12')}; not P123."
True
>>> key_fingerprint(b"k" * 32)
'25c53102057041d8'
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Iterable

from ..errors import FdnetError, UsageError

PSEUDONYM_HEX = 20
FINGERPRINT_LABEL = b"fdnet key fingerprint v1"
NEW_KEY_BYTES = 32
MIN_KEY_BYTES = 16
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


def read_key(path: str | Path, forbidden: dict[str, str | Path] | None = None) -> bytes:
    """Read a key file (at least 16 bytes), refusing one inside a forbidden folder."""
    path = Path(path).expanduser()
    check_key_location(path, forbidden or {})
    if not path.is_file():
        raise UsageError(f"--key-file {path} is not a file; create a key with --new-key PATH")
    key = path.read_bytes()
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(f"--key-file {path} holds {len(key)} bytes; a key needs at least {MIN_KEY_BYTES} "
                         f"random bytes (--new-key writes {NEW_KEY_BYTES})")
    return key


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
