"""Asset checks."""

import dagster as dg

from transforms.config import OkrConfig


def build_asset_checks(config: OkrConfig) -> list[dg.AssetChecksDefinition]:
    return []
