"""Login abuse: chat throughput with and without 4 connections sending wrong passwords.

Starts a server and one worker as processes on loopback, deploys a generated tiny GGUF on the CPU engine,
then measures chat completions per second from a few client threads in alternating phases: alone, and while
4 other connections (processes) post wrong passwords to /auth/login as fast as they are answered. Prints
the median rates and their ratio (target >= 0.9). Run: `.venv/bin/python benchmarks/login_abuse.py`.
"""

import argparse
import collections
import multiprocessing
import multiprocessing.synchronize
import statistics
import sys
import tempfile
import threading
import time
from multiprocessing import Queue
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.proxy_overhead import _deploy  # noqa: E402
from tests.e2e.cluster import Cluster  # noqa: E402

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1, "temperature": 0}


def _chat_rate(url: str, key: str, seconds: float, clients: int) -> float:
    """Completed chat requests per second over `seconds`, from `clients` threads with one connection each."""
    done = [0] * clients
    deadline = time.monotonic() + seconds

    def run(slot: int) -> None:
        with httpx.Client(timeout=60, headers={"authorization": f"Bearer {key}"}) as client:
            while time.monotonic() < deadline:
                client.post(f"{url}/v1/chat/completions", json=CHAT).raise_for_status()
                done[slot] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - start)


Flag = multiprocessing.synchronize.Event


def _attacker(url: str, slot: int, active: Flag, stop: Flag, statuses: "Queue[int]") -> None:
    with httpx.Client(timeout=60) as client:
        while not stop.is_set():
            if not active.wait(0.1):
                continue
            body = {"username": "admin" if slot % 2 else f"guess{slot}", "password": "wrong-password"}
            statuses.put(client.post(f"{url}/auth/login", json=body).status_code)


class Attack:
    """`n` connections, each from its own process (an attacker does not share our CPU time slice), posting
    wrong passwords to /auth/login in a loop while active."""

    def __init__(self, url: str, n: int) -> None:
        self.statuses: collections.Counter[int] = collections.Counter()
        self.active = multiprocessing.Event()
        self._stop = multiprocessing.Event()
        self._queue: Queue[int] = multiprocessing.Queue()
        self._procs = [
            multiprocessing.Process(target=_attacker, args=(url, i, self.active, self._stop, self._queue))
            for i in range(n)
        ]

    def __enter__(self) -> "Attack":
        for proc in self._procs:
            proc.start()
        self.active.set()
        time.sleep(5.0)  # its first attempts are checked, later ones throttled: measure the steady state
        self.active.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for proc in self._procs:
            proc.join()
        while not self._queue.empty():
            self.statuses[self._queue.get()] += 1


def _measure(url: str, key: str, args: argparse.Namespace) -> tuple[list[float], list[float], Attack]:
    """Alternating phases without and with the attack, so drift in the machine's load hits both alike."""
    quiet: list[float] = []
    abused: list[float] = []
    with Attack(url, args.attackers) as attack:
        for _ in range(args.rounds):
            quiet.append(_chat_rate(url, key, args.seconds, args.clients))
            attack.active.set()
            time.sleep(0.5)
            abused.append(_chat_rate(url, key, args.seconds, args.clients))
            attack.active.clear()
            time.sleep(0.5)
    return quiet, abused, attack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per phase")
    parser.add_argument("--rounds", type=int, default=8, help="alternating alone/abused phase pairs")
    parser.add_argument("--clients", type=int, default=2, help="concurrent chat clients")
    parser.add_argument("--attackers", type=int, default=4, help="wrong-password connections")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp))
        try:
            cluster.start_server()
            cluster.start_worker("bench-worker", 42100)
            _, key = _deploy(cluster, Path(tmp))
            _chat_rate(cluster.url, key, 3.0, args.clients)  # warm-up
            quiet, abused, attack = _measure(cluster.url, key, args)
        finally:
            cluster.shutdown()
    alone, under = statistics.median(quiet), statistics.median(abused)
    pairs = statistics.median(b / a for a, b in zip(quiet, abused, strict=True))
    print(f"chat clients: {args.clients}, {args.rounds} x {args.seconds:.0f}s per phase, max_tokens=1")
    print(f"chat alone              : {alone:7.1f} req/s (median of {[round(r, 1) for r in quiet]})")
    runs = [round(r, 1) for r in abused]
    print(f"chat + {args.attackers} wrong-password conns: {under:7.1f} req/s (median of {runs})")
    print(f"login attempts answered : {sum(attack.statuses.values())} ({dict(sorted(attack.statuses.items()))})")
    print(f"median ratio of adjacent phases (abused / alone): {pairs:.3f}")
    print(f"throughput ratio (abused / alone): {under / alone:.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
