"""A real (non-editable) install works on a machine that has nothing but Python: the wheel
carries the schemas and declares every dependency, and the installed tool validates with them.
Users install this way; the test suite itself runs editable.

The venv below is built with no system site-packages, from the wheel and the dependencies it
declares, fetched by pip from the package index: nothing the machine happens to have installed
globally can make it pass (issue 11: a venv with system site-packages passed here and failed on a
fresh machine).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import REPO
from reftool.files.schemas import SCHEMA_FILES


def _isolated_env() -> dict[str, str]:
    """The environment minus what would let the base interpreter's packages in."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONUSERBASE")}
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths")
def test_wheel_install_validates_and_finds_its_schemas(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                        "-q", "-w", str(wheel_dir), str(REPO)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    (wheel,) = wheel_dir.glob("reftool-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    # the shipped (bundled) schemas, each once; not their sources in schemas/src/
    assert sorted(n for n in names if n.startswith("reftool/_schemas/")) == sorted(
        f"reftool/_schemas/{f}" for f in SCHEMA_FILES.values())
    assert "reftool/cli/__init__.py" in names and "reftool/files/documents.py" in names
    env_dir = tmp_path / "env"
    venv.create(env_dir, system_site_packages=False, with_pip=True)
    python = env_dir / "bin" / "python"
    env = _isolated_env()
    r = subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)],
                       capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    probe = ("import sys, site; base = set(site.getsitepackages([sys.base_prefix])); "
             "print(sorted(base & set(sys.path)))")
    r = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.stdout.strip() == "[]", "the venv must not see the base interpreter's packages"
    reftool = env_dir / "bin" / "reftool"
    r = subprocess.run([str(python), "-c", "import reftool.files.schemas as s; "
                        "print(s.schema_dir())"], capture_output=True, text=True, env=env,
                       timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    site_schemas = r.stdout.strip()
    assert site_schemas.endswith("reftool/_schemas") and site_schemas.startswith(str(env_dir))
    r = subprocess.run([str(reftool), "-C", str(REPO / "examples" / "sweep"), "validate"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([str(reftool), "-C", str(REPO / "examples" / "sweep"), "plan", "-q"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_missing_yaml_library_is_an_internal_error_not_a_verdict(tmp_path: Path) -> None:
    """Only the YAML library's own errors are syntax errors (SPEC [read.yaml]); a library that
    cannot be imported is the tool's fault: exit 70, one line, the file judged by nobody."""
    (tmp_path / "pipeline.yaml").write_text('version: "1.0"\nstages: {a: {cmd: x}}\n')
    code = ("import sys; sys.modules['ruamel'] = None; sys.modules['ruamel.yaml'] = None; "
            "sys.modules['ruamel.yaml.error'] = None; from reftool.cli import main; "
            "sys.exit(main(['-C', sys.argv[1], 'validate']))")
    env = {k: v for k, v in os.environ.items() if k != "REFTOOL_DEBUG"}
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 70, r.stdout + r.stderr
    assert "parse/syntax" not in r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" in lines[0] and "ruamel" in lines[0]
    assert "REFTOOL_DEBUG=1" in lines[0]
