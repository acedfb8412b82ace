"""A streaming job's outputs, delivered: its files listed with signed URLs, and its playlists
playable straight from the service.

A play URL signs a job's output folder, not one file: ``/play/<folder>/<expires>/<sig>/<file>``.
A player resolves the names a playlist holds (media playlists, init sections, segments, a
DASH template) against it, so every one of them lands here with the same signature: playlists
are read from the storage and served, every other file is a redirect to the storage's own
signed URL of that one object. Neither the client nor the player ever holds a credential.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from dacirco.api.schemas import OutputFile, OutputsPublic
from dacirco.outputs.names import DASH_MANIFEST, MASTER_PLAYLIST, POSTER, THUMBNAILS_VTT
from dacirco.storage.base import OUTPUT_PREFIX, Storage, output_key
from dacirco.storage.signing import UrlSigner

PLAY_TTL = 6 * 3600.0  # a play URL: long enough to watch a film, pauses included
FILE_TTL = 3600.0  # a file's own URL, from a listing or a play redirect
PLAY = "PLAY"  # the signed "method" of a play URL


class Playback:
    """Signs play URLs and answers them (blocking storage calls: run them in a thread)."""

    def __init__(
        self,
        storage: Storage,
        signer: UrlSigner,
        base_url: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.signer = signer
        self.base_url = base_url.rstrip("/")
        self.clock = clock

    def play_url(self, folder: str, name: str) -> str:
        expires = int(self.clock() + PLAY_TTL)
        sig = self.signer.signature(PLAY, folder, expires)
        return f"{self.base_url}/play/{quote(folder)}/{expires}/{sig}/{quote(name)}"

    def refusal(self, folder: str, expires: int, sig: str) -> str | None:
        """Why a play URL is refused, or None."""
        return self.signer.check(PLAY, folder, expires, sig, self.clock())

    def listing(
        self, job_id: str, folder: str, hidden: frozenset[str] = frozenset()
    ) -> OutputsPublic:
        """The folder's files but ``hidden`` (a split job's partial playlists: the packaging
        has replaced them, and they may still be on their way out)."""
        infos = self.storage.list(OUTPUT_PREFIX + folder, metadata=False)
        infos = [i for i in infos if i.file not in hidden]
        names = {info.file for info in infos}
        playlists = {
            kind: self.play_url(folder, name)
            for kind, name in (("hls", MASTER_PLAYLIST), ("dash", DASH_MANIFEST))
            if name in names
        }
        files = [
            OutputFile(name=i.file, size=i.size, url=self.storage.get_url(i.key, FILE_TTL))
            for i in infos
        ]
        thumbnails = {}
        if THUMBNAILS_VTT in names:
            thumbnails["vtt"] = self.play_url(folder, THUMBNAILS_VTT)
        if POSTER in names:
            thumbnails["poster"] = next(f.url for f in files if f.name == POSTER)
        return OutputsPublic(
            job=job_id,
            folder=folder,
            playlists=playlists,
            files=files,
            thumbnails=thumbnails,
            expires_in=FILE_TTL,
        )

    def file_url(self, folder: str, name: str) -> str:
        return self.storage.get_url(output_key(f"{folder}/{name}"), FILE_TTL)

    def read(self, folder: str, name: str) -> bytes | None:
        """A playlist's bytes, or None when there is no such file."""
        key = output_key(f"{folder}/{name}")
        if self.storage.stat(key) is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            self.storage.get_file(key, path)
            return path.read_bytes()
