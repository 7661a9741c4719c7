"""The Kubernetes manifests, checked offline: each overlay renders with `kubectl kustomize`,
core objects pass `kubernetes-validate --strict`, KEDA's objects match KEDA's own CRD schemas,
and what a schema cannot see holds (one beat and one watcher, a GPU per worker, a grace period
past the hard time limit, unprivileged pods, no secret values, pinned images, the migration
first). The autoscaler's query runs against a real PostgreSQL during a job."""

from __future__ import annotations

import json
import math
import os
import re
import runpy
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from db.backlog import BACKLOG_QUERY
from db.chunks import claim_chunk, finish_chunk, unfinished_chunks
from db.engine import open_database
from facelabel.settings import PREFIX, SECRET_BEARING, Settings
from worker.submit import submit_job

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
CRDS = ROOT.parent / "shared" / "k8s-crds"
OVERLAYS = ("gpu", "cpu")
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
WORKER_SERVICES = {  # compose's services for the worker and trainer Deployments, per overlay
    "gpu": {"worker": "worker", "trainer": "trainer"},
    "cpu": {"worker": "worker-cpu", "trainer": "trainer-cpu"},
}
SECRET_VARIABLES = {PREFIX + name.upper() for name in SECRET_BEARING} | {"FLOWER_BASIC_AUTH"}


def render(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run([kubectl, "kustomize", str(K8S / overlay)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return list(yaml.safe_load_all(result.stdout))


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request) -> tuple[str, list[dict]]:
    return request.param, render(request.param)


def one(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def deployments(objects: list[dict]) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}


def pod(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def main_container(deployment: dict) -> dict:
    (container,) = pod(deployment)["containers"]
    return container


def all_containers(deployment: dict) -> list[dict]:
    return pod(deployment).get("initContainers", []) + pod(deployment)["containers"]


def settings_configmap(objects: list[dict]) -> dict:
    (configmap,) = [o for o in objects if o["kind"] == "ConfigMap"]
    return configmap


def test_generated_parts_are_what_the_code_renders():
    """settings.env and scaledobject.yaml are written by `make k8s`; a change to the settings
    or the backlog query without it fails here."""
    renderer = runpy.run_path(str(K8S / "render.py"))
    for path, text in renderer["rendered"]().items():
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is out of date: run make k8s"


def test_core_objects_pass_kubernetes_validate_strict(overlay):
    name, objects = overlay
    core = [o for o in objects if not o["apiVersion"].startswith("keda.sh/")]
    assert {o["kind"] for o in core} >= {"Namespace", "ConfigMap", "Deployment", "Service"}
    for document in core:
        kubernetes_validate.validate(document, "1.30.0", strict=True)
    typo = json.loads(json.dumps(deployments(objects)["beat"]))
    typo["spec"]["template"]["spec"]["terminationGracePeriod"] = 30  # strict mode does catch it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, "1.30.0", strict=True)


def crd_schema(kind: str) -> dict:
    if not CRDS.is_dir():
        pytest.skip(f"KEDA's CRDs are not at {CRDS}")
    for path in CRDS.glob("keda.sh_*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
            return version["schema"]["openAPIV3Schema"]
    pytest.fail(f"no CRD for {kind} in {CRDS}")


def unknown_fields(document, schema: dict, where: str = "") -> list[str]:
    """Fields the schema does not declare: the API server rejects them (kubectl's strict field
    validation) although the schema alone does not forbid them."""
    if isinstance(document, dict) and "properties" in schema:
        found = []
        for key, value in document.items():
            if key not in schema["properties"]:
                found.append(f"{where}.{key}")
            else:
                found += unknown_fields(value, schema["properties"][key], f"{where}.{key}")
        return found
    if isinstance(document, list) and "items" in schema:
        return [
            f
            for i, item in enumerate(document)
            for f in unknown_fields(item, schema["items"], f"{where}[{i}]")
        ]
    return []


def test_keda_objects_match_keda_crd_schemas(overlay):
    _, objects = overlay
    for kind in ("ScaledObject", "TriggerAuthentication"):
        schema = crd_schema(kind)
        (document,) = [o for o in objects if o["kind"] == kind]
        jsonschema.validate(document, schema)
        assert unknown_fields(document, schema) == []
    scaled = crd_schema("ScaledObject")
    broken = json.loads(json.dumps(one(objects, "ScaledObject", "worker")))
    broken["spec"]["triggers"] = []  # the schema does bite
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, scaled)
    broken["spec"]["minReplicaCont"] = 0
    assert unknown_fields(broken, scaled) == [".spec.minReplicaCont"]


@pytest.mark.parametrize("name", ["beat", "watch"])  # two would send scheduled runs, or files, twice
def test_exactly_one_and_never_two_during_an_update(overlay, name):
    _, objects = overlay
    single = deployments(objects)[name]
    assert single["spec"]["replicas"] == 1 and single["spec"]["strategy"] == {"type": "Recreate"}
    scaled = [o["spec"]["scaleTargetRef"]["name"] for o in objects if o["kind"] == "ScaledObject"]
    assert name not in scaled


def test_the_watcher_reads_the_photos_and_cannot_write_them(overlay):
    _, objects = overlay
    watch = deployments(objects)["watch"]
    (photos,) = [v for v in pod(watch)["volumes"] if v["name"] == "photos"]
    assert photos["persistentVolumeClaim"] == {"claimName": "photos", "readOnly": True}
    (mount,) = [m for m in main_container(watch)["volumeMounts"] if m["name"] == "photos"]
    assert mount == {"name": "photos", "mountPath": "/photos", "readOnly": True}
    assert main_container(watch)["resources"]["requests"].keys() == {"cpu", "memory"}


def test_gpu_workers_get_one_gpu_each_and_cpu_workers_none():
    gpu, cpu = deployments(render("gpu")), deployments(render("cpu"))
    for name in ("worker", "trainer"):
        assert main_container(gpu[name])["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert pod(gpu[name])["nodeSelector"] and pod(gpu[name])["tolerations"]
        command = main_container(gpu[name])["command"]
        assert command[command.index("--concurrency") + 1] == "1"  # one process per GPU
        assert gpu[name]["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0  # no wait for a held GPU
    everything = json.dumps(list(cpu.values()))
    assert "nvidia.com/gpu" not in everything and "nodeSelector" not in everything


def test_every_deployment_runs_the_compose_services_command(overlay):
    name, objects = overlay
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    found = deployments(objects)
    assert set(found) == {"worker", "trainer", "beat", "watch", "web", "flower"}
    for deployment in found:
        service = WORKER_SERVICES[name].get(deployment, deployment)
        assert main_container(found[deployment])["command"] == compose[service]["command"], deployment


def test_workers_and_the_watchers_health_is_the_images_heartbeat_check(overlay):
    _, objects = overlay
    healthcheck = re.search(r"^HEALTHCHECK .*?CMD (\[.*?\])$", DOCKERFILE.read_text(), re.M | re.S)
    command = json.loads(healthcheck.group(1))
    for name in ("worker", "trainer", "watch"):
        container = main_container(deployments(objects)[name])
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["exec"]["command"] == command, (name, probe)


def test_a_scaled_down_worker_has_time_to_finish_its_chunk(overlay):
    """terminationGracePeriodSeconds against the label task's hard time limit as a pod with
    this ConfigMap computes it (worker/tasks.py derives it from FACELABEL_VISIBILITY_TIMEOUT)."""
    _, objects = overlay
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    env.update({k: v for k, v in settings_configmap(objects)["data"].items() if v})
    program = "from worker.tasks import label_chunk_task; print(label_chunk_task.time_limit)"
    hard_limit = int(
        subprocess.run(
            [sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True, cwd=ROOT
        ).stdout
    )
    assert hard_limit > 0
    for name in ("worker", "trainer"):
        assert pod(deployments(objects)[name])["terminationGracePeriodSeconds"] > hard_limit, name


def test_every_container_runs_unprivileged(overlay):
    _, objects = overlay
    for name, deployment in deployments(objects).items():
        spec = pod(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        scratch = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in all_containers(deployment):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (name, container["name"])
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp and tmp[0]["name"] in scratch, (name, container["name"])


def test_secrets_are_referenced_never_written(overlay):
    _, objects = overlay
    assert not [o for o in objects if o["kind"] == "Secret"]
    assert not SECRET_VARIABLES & set(settings_configmap(objects)["data"])
    referenced = set()
    for deployment in deployments(objects).values():
        for container in all_containers(deployment):
            for variable in container.get("env", []):
                if variable["name"] in SECRET_VARIABLES:
                    assert "value" not in variable, variable["name"]
                    referenced.add(variable["valueFrom"]["secretKeyRef"]["name"])
    (auth,) = [o for o in objects if o["kind"] == "TriggerAuthentication"]
    assert set(auth["spec"]) == {"secretTargetRef"}
    assert referenced | {r["name"] for r in auth["spec"]["secretTargetRef"]} == {"facelabel"}


def test_images_are_pinned_to_the_project_version(overlay):
    name, objects = overlay
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for deployment_name, deployment in deployments(objects).items():
        variant = "gpu" if name == "gpu" and deployment_name in WORKER_SERVICES["gpu"] else "cpu"
        for container in all_containers(deployment):
            assert container["image"] == f"facelabel:{version}-{variant}", deployment_name


def test_the_migration_runs_before_anything_uses_the_database(overlay):
    _, objects = overlay
    users = 0
    for name, deployment in deployments(objects).items():
        main = main_container(deployment)
        if not any(v["name"] == f"{PREFIX}DB_URL" for v in main.get("env", [])):
            continue
        users += 1
        (migrate,) = pod(deployment)["initContainers"]
        assert migrate["command"] == ["facelabel", "migrate"], name
        assert migrate["image"] == main["image"], name
        assert [v for v in migrate["env"] if v["name"] == f"{PREFIX}DB_URL"] == [
            v for v in main["env"] if v["name"] == f"{PREFIX}DB_URL"
        ], name
    assert users == 5  # worker, trainer, beat, watch, web (Flower needs only the broker)


def test_the_configmap_holds_every_setting_neither_secret_nor_fixed_by_the_image(overlay):
    _, objects = overlay
    data = settings_configmap(objects)["data"]
    image_env = dict(re.findall(rf"\b({PREFIX}\w+)=(\S+)", DOCKERFILE.read_text()))
    assert not set(image_env) & set(data)  # an empty entry would switch the heartbeat off
    every = {PREFIX + name.upper() for name in Settings.model_fields}
    assert set(data) == every - SECRET_VARIABLES - set(image_env)
    given = {**data, **image_env}
    settings = Settings(**{key.removeprefix(PREFIX).lower(): value for key, value in given.items() if value})
    assert settings.data_roots == (Path("/photos"),) and settings.heartbeat_file is not None
    assert settings.gpu == "none"  # the device plugin, not Redis, hands a pod its GPU


def test_workers_scale_on_the_backlog_query_with_pod_capacity_as_target(overlay):
    _, objects = overlay
    scaled = one(objects, "ScaledObject", "worker")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql" and trigger["metadata"]["query"] == BACKLOG_QUERY
    command = main_container(deployments(objects)["worker"])["command"]
    assert trigger["metadata"]["targetQueryValue"] == command[command.index("--concurrency") + 1]
    assert scaled["spec"]["minReplicaCount"] == 0 and trigger["metadata"]["activationTargetQueryValue"] == "0"
    assert scaled["spec"]["scaleTargetRef"] == {"name": "worker"}
    assert "replicas" not in deployments(objects)["worker"]["spec"]  # KEDA owns the count
    one(objects, "TriggerAuthentication", trigger["authenticationRef"]["name"])


def implied_replicas(backlog: int, scaled: dict) -> int:
    """What the HPA that KEDA makes asks for: ceil(value / target) within the bounds, none
    unless the value is above the activation threshold."""
    metadata = scaled["spec"]["triggers"][0]["metadata"]
    if backlog <= float(metadata["activationTargetQueryValue"]):
        return scaled["spec"]["minReplicaCount"]
    wanted = math.ceil(backlog / float(metadata["targetQueryValue"]))
    return max(scaled["spec"]["minReplicaCount"], min(scaled["spec"]["maxReplicaCount"], wanted))


def test_the_backlog_query_counts_unfinished_chunks_during_a_job(tmp_path, pg_url):
    """A job of 7 chunks, enqueued as `facelabel enqueue` does; 4 claimed by workers, 2 of
    those finished: 3 queued + 2 running = 5, however often the chunks are re-sent."""
    for i in range(14):
        (tmp_path / f"{i:02}.jpg").touch()  # the scan goes by name; nothing is decoded here
    sessions = open_database(pg_url)
    sent = []
    job_id, _ = submit_job(
        sessions,
        [tmp_path],
        settings=Settings(db_url=pg_url, chunk_size=2),
        aligned=True,
        batch_size=None,
        model=None,
        send=lambda job, paths, chunk: sent.append(chunk),
    )
    assert len(sent) == 7

    def backlog() -> int:
        with sessions().connection() as connection:  # verbatim, as KEDA sends it
            return connection.exec_driver_sql(BACKLOG_QUERY).scalar_one()

    assert backlog() == 7
    for worker, chunk_id in enumerate(sent[:4]):
        with sessions.begin() as session:
            claim_chunk(session, chunk_id, f"worker-{worker}:1")
    for chunk_id in sent[:2]:
        with sessions.begin() as session:
            finish_chunk(session, chunk_id)
    assert backlog() == 5
    with sessions.begin() as session:
        unfinished_chunks(session, job_id)  # `job ID --resume` sends them all again
    assert backlog() == 5

    gpu, cpu = one(render("gpu"), "ScaledObject", "worker"), one(render("cpu"), "ScaledObject", "worker")
    assert implied_replicas(5, gpu) == min(5, gpu["spec"]["maxReplicaCount"])
    assert implied_replicas(5, cpu) == 5
    for chunk_id in sent[2:]:
        with sessions.begin() as session:
            claim_chunk(session, chunk_id, "worker-0:1")
            finish_chunk(session, chunk_id)
    assert backlog() == 0 and implied_replicas(backlog(), gpu) == implied_replicas(backlog(), cpu) == 0
