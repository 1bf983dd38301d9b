"""Classroom broadcasts: a short code shows one run, read-only, to any number of viewers.

A broadcast is a server object owned by the instructor: it lives until it is ended, is listed
for any of the instructor's browsers (GET /api/broadcasts), and a code can be moved to the next
run so the class follows. Each open watch page holds one websocket (/ws/watch/<code>); the count
of those per run is pushed to every one of them (and to the instructor's page) whenever it
changes. Broadcasts survive a restart in ``<data_dir>/broadcasts.json`` when the server keeps
its runs on disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Annotated

from fastapi import Depends
from fastapi.requests import HTTPConnection

log = logging.getLogger(__name__)

# no 0/O, 1/I/L: the code is read off a projector and typed on phones
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6


def normalise(code: str) -> str:
    return code.strip().upper()


class Watcher:
    """One watch socket: the newest message waits in a single slot (only the latest count
    matters, so a slow phone never builds a queue)."""

    def __init__(self, code: str, counted: bool) -> None:
        self.code, self.counted = code, counted
        self._message: dict | None = None
        self._wake = asyncio.Event()

    def offer(self, message: dict) -> None:
        self._message = message
        self._wake.set()

    async def next_message(self) -> dict:
        while self._message is None:
            self._wake.clear()
            await self._wake.wait()
        message, self._message = self._message, None
        return message


class Classroom:
    """Codes → run ids, and the watchers of each code. Lives on the event loop thread."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.codes: dict[str, str] = {}  # code → run shown
        self.created: dict[str, float] = {}  # code → Unix time it was opened
        self._load()
        self.watchers: dict[str, set[Watcher]] = {}

    def _load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text())
            # {"broadcasts": {code: {run_id, created}}}; an older file maps code → run id
            items = data["broadcasts"] if "broadcasts" in data else {
                c: {"run_id": r} for c, r in data.items()}
            for code, item in items.items():
                self.codes[normalise(code)] = str(item["run_id"])
                self.created[normalise(code)] = float(item.get("created", 0.0))
        except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable %s: %s", self.path, exc)
            self.codes, self.created = {}, {}

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"broadcasts": {
            c: {"run_id": r, "created": self.created.get(c, 0.0)} for c, r in self.codes.items()}}))
        os.replace(tmp, self.path)  # atomic: a crash never leaves half a file

    def listing(self) -> list[dict]:
        """Every open broadcast, newest first: {code, run_id, viewers, created}."""
        return sorted(({"code": c, "run_id": r, "viewers": self.viewers(r),
                        "created": self.created.get(c, 0.0)} for c, r in self.codes.items()),
                      key=lambda b: -b["created"])

    # -- codes ---------------------------------------------------------------------------------
    def run_of(self, code: str) -> str | None:
        return self.codes.get(normalise(code))

    def code_of(self, run_id: str) -> str | None:
        return next((c for c, r in self.codes.items() if r == run_id), None)

    def broadcast(self, run_id: str, code: str | None = None) -> str:
        """Code showing ``run_id``: ``code`` (an existing one) switches to it, so a class
        following that code moves to the new run; else the run's code, or a new one."""
        if code is not None:
            code = normalise(code)
            if code not in self.codes:
                raise KeyError(code)
        else:
            code = self.code_of(run_id)
            while code is None or (code in self.codes and self.codes[code] != run_id):
                code = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        before = self.codes.get(code)
        self.codes[code] = run_id
        self.created.setdefault(code, time.time())
        self._save()
        if before is not None and before != run_id:
            self._notify(before)
        self._notify(run_id)
        return code

    def end(self, code: str) -> bool:
        code = normalise(code)
        run_id = self.codes.pop(code, None)
        if run_id is None:
            return False
        self.created.pop(code, None)
        self._save()
        for watcher in self.watchers.pop(code, set()):
            watcher.offer({"type": "ended", "code": code})
        self._notify(run_id)
        return True

    # -- viewers -------------------------------------------------------------------------------
    def viewers(self, run_id: str) -> int:
        """Counted watch sockets on any code that shows ``run_id``."""
        return sum(w.counted for code, r in self.codes.items() if r == run_id
                   for w in self.watchers.get(code, ()))

    def message(self, code: str) -> dict:
        run_id = self.codes[code]
        return {"type": "watch", "code": code, "run_id": run_id, "viewers": self.viewers(run_id)}

    def join(self, code: str, counted: bool = True) -> Watcher:
        code = normalise(code)
        watcher = Watcher(code, counted)
        self.watchers.setdefault(code, set()).add(watcher)
        watcher.offer(self.message(code))
        if counted:
            self._notify(self.codes[code])
        return watcher

    def leave(self, watcher: Watcher) -> None:
        peers = self.watchers.get(watcher.code)
        if peers is None or watcher not in peers:
            return
        peers.discard(watcher)
        if not peers:
            del self.watchers[watcher.code]
        if watcher.counted and watcher.code in self.codes:
            self._notify(self.codes[watcher.code])

    def _notify(self, run_id: str) -> None:
        for code, r in self.codes.items():
            if r == run_id:
                for watcher in self.watchers.get(code, ()):
                    watcher.offer(self.message(code))


def get_classroom(conn: HTTPConnection) -> Classroom:
    """The app's Classroom, made on first use (persisted only with the on-disk store)."""
    state = conn.app.state
    if getattr(state, "classroom", None) is None:
        settings = state.settings
        path = settings.data_dir / "broadcasts.json" if settings.store == "sqlite" else None
        state.classroom = Classroom(path)
    return state.classroom


ClassroomDep = Annotated[Classroom, Depends(get_classroom)]
