"""PortAllocator: round-robin allocation that skips reserved and busy ports."""

import socket

import pytest

from gpustack.worker.ports import NoFreePortError, PortAllocator, is_bindable
from tests.utils.server import free_port


def test_busy_port_is_not_bindable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not is_bindable(int(sock.getsockname()[1]))


def _free_run(count: int) -> int:
    """The first port of `count` consecutive ports that are free right now."""
    for _ in range(100):
        low = free_port()
        if low + count <= 65535 and all(is_bindable(p) for p in range(low, low + count)):
            return low
    raise RuntimeError("no run of free ports found")


def test_allocation_skips_busy_and_reserved_ports() -> None:
    low = _free_run(3)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", low + 1))
        busy.listen()
        allocator = PortAllocator(low, low + 2)
        first = allocator.allocate()
        second = allocator.allocate()
        assert (first, second) == (low, low + 2)
        assert allocator.reserved == {low, low + 2}
        with pytest.raises(NoFreePortError):
            allocator.allocate()


def test_exhausted_range_raises_a_clear_error() -> None:
    port = free_port()
    allocator = PortAllocator(port, port)
    assert allocator.allocate() == port
    with pytest.raises(NoFreePortError, match=f"{port}-{port}"):
        allocator.allocate()
    allocator.release(port)
    assert allocator.allocate() == port


def test_round_robin_moves_on_after_release() -> None:
    low = _free_run(2)
    allocator = PortAllocator(low, low + 1)
    assert allocator.allocate() == low
    allocator.release(low)
    assert allocator.allocate() == low + 1  # a just-released port is not handed out again at once


def test_invalid_range_is_refused() -> None:
    with pytest.raises(ValueError):
        PortAllocator(10, 5)
