"""libwebp's scaled decoding (its advanced API, through ctypes): a WebP decoded straight to a small size.

libwebp rescales rows as it decodes them, so only the output size is ever converted to RGB and no
full-size frame is allocated. Neither Pillow nor OpenCV exposes it. On the benchmark corpus's WebPs
(0.87 MP mean) it takes 11.3 ms against 14.5 ms for OpenCV's full decode and area resize, and 17 ms
through Pillow. It needs the system libwebp (Debian `libwebp7`, any 1.x); without it `available()` is
False and callers keep their OpenCV path.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any

import numpy as np

_ABI_VERSION = 0x0209  # WEBP_DECODER_ABI_VERSION of libwebp 1.2; any 1.x accepts major 0x02
_MIN_LIBRARY_VERSION = 0x010000
_MODE_RGB = 0
_VP8_STATUS_OK = 0


class _Features(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in ("width", "height", "has_alpha", "has_animation", "format")]
    _fields_ += [("pad", ctypes.c_uint32 * 5)]


class _RGBABuffer(ctypes.Structure):
    _fields_ = [("rgba", ctypes.c_void_p), ("stride", ctypes.c_int), ("size", ctypes.c_size_t)]


class _YUVABuffer(ctypes.Structure):
    _fields_ = [(name, ctypes.c_void_p) for name in ("y", "u", "v", "a")]
    _fields_ += [(f"{name}_stride", ctypes.c_int) for name in ("y", "u", "v", "a")]
    _fields_ += [(f"{name}_size", ctypes.c_size_t) for name in ("y", "u", "v", "a")]


class _Buffers(ctypes.Union):
    _fields_ = [("RGBA", _RGBABuffer), ("YUVA", _YUVABuffer)]


class _DecBuffer(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in ("colorspace", "width", "height", "is_external_memory")]
    _fields_ += [("u", _Buffers), ("pad", ctypes.c_uint32 * 4), ("private_memory", ctypes.c_void_p)]


_OPTIONS = [
    "bypass_filtering",
    "no_fancy_upsampling",
    "use_cropping",
    "crop_left",
    "crop_top",
    "crop_width",
    "crop_height",
    "use_scaling",
    "scaled_width",
    "scaled_height",
    "use_threads",
    "dithering_strength",
    "flip",
    "alpha_dithering_strength",
]


class _Options(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in _OPTIONS] + [("pad", ctypes.c_uint32 * 5)]


class _DecoderConfig(ctypes.Structure):
    _fields_ = [("input", _Features), ("output", _DecBuffer), ("options", _Options)]


_library: Any = None


def _libwebp() -> Any:
    """The system libwebp with its argument types set, or False when missing or older than 1.0."""
    global _library
    if _library is None:
        # set once, complete: threads decoding at once (a worker's shards, decode threads) may all load
        # it, but none may see a half-done load as "missing" and decode that image another way
        _library = _load()
    return _library


def _load() -> Any:
    """Load libwebp and declare the functions used (False when missing or older than 1.0)."""
    name = ctypes.util.find_library("webp")
    try:
        library = ctypes.CDLL(name) if name else None
    except OSError:
        return False
    if library is None or library.WebPGetDecoderVersion() < _MIN_LIBRARY_VERSION:
        return False
    library.WebPInitDecoderConfigInternal.argtypes = [ctypes.POINTER(_DecoderConfig), ctypes.c_int]
    library.WebPDecode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(_DecoderConfig)]
    library.WebPFreeDecBuffer.argtypes = [ctypes.POINTER(_DecBuffer)]
    return library


def available() -> bool:
    """Whether scaled WebP decoding can be used here."""
    return bool(_libwebp())


def decode_scaled(body: bytes, width: int, height: int) -> np.ndarray | None:
    """`body` (a still WebP) decoded and rescaled by libwebp to height x width x 3 RGB; None when the
    library is missing or the body does not decode (the caller's decoder then gives the reason)."""
    library = _libwebp()
    if not library:
        return None
    config = _DecoderConfig()
    if not library.WebPInitDecoderConfigInternal(ctypes.byref(config), _ABI_VERSION):
        return None
    pixels = np.empty((height, width, 3), np.uint8)
    options, output = config.options, config.output
    options.use_scaling, options.scaled_width, options.scaled_height = 1, width, height
    output.colorspace, output.is_external_memory = _MODE_RGB, 1
    output.u.RGBA.rgba, output.u.RGBA.stride, output.u.RGBA.size = (
        pixels.ctypes.data,
        width * 3,
        pixels.nbytes,
    )
    status = library.WebPDecode(body, len(body), ctypes.byref(config))
    library.WebPFreeDecBuffer(ctypes.byref(output))
    return pixels if status == _VP8_STATUS_OK else None
