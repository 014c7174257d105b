"""Schedules and sensors."""

import dagster as dg

from pipelines.settings import Settings


def build_automation(
    partitions: dg.TimeWindowPartitionsDefinition, settings: Settings
) -> tuple[list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    return [], []
