"""The ASGI app (FastAPI): registry, onboarding, alarms, health and metrics.

**Which thread.** Every handler is ``async def`` so that FastAPI runs it on the event loop
that serves it — the runner's own loop, which owns the alert store's SQLite connection (a
plain ``def`` handler would run in a worker thread and the store would refuse it).
Onboarding, which touches only files and the broker, runs in a worker thread under a lock,
so a slow dashboard build does not hold readings up.

**Who sees what.** Every route but ``/healthz`` and the OpenAPI document needs
``Authorization: Bearer <token>`` (401 without or with an unknown token). A ``centre`` token
sees everything. An ``enterprise:<id>`` token sees only that enterprise: another
enterprise's registry entry or alarm answers 404 exactly as an unknown one does, so it
learns nothing, not even that it exists. ``/metrics`` is for the centre (counts across every
enterprise).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from alerting.lifecycle import AckMethod, AlarmRecord, State
from alerting.store import AlertStore
from alerting.store_rows import AckResult, AckStatus, StepStatus
from earlywarn import __version__
from earlywarn.api.models import (
    AckIn,
    AckOut,
    AckRowOut,
    AlarmDetail,
    AlarmOut,
    AttemptOut,
    CredentialOut,
    EnterpriseOut,
    EnterpriseSummary,
    ErrorOut,
    Health,
    OnboardingOut,
    Problem,
    TransitionOut,
)
from earlywarn.api.tokens import CENTRE, Principal, Tokens
from earlywarn.counters import Counters
from earlywarn.metrics import CONTENT_TYPE, EarlywarnCollector, StoreStats, metrics_registry, render
from earlywarn.mqtt_accounts import Mode
from earlywarn.onboard import Onboarder, OnboardingError, OnboardResult
from earlywarn.onboard_check import Checked, check_enterprise_file, declared_id, problem_paths
from earlywarn.registry import Registry
from rules.levels import Level

MAX_SUBMISSION = 1024 * 1024
"""An enterprise file is a few kilobytes; a megabyte is generous and bounds the work."""
SUBMISSION_NAME = "submitted.yaml"

LevelName = Literal["blue", "yellow", "orange", "red"]
Ack = Callable[[str, str, AckMethod, str], AckResult]


@dataclass
class ApiContext:
    """What the API reads and calls; the runner (or a test) fills it in."""

    registry: Registry
    tokens: Tokens
    store: AlertStore
    ack: Ack
    """Acknowledge (the alert service's, which also tells the others reached)."""
    counters: Callable[[], Counters | None] = lambda: None
    queues: Callable[[], dict[str, int]] = dict
    mqtt_connected: Callable[[], bool | None] = lambda: None
    onboarder: Onboarder | None = None
    """``None``: submissions are checked but cannot be applied on this server."""
    onboarding_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


_bearer = HTTPBearer(auto_error=False, description="an API token from the tokens file")
Responses = dict[int | str, dict[str, Any]]
_UNAUTHORISED: Responses = {401: {"model": ErrorOut, "description": "no token, or an unknown one"}}
_NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "unknown, or not yours"}}


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The token's principal; 401 without a token or with an unknown one."""
    ctx: ApiContext = request.app.state.ctx
    found = ctx.tokens.find(credentials.credentials) if credentials is not None else None
    if found is None:
        raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})
    return found


Who = Annotated[Principal, Depends(principal)]


def create_app(ctx: ApiContext) -> FastAPI:
    """The app over ``ctx``."""
    app = FastAPI(
        title="earlywarn API",
        version=__version__,
        description="Registry, onboarding, alarms and metrics of an earlywarn service. "
        "Bearer tokens: role `centre` sees everything, `enterprise:<id>` only its own.",
    )
    app.state.ctx = ctx
    stats = StoreStats(ctx.store.path)
    metrics = metrics_registry(EarlywarnCollector(ctx.counters, ctx.queues, stats))

    def visible_record(who: Principal, ref: int) -> AlarmRecord:
        record = ctx.store.get_by_ref(ref) if 0 < ref < 2**63 else None
        if record is None or not who.sees(record.enterprise):
            raise HTTPException(404, f"no alarm #{ref}")
        return record

    @app.get("/healthz", response_model=Health, tags=["service"])
    async def health() -> Health:
        """Liveness; no token needed."""
        return Health(status="ok", mqtt_connected=ctx.mqtt_connected())

    @app.get(
        "/metrics",
        tags=["service"],
        responses={
            **_UNAUTHORISED,
            403: {"model": ErrorOut},
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        },
        response_class=Response,
    )
    async def prometheus(who: Who) -> Response:
        """Prometheus metrics (centre tokens only)."""
        if who.role != CENTRE:
            raise HTTPException(403, "metrics are for the monitoring centre")
        return Response(render(metrics), media_type=CONTENT_TYPE)

    @app.get(
        "/api/v1/enterprises",
        response_model=list[EnterpriseSummary],
        tags=["registry"],
        responses=_UNAUTHORISED,
    )
    async def enterprises(who: Who) -> list[EnterpriseSummary]:
        """The enterprises this token sees."""
        return [
            EnterpriseSummary.of(e) for e in ctx.registry.enterprises.values() if who.sees(e.id)
        ]

    @app.get(
        "/api/v1/enterprises/{enterprise_id}",
        response_model=EnterpriseOut,
        tags=["registry"],
        responses={**_UNAUTHORISED, **_NOT_FOUND},
    )
    async def enterprise(enterprise_id: str, who: Who) -> EnterpriseOut:
        """One enterprise: sites, sensors and their topics, people, chain."""
        found = ctx.registry.enterprises.get(enterprise_id)
        if found is None or not who.sees(found.id):
            raise HTTPException(404, f"no enterprise {enterprise_id!r}")
        return EnterpriseOut.detail(found)

    @app.get(
        "/api/v1/alarms",
        response_model=list[AlarmOut],
        tags=["alarms"],
        responses={**_UNAUTHORISED, **_NOT_FOUND},
    )
    async def alarms(
        who: Who,
        state: Annotated[list[State] | None, Query()] = None,
        level: Annotated[LevelName | None, Query(description="minimum peak level")] = None,
        enterprise: str | None = None,
        site: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AlarmOut]:
        """Alarms, newest first; an enterprise token gets only its own."""
        if enterprise is not None and not who.sees(enterprise):
            raise HTTPException(404, f"no enterprise {enterprise!r}")
        min_level = Level.parse(level) if level is not None else None
        records = ctx.store.list_alarms(
            states=state,
            enterprise=enterprise or who.enterprise,
            site=site,
            min_level=min_level,
            limit=limit,
        )
        return [AlarmOut.of(r) for r in records]

    @app.get(
        "/api/v1/alarms/{ref}",
        response_model=AlarmDetail,
        tags=["alarms"],
        responses={**_UNAUTHORISED, **_NOT_FOUND},
    )
    async def alarm(ref: int, who: Who) -> AlarmDetail:
        """One alarm with its transitions, notifications and acknowledgements."""
        record = visible_record(who, ref)
        history = ctx.store.history(record.alarm_id)
        assert history is not None  # noqa: S101 - the record was just read
        return AlarmDetail(
            alarm=AlarmOut.of(history.record),
            transitions=[
                TransitionOut(
                    kind=t.kind.value,
                    ts_ms=t.ts_ms,
                    from_state=t.from_state.value if t.from_state else None,
                    to_state=t.to_state.value,
                    from_level=t.from_level.label if t.from_level else None,
                    to_level=t.to_level.label if t.to_level else None,
                    by=t.by,
                )
                for t in history.transitions
            ],
            attempts=[
                AttemptOut(
                    person=a.person,
                    channel=a.channel,
                    outcome=a.outcome.value,
                    attempt=a.attempt,
                    ts_ms=a.ts_ms,
                )
                for a in history.attempts
            ],
            acks=[
                AckRowOut(by=a.by, how=a.how.value, comment=a.comment, ts_ms=a.ts_ms)
                for a in history.acks
            ],
            pending_steps=sum(1 for s in history.steps if s.status is StepStatus.PENDING),
        )

    @app.post(
        "/api/v1/alarms/{ref}/ack",
        response_model=AckOut,
        tags=["alarms"],
        responses={
            **_UNAUTHORISED,
            **_NOT_FOUND,
            403: {"model": ErrorOut, "description": "`by` is not a person this token may act for"},
        },
    )
    async def acknowledge(ref: int, body: AckIn, who: Who) -> AckOut:
        """Acknowledge for a person of the registry (for an enterprise token: one of its
        own people); every pending call and message of the alarm stops."""
        record = visible_record(who, ref)
        person = ctx.registry.people.get(body.by)
        own = who.enterprise
        allowed = own is None or (
            own in ctx.registry.enterprises
            and any(p.id == body.by for p in ctx.registry.enterprises[own].people)
        )
        if person is None or not allowed:
            raise HTTPException(403, f"{body.by!r} is not a person this token may act for")
        result = ctx.ack(record.alarm_id, body.by, AckMethod.WEB, body.comment)
        if result.status is AckStatus.UNKNOWN:
            raise HTTPException(404, f"no alarm #{ref}")
        return AckOut(
            status=result.status.value,
            alarm_id=result.alarm_id,
            acked_by=result.by,
            acked_ms=result.at_ms,
            cancelled_steps=result.cancelled_steps,
        )

    @app.post(
        "/api/v1/onboarding",
        response_model=OnboardingOut,
        tags=["onboarding"],
        responses={
            **_UNAUTHORISED,
            403: {"model": ErrorOut},
            409: {"model": ErrorOut},
            413: {"model": ErrorOut},
            400: {"model": OnboardingOut, "description": "the file has problems"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "description": "the enterprise file (一企一档), YAML as in docs/registry.md",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def onboarding(
        request: Request,
        who: Who,
        apply: bool = False,
        update: bool = False,
        rotate: bool = False,
        mode: Mode | None = None,
    ) -> Response | OnboardingOut:
        """Check an enterprise file against the registry (``apply=false``, the default) or
        onboard it: registry file, MQTT accounts (secrets in the answer, once), ACL, broker
        reload. An enterprise token may submit only its own enterprise's file."""
        body = await request.body()
        if len(body) > MAX_SUBMISSION:
            raise HTTPException(413, f"an enterprise file is at most {MAX_SUBMISSION} bytes")
        if apply and ctx.onboarder is None:
            raise HTTPException(409, "onboarding is not configured on this server (--mqtt-dir)")
        async with ctx.onboarding_lock:
            out = await asyncio.to_thread(
                _submit, ctx, who, body, apply=apply, update=update, rotate=rotate, mode=mode
            )
        if isinstance(out, HTTPException):
            raise out
        if not out.ok:
            return Response(out.model_dump_json(), 400, media_type="application/json")
        return out

    return app


def _submit(
    ctx: ApiContext,
    who: Principal,
    body: bytes,
    *,
    apply: bool,
    update: bool,
    rotate: bool,
    mode: Mode | None,
) -> OnboardingOut | HTTPException:
    """Check or onboard a submitted file (in a worker thread: files only, no store)."""
    with tempfile.TemporaryDirectory(prefix="earlywarn-api-") as tmp:
        source = Path(tmp) / SUBMISSION_NAME
        source.write_bytes(body)
        eid, _ = declared_id(source)
        if eid is not None and not who.sees(eid):
            return HTTPException(403, f"this token may submit only enterprise {who.enterprise}")
        registry_dir = ctx.registry.path
        if not apply or ctx.onboarder is None:
            checked = check_enterprise_file(source, registry_dir, update=update)
            return _checked_out(checked, source)
        try:
            result = ctx.onboarder.onboard(source, rotate=rotate, mode=mode, update=update)
        except OnboardingError as exc:
            return _problems_out(exc.problems, source)
        return _applied_out(result)


def _problems_out(problems: tuple[Any, ...], source: Path) -> OnboardingOut:
    paths = problem_paths(source, problems)
    return OnboardingOut(
        ok=False,
        applied=False,
        problems=[
            Problem(
                file=SUBMISSION_NAME if Path(p.file) == source else Path(p.file).name,
                line=p.line,
                path=path,
                message=p.message.replace(str(source), SUBMISSION_NAME),
            )
            for p, path in zip(problems, paths, strict=True)
        ],
    )


def _checked_out(checked: Checked, source: Path) -> OnboardingOut:
    if not checked.ok or checked.enterprise is None:
        return _problems_out(checked.problems, source)
    return OnboardingOut(
        ok=True,
        applied=False,
        enterprise=checked.enterprise.id,
        target=checked.target.name if checked.target else None,
    )


def _applied_out(result: OnboardResult) -> OnboardingOut:
    return OnboardingOut(
        ok=True,
        applied=True,
        enterprise=result.enterprise.id,
        target=result.target.name,
        credentials=[
            CredentialOut(
                user=c.user,
                site=c.site,
                devices=list(c.devices),
                status=c.status.value,
                password=c.password,
                publish=list(c.account.write) if c.account else [],
                subscribe=list(c.account.read) if c.account else [],
            )
            for c in result.credentials
        ],
        broker=result.broker.error or result.broker.done,
        restart_needed=result.registry_changed,
    )
