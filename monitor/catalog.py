"""ReferenceCatalog: the reference profiles a worker knows, by model version and by id.

Workers fill it from configured profile files and from the references topic
(every worker reads the whole topic, so any worker can take over any
partition). A profile's id is a digest of its bytes: the same profile
published twice is the same reference, and window panes remember which
reference they were built on.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from monitor.reference import ReferenceProfile

#: Older profiles kept per model version, so windows opened on a replaced
#: reference can still be evaluated against it.
DEFAULT_HISTORY = 3


def profile_id(profile_bytes: bytes) -> str:
    """First 16 hex digits of the SHA-256 of a profile's bytes.

    Examples
    --------
    >>> profile_id(b"abc")
    'ba7816bf8f01cfea'
    """
    return hashlib.sha256(profile_bytes).hexdigest()[:16]


class ReferenceCatalog:
    """Latest reference per model version, plus a short history by id.

    Examples
    --------
    >>> import pandas as pd
    >>> profile = ReferenceProfile.from_frame(
    ...     pd.DataFrame({"x": [1.0, 2.0, 3.0]}), model="m", model_version="1"
    ... )
    >>> catalog = ReferenceCatalog()
    >>> ident, changed = catalog.put(profile)
    >>> changed, catalog.latest("m", "1")[0] == ident, catalog.put(profile)[1]
    (True, True, False)
    """

    def __init__(self, history: int = DEFAULT_HISTORY) -> None:
        self.history = history
        self._latest: dict[tuple[str, str], str] = {}
        self._by_id: dict[str, ReferenceProfile] = {}
        self._versions: dict[tuple[str, str], OrderedDict[str, None]] = {}

    def put(self, profile: ReferenceProfile, data: bytes | None = None) -> tuple[str, bool]:
        """Make ``profile`` its version's latest reference; returns (id, changed)."""
        ident = profile_id(profile.to_bytes() if data is None else data)
        key = (profile.model, profile.model_version)
        changed = self._latest.get(key) != ident
        self._latest[key] = ident
        self._by_id[ident] = profile
        kept = self._versions.setdefault(key, OrderedDict())
        kept.pop(ident, None)
        kept[ident] = None
        while len(kept) > self.history:
            dropped, _ = kept.popitem(last=False)
            self._by_id.pop(dropped, None)
        return ident, changed

    def remove(self, model: str, model_version: str) -> None:
        """Forget a model version's reference (a tombstone on the topic)."""
        self._latest.pop((model, model_version), None)

    def latest(self, model: str, model_version: str) -> tuple[str, ReferenceProfile] | None:
        """The version's current reference and its id, if any."""
        ident = self._latest.get((model, model_version))
        return None if ident is None else (ident, self._by_id[ident])

    def get(self, ident: str) -> ReferenceProfile | None:
        """A profile by id, while it is kept."""
        return self._by_id.get(ident)

    def models(self) -> list[tuple[str, str]]:
        """Model versions with a reference, sorted."""
        return sorted(self._latest)

    def __len__(self) -> int:
        return len(self._latest)
