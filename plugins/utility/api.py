"""The readings HTTP API (``gateway serve readings``): meter-reading apps and a
distribution operator's system send readings; every one goes through the same checks as
the CLI and CSV import and is recorded with ``how = "api"`` and the token's name as
``by``.

    POST /readings                       {"metering_point": ..., "date": ..., "value": ...}
    GET  /metering-points/{id}/readings

The reading window is judged by the day a reading arrives here (Latvian time), not by
its ``date``, which is kept as the meter's date; an operator's system correcting history
sends ``"correction": "why"``, which is recorded with the reading. Answers carry the
invoice the reading counts for (``period``), ``arrived`` and ``timing``.

Authentication: ``Authorization: Bearer <token>``; tokens are made with
``gateway utility token add NAME`` and stored only as SHA-256 hashes.
"""

# No ``from __future__ import annotations``: FastAPI reads the dependency annotations,
# which name functions local to create_app.
import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from plugins.utility.dates import local_today
from plugins.utility.models import Id, Kwh, Reading
from plugins.utility.store import UtilityError, UtilityStore


class ReadingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metering_point: Id
    date: dt.date
    value: Kwh
    meter_change: bool = False
    old_meter_final: Kwh | None = None
    new_meter_start: Kwh = Field(Decimal(0))
    new_meter: str | None = Field(None, max_length=64)
    correction: str | None = Field(
        None, min_length=1, max_length=200, description="An operator correcting history: "
        "why. The reading then counts for the window of its date, not of its arrival")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_app(db_path: Path, *, today: Any = local_today) -> FastAPI:
    """The API on the utility database at ``db_path``; ``today`` (the Latvian day a
    reading arrives, which the reading window is judged by) is injectable for tests."""
    app = FastAPI(title="Utility readings API", version="1",
                  openapi_url="/openapi.json", docs_url=None, redoc_url=None)

    def store() -> Any:
        # One connection per request: SQLite connections stay in their thread.
        s = UtilityStore(db_path, any_thread=True)
        try:
            yield s
        finally:
            s.close()

    Store = Annotated[UtilityStore, Depends(store)]

    def sender(s: Store, authorization: Annotated[str | None, Header()] = None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        name = s.token_name(token_hash(token)) if scheme.lower() == "bearer" and token \
            else None
        if name is None:
            raise HTTPException(401, "a valid 'Authorization: Bearer <token>' is required",
                                headers={"WWW-Authenticate": "Bearer"})
        return name

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [f"field {'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}"
                  for e in exc.errors()]
        return JSONResponse({"error": "; ".join(errors)}, status_code=422)

    Sender = Annotated[str, Depends(sender)]

    @app.post("/readings", status_code=201)
    def post_reading(body: ReadingIn, by: Sender, s: Store) -> JSONResponse:
        reading = Reading(**body.model_dump(), by=by, how="api")
        try:
            outcome = s.add_reading(reading, today=today())
        except UtilityError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        r = outcome.reading
        return JSONResponse({"status": outcome.status, "metering_point": r.mp,
                             "date": r.date.isoformat(), "value": str(r.value),
                             "consumption": str(outcome.consumption),
                             "period": str(r.period), "arrived": r.arrived.isoformat(),
                             "timing": r.timing, "message": outcome.message},
                            status_code=201 if outcome.status == "accepted" else 200)

    @app.get("/metering-points/{mp}/readings")
    def list_readings(mp: str, _: Sender, s: Store) -> list[dict[str, Any]]:
        if s.get_metering_point(mp) is None:
            raise HTTPException(404, f"no metering point {mp!r}")
        return [{"date": r.date.isoformat(), "value": str(r.value), "period": str(r.period),
                 "meter_change": r.meter_change, "how": r.how, "by": r.by,
                 "arrived": r.arrived.isoformat(), "timing": r.timing,
                 "correction": r.correction, "message": r.message} for r in s.readings(mp)]

    return app
