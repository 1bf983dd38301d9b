"""POST /api/theory/predict answers for settings before any run; GET indicators names them."""

from li2core.config import RunConfig
from li2core.theory import predict_verdict
from li2core.vocabulary import INDICATORS, VERDICTS


def test_prediction_for_settings_matches_what_a_run_would_start_with(make_client):
    c = make_client()
    body = {"group": "Z59", "hidden": 512, "train_fraction": 0.4, "weight_decay": 2e-4}
    r = c.post("/api/theory/predict", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["prediction"] == predict_verdict(RunConfig(**body))
    # the same verdict words as a finished run's summary (li2core.vocabulary)
    assert out["prediction"]["verdict"] in VERDICTS and out["prediction"]["reasons"]
    assert out["group"]["order"] == 59 and out["n_train"] == round(0.4 * 59 * 59)
    # the verdict follows the settings: no weight decay changes it
    no_wd = c.post("/api/theory/predict", json={**body, "weight_decay": 0}).json()
    assert no_wd["prediction"] == predict_verdict(RunConfig(**{**body, "weight_decay": 0}))
    assert no_wd["prediction"]["verdict"] != out["prediction"]["verdict"]


def test_bad_settings_name_the_field(make_client):
    r = make_client().post("/api/theory/predict", json={"train_fraction": 2})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "train_fraction"


def test_indicator_words(make_client):
    words = make_client().get("/api/theory/indicators").json()
    assert words["indicators"] == INDICATORS
    assert words["next"]["lazy"]["to"] == "independent"
    # groups too small to claim Stage III go from Stage II straight to generalised
    assert words["next_small"]["independent"]["to"] == "generalised"
