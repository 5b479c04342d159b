"""The built wheel works outside the checkout: data, standard and study ship inside it.

The wheel is built from this checkout (``pip wheel --no-deps``; pip fetches the
build backend through its wheel cache) and installed into a fresh venv under ``tmp_path``.
Its dependencies come from the checkout's own environment through a ``.pth``
line (a path line only: the editable install's own ``.pth`` hook there is not
run), so no dependency is downloaded and the only siteplanner importable is the wheel's.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["MPLBACKEND"] = "Agg"
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return res


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
          "-w", str(tmp / "dist"), str(ROOT)], cwd=tmp)
    wheel = next((tmp / "dist").glob("siteplanner-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    py = venv / "bin" / "python"
    purelib = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                        cwd=tmp).stdout.strip())
    deps = [p for p in {*site.getsitepackages(), sysconfig.get_path("purelib")} if Path(p).is_dir()]
    (purelib / "zz_checkout_deps.pth").write_text("\n".join(deps) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
          "-q", str(wheel)], cwd=tmp)
    return wheel, venv, tmp


@pytest.mark.slow
def test_wheel_holds_the_data_standard_and_study(wheel_venv):
    wheel, _, _ = wheel_venv
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("siteplanner/data/helsinki/helsinki.osm.pbf", "siteplanner/data/helsinki/study.toml",
              "siteplanner/data/helsinki/branch_outline.geojson",
              "siteplanner/data/andorra/andorra-2022-02.osm.pbf",
              "siteplanner/data/andorra/README.md", "siteplanner/floorplan/default_standard.toml"):
        assert f in names


@pytest.mark.slow
def test_installed_wheel_runs_demo_and_floorplan_outside_the_checkout(wheel_venv):
    _, venv, tmp = wheel_venv
    work = tmp / "elsewhere"
    work.mkdir()
    where = _run([str(venv / "bin" / "python"), "-c",
                  "import siteplanner, siteplanner.datasets as d; "
                  "print(siteplanner.__file__); print(d.andorra().osm.is_file())"], cwd=work)
    file, andorra = where.stdout.split()
    assert Path(file).is_relative_to(venv) and andorra == "True"
    _run([str(venv / "bin" / "siteplanner"), "demo", "--out", "demo"], cwd=work)
    assert (work / "demo" / "ranked_sites.csv").is_file()
    record = json.loads((work / "demo" / "run.json").read_text())
    assert "Helsinki" in json.dumps(record)
    outline = venv / "lib"
    outline = next(outline.glob("python*/site-packages/siteplanner/data/helsinki/branch_outline.geojson"))
    _run([str(venv / "bin" / "siteplanner"), "floorplan", "--outline", str(outline),
          "--entrance", "14,0", "--arrivals", "60", "--out", "plan"], cwd=work)
    assert any((work / "plan").iterdir())
