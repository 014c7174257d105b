"""The benchmarks cannot rot: the runner's smoke scale (100k observations, one pair per ratio)
runs every scenario end to end, in subprocesses. Nothing about timing is asserted, only that
each scenario ran and printed its ratio line, and that the row-level agreements hold: the
plain-SQL roll-up with the project's marts, the raw-file reference with `okr backfill`'s KRs.

The scenarios run as three runner processes side by side (separate work folders), each lane
about as long as the others; timings under that contention mean nothing, which is fine here.
`memory` follows `orchestration` in its lane so that it reuses that lane's full backfill. The
test takes about 2.5 minutes on two cores: eleven `okr` runs as users run them (each a process
with its own DAGSTER_HOME and some 10 s of fixed cost) are about 180 CPU seconds, so two cores
cannot finish them in much under 90 s whatever the lanes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from benchmarks.run import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
NUMBER = r"-?\d+\.\d+"
ROW = re.compile(
    rf"^(?P<scenario>[a-z-]+)\s+{NUMBER}\s+{NUMBER}\s+(?P<ratio>{NUMBER})\s+\d+\s+\d+\s+"
    r"(?P<target>.+?)\s+(?P<verdict>PASS|FAIL)$"
)
LANES = (
    ("orchestration", "memory", "rollup", "ingest"),
    ("incremental", "empty-run"),
    ("backfill", "config-memory"),
)


def test_smoke_benchmarks_run_every_scenario(tmp_path: Path) -> None:
    assert sorted(s for lane in LANES for s in lane) == sorted(SCENARIOS)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.run", "--scale", "smoke", "--quiet",
             "--workdir", str(tmp_path / f"lane{i}"), "--scenarios", ",".join(lane)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i, lane in enumerate(LANES)
    ]
    outputs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stdout + stderr[-3000:]
        assert stdout.startswith("machine: ") and "GiB RAM" in stdout.splitlines()[0]
        outputs.append(stdout)
    output = "\n".join(outputs)
    rows = {m["scenario"]: m for m in map(ROW.match, output.splitlines()) if m}
    assert set(rows) == {*SCENARIOS, "orchestration-import", "empty-run-again"}, output
    assert all(float(row["ratio"]) > 0 for row in rows.values()), output
    assert "rollup agreement: OK" in output, output
    assert "KR agreement: OK" in output, output
    assert re.search(r"\d+ interleaved pair\(s\); seconds min/median", output), output
