# Two commands set everything up on a fresh machine (see README):
#   make demo   sets up .venv, trains an SNN on digits, exports, compiles, runs in Lava, prints parity
#   make test   sets up .venv and runs the test suite (what .ci/run calls)
PY := .venv/bin/python

.PHONY: setup demo test test-all bench clean
setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) examples/digits/demo.py

test: setup
	$(PY) -m pytest -q -m "not slow"

test-all: setup
	$(PY) -m pytest -q

# netx vs snnc speed, side by side (~10 min): benchmarks/RESULTS.md, benchmarks/results/speed.{json,png}
bench: setup
	$(PY) benchmarks/speed.py

clean:
	rm -rf examples/digits/out .pytest_cache
