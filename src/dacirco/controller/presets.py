"""The presets a job may name: the shipped ones (``outputs.presets``) and the operators' own,
stored in the service's SQLite database (table ``presets``, schema 3) and kept in memory once
read. Every database call runs on the store's thread."""

from __future__ import annotations

import sqlite3
import time

from dacirco.controller.store import Store
from dacirco.core.errors import Conflict, InvalidRequest, NotFound
from dacirco.outputs.presets import PRESETS, Preset, PresetBody, from_body, name_problem


class PresetBook:
    """``store`` None: the shipped presets only (nothing can be added)."""

    def __init__(self, store: Store | None) -> None:
        self.store = store
        self._own: dict[str, Preset] | None = None if store is not None else {}  # None: unread

    async def _load(self) -> dict[str, Preset]:
        if self._own is None:
            assert self.store is not None

            def read(db: sqlite3.Connection) -> list[tuple[str, str]]:
                return db.execute("SELECT name, data FROM presets ORDER BY name").fetchall()

            rows = await self.store.run(read)
            self._own = {
                name: from_body(name, PresetBody.model_validate_json(data)) for name, data in rows
            }
        return self._own

    async def all(self) -> dict[str, Preset]:
        """Every preset, the shipped ones first; the operators' by name."""
        return {**PRESETS, **await self._load()}

    async def get(self, name: str) -> Preset | None:
        return PRESETS.get(name) or (await self._load()).get(name)

    async def known(self) -> str:
        return ", ".join(await self.all())

    async def put(self, name: str, body: PresetBody) -> bool:
        """Store the operator's preset ``name`` (True: it is new, False: it was replaced)."""
        if (problem := name_problem(name)) is not None:
            raise (Conflict if name in PRESETS else InvalidRequest)(f"name: {problem}")
        own = await self._load()
        if self.store is None:
            raise InvalidRequest("name: this service keeps no presets of its own")
        data = body.model_dump_json()

        def write(db: sqlite3.Connection) -> None:  # one statement: its own transaction
            db.execute(
                "INSERT INTO presets (name, data, at) VALUES (?, ?, ?) ON CONFLICT(name) "
                "DO UPDATE SET data = excluded.data, at = excluded.at",
                (name, data, time.time()),
            )

        await self.store.run(write)
        new = name not in own
        own[name] = from_body(name, body)
        return new

    async def delete(self, name: str) -> None:
        if name in PRESETS:
            raise Conflict(f"name: {name_problem(name)}")
        own = await self._load()
        if name not in own or self.store is None:
            raise NotFound(f"preset {name[:70]!r} not found")

        def remove(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM presets WHERE name = ?", (name,))

        await self.store.run(remove)
        del own[name]
