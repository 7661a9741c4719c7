"""The deployment files, checked offline (no Docker engine here): docker-compose.yml against
the Compose specification with check-jsonschema, the Dockerfile with hadolint, and what a
schema cannot see — scaling, start order, GPU leasing, secrets, documented settings."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from facelabel.settings import PREFIX, Settings, env_example, markdown_table

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
    environment = services["worker"]["environment"]
    assert environment["FACELABEL_DB_PASSWORD"] == services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert environment["FACELABEL_BROKER_PASSWORD"] == services["redis"]["environment"]["REDIS_PASSWORD"]
    assert "PASSWORD" not in environment["FACELABEL_DB_URL"] + environment["FACELABEL_BROKER_URL"]
    for service in services.values():  # a password reaches no program's command line
        command = " ".join(service.get("command") or [])
        assert "--requirepass" not in command and "-a " not in command and "--broker" not in command


def test_every_variable_is_documented_in_env_example():
    used = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE.read_text()))
    settings = {PREFIX + name.upper() for name in Settings.model_fields}
    assert not (used | settings) - documented(), "missing from deploy/.env.example"
    assert "POSTGRES_PASSWORD=\n" in ENV_EXAMPLE.read_text()  # no secret in the repository
    assert ENV_EXAMPLE.read_text().endswith(env_example()), "make docs"


def test_compose_sets_only_known_settings_and_keeps_no_default_of_its_own(services):
    fields = {PREFIX + name.upper() for name in Settings.model_fields}
    for service in services.values():
        names = {n for n in service.get("environment", {}) if n.startswith(PREFIX)}
        assert names <= fields, names - fields
    own_defaults = re.findall(r"\$\{(FACELABEL_[A-Z_]+):-([^}]+)\}", COMPOSE.read_text())
    assert [name for name, _ in own_defaults if name[len(PREFIX) :].lower() in Settings.model_fields] == []


def test_configuration_table_is_generated_from_the_settings():
    assert markdown_table() in (ROOT / "docs" / "configuration.md").read_text(), "make docs"


def _locked(variant: str) -> dict[str, tuple[str, int]]:
    """name → (pinned version, number of hashes) in deploy/requirements-VARIANT.lock."""
    text = (ROOT / "deploy" / f"requirements-{variant}.lock").read_text()
    pins = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        pin = re.match(r"([A-Za-z0-9._-]+)(?:\[[^\]]*\])?==([^\s;\\]+)", block)
        if pin:
            pins[canonicalize_name(pin[1])] = (pin[2], block.count("--hash=sha256:"))
    return pins


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_image_lock_satisfies_pyproject_with_hashes(variant):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = [Requirement(r) for r in project["dependencies"] + extras["postgres"] + extras["monitor"]]
    if variant == "gpu":  # TensorFlow with its CUDA libraries instead of the CPU-only build
        wanted = [r for r in wanted if r.name != "tensorflow-cpu"] + [Requirement(r) for r in extras["gpu"]]
    locked = _locked(variant)
    image = {"platform_machine": "x86_64", "sys_platform": "linux", "python_version": "3.11"}
    for requirement in wanted:
        if requirement.marker and not requirement.marker.evaluate(image):
            continue
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} missing from the {variant} lock: make lock"
        assert requirement.specifier.contains(locked[name][0]), f"{name}=={locked[name][0]} vs {requirement}"
    assert all(hashes for _, hashes in locked.values()), "every pin carries its hashes"
    assert ("tensorflow-cpu" in locked) == (variant == "cpu")
