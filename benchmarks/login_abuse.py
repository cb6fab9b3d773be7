"""Login abuse: chat throughput with and without 4 connections sending wrong passwords.

Starts a server and one worker as processes on loopback, deploys a generated tiny GGUF on the CPU engine,
then measures chat completions per second for a fixed time from a few client threads, first alone and then
while 4 other connections post wrong passwords to /auth/login as fast as they are answered. Prints both
rates and their ratio (target >= 0.9). Run: `.venv/bin/python benchmarks/login_abuse.py`.
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


def _attacker(url: str, slot: int, stop: "multiprocessing.synchronize.Event", statuses: "Queue[int]") -> None:
    with httpx.Client(timeout=60) as client:
        while not stop.is_set():
            body = {"username": "admin" if slot % 2 else f"guess{slot}", "password": "wrong-password"}
            statuses.put(client.post(f"{url}/auth/login", json=body).status_code)


class Attack:
    """`n` connections, each from its own process (an attacker does not share our CPU time slice), posting
    wrong passwords to /auth/login in a loop until stopped."""

    def __init__(self, url: str, n: int) -> None:
        self.statuses: collections.Counter[int] = collections.Counter()
        self._stop = multiprocessing.Event()
        self._queue: Queue[int] = multiprocessing.Queue()
        self._procs = [
            multiprocessing.Process(target=_attacker, args=(url, i, self._stop, self._queue)) for i in range(n)
        ]

    def __enter__(self) -> "Attack":
        for proc in self._procs:
            proc.start()
        time.sleep(5.0)  # its first attempts are checked, later ones throttled: measure the steady state
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for proc in self._procs:
            proc.join()
        while not self._queue.empty():
            self.statuses[self._queue.get()] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring time per phase")
    parser.add_argument("--rounds", type=int, default=3, help="alternating alone/abused phase pairs")
    parser.add_argument("--clients", type=int, default=2, help="concurrent chat clients")
    parser.add_argument("--attackers", type=int, default=4, help="wrong-password connections")
    args = parser.parse_args()
    quiet: list[float] = []
    abused: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp))
        try:
            cluster.start_server()
            cluster.start_worker("bench-worker", 42100)
            _, key = _deploy(cluster, Path(tmp))
            _chat_rate(cluster.url, key, 3.0, args.clients)  # warm-up
            for _ in range(args.rounds):  # alternating, so drift in the machine's load hits both alike
                quiet.append(_chat_rate(cluster.url, key, args.seconds, args.clients))
                with Attack(cluster.url, args.attackers) as attack:
                    abused.append(_chat_rate(cluster.url, key, args.seconds, args.clients))
                statuses += attack.statuses
        finally:
            cluster.shutdown()
    alone, under = statistics.median(quiet), statistics.median(abused)
    print(f"chat clients: {args.clients}, {args.rounds} x {args.seconds:.0f}s per phase, max_tokens=1")
    print(f"chat alone              : {alone:7.1f} req/s (median of {[round(r, 1) for r in quiet]})")
    print(
        f"chat + {args.attackers} wrong-password conns: {under:7.1f} req/s (median of {[round(r, 1) for r in abused]})"
    )
    print(f"login attempts answered : {sum(statuses.values())} ({dict(sorted(statuses.items()))})")
    print(f"throughput ratio (abused / alone): {under / alone:.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
