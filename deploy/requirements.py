"""Print the image's pip requirements from pyproject.toml (the one list of dependencies), so
the Dockerfile installs them in a layer of their own, before the source is copied.

Usage: python requirements.py cpu|gpu > requirements.txt
"""

import sys
import tomllib

variant = sys.argv[1]
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
requirements = list(project["dependencies"]) + extras["postgres"] + extras["monitor"]
if variant == "gpu":  # TensorFlow with its CUDA libraries instead of the CPU-only build
    requirements = [r for r in requirements if not r.startswith("tensorflow-cpu")] + extras["gpu"]
elif variant != "cpu":
    sys.exit(f"unknown variant {variant!r}: cpu or gpu")
print("\n".join(requirements))
