"""The public routes' backend when the controller runs apart (``dacirco rest-api``): every
call forwarded over HTTP, its answers checked against the schemas."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from dacirco.api.backend import ApiError, one_line
from dacirco.api.responses import error_fields
from dacirco.api.schemas import JobCreate, JobPublic, OutputsPublic, Page, WorkerPublic
from dacirco.outputs.presets import PresetBody, PresetPublic, PresetsPublic

M = TypeVar("M", bound=BaseModel)


def _segment(value: str) -> str:
    """``value`` as one path segment: nothing in it may end the path or walk out of it."""
    if value in (".", ".."):
        return "%2E" * len(value)  # quote() keeps dots, and "." would be normalised away
    return quote(value, safe="")


def _page_params(limit: int | None, after: str | None) -> dict[str, object]:
    params: dict[str, object] = {}
    if limit is not None:
        params["limit"] = limit
    if after:
        params["after"] = after
    return params


class RemoteBackend:
    """The controller runs apart (``dacirco controller``): forward to its API over HTTP.

    Ids are quoted into one path segment each. An answer the controller should not give (a
    redirect where none is expected, a body that is not JSON or not of the expected shape) is
    a 502, never a 500.
    """

    def __init__(
        self,
        controller_url: str,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self.client = httpx.AsyncClient(
            base_url=controller_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers=headers,
        )

    async def _call(
        self, method: str, path: str, *, redirect: bool = False, **kwargs: object
    ) -> httpx.Response:
        try:
            resp = await self.client.request(
                method,
                path,
                follow_redirects=False,
                **kwargs,  # type: ignore[arg-type]
            )
        except httpx.HTTPError as exc:
            raise ApiError(503, f"controller unreachable at {self.client.base_url}: {exc}") from exc
        if resp.status_code >= 400:
            raise _refusal(resp, method, path)
        if (300 <= resp.status_code < 400) != redirect:
            where = resp.headers.get("location")
            what = f"{resp.status_code} to {where}" if where else str(resp.status_code)
            raise _invalid(f"{method} {path} answered {what}")
        return resp

    @staticmethod
    def _model(resp: httpx.Response, model: type[M]) -> M:
        try:
            return model.model_validate_json(resp.content)
        except ValidationError as exc:
            errors = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
                for e in exc.errors()
            )
            raise _invalid(f"{resp.request.method} {resp.request.url.path}: {errors}") from exc

    async def submit(self, body: JobCreate) -> str:
        # Fields left at their defaults are not sent: a classic controller keeps working.
        data = body.model_dump(mode="json", exclude_defaults=True)
        data.update(
            body.model_dump(
                mode="json", include={"id_video", "bitrate", "speed"}, exclude_none=True
            )
        )
        resp = await self._call("POST", "/jobs", json=data)
        try:
            job_id = resp.json()
        except ValueError:
            job_id = None
        if not isinstance(job_id, str) or not job_id:
            raise _invalid(f"POST /jobs answered {resp.text[:100]!r}, not a job id")
        return job_id

    async def jobs(self, limit: int | None, after: str | None) -> Page:
        resp = await self._call("GET", "/jobs", params=_page_params(limit, after))
        return self._model(resp, Page)

    async def job(self, job_id: str) -> JobPublic:
        return self._model(await self._call("GET", f"/jobs/{_segment(job_id)}"), JobPublic)

    async def cancel(self, job_id: str) -> JobPublic:
        return self._model(await self._call("DELETE", f"/jobs/{_segment(job_id)}"), JobPublic)

    async def events(
        self, job_id: str | None, after: int | None, follow: bool = True
    ) -> AsyncIterator[bytes]:
        """The controller's stream, passed through as it comes."""
        params: dict[str, object] = {"follow": "true" if follow else "false"}
        if job_id is not None:
            params["job"] = job_id
        if after is not None:
            params["after"] = after
        request = self.client.build_request(
            "GET", "/events", params=params, timeout=httpx.Timeout(30.0, read=None)
        )
        try:
            resp = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ApiError(503, f"controller unreachable at {self.client.base_url}: {exc}") from exc
        if resp.status_code != 200:
            await resp.aread()
            await resp.aclose()
            if resp.status_code >= 400:
                raise _refusal(resp, "GET", "/events")
            raise _invalid(f"GET /events answered {resp.status_code}")

        async def stream() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.aiter_raw():
                    yield chunk
            except httpx.HTTPError:
                return  # the controller went away: the client reconnects with Last-Event-ID
            finally:
                await resp.aclose()

        return stream()

    async def workers(self, limit: int | None, after: str | None) -> Page:
        resp = await self._call("GET", "/workers", params=_page_params(limit, after))
        return self._model(resp, Page)

    async def worker(self, worker_id: str) -> WorkerPublic:
        resp = await self._call("GET", f"/workers/{_segment(worker_id)}")
        return self._model(resp, WorkerPublic)

    async def output_url(self, job_id: str) -> str:
        resp = await self._call("GET", f"/jobs/{_segment(job_id)}/output", redirect=True)
        location = resp.headers.get("location")
        if not location:
            raise _invalid("no output location")
        return location

    async def outputs(self, job_id: str) -> OutputsPublic:
        return self._model(
            await self._call("GET", f"/jobs/{_segment(job_id)}/outputs"), OutputsPublic
        )

    async def presets(self) -> PresetsPublic:
        return self._model(await self._call("GET", "/presets"), PresetsPublic)

    async def preset(self, name: str) -> PresetPublic:
        return self._model(await self._call("GET", f"/presets/{_segment(name)}"), PresetPublic)

    async def put_preset(self, name: str, body: PresetBody) -> tuple[PresetPublic, bool]:
        resp = await self._call(
            "PUT", f"/presets/{_segment(name)}", json=body.model_dump(mode="json")
        )
        return self._model(resp, PresetPublic), resp.status_code == 201

    async def delete_preset(self, name: str) -> None:
        await self._call("DELETE", f"/presets/{_segment(name)}")

    async def aclose(self) -> None:
        await self.client.aclose()


def _refusal(resp: httpx.Response, method: str, path: str) -> ApiError:
    """The controller's refusal, as this API answers it."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    detail, message = error_fields(body, resp.text)
    if resp.status_code in (401, 403):
        # The controller refused this API's own token: the client can do nothing.
        return _invalid(
            f"{method} {path} refused this API's controller token "
            f"({resp.status_code}: {message or detail}); check --controller-token"
        )
    retry = resp.headers.get("retry-after")
    headers = {"Retry-After": retry} if resp.status_code in (429, 503) and retry else None
    return ApiError(resp.status_code, detail, message, headers)


def _invalid(what: str) -> ApiError:
    return ApiError(502, one_line(f"controller gave an invalid answer: {what}"))
