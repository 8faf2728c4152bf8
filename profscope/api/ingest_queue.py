"""Group commit for the push endpoints: request threads decode and check their profiles, hand
them to one writer thread, and wait until the batch that holds them is committed.

Many small profiles per second (agents push one 10-second profile per service every 10 s) cost
one DuckDB transaction each when written one by one; batching them in one transaction makes the
store's cost per profile several times smaller. A request returns only after its profiles are
committed (or refused), so an acknowledged push is never lost. The queue is bounded: beyond
``max_pending`` waiting profiles a push gets 429 and the agent retries later.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..errors import Overloaded, ProfscopeError, StoreError

log = logging.getLogger("profscope.ingest")

Item = tuple[Any, dict[str, str], str]   # (Profile, series labels, tenant)


@dataclass
class _Ticket:
    items: list[Item]
    done: threading.Event = field(default_factory=threading.Event)
    results: list[Any] = field(default_factory=list)


class IngestQueue:
    def __init__(self, store, max_pending: int = 1024, max_batch: int = 128, wait_timeout_s: float = 60.0):
        self.store = store
        self.max_pending = max_pending
        self.max_batch = max_batch
        self.wait_timeout_s = wait_timeout_s
        self._cv = threading.Condition()
        self._tickets: deque[_Ticket] = deque()
        self._pending = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="profscope-ingest-writer", daemon=True)
        self._thread.start()

    def submit(self, items: list[Item]) -> list[Any]:
        """Store ``items`` in the next batch; returns one result per item (an ``IngestResult`` or
        the error that refused that item). Raises :class:`Overloaded` when the queue is full."""
        if not items:
            return []
        ticket = _Ticket(list(items))
        with self._cv:
            if self._closed:
                raise StoreError("the server is shutting down; retry later")
            if self._pending and self._pending + len(items) > self.max_pending:
                raise Overloaded(f"{self._pending} profiles are waiting to be stored "
                                 f"(limit ingest_queue_size={self.max_pending}); retry later")
            self._tickets.append(ticket)
            self._pending += len(items)
            self._cv.notify()
        if not ticket.done.wait(self.wait_timeout_s):
            raise StoreError(f"storing the profiles took longer than {self.wait_timeout_s:.0f} s; "
                             "they may or may not be stored")
        return ticket.results

    def _take_batch(self) -> list[_Ticket] | None:
        with self._cv:
            while not self._tickets and not self._closed:
                self._cv.wait()
            if not self._tickets:
                return None
            batch: list[_Ticket] = []
            n = 0
            while self._tickets and (not batch or n + len(self._tickets[0].items) <= self.max_batch):
                t = self._tickets.popleft()
                batch.append(t)
                n += len(t.items)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            items = [it for t in batch for it in t.items]
            try:
                results: list[Any] = self.store.ingest_many(items)
            except ProfscopeError as e:
                results = [e] * len(items)
            except Exception as e:   # never let the writer die: report to the waiting requests
                log.exception("ingest batch failed")
                results = [StoreError(f"storing the batch failed: {e.__class__.__name__}: {e}")] * len(items)
            pos = 0
            for t in batch:
                t.results = results[pos:pos + len(t.items)]
                pos += len(t.items)
            with self._cv:
                self._pending -= len(items)
            for t in batch:
                t.done.set()

    def close(self, timeout: float = 10.0) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(timeout)


def get_queue(state) -> IngestQueue:
    """The app's ingest queue, created on first use."""
    q = state.extras.get("ingest_queue")
    if q is None:
        with _create_lock:
            q = state.extras.get("ingest_queue")
            if q is None:
                cfg = state.config
                q = state.extras["ingest_queue"] = IngestQueue(
                    state.store, max_pending=int(cfg.get("ingest_queue_size", 1024)),
                    max_batch=int(cfg.get("ingest_batch_size", 128)))
    return q


_create_lock = threading.Lock()


def store_all(state, items: list[Item]) -> list[Any]:
    """Submit and raise the first refusal (all items of one request succeed or the request
    fails; items are checked before they are queued, so a refusal here is rare)."""
    for profile, labels, _tenant in items:
        state.store.check(profile, labels)
    results = get_queue(state).submit(items)
    for r in results:
        if isinstance(r, Exception):
            raise r
    return results
