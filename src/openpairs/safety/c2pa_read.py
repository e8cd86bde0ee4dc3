"""C2PA / CAWG training-and-data-mining assertions in a C2PA manifest store, read with c2pa-python.

The assertions `cawg.training-mining` (CAWG 1.1) and the older `c2pa.training-mining` hold entries such as
`cawg.ai_training: {use: notAllowed}`. All four entries count, under either prefix: `ai_training`,
`ai_generative_training`, `data_mining` (building a dataset is data mining for training) and
`ai_inference` (the clip stage runs every image through CLIP); other entries are ignored. Every manifest of the store counts (the active one and those of its
ingredients): a prohibition anywhere in the image's history is honoured. `notAllowed` opts out, and so
does `constrained`: its constraints are free text a program cannot check. The signature need not be
valid or trusted: a prohibition is honoured whoever signed it (trust matters for claims that grant
something, not for a request to leave an image alone). Reading is offline: no remote manifest, no OCSP,
no trust list is fetched.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from typing import Any

TRAINING_LABELS = ("cawg.training-mining", "c2pa.training-mining")
ENTRIES = frozenset(
    f"{prefix}.{use}"
    for prefix in ("cawg", "c2pa")
    for use in ("ai_training", "ai_generative_training", "ai_inference", "data_mining")
)
REFUSED_USES = frozenset({"notallowed", "constrained"})
READER_SETTINGS = {
    "verify": {
        "verify_after_reading": False,  # the signal stands whatever the validation result: skip hashing
        "verify_trust": False,
        "verify_timestamp_trust": False,
        "ocsp_fetch": False,
        "remote_manifest_fetch": False,
    },
    "core": {"decode_identity_assertions": False, "allowed_network_hosts": []},
}
_local = threading.local()


def training_signal(body: bytes, mime: str) -> str | None:
    """`c2pa <entry>: <use>` for the first refused training/mining entry of the body's manifests, else
    None (also when the store cannot be read: a malformed store is no signal)."""
    try:
        store = _store(body, mime)
    except Exception:  # c2pa raises C2paError subclasses, ValueError, JSONDecodeError: all mean no signal
        return None
    for entry, use in _entries(store):
        if use.lower() in REFUSED_USES:
            return f"c2pa {entry}: {use.lower()}"
    return None


def _store(body: bytes, mime: str) -> dict[str, Any]:
    """The manifest store of `body` as c2pa-python's JSON (empty when it has none)."""
    import c2pa

    reader = c2pa.Reader.try_create(mime, io.BytesIO(body), None, _context())
    if reader is None:
        return {}
    with reader:
        store: dict[str, Any] = json.loads(reader.json())
    return store


def _context() -> Any:
    """This thread's c2pa Context with offline, no-validation settings (made once per thread)."""
    context = getattr(_local, "context", None)
    if context is None:
        import c2pa

        context = _local.context = c2pa.Context.from_dict(READER_SETTINGS)
    return context


def _entries(store: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(entry, use) of every known entry of every training-mining assertion in every manifest."""
    for manifest in _dict(store.get("manifests")).values():
        for assertion in _dict(manifest).get("assertions") or ():
            assertion = _dict(assertion)
            if _base_label(assertion.get("label")) not in TRAINING_LABELS:
                continue
            for entry, value in _dict(_dict(assertion.get("data")).get("entries")).items():
                use = _dict(value).get("use")
                if entry in ENTRIES and isinstance(use, str):
                    yield entry, use


def _dict(value: object) -> dict[str, Any]:
    """`value` if it is a dict, else an empty one (the store's JSON is the file's, not trusted)."""
    return value if isinstance(value, dict) else {}


def _base_label(label: object) -> str:
    """An assertion label without its instance suffix (`__1`) or version (`.v2`)."""
    if not isinstance(label, str):
        return ""
    base = label.split("__", 1)[0]
    head, _, version = base.rpartition(".v")
    return head if head and version.isdigit() else base
