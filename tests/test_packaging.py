"""The package as a user installs it: a wheel built from the checkout, installed into a new venv
and run from an empty folder outside the checkout; and the core alone, with no extra installed.

Both venvs are real venvs with the wheel installed by pip; their dependencies come from this
checkout's venv instead of PyPI (CI has no time to download torch twice): the full venv sees all
of it, the bare one only the dependency closure of the wheel's own core requirements, computed
from its METADATA as pip would resolve it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SITE = Path(sysconfig.get_paths()["purelib"])
EXTRAS_ONLY = ("inspect_ai", "lm_eval", "trl", "fastapi", "uvicorn", "tensorboard", "datasets")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("rubric_arm-*.whl")
    return built


def _venv_with(root: Path, wheel: Path, deps: Path) -> Path:
    """A venv whose site-packages holds the wheel (installed by pip) and a .pth to `deps`."""
    venv.EnvBuilder(with_pip=False).create(root)
    py = root / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    (site / "zz_deps.pth").write_text(f"{deps}\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps"]
        + ["--no-index", str(wheel)],
        check=True,
        capture_output=True,
    )
    return root


def _run(root: Path, cwd: Path, *cmd: str, timeout: int = 600) -> str:
    env = {
        **os.environ,
        "PATH": f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(root),
        "PYTHONPATH": "",
    }
    done = subprocess.run(
        list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _core_closure(wheel: Path) -> set[str]:
    """The distributions pip would install for the wheel without extras (found in this venv)."""
    import zipfile

    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = Parser().parsestr(z.read(name).decode())
    env = default_environment()
    todo = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**env, "extra": ""}):
            continue
        key = canonicalize_name(req.name)
        if key in seen:
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(key)
        todo += [Requirement(r) for r in dist.requires or []]
    return seen


def _link_closure(names: set[str], into: Path) -> None:
    """Symlinks to the top-level files of each distribution (and its dist-info)."""
    into.mkdir()
    for name in names:
        dist = metadata.distribution(name)
        for f in dist.files or []:
            top = f.parts[0]
            src = SITE / top
            if top in ("..", "__pycache__") or not src.exists() or (into / top).exists():
                continue
            (into / top).symlink_to(src)


def test_the_wheel_works_outside_the_checkout(wheel: Path, tmp_path: Path, tiny_model_path):
    root = _venv_with(tmp_path / "venv", wheel, SITE)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    where = _run(root, empty, "python", "-c", "import rubric_arm; print(rubric_arm.__file__)")
    assert str(root) in where and str(REPO) not in where

    pairs = empty / "pairs.jsonl"
    pairs.write_text(
        json.dumps({"id": "p1", "prompt": "2+2?", "response_a": "4", "response_b": "5"}) + "\n"
    )
    _run(
        root,
        empty,
        "rubric-arm",
        "judge",
        "--preset",
        "tiny",
        "--input",
        str(pairs),
        "--output",
        str(empty / "out.jsonl"),
    )
    assert json.loads((empty / "out.jsonl").read_text().splitlines()[0])["id"] == "p1"

    plan = _run(root, empty, "rubric-arm", "train", "--config", "tiny", "--dry-run")
    assert "sft" in plan.lower()

    log = _run(
        root,
        empty,
        "python",
        "-m",
        "inspect_ai",
        "eval",
        "rubric_arm/mini",
        "--model",
        "rubric-arm/tiny",
        "--limit",
        "4",
        "--log-dir",
        str(empty / "logs"),
        "--display",
        "plain",
    )
    assert "mini" in log and "overall" in log

    out = _run(
        root,
        empty,
        "rubric-arm",
        "lm-eval",
        "--model",
        "rubric-arm",
        "--model_args",
        "preset=tiny",
        "--tasks",
        "rubric_arm_mini",
        "--limit",
        "4",
    )
    assert "rubric_arm_mini" in out


def test_the_core_judges_with_no_extra_installed(wheel: Path, tmp_path: Path, tiny_model_path):
    closure = _core_closure(wheel)
    assert {"torch", "transformers"} <= closure
    assert not {"inspect-ai", "lm-eval", "trl", "fastapi"} & closure
    bare = tmp_path / "core-deps"
    _link_closure(closure, bare)
    root = _venv_with(tmp_path / "venv", wheel, bare)
    probe = f"import importlib.util as u; print([m for m in {EXTRAS_ONLY!r} if u.find_spec(m)])"
    assert _run(root, tmp_path, "python", "-c", probe).strip() == "[]"
    out = _run(
        root,
        tmp_path,
        "rubric-arm",
        "judge",
        "--preset",
        "tiny",
        "--prompt",
        "2+2?",
        "--response-a",
        "4",
        "--response-b",
        "5",
    )
    assert "winner" in out.lower()
