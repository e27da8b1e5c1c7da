"""Parsed specs kept per process, by the diagram version's hash: a stored version is parsed once."""

from __future__ import annotations

from threading import Lock

from engine.diagrams.loading import LoadedSpec, load_diagram, version_hash

_cache: dict[str, LoadedSpec] = {}
_cache_lock = Lock()


def cached_spec(key: str, xml: str | bytes) -> LoadedSpec:
    """The parsed spec for a stored diagram version, parsed once per process and version."""
    data = xml.encode() if isinstance(xml, str) else xml
    digest = version_hash(data)
    loaded = _cache.get(digest)
    if loaded is None:
        loaded = load_diagram(data, key, publishing=False)
        with _cache_lock:
            _cache[digest] = loaded
    return loaded


def cached_version(digest: str) -> LoadedSpec | None:
    """The parsed spec of a diagram version if this process has parsed it already (no XML read, no hashing)."""
    return _cache.get(digest)
