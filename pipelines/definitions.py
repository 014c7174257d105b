"""The one Definitions object that `dagster dev -w workspace.yaml` and `dg` both load, built
from the environment (docs/settings.md)."""

from pipelines.build import build_definitions
from pipelines.settings import Settings

defs = build_definitions(Settings.from_env())
