"""What the API answers with: pydantic models, so the OpenAPI document describes exactly
what is sent (and schemathesis can check every answer against it)."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field

from alerting.lifecycle import AlarmRecord
from earlywarn.model import Enterprise, Sensor


class Health(BaseModel):
    """Liveness, and whether the MQTT connection is up (``null``: not known here)."""

    status: str
    mqtt_connected: bool | None


class Problem(BaseModel):
    """One problem of a submitted file: where (``line``, ``path``) and what."""

    file: str
    line: int
    path: str = Field(description="YAML path of the line, e.g. enterprise.sites[0].sensors[1]")
    message: str


class ErrorOut(BaseModel):
    """An error in plain words."""

    detail: str


class SensorOut(BaseModel):
    """A sensor as the registry holds it, with the topic its device publishes on."""

    id: str
    name: str
    kind: str
    unit: str
    range: tuple[float, float]
    interval_s: float
    device: str
    channel: str | None
    topic: str
    rules: list[str]

    @classmethod
    def of(cls, s: Sensor) -> SensorOut:
        return cls(
            id=s.id,
            name=s.name,
            kind=s.kind,
            unit=s.unit,
            range=s.range,
            interval_s=s.interval_s,
            device=s.device,
            channel=s.channel,
            topic=f"ew/v1/{s.enterprise}/{s.site}/{s.device}/up",
            rules=[r.rule_id for r in s.rules],
        )


class SiteOut(BaseModel):
    """A site and its sensors."""

    id: str
    name: str
    address: str
    location: tuple[float, float] | None
    sensors: list[SensorOut]


class PersonOut(BaseModel):
    """A responsible person."""

    id: str
    name: str
    role: str
    phone: str


class EnterpriseSummary(BaseModel):
    """One line of the enterprise list."""

    id: str
    name: str
    kind: str
    region: str
    sites: int
    sensors: int

    @classmethod
    def of(cls, e: Enterprise) -> EnterpriseSummary:
        return cls(
            id=e.id,
            name=e.name,
            kind=e.kind,
            region=e.region,
            sites=len(e.sites),
            sensors=sum(len(s.sensors) for s in e.sites),
        )


class EnterpriseOut(EnterpriseSummary):
    """An enterprise's registry entry: sites, sensors, people, chain."""

    people: list[PersonOut]
    chain: dict[str, list[list[str]]]
    site_list: list[SiteOut]

    @classmethod
    def detail(cls, e: Enterprise) -> EnterpriseOut:
        return cls(
            **EnterpriseSummary.of(e).model_dump(),
            people=[PersonOut(id=p.id, name=p.name, role=p.role, phone=p.phone) for p in e.people],
            chain={
                level.label: [[str(t) for t in rung] for rung in rungs]
                for level, rungs in e.chain.items()
            },
            site_list=[
                SiteOut(
                    id=s.id,
                    name=s.name,
                    address=s.address,
                    location=s.location,
                    sensors=[SensorOut.of(x) for x in s.sensors],
                )
                for s in e.sites
            ],
        )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class AlarmOut(BaseModel):
    """One alarm occurrence as the store holds it now."""

    ref: int
    alarm_id: str
    enterprise: str
    site: str
    sensor: str
    sensor_id: str
    kind: str
    rule: str
    rule_kind: str
    enterprise_name: str
    site_name: str
    sensor_name: str
    state: str
    level: str | None
    peak_level: str
    value: float | None
    setpoint: float | None
    setpoint_label: str
    unit: str
    message: str
    start_ms: int
    last_ts_ms: int
    cleared_ms: int | None
    acked_ms: int | None
    acked_by: str | None
    drill: bool
    flapping: bool
    shelved_until_ms: int | None

    @classmethod
    def of(cls, r: AlarmRecord) -> AlarmOut:
        return cls(
            ref=r.ref or 0,
            alarm_id=r.alarm_id,
            enterprise=r.enterprise,
            site=r.site,
            sensor=r.sensor,
            sensor_id=r.sensor_id,
            kind=r.kind,
            rule=r.rule,
            rule_kind=r.rule_kind,
            enterprise_name=r.enterprise_name,
            site_name=r.site_name,
            sensor_name=r.sensor_name,
            state=r.state.value,
            level=r.level.label if r.level is not None else None,
            peak_level=r.peak.label,
            value=_finite(r.value),
            setpoint=_finite(r.setpoint),
            setpoint_label=r.setpoint_label,
            unit=r.unit,
            message=r.message,
            start_ms=r.start_ms,
            last_ts_ms=r.last_ts_ms,
            cleared_ms=r.cleared_ms,
            acked_ms=r.acked_ms,
            acked_by=r.acked_by,
            drill=r.drill,
            flapping=r.flapping,
            shelved_until_ms=r.shelved_until_ms,
        )


class TransitionOut(BaseModel):
    """One change of an occurrence."""

    kind: str
    ts_ms: int
    from_state: str | None
    to_state: str
    from_level: str | None
    to_level: str | None
    by: str | None


class AttemptOut(BaseModel):
    """One delivery attempt."""

    person: str
    channel: str
    outcome: str
    attempt: int
    ts_ms: int


class AckRowOut(BaseModel):
    """One acknowledgement."""

    by: str
    how: str
    comment: str
    ts_ms: int


class AlarmDetail(BaseModel):
    """An alarm with its history: transitions, who was called, acknowledgements."""

    alarm: AlarmOut
    transitions: list[TransitionOut]
    attempts: list[AttemptOut]
    acks: list[AckRowOut]
    pending_steps: int


class AckIn(BaseModel):
    """An acknowledgement: who (a person id of the registry) and what was done."""

    by: str = Field(min_length=1, max_length=64)
    comment: str = Field(default="", max_length=500)


class AckOut(BaseModel):
    """What the acknowledgement came to."""

    status: str = Field(description="acked, or already_acked (nothing changed)")
    alarm_id: str
    acked_by: str | None
    acked_ms: int | None
    cancelled_steps: int


class CredentialOut(BaseModel):
    """An MQTT account after onboarding; ``password`` only when issued by this request."""

    user: str
    site: str
    devices: list[str]
    status: str
    password: str | None
    publish: list[str]
    subscribe: list[str]


class OnboardingOut(BaseModel):
    """A submission's outcome: its problems, or what was (or would be) done."""

    ok: bool
    applied: bool
    enterprise: str | None = None
    target: str | None = None
    problems: list[Problem] = Field(default_factory=list)
    credentials: list[CredentialOut] = Field(default_factory=list)
    broker: str | None = None
    restart_needed: bool = False
