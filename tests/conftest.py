import os

import pytest
import torch

# Tests share 2 cores with each other and with CI; one torch thread keeps timings sane and
# results deterministic.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def tmp_run_dir(tmp_path):
    return tmp_path / "run"
