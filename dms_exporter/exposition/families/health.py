"""The exporter-health families: rendered per scrape from the store's state, always present."""

from __future__ import annotations

import platform
from collections.abc import Callable, Mapping, Sequence

from ...errors import ERROR_REASONS
from ...model import LOGIN_RESULTS, DmsLinks, EndpointStatus
from ..text import Family, Sample
from . import counter, gauge, info, stateset

__all__ = ["DATA_AGE", "POLL_RESULTS", "data_age_family", "health_families"]

_ENDPOINT = ("endpoint",)
#: What the last poll of an endpoint came to: its failure reason, or one of these.
POLL_RESULTS = ("ok", "pending", "disabled", *ERROR_REASONS)

_Value = Callable[[EndpointStatus], float | None]  # None: no sample for this endpoint
#: The one health family whose values move with the clock (the rest change with the state).
DATA_AGE = "dms_exporter_endpoint_data_age_seconds"

#: Per-endpoint families read from each endpoint's status: kind, name, HELP, value.
_POLLS: tuple[tuple[Callable[..., Family], str, str, _Value], ...] = (
    (
        gauge,
        "dms_exporter_endpoint_up",
        "1 if the endpoint's last poll succeeded; absent before the first poll (pending).",
        lambda s: None if s.last_poll is None else int(s.up),
    ),
    (
        gauge,
        "dms_exporter_endpoint_enabled",
        "1 if polling of the endpoint is switched on.",
        lambda s: int(s.enabled),
    ),
    (
        gauge,
        "dms_exporter_endpoint_interval_seconds",
        "Configured poll interval of the endpoint.",
        lambda s: s.interval,
    ),
    (
        gauge,
        "dms_exporter_endpoint_last_poll_timestamp_seconds",
        "Unix time the endpoint's last poll ended; absent before the first.",
        lambda s: s.last_poll,
    ),
    (
        gauge,
        "dms_exporter_endpoint_last_success_timestamp_seconds",
        "Unix time the endpoint's last successful poll ended; absent before the first.",
        lambda s: s.last_success,
    ),
    (
        gauge,
        "dms_exporter_endpoint_poll_duration_seconds",
        "Duration of the endpoint's last poll, all pages included.",
        lambda s: s.last_duration,
    ),
    (
        gauge,
        "dms_exporter_endpoint_rows",
        "Rows of the endpoint's data shown now (0 when none).",
        lambda s: s.rows,
    ),
    (
        gauge,
        "dms_exporter_endpoint_stale",
        "1 if the endpoint's data is older than stale_after: its series show the last good"
        " data, marked old, until drop_after, then none.",
        lambda s: int(s.stale),
    ),
    (
        gauge,
        "dms_exporter_endpoint_data_restored",
        "1 while the endpoint's series show data read back from disk at start, before its"
        " first successful poll.",
        lambda s: int(s.restored),
    ),
    (
        counter,
        "dms_exporter_endpoint_polls",
        "Polls of the endpoint done.",
        lambda s: s.polls_total,
    ),
)
#: The same, after the errors by reason.
_ROWS: tuple[tuple[Callable[..., Family], str, str, _Value], ...] = (
    (
        counter,
        "dms_exporter_endpoint_rows_skipped",
        "Rows of the endpoint dropped because they lacked an id or repeated one.",
        lambda s: s.rows_skipped_total,
    ),
    (
        counter,
        "dms_exporter_endpoint_unknown_values",
        "Enum values from the endpoint that the exporter does not know, exported as other.",
        lambda s: s.unknown_values_total,
    ),
)


def health_families(
    statuses: Sequence[EndpointStatus],
    *,
    dms_up: bool | None,
    logins: Mapping[str, int],
    login_next_attempt: float | None = None,
    links: DmsLinks | None = None,
    render_durations: Mapping[str, float],
    config_reload_ok: bool,
    config_reload_ts: float | None,
    version: str,
    start_time: float,
    now: float,
) -> list[Family]:
    """``dms_up``, per-endpoint poll health, logins, render durations, config and build info.

    ``logins`` maps each of ``LOGIN_RESULTS`` to a count; ``login_next_attempt`` is the Unix time
    a login backoff ends (None: no backoff); ``links`` the DMS URLs, the active one and which
    answer; ``render_durations`` maps group to the
    seconds its last render took. Timestamps and durations not known yet have no sample, nor
    have ``dms_up`` and ``dms_exporter_endpoint_up`` while pending (before the first poll): an
    exporter that has just started is not down. ``now`` is the Unix time of the scrape (for
    data ages).
    """

    links = links or DmsLinks()
    urls = links.urls

    def per_endpoint(value: _Value) -> list[Sample]:
        return [((s.endpoint,), v) for s in statuses if (v := value(s)) is not None]

    def errors(s: EndpointStatus) -> list[Sample]:
        reasons = (*ERROR_REASONS, *sorted(set(s.errors_total) - set(ERROR_REASONS)))
        return [((s.endpoint, r), s.errors_total.get(r, 0)) for r in reasons]

    return [
        gauge(
            "dms_up",
            "1 if the last poll of the DMS system endpoint succeeded (if it is disabled: of any"
            " enabled endpoint); absent before the first poll.",
            samples=[] if dms_up is None else [((), int(dms_up))],
        ),
        *(kind(name, text, _ENDPOINT, per_endpoint(value)) for kind, name, text, value in _POLLS),
        data_age_family(statuses, now),
        stateset(
            "dms_exporter_endpoint_last_poll_result",
            "What the endpoint's last poll came to: ok, the reason it failed (as in"
            " dms_exporter_endpoint_errors_total), pending (not polled yet) or disabled.",
            _ENDPOINT,
            POLL_RESULTS,
            [((s.endpoint,), s.last_result) for s in statuses],
        ),
        counter(
            "dms_exporter_endpoint_errors",
            "Failed polls of the endpoint, by reason.",
            (*_ENDPOINT, "reason"),
            [sample for s in statuses for sample in errors(s)],
        ),
        *(kind(name, text, _ENDPOINT, per_endpoint(value)) for kind, name, text, value in _ROWS),
        counter(
            "dms_exporter_logins",
            "Logins to the DMS (POST dms.login_path), by result: success, refused (wrong"
            " credentials), unreachable (connection failed or timed out), error (any other).",
            ("result",),
            [((r,), logins.get(r, 0)) for r in LOGIN_RESULTS],
        ),
        gauge(
            "dms_exporter_dms_url_active",
            "1 for the DMS URL (dms.url) the exporter talks to now; main is false for a standby.",
            ("url", "main"),
            [((url, _main(i)), int(url == links.active)) for i, url in enumerate(urls)],
        ),
        gauge(
            "dms_exporter_dms_url_reachable",
            "1 if the last request to the DMS URL (dms.url) got an answer other than a 5xx"
            " (a 503 with Retry-After counts as an answer: the DMS is busy, not down).",
            ("url", "main"),
            _per_url(urls, links.reachable),
        ),
        gauge(
            "dms_exporter_dms_url_standby",
            "1 if the last GET /system/info of the DMS URL (dms.url) reported a standby role"
            " (not the active member); absent until it was asked.",
            ("url", "main"),
            _per_url(urls, links.standby),
        ),
        gauge(
            "dms_exporter_login_next_attempt_timestamp_seconds",
            "Unix time before which no login to the DMS is tried, after a failed login"
            " (0 without a backoff).",
            samples=[((), login_next_attempt or 0)],
        ),
        gauge(
            "dms_exporter_render_duration_seconds",
            "Duration of the last render of a family group.",
            ("group",),
            [((g,), d) for g, d in sorted(render_durations.items())],
        ),
        gauge(
            "dms_exporter_config_last_reload_successful",
            "0 after a rejected configuration reload, else 1.",
            samples=[((), int(config_reload_ok))],
        ),
        gauge(
            "dms_exporter_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load.",
            samples=[((), config_reload_ts)] if config_reload_ts is not None else [],
        ),
        info(
            "dms_exporter_build",
            "Version of the exporter and of Python running it (value 1).",
            ("version", "python_version"),
            [(version, platform.python_version())],
        ),
        gauge(
            "dms_exporter_start_time_seconds",
            "Unix time the exporter started.",
            samples=[((), start_time)],
        ),
    ]


def data_age_family(statuses: Sequence[EndpointStatus], now: float) -> Family:
    """``DATA_AGE``: per endpoint, the seconds from its data's read to ``now``."""
    return gauge(
        DATA_AGE,
        "Seconds since the data the endpoint's series show was read from the DMS (also"
        " across restarts); absent when they show none.",
        _ENDPOINT,
        [((s.endpoint,), max(0.0, now - s.data_time)) for s in statuses if s.data_time is not None],
    )


def _main(index: int) -> str:
    return "true" if index == 0 else "false"


def _per_url(urls: Sequence[str], values: Mapping[str, bool]) -> list[tuple[tuple[str, str], int]]:
    """A per-URL gauge's samples: 1 or 0 for each URL with a value, labelled url and main."""
    return [((url, _main(i)), int(values[url])) for i, url in enumerate(urls) if url in values]
