"""One step's transaction: what it touched, so that it can be persisted, undone or redone.

The core calls ``job``/``worker``/``task`` before it changes an entity, and ``put``/``pop``
for its indexes; the ``Txn`` keeps the first image of each (its *before* image) and the set
of entities to persist. The controller then:

1. ``seal()``: takes the *after* images and puts memory back as it was before the step (so
   nothing else sees a change that is not stored yet), and returns the touched entities;
   an entity the step created (``new``) has no images: putting the indexes back is enough
   to hide it, and it is reachable from nowhere else;
2. persists them (SQLite, then the event log);
3. ``commit()`` once written: the after images go back in place and the deferred work
   (``later``) runs. If the write failed, memory is already exactly as before the step.

``rollback()`` undoes an unsealed step (the core raised halfway). The simulator, which
persists nothing, uses ``Direct``: the same calls, changes kept at once, nothing recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from operator import attrgetter
from typing import Any, TypeVar

from dacirco.domain import Job, Task, Worker

T = TypeVar("T")
_MISSING: Any = object()


# A dataclass's field names and a getter of their values (Job, Task, Worker have slots).
_FIELDS: dict[type, tuple[tuple[str, ...], Callable[[object], tuple[Any, ...]]]] = {}
_COPIED = (list, dict)


def _fields(obj: object) -> tuple[tuple[str, ...], Callable[[object], tuple[Any, ...]]]:
    found = _FIELDS.get(type(obj))
    if found is None:
        names = tuple(f.name for f in fields(obj))  # type: ignore[arg-type]
        many = attrgetter(*names)  # of one name, it gives the value, not a tuple
        get = many if len(names) > 1 else (lambda o: (many(o),))
        found = _FIELDS[type(obj)] = (names, get)
    return found


def _image(obj: object) -> dict[str, Any]:
    names, values = _fields(obj)
    return {
        k: (v.copy() if type(v) in _COPIED else v) for k, v in zip(names, values(obj), strict=True)
    }


def _restore(obj: object, image: dict[str, Any]) -> None:
    for k, v in image.items():
        setattr(obj, k, v.copy() if type(v) in _COPIED else v)


class Direct:
    """No journal: every change stays as it is made (the simulator)."""

    journaled = False

    def job(self, job: Job, new: bool = False) -> Job:
        return job

    def worker(self, worker: Worker, new: bool = False) -> Worker:
        return worker

    def task(self, task: Task, new: bool = False) -> Task:
        return task

    def record(self, obj: T) -> T:
        return obj

    def put(self, d: dict[Any, Any], key: Any, value: Any) -> None:
        d[key] = value

    def pop(self, d: dict[Any, Any], key: Any) -> None:
        d.pop(key, None)

    def later(self, fn: Callable[[], None]) -> None:
        fn()


class Txn(Direct):
    journaled = True

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.workers: dict[str, Worker] = {}
        self.tasks: dict[str, Task] = {}
        # id -> (object, before image, after image); no images for an object the step made
        self._objects: dict[int, tuple[object, dict[str, Any] | None, dict[str, Any] | None]] = {}
        self._keys: dict[tuple[int, Any], tuple[dict[Any, Any], Any, Any]] = {}
        self._after_keys: dict[tuple[int, Any], tuple[dict[Any, Any], Any, Any]] = {}
        self._later: list[Callable[[], None]] = []
        self.sealed = False

    # ---- what a step touches -----------------------------------------------------------
    def _touch(self, obj: object, new: bool = False) -> None:
        if id(obj) not in self._objects:
            self._objects[id(obj)] = (obj, None if new else _image(obj), None)

    def job(self, job: Job, new: bool = False) -> Job:
        """``new``: made by this step (not in the state before it)."""
        self._touch(job, new)
        self.jobs[job.id] = job
        return job

    def worker(self, worker: Worker, new: bool = False) -> Worker:
        self._touch(worker, new)
        self.workers[worker.id] = worker
        return worker

    def task(self, task: Task, new: bool = False) -> Task:
        self._touch(task, new)
        self.tasks[task.id] = task
        return task

    def record(self, obj: T) -> T:
        """An object of the state that is not persisted (counters): undone all the same."""
        self._touch(obj)
        return obj

    def put(self, d: dict[Any, Any], key: Any, value: Any) -> None:
        k = (id(d), key)
        if k not in self._keys:
            self._keys[k] = (d, key, d.get(key, _MISSING))
        d[key] = value

    def pop(self, d: dict[Any, Any], key: Any) -> None:
        k = (id(d), key)
        if k not in self._keys:
            self._keys[k] = (d, key, d.get(key, _MISSING))
        d.pop(key, None)

    def later(self, fn: Callable[[], None]) -> None:
        self._later.append(fn)

    def before(self, obj: object) -> dict[str, Any] | None:
        """``obj`` as it was before the step (None: untouched, or made by the step)."""
        entry = self._objects.get(id(obj))
        return entry[1] if entry is not None else None

    def added(self, d: dict[Any, Any], key: Any) -> bool:
        """Whether the step put ``key`` in ``d`` where it was not."""
        entry = self._keys.get((id(d), key))
        return entry is not None and entry[2] is _MISSING

    @property
    def empty(self) -> bool:
        return not (self._objects or self._keys or self._later)

    # ---- the outcome -------------------------------------------------------------------
    def _put_back(self) -> None:
        for obj, before, _ in self._objects.values():
            if before is not None:
                _restore(obj, before)
        for d, key, _ in self._keys.values():
            d.pop(key, None)
        for d, key, old in self._keys.values():
            if old is not _MISSING:
                d[key] = old

    def seal(self) -> None:
        """Take the after images and put memory back as it was before the step."""
        self._objects = {
            k: (obj, before, None if before is None else _image(obj))
            for k, (obj, before, _) in self._objects.items()
        }
        self._after_keys = {
            k: (d, key, d.get(key, _MISSING)) for k, (d, key, _) in self._keys.items()
        }
        self._put_back()
        self.sealed = True

    def commit(self) -> None:
        """The step is stored: its changes take effect, its deferred work runs."""
        if self.sealed:
            for obj, _, after in self._objects.values():
                if after is not None:
                    _restore(obj, after)
            for d, key, _ in self._keys.values():
                d.pop(key, None)
            for d, key, value in self._after_keys.values():
                if value is not _MISSING:
                    d[key] = value
        for fn in self._later:
            fn()

    def rollback(self) -> None:
        """An unsealed step that could not finish: memory as before it."""
        if not self.sealed:
            self._put_back()
