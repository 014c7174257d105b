"""The one Definitions object that `dagster dev -w workspace.yaml` and `dg` both load, built
from the environment (CONTRACT section 5)."""

from pipelines.build import build_definitions
from pipelines.settings import Settings

defs = build_definitions(Settings.from_env())
