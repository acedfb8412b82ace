# Two commands from a fresh clone: `make run` and `make test`. Everything else is set up here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast lint browser slurm bench bench-storage bench-runtimes bench-chunked bench-sim bench-scale policies policies-real clean install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,kubernetes,openstack,ray]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/dacirco catalog seed --skip-existing
	$(BIN)/dacirco serve

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

# Debian's Chromium for the dashboard's browser tests, installed when missing (as root, with
# apt); elsewhere those tests say they were skipped and why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (Debian) for the browser tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	      || echo "could not install chromium: the browser tests will be skipped"; \
	  else echo "no chromium and no root apt-get: the browser tests will be skipped"; fi; }

# Debian's SLURM (slurmctld, slurmd, munge) for the SLURM runtime's tests, installed when
# missing (as root, with apt; about 15 s). Nothing is started or configured here: the tests run
# their own cluster on 127.0.0.1 (dacirco.runtimes.slurm_cluster); elsewhere they are skipped.
SLURM_PROGRAMS := slurmctld slurmd munged sbatch squeue scancel sinfo scontrol
slurm:
	@missing=0; for p in $(SLURM_PROGRAMS); do \
	  PATH="$$PATH:/usr/sbin:/sbin" command -v $$p >/dev/null 2>&1 || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing slurmctld, slurmd, munge (Debian) for the SLURM tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        slurmctld slurmd munge slurm-client >/dev/null; } \
	      || echo "could not install SLURM: the SLURM tests will be skipped"; \
	  else echo "no SLURM and no root apt-get: the SLURM tests will be skipped"; fi; fi

test: lint browser slurm
	$(BIN)/pytest -q --durations=15

# The fast loop: the unit tests (no processes, no ffmpeg), well under a minute.
test-fast: $(STAMP)
	$(BIN)/pytest -q tests/unit -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py

bench-storage: $(STAMP)
	$(BIN)/python benchmarks/storage.py

bench-runtimes: $(STAMP)
	$(BIN)/python benchmarks/runtimes.py

bench-chunked: $(STAMP)
	$(BIN)/python benchmarks/chunked.py
	$(BIN)/python benchmarks/chunked_sim.py

bench-sim: $(STAMP)
	$(BIN)/python benchmarks/simulator.py

# Scale: stored jobs, submissions, one decision, the simulator; each figure beside its goal.
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/decisions.py
	$(BIN)/python benchmarks/sim_scale.py --million

# docs/policies.md and its Pareto plots, from the simulator (1,125 runs: 20 minutes on one process).
policies: $(STAMP)
	$(BIN)/python benchmarks/policies.py --out docs

# The same policies on a real run of this machine (about 3 minutes).
policies-real: $(STAMP)
	cd benchmarks && ../$(BIN)/python policies_real.py --repeats 2

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .ruff_cache
