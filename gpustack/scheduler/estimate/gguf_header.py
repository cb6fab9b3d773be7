"""A header-only GGUF reader: metadata and tensor sizes without loading the tokenizer arrays or the weights.

gguf's GGUFReader builds a numpy view of every metadata item, which takes seconds for a 150k-token
vocabulary; the scheduler needs a dozen numbers. This reads the header with struct, keeps numeric arrays
up to `MAX_ARRAY` items (per-layer head counts), and only counts the items of longer or string arrays.
"""

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_ARRAY = 4096  # numeric arrays kept as values (per-layer fields); longer ones are only counted
MAX_STRING = 1 << 20
MAX_DIMS = 8

# GGUF value types -> struct format of one item (STRING = 8, ARRAY = 9 are handled apart)
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9

Value = int | float | bool | str | list[int | float | bool]


@dataclass(frozen=True)
class TensorInfo:
    name: str
    n_elements: int
    n_bytes: int


@dataclass(frozen=True)
class GGUFHeader:
    metadata: dict[str, Value]
    array_lengths: dict[str, int]  # every array field's length, kept or not
    tensors: list[TensorInfo] = field(default_factory=list)


class _Reader:
    """Little-endian reads from a buffered file that fail with ValueError at the end of the file."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh

    def take(self, size: int) -> bytes:
        data = self.fh.read(size)
        if len(data) != size:
            raise ValueError("file ends inside the header")
        return data

    def unpack(self, fmt: str) -> int | float | bool:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]  # type: ignore[no-any-return]

    def uint(self, fmt: str = "Q") -> int:
        return int(self.unpack(fmt))

    def string(self) -> str:
        size = self.uint()
        if size > MAX_STRING:
            raise ValueError(f"string of {size} bytes in the header")
        return self.take(size).decode("utf-8")

    def skip_strings(self, count: int) -> None:
        for _ in range(count):
            size = self.uint()
            if size > MAX_STRING:
                raise ValueError(f"string of {size} bytes in the header")
            self.fh.seek(size, 1)


def _value(reader: _Reader, kind: int) -> Value:
    if kind == _STRING:
        return reader.string()
    if kind not in _SCALARS:
        raise ValueError(f"unknown metadata value type {kind}")
    return reader.unpack(_SCALARS[kind])


def _array(reader: _Reader, key: str, header: GGUFHeader) -> None:
    kind, count = reader.uint("I"), reader.uint()
    header.array_lengths[key] = count
    if kind == _STRING:
        reader.skip_strings(count)
        return
    if kind not in _SCALARS:
        raise ValueError(f"unsupported array item type {kind} for '{key}'")
    fmt = _SCALARS[kind]
    if count > MAX_ARRAY:
        reader.fh.seek(count * struct.calcsize(fmt), 1)
        return
    header.metadata[key] = list(struct.unpack(f"<{count}{fmt}", reader.take(count * struct.calcsize(fmt))))


def _tensor(reader: _Reader) -> tuple[TensorInfo, int]:
    name = reader.string()
    n_dims = reader.uint("I")
    if n_dims > MAX_DIMS:
        raise ValueError(f"tensor '{name}' has {n_dims} dimensions")
    elements = 1
    for _ in range(n_dims):
        elements *= reader.uint()
    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(reader.uint("I"))]
    except (ValueError, KeyError) as exc:
        raise ValueError(f"tensor '{name}' has an unknown type") from exc
    offset = reader.uint()
    return TensorInfo(name, elements, elements // block * type_size), offset


def read_header(path: Path) -> GGUFHeader:
    """Metadata and tensor infos of one GGUF file; ValueError (with the reason) for anything unreadable,
    including tensor data that would lie past the end of the file."""
    with open(path, "rb", buffering=1 << 20) as fh:
        size = fh.seek(0, 2)
        fh.seek(0)
        return read_header_from(fh, size)


def read_header_from(fh: BinaryIO, size: int) -> GGUFHeader:
    """`read_header` from any seekable reader positioned at 0 of a file of `size` bytes (e.g. ranged HTTP)."""
    reader = _Reader(fh)
    if reader.take(4) != MAGIC:
        raise ValueError("not a GGUF file (bad magic)")
    version = reader.uint("I")
    if version not in (2, 3):
        raise ValueError(f"unsupported GGUF version {version}")
    n_tensors, n_kv = reader.uint(), reader.uint()
    header = GGUFHeader(metadata={}, array_lengths={})
    for _ in range(n_kv):
        key, kind = reader.string(), reader.uint("I")
        if kind == _ARRAY:
            _array(reader, key, header)
        else:
            header.metadata[key] = _value(reader, kind)
    ends = []
    for _ in range(n_tensors):
        info, offset = _tensor(reader)
        header.tensors.append(info)
        ends.append(offset + info.n_bytes)
    alignment = int(header.metadata.get("general.alignment", DEFAULT_ALIGNMENT))  # type: ignore[arg-type]
    data_start = -(-fh.tell() // alignment) * alignment
    if ends and data_start + max(ends) > size:
        raise ValueError(f"tensor data ends past the end of the file ({size} bytes)")
    return header


def header_to_dict(header: GGUFHeader) -> dict[str, Any]:
    """A JSON-able summary of a header (what the estimate reads; tokenizer fields left out), for a worker's
    answer or the metadata cache."""
    return {
        "metadata": {k: v for k, v in header.metadata.items() if not k.startswith("tokenizer.")},
        "array_lengths": dict(header.array_lengths),
        "tensors": [[t.name, t.n_elements, t.n_bytes] for t in header.tensors],
    }


def header_from_dict(data: dict[str, Any]) -> GGUFHeader:
    """The inverse of `header_to_dict`; ValueError when the summary is malformed."""
    try:
        tensors = [TensorInfo(str(name), int(elements), int(size)) for name, elements, size in data["tensors"]]
        return GGUFHeader(metadata=dict(data["metadata"]), array_lengths=dict(data["array_lengths"]), tensors=tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed GGUF header summary ({exc})") from exc
