# fairviz — two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501
APT_PACKAGES := ffmpeg chromium chromium-driver
# pytest arguments, e.g. `make test PYTEST_ARGS="-k metrics"`
PYTEST_ARGS ?=

.PHONY: run test lint fuzz screenshots install install-test apt models bench clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Stamps make a second `make run` start at once; they are redone when a requirements file changes.
$(VENV)/.installed: requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test apt

# Debian packages the suite needs: ffmpeg (audio tracks), Chromium + driver (browser tests).
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

run: install
	$(VENV)/bin/streamlit run app.py --server.port $(PORT)

# pytest exits 5 when it collects nothing; make fails on any non-zero exit, so that cannot pass.
test: install-test lint
	$(PY) -m pytest $(PYTEST_ARGS)

# ruff's settings live in pyproject.toml ([tool.ruff]).
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .

# Property tests with fresh random examples (the suite's own run is repeatable); run by hand,
# e.g. `make fuzz FUZZ_ROUNDS=20`. Each round draws new examples.
FUZZ_ROUNDS ?= 5
fuzz: install-test
	for i in $$(seq $(FUZZ_ROUNDS)); do \
	  HYPOTHESIS_PROFILE=explore $(PY) -m pytest -q -p no:cacheprovider \
	    $$(grep -rl "^from hypothesis import\|^import hypothesis" tests --include='test_*.py') || exit 1; \
	done

# Retake the README's screenshots (docs/screenshots/) with the browser test.
screenshots: install-test
	FAIRVIZ_SCREENSHOTS=docs/screenshots $(PY) -m pytest -q tests/test_browser.py

# Rebuild the runs shipped in models/ (the methods, the λ_W and λ_sw sweeps at α = 4). One torch
# thread: float sums in another order change the trained weights, so the same runs come out on
# every machine whatever its core count.
models: install
	$(PY) -m fairviz ship-models --out models --threads 1

bench: install-test
	$(PY) bench/bench_metrics.py
	$(PY) bench/bench_data.py
	$(PY) bench/bench_train.py
	$(PY) bench/bench_monitor.py

clean-venv:
	rm -rf $(VENV)
