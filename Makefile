# Two commands for a fresh machine (each sets up .venv by itself, idempotently):
#   make demo   train + evaluate the unsupervised lifter on the embedded motion capture (CPU)
#   make test   run the test suite
PY := .venv/bin/python
DEMO_CONFIG := configs/unsup3d/unsup3d_reslifter-2ddisc_1xb256-100e_pybullet-mocap.py
DEMO_WORK_DIR := work_dirs/demo

.PHONY: env demo test clean

env:
	@bash tools/env/bootstrap.sh

demo: env
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_WORK_DIR)
	$(PY) tools/test.py $(DEMO_CONFIG) $(DEMO_WORK_DIR)/epoch_100.pth --work-dir $(DEMO_WORK_DIR)/test

test: env
	$(PY) -m pytest tests -q -p no:cacheprovider

clean:
	rm -rf work_dirs
