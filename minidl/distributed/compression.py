"""Gradient compression: send 16-bit numbers in the all-reduce instead of 32-bit ones.

Halving the bytes halves the time of a bandwidth-bound reduction, at the price of rounding
every gradient to 16 bits (ChainerMN's ``allreduce_grad_dtype``, Horovod's
``Compression.fp16``, DDP's ``fp16_compress_hook`` / ``bf16_compress_hook``).

* **fp16** (IEEE half): 10 stored mantissa bits, relative rounding error <= 2^-11, but the
  range ends at 65,504 and values under 6e-8 flush to zero;
* **bf16** (bfloat16): the upper half of a float32, 7 mantissa bits, relative error <= 2^-8,
  and float32's whole range: no overflow or underflow to worry about.

NumPy has no bfloat16, so it is made here by bit manipulation: a float32 is 32 bits
``s eeeeeeee mmmmmmm mmmmmmmmmmmmmmmm``; bf16 keeps the upper 16. Rounding to nearest, ties to
even, adds ``0x7FFF + (bit 16)`` to the 32-bit pattern before dropping the lower half; NaN stays
a (quiet) NaN.
"""
from __future__ import annotations

from ..backends import get_array_module

COMPRESSIONS = ("bf16", "fp16")


def check_compression(compression, caller: str):
    if compression is not None and compression not in COMPRESSIONS:
        raise ValueError(f"{caller}: compression must be None, 'bf16' or 'fp16', got {compression!r}")
    return compression


def float32_to_bfloat16(x):
    """The bfloat16 nearest to each float32 of ``x`` (ties to even), as its uint16 bit pattern."""
    xp = get_array_module(x)
    bits = xp.ascontiguousarray(x, dtype=xp.float32).view(xp.uint32)
    rounding = xp.uint32(0x7FFF) + ((bits >> 16) & xp.uint32(1))
    upper = ((bits + rounding) >> 16).astype(xp.uint16)
    nan = xp.isnan(x)
    if nan.any():                                   # the carry could turn a NaN into infinity
        upper[nan] = ((bits[nan] >> 16) | xp.uint32(0x0040)).astype(xp.uint16)
    return upper


def bfloat16_to_float32(bits):
    """The float32 values of bfloat16 bit patterns (uint16): exact (bf16 is a float32 with 16 zero bits)."""
    xp = get_array_module(bits)
    return (xp.asarray(bits, dtype=xp.uint16).astype(xp.uint32) << 16).view(xp.float32)


def compress(x, compression: str):
    """float32 array -> its 16-bit form: uint16 bit patterns for "bf16", float16 for "fp16"."""
    if compression == "bf16":
        return float32_to_bfloat16(x)
    xp = get_array_module(x)
    return x.astype(xp.float16)


def decompress(y, compression: str):
    """The float32 values of a :func:`compress`-ed array."""
    if compression == "bf16":
        return bfloat16_to_float32(y)
    xp = get_array_module(y)
    return y.astype(xp.float32)


def sum_compressed(a, b, compression: str):
    """a + b for two compressed arrays, added in float32, rounded back to 16 bits (a reduction step)."""
    return compress(decompress(a, compression) + decompress(b, compression), compression)


def round_trip(x, compression: str | None):
    """``x`` as the reduction sees it: rounded to 16 bits and back (float32); ``x`` itself without compression."""
    if compression is None:
        return x
    return decompress(compress(x, compression), compression)


__all__ = ["COMPRESSIONS", "float32_to_bfloat16", "bfloat16_to_float32", "compress", "decompress",
           "sum_compressed", "round_trip"]
