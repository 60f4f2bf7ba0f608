"""Peers of a multi-process run: a lost one is noticed within a timeout.

JAX's distributed runtime notices a dead process by its missing heartbeats, and then
aborts every survivor from a C++ thread (``LOG(QFATAL)``: a fatal log and SIGABRT,
exit 134) — its ``missed_heartbeat_callback`` cannot be set from Python in jaxlib
0.10 (the status argument fails to convert: ``std::bad_cast``).  ``PeerWatchdog``
notices it first, with JAX's own key-value store (nothing home-made on the wire):
every process bumps its counter ``jaxunc/beat/<id>`` every ``interval`` seconds and
reads its peers'; a peer whose counter has not moved for ``timeout`` seconds (killed,
hung, or the coordinator itself gone, when the reads fail) is lost, and so is one
that finished with a nonzero exit code (``jaxunc/done/<id>``).  ``on_lost(message)``
is then called once, from the watchdog's own thread.  Start JAX's heartbeat with a
longer timeout (``jax_heartbeat_timeout``) so that the watchdog speaks first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["PeerWatchdog", "jax_heartbeat_timeout"]


def jax_heartbeat_timeout(timeout: float) -> int:
    """JAX's own heartbeat timeout (seconds) for a watchdog of ``timeout`` seconds:
    long enough that the watchdog (``timeout`` plus one beat) always comes first,
    and still a backstop should the watchdog's thread be starved."""
    return int(2 * timeout + 30)


class PeerWatchdog:
    """Watches the peers of process ``process_id`` of ``num_processes`` through
    ``client`` (a ``jax`` distributed-runtime client: ``key_value_set`` and
    ``key_value_try_get``).

    ``timeout``: seconds without a beat before a peer counts as lost; ``interval``:
    seconds between beats (default ``min(1, timeout / 4)``); ``on_lost(message)``:
    called once, from the watchdog thread, with one sentence naming the peer.
    ``done(code)`` publishes this process's exit code and stops the watchdog.
    """

    def __init__(
        self,
        client: Any,
        process_id: int,
        num_processes: int,
        timeout: float,
        on_lost: Callable[[str], None],
        interval: float | None = None,
    ) -> None:
        self.client = client
        self.process_id = process_id
        self.peers = [p for p in range(num_processes) if p != process_id]
        self.timeout = float(timeout)
        self.interval = min(1.0, self.timeout / 4) if interval is None else interval
        self.on_lost = on_lost
        now = time.monotonic()
        self._seen = {peer: (None, now) for peer in self.peers}
        self._finished: set[int] = set()
        self._failed: dict[int, str] = {}
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._beat, name="jaxunc-beat", daemon=True),
            threading.Thread(target=self._check, name="jaxunc-watch", daemon=True),
        ]

    def start(self) -> PeerWatchdog:
        for thread in self._threads:
            thread.start()
        return self

    def done(self, code: int) -> None:
        """Publish this process's exit code (peers stop watching it) and stop."""
        self._stop.set()
        try:
            self.client.key_value_set(
                f"jaxunc/done/{self.process_id}", str(int(code)), allow_overwrite=True
            )
        except Exception:  # the coordinator may be gone: nothing left to tell
            pass

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def _beat(self) -> None:
        """Bump this process's counter and read the peers' (RPCs; may block while
        the coordinator is unreachable, which ``_check`` notices by the clock)."""
        count = 0
        while not self._stop.is_set():
            count += 1
            try:
                self.client.key_value_set(
                    f"jaxunc/beat/{self.process_id}", str(count), allow_overwrite=True
                )
            except Exception:
                pass
            for peer in self.peers:
                self._read(peer)
            self._stop.wait(self.interval)

    def _read(self, peer: int) -> None:
        try:
            done = self._try_get(f"jaxunc/done/{peer}")
            beat = self._try_get(f"jaxunc/beat/{peer}")
        except Exception:  # coordinator unreachable: the peer is not seen
            return
        with self._lock:
            if done is not None:
                self._finished.add(peer)
                if done != "0":
                    self._failed[peer] = done
            if beat is not None and beat != self._seen[peer][0]:
                self._seen[peer] = (beat, time.monotonic())

    def _try_get(self, key: str) -> str | None:
        """The value of ``key``, None if it is not set (``NOT_FOUND``); other
        errors (the coordinator unreachable) propagate."""
        try:
            return self.client.key_value_try_get(key)
        except Exception as error:
            if "NOT_FOUND" in str(error) or "not found" in str(error).lower():
                return None
            raise

    def _check(self) -> None:
        while not self._stop.wait(self.interval / 2):
            message = self._verdict(time.monotonic())
            if message is not None:
                self._lost.set()
                self.on_lost(message)
                return

    def _verdict(self, now: float) -> str | None:
        """One sentence about the first lost peer at time ``now``, or None."""
        with self._lock:
            for peer, code in self._failed.items():
                return f"process {peer} of the run failed (exit code {code})"
            for peer, (_, seen) in self._seen.items():
                if peer not in self._finished and now - seen > self.timeout:
                    return (
                        f"process {peer} of the run stopped answering for more than "
                        f"--process-timeout {self.timeout:g} s (it died, hung, or its "
                        "host is unreachable)"
                    )
        return None
