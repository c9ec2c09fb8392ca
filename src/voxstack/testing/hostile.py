"""Hostile audio files made byte by byte, as an attacker would: for the decoders' regression tests."""

from __future__ import annotations


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


class _Bits:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def put(self, value: int, width: int) -> _Bits:
        self.bits += [(value >> (width - 1 - i)) & 1 for i in range(width)]
        return self

    def bytes(self) -> bytes:
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def flac_bomb(rate: int = 1, samples: int = 65_535) -> bytes:
    """A FLAC file of a few dozen bytes: one constant block of ``samples`` samples at ``rate`` Hz.

    At 1 Hz that is 18 hours of audio, which a decoder that resamples first and counts after turns into
    two gigabytes of 16 kHz samples.
    """
    info = _Bits().put(samples, 16).put(samples, 16).put(0, 24).put(0, 24)  # block and frame sizes
    info.put(rate, 20).put(0, 3).put(15, 5).put(samples, 36).put(0, 128)  # rate, mono, 16 bits, length, MD5
    streaminfo = info.bytes()
    header = _Bits().put(0b11111111111110, 14).put(0, 2)  # sync, fixed block size
    header.put(0b0111, 4).put(0, 4).put(0, 4).put(0b100, 3).put(0, 1)  # size follows, rate from STREAMINFO, mono
    header.put(0, 8).put(samples - 1, 16)  # frame 0, its block size
    head = header.bytes()
    frame = head + bytes([_crc8(head)]) + _Bits().put(0, 8).put(0, 16).bytes()  # a CONSTANT subframe of 0
    frame += _crc16(frame).to_bytes(2, "big")
    return b"fLaC" + bytes([0x80]) + len(streaminfo).to_bytes(3, "big") + streaminfo + frame
