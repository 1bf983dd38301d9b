"""The science tests of test_train, test_stages and test_fig3, rerun under the other engine and
precision: the autograd reference (fp32) and the fused step in bf16. (Their own modules run the
default, the fused fp32 step.) Each test function is called as written, with its module's
``train`` swapped for one that sets the engine and precision.
"""

import pytest

from li2core import train as real_train

from . import test_fig3, test_stages, test_train

VARIANTS = {"autograd": dict(engine="autograd", precision="fp32"),
            "bf16": dict(engine="fused", precision="bf16")}


# the autograd reruns are slow: the fused step's equality with autograd is checked step by
# step in test_fused.py; bf16, whose numbers differ, reruns on every pass
@pytest.fixture(params=[pytest.param("autograd", marks=pytest.mark.slow), "bf16"])
def engine(request, monkeypatch):
    """Swap ``train`` in the science test modules for one that runs the given variant."""
    changes = VARIANTS[request.param]

    def train(config, **kw):
        return real_train(config.with_(**changes), **kw)

    for module in (test_train, test_stages, test_fig3):
        monkeypatch.setattr(module, "train", train)
    return request.param


@pytest.mark.parametrize("changes", [
    {"top_layer": "ridge"}, {"optimizer": "muon", "lr": 2e-2}, {"optimizer": "adamw"},
    {"optimizer": "sgd", "lr": 0.3}, {"activation": "relu"}, {"activation": "silu"},
    {"activation": "relu_square"}, {"loss": "cross_entropy"}, {"top_init_scale": 0.0},
])
def test_modes_reduce_the_loss(engine, changes):
    test_train.test_modes_reduce_the_loss(changes)


@pytest.mark.parametrize("group", ["D7", "S4"])
def test_non_abelian_groups_fit_training_set(engine, group):
    test_train.test_product_dihedral_and_symmetric_groups_fit_training_set(group)


def test_weight_decay_groks_and_no_weight_decay_only_memorises(engine):
    test_train.test_weight_decay_groks_and_no_weight_decay_only_memorises()


def test_grokking_run_goes_lazy_independent_interactive_generalised(engine):
    test_stages.test_grokking_run_goes_lazy_independent_interactive_generalised()


@pytest.mark.slow
def test_same_run_without_weight_decay_locks_no_node_and_learns_no_feature(engine):
    test_stages.test_same_run_without_weight_decay_locks_no_node_and_learns_no_feature()


@pytest.mark.slow
def test_run_far_below_p_crit_is_memorised_by_memorising_nodes(engine):
    test_stages.test_run_far_below_p_crit_is_memorised_by_memorising_nodes()


@pytest.mark.slow
def test_fig3_groks_and_fig3_without_weight_decay_does_not(engine):
    test_fig3.test_fig3_groks_and_fig3_without_weight_decay_does_not()


@pytest.mark.slow
def test_fig3_stages_follow_the_reference_timeline(engine):
    test_stages.test_fig3_stages_follow_the_reference_timeline()
