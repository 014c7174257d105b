"""The benchmarks cannot rot: the runner's smoke scale (100k observations) runs every scenario
end to end, in subprocesses. Nothing about timing is asserted, only that each scenario ran and
printed its ratio line, and that the plain-SQL roll-up agrees with the project's marts.

The scenarios run as two runner processes side by side (separate work folders) to keep the test
near a minute; timings under that contention mean nothing, which is fine here."""

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
LANES = (("incremental", "ingest", "config-memory"), ("rollup", "memory", "orchestration"))


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
    assert set(rows) == {*SCENARIOS, "orchestration-import"}, output
    assert all(float(row["ratio"]) > 0 for row in rows.values()), output
    assert "rollup agreement: OK" in output, output
