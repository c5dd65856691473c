# weakgen: two commands on a fresh machine.
#   make report   create .venv if absent, install the pinned stack, build reports/thesis_tables.pdf (smoke profile),
#                 then Snakemake's HTML report reports/report.html (REPORT_HTML=reports/report.zip for a large one)
#   make test     same set-up plus requirements-test.txt and test data, then the test suite
# Other targets: make venv | repro (dvc repro with the venv on PATH) | dvc-export | bench | clean
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.weakgen-stamp
TEST_STAMP := $(VENV)/.weakgen-test-stamp
PROFILE ?= smoke
REPORT_HTML ?= reports/report.html
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: venv report test repro dvc-export bench clean

$(STAMP): requirements.lock requirements-nodeps.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	@touch $@

venv: $(STAMP)

report: $(STAMP)
	$(VENV)/bin/snakemake --cores all reports/thesis_tables.pdf html_report --config profile=$(PROFILE)
	$(VENV)/bin/snakemake --report $(REPORT_HTML) --config profile=$(PROFILE)

# Test-only: dlib itself (reference for the face-descriptor port) and the face-recognition sdist's photos.
$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	$(PY) -m pip download --quiet --no-deps --no-binary :all: -d $(VENV)/test-data face-recognition==1.3.0
	@touch $@

test: $(TEST_STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

repro: $(STAMP)
	$(VENV)/bin/dvc repro

dvc-export: $(STAMP)
	$(PY) -m stages.export_dvc

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "# $$b"; $(PY) $$b; done

clean:
	rm -rf results/*/ data/processed reports/figures reports/tables reports/*.pdf reports/*.html reports/*.zip reports/html logs .snakemake
