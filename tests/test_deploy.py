"""The deployment files, checked offline (no Docker engine here): docker-compose.yml against
the Compose specification with check-jsonschema, the Dockerfile with hadolint, and what a
schema cannot see — scaling, start order, GPU leasing, secrets, documented settings."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
SCALED = ("worker", "worker-cpu", "trainer", "trainer-cpu")
APP_SERVICES = SCALED + ("beat",)


def tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent))
    assert path, f"{name} is installed by the test extras (make test)"
    return path


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def documented() -> set[str]:
    return set(re.findall(r"^([A-Z_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))


def test_compose_file_follows_the_compose_specification(tmp_path):
    validate = [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    result = subprocess.run([*validate, str(COMPOSE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "docker-compose.yml"  # the validator does catch a mistake
    broken.write_text(COMPOSE.read_text().replace("restart: unless-stopped", "restartt: unless-stopped", 1))
    result = subprocess.run([*validate, str(broken)], capture_output=True, text=True)
    assert result.returncode == 1 and "'restartt' was unexpected" in result.stdout


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(ROOT / "deploy" / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout


def test_scaled_services_have_no_fixed_name_or_host_port(services):
    for name in SCALED:
        assert "container_name" not in services[name] and "ports" not in services[name], name


def test_start_order_migration_first_then_the_rest(services):
    for name, service in services.items():
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on unknown {needed}"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in APP_SERVICES:
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["redis"]["healthcheck"]["test"] and services["postgres"]["healthcheck"]["test"]
    assert "--appendonly yes" in " ".join(services["redis"]["command"])


def test_gpu_services_see_every_gpu_and_lease_one(services):
    for name in ("worker", "trainer"):
        (device,) = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device == {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
        assert services[name]["environment"]["FACELABEL_GPU"] == "auto"
        assert services[name]["profiles"] == ["gpu"] and services[f"{name}-cpu"]["profiles"] == ["cpu"]
        assert "--concurrency" in services[name]["command"]
        assert services[name]["command"][services[name]["command"].index("--concurrency") + 1] == "1"
    assert "FACELABEL_GPU" not in services["worker-cpu"]["environment"]


def test_secrets_come_from_the_environment(services):
    for value in (
        services["postgres"]["environment"]["POSTGRES_PASSWORD"],
        services["redis"]["environment"]["REDIS_PASSWORD"],
        services["flower"]["environment"]["FLOWER_BASIC_AUTH"],
    ):
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), value  # required, no default
    assert "FLOWER_BASIC_AUTH" in services["flower"]["environment"]
    assert services["flower"]["ports"] == ["127.0.0.1:${FLOWER_PORT:-5555}:5555"]


def test_every_variable_is_documented_in_env_example():
    used = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE.read_text()))
    settings = set(re.findall(r'"(FACELABEL_[A-Z_]+)"', (ROOT / "facelabel" / "settings.py").read_text()))
    settings |= {"FACELABEL_DB_URL", "FACELABEL_BROKER_URL", "FACELABEL_MODEL", "FACELABEL_DATA_ROOTS"}
    assert not (used | settings) - documented(), "missing from deploy/.env.example"
    assert "POSTGRES_PASSWORD=\n" in ENV_EXAMPLE.read_text()  # no secret in the repository


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_image_requirements_come_from_pyproject(variant):
    printed = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "requirements.py"), variant],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert any(r.startswith("celery") for r in printed) and any(r.startswith("flower") for r in printed)
    assert any(r.startswith("psycopg") for r in printed)
    assert any(r.startswith("tensorflow-cpu") for r in printed) == (variant == "cpu")
    assert any(r.startswith("tensorflow[and-cuda]") for r in printed) == (variant == "gpu")
