"""A typed InfluxQL query for Grafana's InfluxDB data source, as the foundation SDK's variants.

The SDK ships builders for Prometheus, Loki and others but none for InfluxDB, so this module
is the missing one: :class:`InfluxQLQuery` is a :class:`cog.variants.Dataquery` (``to_json``
and ``from_json`` with Grafana's field names), :class:`InfluxQL` its builder, and
:func:`register` teaches the SDK's runtime to decode panel targets of data-source type
``influxdb`` back into it, so a dashboard read with ``Dashboard.from_json`` keeps its queries
typed.

Only raw InfluxQL (``rawQuery: true``) is modelled: the dashboards are generated, never edited
in Grafana's visual query builder, and raw text is what runs unchanged on InfluxDB 1.x and on
2.x through a DBRP mapping.

:class:`InfluxAnnotationTarget` carries an InfluxQL annotation query. The SDK types an
annotation's ``target`` as the built-in Grafana annotation filter (``limit``, ``matchAny``,
``tags``, ``type``), while Grafana's InfluxDB plug-in reads its query and column mappings from
the same ``target`` object; the subclass adds those keys. ``Dashboard.from_json`` still decodes
the target as the SDK's class (keeping only the four keys it knows), which the tests account
for.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import plugins as cogplugins
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

__all__ = [
    "DATASOURCE_TYPE",
    "InfluxAnnotationTarget",
    "InfluxQL",
    "InfluxQLQuery",
    "ResultFormat",
    "register",
]

DATASOURCE_TYPE = "influxdb"
"""Grafana's plug-in id of the InfluxDB data source."""

ResultFormat = Literal["time_series", "table", "logs"]


class InfluxQLQuery(cogvariants.Dataquery):
    """One raw InfluxQL target of a panel (Grafana's ``InfluxQuery`` with ``rawQuery``)."""

    ref_id: str
    query: str
    raw_query: bool
    result_format: ResultFormat
    alias: str | None
    hide: bool | None
    datasource: dashboard.DataSourceRef | None

    def __init__(
        self,
        ref_id: str = "A",
        query: str = "",
        raw_query: bool = True,
        result_format: ResultFormat = "time_series",
        alias: str | None = None,
        hide: bool | None = None,
        datasource: dashboard.DataSourceRef | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.query = query
        self.raw_query = raw_query
        self.result_format = result_format
        self.alias = alias
        self.hide = hide
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        """Grafana's JSON keys (``refId``, ``rawQuery``, ``resultFormat``…)."""
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "query": self.query,
            "rawQuery": self.raw_query,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.hide is not None:
            payload["hide"] = self.hide
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Read back :meth:`to_json` (after a trip through JSON text)."""
        datasource = data.get("datasource")
        return cls(
            ref_id=data.get("refId", "A"),
            query=data.get("query", ""),
            raw_query=data.get("rawQuery", True),
            result_format=data.get("resultFormat", "time_series"),
            alias=data.get("alias"),
            hide=data.get("hide"),
            datasource=dashboard.DataSourceRef.from_json(datasource) if datasource else None,
        )


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builder of :class:`InfluxQLQuery`, in the SDK's fluent style."""

    def __init__(self, query: str = "") -> None:
        self._internal = InfluxQLQuery(query=query)

    def build(self) -> InfluxQLQuery:
        """The query."""
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        """The target's letter; transformations refer to it."""
        self._internal.ref_id = ref_id
        return self

    def query(self, query: str) -> Self:
        """The InfluxQL text, with Grafana's macros (``$timeFilter``, ``$__interval``…)."""
        self._internal.query = query
        return self

    def result_format(self, result_format: ResultFormat) -> Self:
        """``time_series`` for graphs, ``table`` for tables and the geomap."""
        self._internal.result_format = result_format
        return self

    def alias(self, alias: str) -> Self:
        """Series name pattern, e.g. ``$tag_level``."""
        self._internal.alias = alias
        return self

    def datasource(self, datasource: dashboard.DataSourceRef) -> Self:
        """The InfluxDB data source this target runs on."""
        self._internal.datasource = datasource
        return self


class InfluxAnnotationTarget(dashboard.AnnotationTarget):
    """An annotation's ``target`` carrying an InfluxQL query for Grafana's InfluxDB plug-in.

    ``text_column`` and ``tags_column`` name the query's columns that become the annotation's
    text and tags (``tags_column`` may list several, comma-separated).
    """

    query: str
    text_column: str
    tags_column: str

    def __init__(self, query: str = "", text_column: str = "", tags_column: str = "") -> None:
        super().__init__(limit=100, match_any=False, tags=[], type_val="tags")
        self.query = query
        self.text_column = text_column
        self.tags_column = tags_column

    def to_json(self) -> dict[str, object]:
        """The SDK's four keys plus what the InfluxDB plug-in reads."""
        payload = super().to_json()
        payload.update(
            {
                "refId": "Anno",
                "query": self.query,
                "rawQuery": True,
                "fromAnnotations": True,
                "textEditor": True,
                "queryType": "tags",
                "textColumn": self.text_column,
                "tagsColumn": self.tags_column,
            }
        )
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """Read back :meth:`to_json`."""
        return cls(
            query=data.get("query", ""),
            text_column=data.get("textColumn", ""),
            tags_column=data.get("tagsColumn", ""),
        )


class AnnotationTargetBuilder(cogbuilder.Builder[dashboard.AnnotationTarget]):
    """Hands an :class:`InfluxAnnotationTarget` to the SDK's annotation builder."""

    def __init__(self, target: InfluxAnnotationTarget) -> None:
        self._target = target

    def build(self) -> dashboard.AnnotationTarget:
        """The target."""
        return self._target


def register() -> None:
    """Register the default panel plug-ins and this data-query variant with the SDK runtime.

    Idempotent. Needed before ``Dashboard.from_json`` so that panel options decode into the
    SDK's types and InfluxDB targets into :class:`InfluxQLQuery` rather than an untyped bag.
    """
    cogplugins.register_default_plugins()
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(
            identifier=DATASOURCE_TYPE, from_json_hook=InfluxQLQuery.from_json
        )
    )
