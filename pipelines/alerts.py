"""Alerts to a webhook (docs/alerts.md): `okr_alerts_sensor` reads the published BI snapshot,
asks `transforms.alerts.pending_alerts` for the transitions it shows, and requests one run of
`okr_alert` per transition with the alert's key as run key. The daemon never launches a run key
the sensor has used before: that is what keeps a re-run of the pipeline from alerting again.

The webhook URL (OKR_ALERT_WEBHOOK_URL) is read from the environment by the run that posts, and
only there: it is no field of any config, so it shows in no run config, event, tag or log, and
run config cannot send an alert elsewhere. Errors name the variable and the HTTP status or the
error's class, never the URL (a Slack webhook's path is its secret)."""

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from pipelines.resources import OkrConfigResource
from pipelines.settings import ALERT_WEBHOOK_URL_ENV, Settings
from transforms.alerts import pending_alerts
from transforms.config import OkrConfig

ALERT_JOB = "okr_alert"
ALERT_OP = "post_alert"
CONNECT_TIMEOUT_SECONDS = 5.0
RETRY = Retry(
    total=4,
    connect=4,
    read=0,  # the server may have received the message: no second copy
    status=4,
    backoff_factor=1.0,
    status_forcelist=(429, 500, 502, 503, 504),
    allowed_methods=frozenset({"POST"}),
    respect_retry_after_header=True,
    raise_on_status=False,
)
"""429 and 5xx answers and refused connections are retried: at once, then after 2, 4 and 8 s, or
after the Retry-After the server asks for (429, 503)."""
_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry")
"""urllib3 logs retries and connections with the URL: silenced while an alert is posted."""


class AlertConfig(dg.Config):
    """One alert, as the sensor found it (transforms.alerts.Alert)."""

    key: str
    kind: str
    payload_json: str


def webhook_url() -> str:
    """OKR_ALERT_WEBHOOK_URL as set in this process's environment; empty when it is not."""
    return (os.environ.get(ALERT_WEBHOOK_URL_ENV) or "").strip()


class AlertWebhookResource(dg.ConfigurableResource):
    """Posts to the webhook named by OKR_ALERT_WEBHOOK_URL, read when the run posts. No field
    says where: nothing in run config can change where an alert goes."""

    read_timeout_seconds: float = 30.0
    """How long one attempt waits for the webhook's answer."""

    def post(self, payload: dict, log: logging.Logger | dg.DagsterLogManager) -> int:
        """The HTTP status of the accepted post; a dg.Failure naming the variable and the status
        or error class otherwise."""
        url = webhook_url()
        if not url:
            raise dg.Failure(f"{ALERT_WEBHOOK_URL_ENV} is not set in the run's environment")
        session = requests.Session()
        session.trust_env = False  # no .netrc credentials or proxy settings added to a webhook
        adapter = HTTPAdapter(max_retries=RETRY)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        problem = None
        with session, _urllib3_silenced():
            try:
                response = session.post(
                    url, json=payload, timeout=(CONNECT_TIMEOUT_SECONDS, self.read_timeout_seconds)
                )
            except requests.RequestException as error:
                problem = type(error).__name__
        # Raised outside the `except`: the chained exception's message holds the URL.
        if problem:
            raise dg.Failure(f"posting to {ALERT_WEBHOOK_URL_ENV} failed: {problem}")
        retried = [h.status or type(h.error).__name__ for h in response.raw.retries.history]
        if retried:
            log.info(f"{ALERT_WEBHOOK_URL_ENV} answered {retried} first; retried")
        if not 200 <= response.status_code < 300:
            raise dg.Failure(
                f"{ALERT_WEBHOOK_URL_ENV} answered HTTP {response.status_code} "
                f"{response.reason or ''}".rstrip(),
                metadata={"status": response.status_code, "attempts": len(retried) + 1},
            )
        return response.status_code


@contextmanager
def _urllib3_silenced() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _URLLIB3_LOGGERS]
    before = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, disabled in zip(loggers, before, strict=True):
            logger.disabled = disabled


@dg.op(name=ALERT_OP, description="Posts one alert's message to the webhook.")
def post_alert(
    context: dg.OpExecutionContext, config: AlertConfig, alert_webhook: AlertWebhookResource
) -> dg.Output[None]:
    status = alert_webhook.post(json.loads(config.payload_json), context.log)
    context.log.info(f"alert {config.key} posted ({config.kind}): HTTP {status}")
    return dg.Output(None, metadata={"key": config.key, "kind": config.kind, "status": status})


@dg.job(name=ALERT_JOB, description="Posts one alert (okr_alerts_sensor) to the webhook.")
def okr_alert() -> None:
    post_alert()


def build_alerts_sensor(
    settings: Settings, okr_config: OkrConfigResource, config: OkrConfig
) -> dg.SensorDefinition:
    snapshot = Path(settings.bi_snapshot)

    @dg.sensor(
        name="okr_alerts_sensor",
        job_name=ALERT_JOB,
        minimum_interval_seconds=settings.alert_interval_seconds,
        description=(
            "One okr_alert run per transition the BI snapshot shows (KR at risk or off track, "
            "KPI red, source stale, grade restated), run key = the transition: each alerts once."
        ),
    )
    def okr_alerts_sensor(context: dg.SensorEvaluationContext):
        if not webhook_url():
            return dg.SkipReason(
                f"{ALERT_WEBHOOK_URL_ENV} is not set: no alert is sent (nor marked sent)"
            )
        if not snapshot.is_file():
            return dg.SkipReason(
                "no BI snapshot yet: run the pipeline (`okr backfill`) to publish one"
            )
        today = okr_config.today(config)
        # Opened and closed within the tick: the next tick reads the latest publication.
        with duckdb.connect(str(snapshot), read_only=True) as con:
            alerts = pending_alerts(con, today)
        if not alerts:
            return dg.SkipReason(f"no transition to alert on as of {today}")
        context.log.info(f"{len(alerts)} pending alerts as of {today} (sent once per run key)")
        return [
            dg.RunRequest(
                run_key=alert.key,
                run_config={
                    "ops": {
                        ALERT_OP: {
                            "config": {
                                "key": alert.key,
                                "kind": alert.kind,
                                "payload_json": json.dumps(alert.payload, sort_keys=True),
                            }
                        }
                    }
                },
                tags={
                    "okr/trigger": "alert",
                    "okr/alert_kind": alert.kind,
                    "okr/alert_object": alert.object_id,
                    **({"okr/alert_quarter": alert.quarter} if alert.quarter else {}),
                },
            )
            for alert in alerts
        ]

    return okr_alerts_sensor
