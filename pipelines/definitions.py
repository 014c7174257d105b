"""The one Definitions object that `make dev` (`dg dev`), `dagster dev -w workspace.yaml` and `dg`
load, built
from the environment (docs/settings.md)."""

from pipelines.build import build_definitions
from pipelines.settings import Settings

defs = build_definitions(Settings.from_env())
