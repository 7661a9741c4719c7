#!/usr/bin/env bash
# Hashed lock files for the image variants, from pyproject.toml (make lock). The image
# installs them with --require-hashes; tests/test_deploy.py checks they still satisfy it.
set -euo pipefail
cd "$(dirname "$0")/.."
UV="${UV:-uv}"
common=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet)
"$UV" pip compile pyproject.toml --extra postgres --extra monitor "${common[@]}" \
    -o deploy/requirements-cpu.lock
# the GPU image takes TensorFlow with its CUDA libraries instead of the CPU-only build
"$UV" pip compile pyproject.toml --extra postgres --extra monitor --extra gpu \
    --no-emit-package tensorflow-cpu "${common[@]}" -o deploy/requirements-gpu.lock
echo "setuptools>=69" | "$UV" pip compile - "${common[@]}" -o deploy/requirements-build.lock
