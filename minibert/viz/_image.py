"""Heat maps as PNG images: how the model view stays small and fast for 72 heads.

A plotly heatmap ships every cell as a number and draws each map as its own trace: 72 heads of
128 x 128 tokens is 1.2 million numbers and 72 sets of axes, which takes seconds to draw and
tens of megabytes of page. Instead we colour the maps here (one lookup per cell), lay them out
in one grid and encode the grid as one indexed PNG (one byte per pixel, compressed), which the
browser draws as a single image.
"""

from __future__ import annotations

import base64
import functools
import math
import struct
import zlib

import numpy as np
from plotly.colors import get_colorscale, sample_colorscale

# Colour levels for values; palette index LEVELS is the background (the gaps between maps).
# 64 levels are steps of 1/63 of the scale, finer than a reader tells apart on viridis, and
# compress much better than 255: measured on the 128-token MiniLM model view (72 heads), the
# PNG is 109 KB at 64 levels against 296 KB at 255 (zlib level 6).
LEVELS = 64
# zlib level 4: on the same (pooled) model view 79 KB in 11 ms, against 71 KB in 83 ms at
# level 6 and 90 KB in 8 ms at level 1.
COMPRESSION = 4
BACKGROUND = (255, 255, 255)


@functools.lru_cache(maxsize=8)
def palette(colorscale: str) -> np.ndarray:
    """(LEVELS + 1, 3) uint8: LEVELS colours of ``colorscale``, low to high, then the background."""
    scale = get_colorscale(colorscale)
    colours = sample_colorscale(scale, list(np.linspace(0.0, 1.0, LEVELS)), colortype="tuple")
    table = np.zeros((LEVELS + 1, 3), dtype=np.uint8)
    table[:LEVELS] = np.round(np.asarray(colours) * 255.0).astype(np.uint8)
    table[LEVELS] = BACKGROUND
    return table


def max_pool(maps: np.ndarray, factor: int) -> np.ndarray:
    """Shrink the last two axes ``factor`` times, keeping each block's largest weight.

    The maximum, not the mean, so that one strong weight (a previous-token diagonal, a [SEP]
    column) stays as bright in the small map as in the full one.
    """
    if factor <= 1:
        return maps
    t = maps.shape[-1]
    size = math.ceil(t / factor) * factor
    padded = np.zeros((*maps.shape[:-2], size, size), dtype=maps.dtype)
    padded[..., :t, :t] = maps
    # Two reductions over one axis each: much faster than one over two strided axes.
    rows = padded.reshape(*maps.shape[:-2], size // factor, factor, size).max(axis=-2)
    return rows.reshape(*maps.shape[:-2], size // factor, size // factor, factor).max(axis=-1)


def quantize(values: np.ndarray, zmax: float) -> np.ndarray:
    """Map values in [0, zmax] to palette levels 0..LEVELS-1 (NaN -> the background index)."""
    scaled = np.nan_to_num(values / max(zmax, 1e-12), nan=-1.0)
    levels = np.clip(np.rint(scaled * (LEVELS - 1)), 0, LEVELS - 1).astype(np.uint8)
    levels[scaled < 0] = LEVELS  # NaN
    return levels


def grid_of_maps(levels: np.ndarray, scale: int, gap: int) -> np.ndarray:
    """Lay out (R, C, t, t) palette levels as one (R*(t*scale+gap)-gap, ...) image.

    Each map is enlarged ``scale`` times by repeating pixels (so short sentences do not blur
    when the browser scales the image up), and maps are separated by ``gap`` background pixels.
    """
    rows, cols, t, _ = levels.shape
    cell = t * scale
    enlarged = levels.repeat(scale, axis=2).repeat(scale, axis=3)  # (R, C, cell, cell)
    height = rows * (cell + gap) - gap
    width = cols * (cell + gap) - gap
    image = np.full((rows, cell + gap, cols, cell + gap), LEVELS, dtype=np.uint8)
    image[:, :cell, :, :cell] = enlarged.transpose(0, 2, 1, 3)  # (R, cell, C, cell)
    return image.reshape(rows * (cell + gap), cols * (cell + gap))[:height, :width]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def indexed_png(levels: np.ndarray, colours: np.ndarray, compression: int = COMPRESSION) -> bytes:
    """Encode a 2-D uint8 array of palette indices as an 8-bit indexed PNG (PNG spec, 11.2).

    Written out rather than taken from Pillow so that figures need no imaging library. Every
    row gets filter type 0 ("None"), the recommended filter for palette images.
    """
    height, width = levels.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)  # 8-bit, colour type 3
    rows = np.empty((height, width + 1), dtype=np.uint8)
    rows[:, 0] = 0  # the filter byte of each scanline
    rows[:, 1:] = levels
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"PLTE", colours.astype(np.uint8).tobytes())
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), compression))
        + _chunk(b"IEND", b"")
    )


def png_data_uri(png: bytes) -> str:
    """A ``data:`` URI: the image travels inside the figure, no file and no network."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
