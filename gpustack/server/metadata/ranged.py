"""A read-only file over HTTP range requests: enough of a file object for the GGUF header reader."""

from collections.abc import Mapping

import httpx

CHUNK = 1 << 20  # bytes per range request
MAX_FETCHED = 64 << 20  # a GGUF header past this (a huge vocabulary) is not worth reading remotely


class RangedFile:
    """read/seek/tell over `url`, fetching CHUNK-sized ranges as the reader moves; ValueError past
    MAX_FETCHED bytes fetched or when the server ignores ranges."""

    def __init__(self, client: httpx.Client, url: str, size: int, headers: Mapping[str, str]) -> None:
        self.client, self.url, self.size, self.headers = client, url, size, dict(headers)
        self.pos = 0
        self.fetched = 0
        self._start = 0
        self._buf = b""

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n < 0 else min(self.size, self.pos + n)
        out = bytearray()
        while self.pos < end:
            if not self._start <= self.pos < self._start + len(self._buf):
                self._fill(self.pos)
            piece = self._buf[self.pos - self._start : end - self._start]
            out += piece
            self.pos += len(piece)
        return bytes(out)

    def _fill(self, start: int) -> None:
        stop = min(self.size, start + CHUNK) - 1
        if self.fetched + (stop - start + 1) > MAX_FETCHED:
            raise ValueError(f"header is larger than {MAX_FETCHED >> 20} MiB")
        response = self.client.get(self.url, headers={**self.headers, "Range": f"bytes={start}-{stop}"})
        response.raise_for_status()
        if response.status_code != 206:
            raise ValueError(f"the server answered {response.status_code}, not 206, to a range request")
        self._start, self._buf = start, response.content
        self.fetched += len(self._buf)
        if not self._buf:
            raise ValueError("the server answered an empty range")
