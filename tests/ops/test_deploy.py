"""Production configuration: Django's deploy checks, fail-fast settings, the compose file."""

from __future__ import annotations

import os
import re
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")}
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    return {
        **keep,
        "FILECONVERT_ENV": "production",
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(50)),
        "ALLOWED_HOSTS": "example.com",
        "DEBUG": "0",
        "DJANGO_SETTINGS_MODULE": "fileconvert.settings",
        "FILECONVERT_DATA_DIR": str(tmp_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_deploy_checks_pass_in_production(tmp_path):
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output and "?: (" not in output, output
    assert "System check identified no issues" in output


def test_deploy_checks_catch_a_weak_configuration(tmp_path):
    # The check must be able to fail: a short secret and DEBUG on are both reported.
    env = production_env(tmp_path, SECRET_KEY="short", DEBUG="1")
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "security.W009" in output and "security.W018" in output


def test_production_without_secret_key_fails_loudly(tmp_path):
    env = production_env(tmp_path)
    del env["SECRET_KEY"]
    result = manage(env, "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    assert not (tmp_path / "secret_key").exists()  # no silent fallback key


def test_embedded_mode_keeps_one_generated_key(tmp_path):
    env = production_env(tmp_path, FILECONVERT_ENV="development")
    del env["SECRET_KEY"]
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    first = manage(env, "shell", "-c", code)
    second = manage(env, "shell", "-c", code)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == second.stdout.strip()
    assert len(first.stdout.strip()) >= 50
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"


COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture
def compose() -> dict:
    if not COMPOSE.exists():
        pytest.skip("docker-compose.yml not written yet")
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_services_have_healthchecks(compose):
    services = compose["services"]
    for name in ("postgres", "redis", "minio", "web", "worker", "beat"):
        assert name in services, name
        check = services[name].get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), name


def test_compose_app_services_are_production_and_share_backing_services(compose):
    services = compose["services"]
    for name in ("web", "worker", "beat"):
        env = services[name].get("environment", {})
        assert env.get("FILECONVERT_ENV") == "production", name
        assert env.get("DATABASE_URL", "").startswith("postgres"), name
        assert env.get("REDIS_URL", "").startswith("redis://"), name
        assert env.get("S3_BUCKET"), name
        assert env.get("SECRET_KEY"), name
    assert "/api/health" in " ".join(map(str, services["web"]["healthcheck"]["test"]))


def test_compose_worker_starts_with_huge_pages_for_converter_children(compose):
    from fileconvert.sandbox import WORKER_GLIBC_TUNABLES

    assert compose["services"]["worker"]["environment"].get("GLIBC_TUNABLES") == WORKER_GLIBC_TUNABLES
    assert compose["services"]["worker"]["environment"].get("DATABASE_URL", "").startswith("postgres")


def test_dockerfile_static_files_survive_into_the_runtime_static_root():
    """collectstatic at build time must write where the running container serves from."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    # One RUN instruction, with its backslash continuations, that runs collectstatic.
    build = re.search(r"^RUN\s+((?:[^\n]*\\\n)*?[^\n]*collectstatic(?:[^\n]*\\\n)*[^\n]*)", dockerfile, re.M)
    assert build, "the image must collect static files"
    before_build = dockerfile[: build.start()]
    static_roots = re.findall(r"ENV\s+(?:.*\s)?STATIC_ROOT=(\S+)", before_build)
    assert static_roots, "STATIC_ROOT must be fixed before collectstatic runs"
    static_root = static_roots[-1]
    assert "STATIC_ROOT=" not in dockerfile[build.end() :], "STATIC_ROOT must not change after the build"
    assert not static_root.startswith(("/tmp", "/app/var")), static_root
    removed = re.findall(r"rm\s+-rf\s+(\S+)", build.group(1))
    assert not any(static_root.startswith(path.rstrip("/")) for path in removed), "collected files are deleted"
