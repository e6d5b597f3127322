"""A real (non-editable) install works: the wheel carries the schemas, and the installed
tool validates with them. Users install this way; the test suite itself runs editable."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from conftest import REPO


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
def test_wheel_install_validates_and_finds_its_schemas(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                        "-q", "-w", str(wheel_dir), str(REPO)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    (wheel,) = wheel_dir.glob("reftool-*.whl")
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert "reftool/_schemas/pipeline.schema.json" in names
    assert "reftool/_schemas/plan.schema.json" in names
    env_dir = tmp_path / "env"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                        str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import reftool.schemas as s; "
            "print(s.schema_dir()); from reftool.cli import main; "
            "sys.exit(main(['-C', sys.argv[2], 'validate']))")
    r = subprocess.run([str(python), "-c", code, str(target), str(REPO / "examples" / "sweep")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0] == str(target / "reftool" / "_schemas")
