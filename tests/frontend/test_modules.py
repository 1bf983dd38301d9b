"""The page's pure modules run in chromium against Python's side of each contract: the binary
snapshot frame from server/protocol.py, 422 details from RunConfig's own validation.
Files are served by Playwright's router, so no server is needed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from li2core.config import RunConfig
from server.errors import error_entries

pytestmark = pytest.mark.browser


def test_snapshot_frame_from_python_decodes_in_place(module_page):
    from server.protocol import encode_snapshot

    rng = np.random.default_rng(0)
    arrays = {
        "spec_u": rng.random((5, 3), dtype=np.float32),
        "dominant": np.array([2, 0, 1, 1, 2], dtype=np.int32),
        "active": np.array([1, 0, 1, 1, 0], dtype=np.uint8),
        "gf_spectrum": rng.random(3, dtype=np.float32),
    }
    module_page.extra_files["/frame.bin"] = encode_snapshot("run-1", 17, 250, arrays)
    got = module_page.evaluate("""async () => {
        const { decodeSnapshot } = await import('/js/protocol.js');
        const buf = await (await fetch('/frame.bin')).arrayBuffer();
        const s = decodeSnapshot(buf);
        const out = {};
        for (const [k, a] of Object.entries(s.arrays)) {
            out[k] = { shape: a.shape, type: a.data.constructor.name,
                       shared: a.data.buffer === buf, data: Array.from(a.data) };
        }
        return { runId: s.runId, seq: s.seq, step: s.step, arrays: out };
    }""")
    assert (got["runId"], got["seq"], got["step"]) == ("run-1", 17, 250)
    types = {"float32": "Float32Array", "int32": "Int32Array", "uint8": "Uint8Array"}
    for name, arr in arrays.items():
        dec = got["arrays"][name]
        assert dec["shape"] == list(arr.shape)
        assert dec["type"] == types[arr.dtype.name]
        assert dec["shared"], "typed arrays should view the frame, not copy it"
        np.testing.assert_array_equal(np.array(dec["data"], dtype=arr.dtype), arr.ravel())


def test_a_corrupt_frame_is_refused(module_page):
    module_page.extra_files["/bad.bin"] = b"NOPE" + bytes(20)
    msg = module_page.evaluate("""async () => {
        const { decodeSnapshot } = await import('/js/protocol.js');
        try { decodeSnapshot(await (await fetch('/bad.bin')).arrayBuffer()); return 'decoded'; }
        catch (e) { return e.message; }
    }""")
    assert "not a version-1 snapshot frame" in msg


def _detail(**config) -> list[dict]:
    """The 422 detail the server sends for this body (server/errors.py)."""
    with pytest.raises(ValidationError) as info:
        RunConfig(**config)
    errs = [{**e, "loc": ("body", *e["loc"])} for e in info.value.errors(include_url=False)]
    return json.loads(json.dumps(error_entries(errs)))


@pytest.mark.parametrize("config, field", [
    ({"hidden": 99999}, "hidden"),
    ({"lr": 0}, "lr"),
    ({"optimizer": "rmsprop"}, "optimizer"),
    # a cross-field check: the server puts the field it blames into loc
    ({"group": "Z200", "hidden": 4096}, "hidden"),
    ({"group": "Z5", "train_fraction": 0.01}, "train_fraction"),
])
def test_422_details_are_mapped_to_their_control(module_page, config, field):
    detail = _detail(**config)
    known = sorted(RunConfig.model_fields) + ["max_steps_per_s"]
    got = module_page.evaluate("""async ([detail, known]) => {
        const { fieldErrorsFromDetail } = await import('/js/api.js');
        return fieldErrorsFromDetail(detail, new Set(known));
    }""", [detail, known])
    assert [e["field"] for e in got] == [field]
    assert got[0]["msg"] and "Value error, " not in got[0]["msg"]


def test_url_values_round_trip(module_page):
    got = module_page.evaluate("""async () => {
        const { parseValue, formatValue } = await import('/js/url-state.js');
        const cases = [
            [{ type: 'number' }, '0.0025'], [{ type: 'int' }, '7'], [{ type: 'int' }, 'abc'],
            [{ type: 'bool' }, '1'], [{ type: 'list' }, 'lr,optimizer'],
            [{ type: 'json' }, '[[0,1],[1,0]]'], [{ type: 'string' }, 'Z4xZ7'],
        ];
        return cases.map(([f, t]) => {
            const v = parseValue(f, t);
            return [t, typeof v, formatValue(f, v)];
        });
    }""")
    for text, _kind, back in got:
        assert back == text
    kinds = [k for _, k, _ in got]
    assert kinds == ["number", "number", "string", "boolean", "object", "object", "string"]


def test_thinning_keeps_the_newest_point(module_page):
    got = module_page.evaluate("""async () => {
        window.Plotly = {};
        const { thinIndices } = await import('/js/panels/plot.js');
        return [thinIndices(10, 1500), thinIndices(100000, 1500)];
    }""")
    assert got[0] is None
    idx = got[1]
    assert len(idx) <= 1500 and idx[-1] == 99999 and idx == sorted(idx)
