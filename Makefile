# `make run` and `make test` work on a fresh clone: they create .venv and install what is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test sweep tune tune-strong poison report clean

# Quiet: one line per step; pip's own warnings (-qq keeps errors) and its version check stay out of the way.
PIP := $(BIN)/pip install -qq --disable-pip-version-check

$(BIN)/python:
	@echo "make: creating $(VENV)"
	@$(PY) -m venv $(VENV)

# torch first, pinned to the CPU wheel on disk, so no dependency pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	@echo "make: installing pip, torch 2.13.0 (CPU), then unlearn-bench and its dependencies into $(VENV) (a few minutes the first time)"
	@$(PIP) --upgrade pip
	@$(PIP) torch==2.13.0
	@$(PIP) -e '.[dev]'
	@touch $(STAMP)
	@echo "make: installed"

install: $(STAMP)

run: $(STAMP)
	$(BIN)/unlearn-bench

test: $(STAMP)
	$(BIN)/python -m pytest -q

sweep: $(STAMP)
	$(BIN)/unlearn-bench -m method=ga,graddiff,ga_kl,npo,simnpo,wga,undial,ngdiff,rmu,task_negation,ceu,satimp,pdu,altpo,idk,idk_dpo,wrong_answers,ihl
	$(BIN)/unlearn-bench-report results

# The search behind conf/method/*.yaml (unlearn_bench/report/tuning.py): one study per method on Hydra's Optuna sweeper
# (hydra/sweeper=tune: TPE, seed 0; results/tune/optuna.db, so a killed search resumes), world seed 1, diagnostics off;
# 65 runs (the replaced lr x epochs grid's 47, and 18 more for CE-U, PDU and AltPO); 14 min on 2 cores (2026-12-07,
# two processes). Writes the chosen lr and epochs into conf/method/ and the search's table beside the sweep's.
tune: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m unlearn_bench.report.tuning --results results/tune --apply conf/method
	cp results/tune/tuning.md results/embedded_default/tuning.md

# Strong settings for experiment=strong (unlearn_bench/report/strong.py): a grid beyond make tune's, world seed 1,
# diagnostics off; the point per method whose none share is below the verdict threshold and that passes the
# utility gate, written to conf/method_experiment/<method>_strong.yaml; 75 points (97 runs with an earlier, narrower grid for
# six methods), 20 min on 2 cores (2026-12-07).
tune-strong: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m unlearn_bench.report.strong --results results/tune_strong --jobs 2 --apply conf/method_experiment

# Poisoned unlearning requests (unlearn_bench/report/poison.py): the 18 fine-tuning methods x poison rates
# {0, 0.05, 0.1, 0.25} x strategies retain/utility/neighbour (the rates each split can supply) x seeds 0-2, and the
# detector at rate 0.1; two runs at a time, diagnostics off. Writes the table and figure the README shows.
poison: $(STAMP)
	$(BIN)/python -m unlearn_bench.report.poison --results results/poison --jobs 2
	cp results/poison/poison.md results/poison/poison.png results/embedded_default/

report: $(STAMP)
	$(BIN)/unlearn-bench-report results

clean:
	rm -rf $(VENV) build *.egg-info
