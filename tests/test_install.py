"""A real (non-editable) install works: the wheel carries the schemas, and the installed
tool validates with them. Users install this way; the test suite itself runs editable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from reftool.schemas import SCHEMA_FILES


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
    # the shipped (bundled) schemas, each once; not their sources in schemas/src/
    assert sorted(n for n in names if n.startswith("reftool/_schemas/")) == sorted(
        f"reftool/_schemas/{f}" for f in SCHEMA_FILES.values())
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                        str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import reftool.schemas as s; "
            "print(s.schema_dir()); from reftool.cli import main; "
            "sys.exit(main(['-C', sys.argv[2], 'validate']))")
    # this interpreter supplies the dependencies (a venv made from it with system site packages
    # would see the base interpreter's instead); -I keeps the checkout off sys.path, and the
    # first line printed shows the installed copy was the one imported
    r = subprocess.run([sys.executable, "-I", "-c", code, str(target),
                        str(REPO / "examples" / "sweep")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0] == str(target / "reftool" / "_schemas")
