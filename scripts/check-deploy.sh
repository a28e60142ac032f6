#!/usr/bin/env bash
# Checks every deployment file with a real validator (run by .ci/run):
# hadolint on the Dockerfile; actionlint and the GitHub workflow schema on the
# workflow; the compose specification's schema on deploy/compose.yaml; the
# Kubernetes schemas (strict: an unknown field fails) on deploy/k8s, file by
# file and as `kubectl kustomize` builds it; and the containers of the Cloud
# Run service against the Kubernetes container schema (Cloud Run's own
# schema is not available offline: its Knative envelope is not checked).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/lib.sh"
ensure_deploy_tools "$root"
V="$root/tools/venv-deploy/bin"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"

say "hadolint Dockerfile"
"$V/hadolint" Dockerfile
say "actionlint and the workflow schema"
node scripts/actionlint.cjs .github/workflows/*.yml
"$V/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml
say "compose specification: deploy/compose.yaml"
"$V/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose.yaml
say "Kubernetes schemas: deploy/k8s"
"$V/kubernetes-validate" --strict --quiet $(grep -l '^kind:' deploy/k8s/*.yaml | grep -v kustomization)
kubectl kustomize deploy/k8s >"$tmp/built.yaml"
"$V/kubernetes-validate" --strict --quiet "$tmp/built.yaml"
say "Cloud Run: the containers of deploy/cloudrun/service.yaml"
"$V/python" - deploy/cloudrun/service.yaml "$tmp/cloudrun-pod.yaml" <<'PY'
import sys, yaml
service = yaml.safe_load(open(sys.argv[1]))
assert service["apiVersion"] == "serving.knative.dev/v1" and service["kind"] == "Service", "not a Knative Service"
spec = service["spec"]["template"]["spec"]
pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cloudrun-check"},
       "spec": {"containers": [dict(c, name=c.get("name", "pulsyon")) for c in spec["containers"]]}}
yaml.safe_dump(pod, open(sys.argv[2], "w"))
PY
"$V/kubernetes-validate" --strict --quiet "$tmp/cloudrun-pod.yaml"
say "deployment files checked"
