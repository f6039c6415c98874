"""The HTTP service (``smallchain serve``): callbacks of external tools, approvals, answers, messages.

- ``POST /v1/toolcalls/{id}/result`` is for the external system a webhook tool handed a call to;
  it authenticates with the call's single-use token (``Authorization: Bearer <token>`` or
  ``X-Smallchain-Token``) and sends ``{"result": "..."}`` or ``{"error": "..."}``.
- Everything else under ``/v1`` is for operators and needs ``Authorization: Bearer <api key>``
  (``SMALLCHAIN_API_KEY``); without a configured key those endpoints answer 503.
- ``GET /healthz`` answers without authentication.

Errors are ``{"detail": "<one line>"}``: 401 no credentials, 403 wrong credentials, 404 unknown
id, 409 not in the state the request is for (e.g. already completed), 422 malformed body.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import text as sql_text

from smallchain import waits

if TYPE_CHECKING:
    from smallchain.api import Smallchain


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResultBody(_Body):
    result: str | None = None
    error: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ResultBody:
        if (self.result is None) == (self.error is None):
            raise ValueError('give exactly one of "result" and "error"')
        return self


class RejectBody(_Body):
    reason: str = Field(min_length=1)


class TextBody(_Body):
    text: str = Field(min_length=1)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {message}")
    return "; ".join(parts) or "malformed request"


def create_app(sc: Smallchain) -> FastAPI:
    from smallchain.api import RunNotFound

    app = FastAPI(title="smallchain", summary="Answers for waiting tool calls, and messages to runs.")

    # -- errors ------------------------------------------------------------------------------
    def _detail(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _malformed(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _detail(422, _validation_message(exc))

    async def _unknown(_: Request, exc: Exception) -> JSONResponse:
        return _detail(404, str(exc.args[0]) if exc.args else "not found")

    for unknown in (waits.CallNotFound, waits.RunGone, RunNotFound):
        app.add_exception_handler(unknown, _unknown)

    @app.exception_handler(waits.CallStateError)
    async def _call_state(_: Request, exc: waits.CallStateError) -> JSONResponse:
        return _detail(409, str(exc))

    @app.exception_handler(waits.RunStateError)
    async def _run_state(_: Request, exc: waits.RunStateError) -> JSONResponse:
        return _detail(409, str(exc))

    @app.exception_handler(waits.TokenMissing)
    async def _no_token(_: Request, exc: waits.TokenMissing) -> JSONResponse:
        return _detail(401, str(exc), {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(waits.TokenInvalid)
    async def _bad_token(_: Request, exc: waits.TokenInvalid) -> JSONResponse:
        return _detail(403, str(exc))

    # -- authentication ----------------------------------------------------------------------
    def operator(authorization: Annotated[str | None, Header()] = None) -> None:
        key = sc.settings.api_key
        if not key:
            raise HTTPException(503, "set SMALLCHAIN_API_KEY to use this endpoint")
        given = _bearer(authorization)
        if given is None:
            raise HTTPException(401, "missing Authorization: Bearer <api key>", {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.encode(), key.encode()):
            raise HTTPException(403, "wrong api key")

    def call_token(
        authorization: Annotated[str | None, Header()] = None,
        x_smallchain_token: Annotated[str | None, Header()] = None,
    ) -> str:
        token = _bearer(authorization) or (x_smallchain_token or "").strip()
        if not token:
            raise HTTPException(401, "missing token: send Authorization: Bearer <token> or X-Smallchain-Token",
                                {"WWW-Authenticate": "Bearer"})
        return token

    Operator = Depends(operator)

    # -- external tools ----------------------------------------------------------------------
    @app.post("/v1/toolcalls/{call_id}/result")
    def tool_result(call_id: str, body: ResultBody, token: str = Depends(call_token)) -> dict[str, Any]:  # noqa: B008
        """Complete a call handed to an external system, with the token it was given."""
        outcome = sc.complete_tool_call(call_id, result=body.result, error=body.error, token=token)
        return {"id": call_id, "status": outcome}

    # -- operators ---------------------------------------------------------------------------
    @app.post("/v1/toolcalls/{call_id}/approve", dependencies=[Operator])
    def approve(call_id: str) -> dict[str, Any]:
        return {"id": call_id, "status": sc.approve(call_id)}

    @app.post("/v1/toolcalls/{call_id}/reject", dependencies=[Operator])
    def reject(call_id: str, body: RejectBody) -> dict[str, Any]:
        sc.reject(call_id, body.reason)
        return {"id": call_id, "status": "rejected"}

    @app.post("/v1/toolcalls/{call_id}/respond", dependencies=[Operator])
    def respond(call_id: str, body: TextBody) -> dict[str, Any]:
        sc.respond(call_id, body.text)
        return {"id": call_id, "status": "succeeded"}

    @app.get("/v1/toolcalls", dependencies=[Operator])
    def toolcalls(waiting: bool = True) -> list[dict[str, Any]]:
        """The calls waiting on a person or an external system (only ``waiting=true`` is served)."""
        if not waiting:
            raise HTTPException(422, "only waiting=true is supported; see `smallchain get toolcalls` for the rest")
        return [w.as_dict() for w in sc.waiting()]

    @app.post("/v1/runs/{run_id}/messages", dependencies=[Operator])
    def message(run_id: str, body: TextBody) -> dict[str, Any]:
        handle = sc.send(run_id, body.text)
        return {"run_id": handle.id, "status": handle.status}

    @app.get("/v1/runs/{run_id}", dependencies=[Operator])
    def get_run(run_id: str) -> dict[str, Any]:
        try:
            handle = sc.get_run(run_id)
            row = handle.row
        except RunNotFound as exc:
            raise HTTPException(404, str(exc)) from exc
        return {
            "id": row.id, "name": row.name, "agent": row.agent_name, "status": row.status,
            "output": row.output, "error": row.error, "step": row.step, "depth": row.depth,
            "parent_run_id": row.parent_run_id, "prompt_tokens": row.prompt_tokens,
            "completion_tokens": row.completion_tokens, "created_at": waits.iso(row.created_at),
            "finished_at": waits.iso(row.finished_at),
            "waiting": [w.as_dict() for w in waits.waiting(sc.db, row.id)],
        }

    # -- health ------------------------------------------------------------------------------
    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            with sc.db.transaction() as session:
                session.execute(sql_text("select 1"))
        except Exception as exc:
            return _detail(503, f"database unavailable: {type(exc).__name__}")
        return JSONResponse({"status": "ok"})

    return app
