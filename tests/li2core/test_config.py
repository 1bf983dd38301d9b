import pytest
from pydantic import ValidationError

from li2core.config import RunConfig, field_bounds
from li2core.presets import PRESETS


def field_of(exc: ValidationError) -> set[str]:
    return {str(e["loc"][0]) if e["loc"] else "" for e in exc.errors()}


@pytest.mark.parametrize("changes,field", [
    ({"hidden": 0}, "hidden"), ({"hidden": 5000}, "hidden"), ({"lr": 0}, "lr"),
    ({"lr": 3.0}, "lr"), ({"train_fraction": 1.0}, "train_fraction"),
    ({"weight_decay": -1e-3}, "weight_decay"), ({"steps": 200_000}, "steps"),
    ({"activation": "tanh"}, "activation"), ({"optimizer": "lbfgs"}, "optimizer"),
    ({"group": "S9"}, "group"), ({"seed": -1}, "seed"), ({"bogus": 1}, "bogus"),
    ({"top_init_scale": 11}, "top_init_scale"),
])
def test_bad_values_name_the_field(changes, field):
    with pytest.raises(ValidationError) as info:
        RunConfig(**changes)
    assert field in field_of(info.value) or field in str(info.value)


def test_memory_bound_names_hidden():
    with pytest.raises(ValidationError, match="hidden"):
        RunConfig(group="Z256", hidden=4096)


def test_tiny_fraction_leaves_no_training_rows():
    with pytest.raises(ValidationError, match="train_fraction"):
        RunConfig(group="Z5", train_fraction=0.01)


def test_custom_group_needs_valid_table():
    RunConfig(group="custom", group_table=[[0, 1], [1, 0]], train_fraction=0.5)
    with pytest.raises(ValidationError, match="group_table"):
        RunConfig(group="custom")
    with pytest.raises(ValidationError, match="associativity|inverse|closure"):
        RunConfig(group="custom", group_table=[[0, 1, 2], [1, 1, 1], [2, 1, 0]])


def test_presets_are_valid_and_fig3_matches_the_paper():
    assert {"lecture", "fig3", "fig3-no-wd"} <= set(PRESETS)
    fig3 = PRESETS["fig3"][1]
    assert (fig3.group, fig3.hidden, fig3.train_fraction, fig3.lr, fig3.weight_decay) == (
        "Z71", 2048, 0.4, 1e-3, 2e-4)
    assert (fig3.optimizer, fig3.activation, fig3.loss, fig3.top_layer) == (
        "adam", "square", "mse", "trained")
    assert PRESETS["fig3-no-wd"][1] == fig3.with_(weight_decay=0.0)


def test_field_bounds_expose_limits_for_uis():
    b = field_bounds()
    assert b["hidden"]["maximum"] == 4096 and b["hidden"]["minimum"] == 1
    assert set(b["optimizer"]["enum"]) == {"adam", "adamw", "sgd", "muon"}
