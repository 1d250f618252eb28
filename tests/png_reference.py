"""Reads a PNG's size from its bytes: the signature, then the IHDR chunk's width and height."""

import struct


def png_size(path):
    """(width, height) of the PNG at `path`; AssertionError if it is not one."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    assert head[12:16] == b"IHDR", "first chunk is not IHDR"
    return struct.unpack(">II", head[16:24])
