#!/usr/bin/env bash
# Static checks of the deployment files (no Docker engine or Kubernetes cluster needed):
#   - YAML syntax and style of every file (yamllint)
#   - compose.yaml against the Compose specification's schema (check-jsonschema, vendored)
#   - every Kubernetes manifest against the Kubernetes API schemas (kubernetes-validate
#     --strict: unknown fields fail); the KEDA ScaledObject's CRD schema is not bundled, so
#     it gets the YAML checks only
#   - the Prometheus alert rules (promtool check rules, and their unit tests with promtool
#     test rules, when promtool is installed)
#   - the NATS configuration (nats-server -t), and the podman test's loopback variant
#   - the podman test's scripts parse (bash -n, Python's parser)
# The validators are installed from PyPI into a virtual environment on first use.
# Usage: deploy/check.sh  (CI runs it from .ci/run)
set -euo pipefail
cd "$(dirname "$0")"

VENV="${DEPLOY_CHECK_VENV:-$HOME/.cache/borderwatch/deploy-venv}"
PINS=(check-jsonschema==0.39.0 kubernetes-validate==1.37.0 yamllint==1.38.0)
if ! "$VENV/bin/python" -m pip freeze 2>/dev/null | grep -qx 'kubernetes-validate==1.37.0'; then
  echo "deploy: installing ${PINS[*]} into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
fi

echo "deploy: yamllint"
"$VENV/bin/yamllint" --strict -d '{extends: default, rules: {line-length: {max: 200}, document-start: disable, comments: {min-spaces-from-content: 1}, braces: {max-spaces-inside: 1}}}' \
  compose k8s prometheus-rules.yml prometheus-rules.test.yml

echo "deploy: compose.yaml against the Compose specification"
"$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec compose/compose.yaml

echo "deploy: Kubernetes manifests against the API schemas"
"$VENV/bin/kubernetes-validate" --strict --quiet k8s/*.yaml

echo "deploy: Prometheus rules"
if command -v promtool >/dev/null; then
  promtool check rules prometheus-rules.yml
  promtool test rules prometheus-rules.test.yml
else
  echo "promtool not installed (Debian: apt-get install prometheus): YAML checks only"
fi

echo "deploy: NATS configuration"
NATS_BIN="${NATS_SERVER_BIN:-nats-server}"
NATS_SERVER_NAME=check BW_PASSWORD=check ADMIN_PASSWORD=check \
  "$NATS_BIN" -t -c nats/nats.conf
# The podman test's loopback variant (it includes nats.conf) and the test's own scripts
# (podman-test.sh itself needs podman and is not run here).
NATS_SERVER_NAME=check BW_PASSWORD=check ADMIN_PASSWORD=check NATS_LISTEN=127.0.0.1:24221 \
  NATS_HTTP=127.0.0.1:28221 NATS_CLUSTER=127.0.0.1:26221 \
  "$NATS_BIN" -t -c nats/nats-loopback.conf
bash -n podman-test.sh
python3 -c 'import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]' podman/*.py
echo "deploy: ok"
