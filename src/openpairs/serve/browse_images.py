"""Stored images of the dataset browser, read by key from a download shard's tar without loading the tar."""

from __future__ import annotations

import tarfile
from functools import lru_cache

from openpairs.io import fs as ofs

IMAGE_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
CACHED_TARS = 16  # member tables kept (one per tar: a few dozen bytes a sample)


class UnreadableTarError(OSError):
    """A download tar that cannot be read (truncated or not a tar)."""


@lru_cache(maxsize=CACHED_TARS)
def image_members(tar_path: str) -> dict[str, tuple[int, int, str]]:
    """key -> (data offset, size, extension) of the image members of one tar, from its headers only
    (tarfile seeks over the member data)."""
    members: dict[str, tuple[int, int, str]] = {}
    try:
        with ofs.open_file(tar_path, "rb") as handle, tarfile.open(fileobj=handle, mode="r:") as tar:
            for member in tar:
                key, _, extension = member.name.rpartition(".")
                if member.isfile() and extension.lower() in IMAGE_TYPES:
                    members[key] = (member.offset_data, member.size, extension.lower())
    except (tarfile.TarError, EOFError) as exc:
        raise UnreadableTarError(f"{tar_path} is not a readable tar: {exc}") from exc
    return members


def read_image(tar_path: str, key: str) -> tuple[bytes, str] | None:
    """The stored image bytes of `key` and their media type, or None when the tar holds no image of it."""
    found = image_members(tar_path).get(key)
    if found is None:
        return None
    offset, size, extension = found
    with ofs.open_file(tar_path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(size)
    if len(data) != size:
        raise UnreadableTarError(f"{tar_path} ends inside the image of {key}")
    return data, IMAGE_TYPES[extension]
