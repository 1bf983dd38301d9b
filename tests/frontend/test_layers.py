"""Deeper networks on the dashboard (issue 15): the layer helpers against a frame encoded by the
server, and a real depth-2 run drawn in the browser: the layers strip, the layer selector on
the per-node panels, the theory card's note (marked browser)."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from .helpers import li2, open_dashboard, set_field, wait_for

pytestmark = pytest.mark.browser


def test_layer_views_never_fall_back_to_layer_one(module_page):
    from server.protocol import encode_snapshot

    rng = np.random.default_rng(1)
    arrays = {
        "spec_u": rng.random((4, 3), dtype=np.float32),
        "dominant": np.array([0, 1, 2, 0], dtype=np.int32),
        "W2": rng.random((4, 4), dtype=np.float32),
        "spec@2": rng.random((4, 3), dtype=np.float32),
        "dominant@2": np.array([2, 2, 1, 0], dtype=np.int32),
    }
    module_page.extra_files["/frame.bin"] = encode_snapshot("run-2", 3, 40, arrays)
    got = module_page.evaluate("""async () => {
        const { decodeSnapshot } = await import('/js/protocol.js');
        const L = await import('/js/layers.js');
        const snap = decodeSnapshot(await (await fetch('/frame.bin')).arrayBuffer());
        const two = L.layerArrays(snap.arrays, 2);
        const three = L.layerArrays(snap.arrays, 3);
        const state = { settings: { layer: 2 }, snapshot: snap, started: null, run: null };
        const stages = [{ step: 0, stage: 'lazy' }, { step: 0, stage: 'lazy', layer: 2 },
          { step: 30, stage: 'independent', layer: 1 }, { step: 50, stage: 'independent',
            layer: 2 }, { step: 90, stage: 'generalised', layer: 2 }];
        return {
          names2: Object.keys(two).sort(), dom2: Array.from(two.dominant.data),
          names3: Object.keys(three), same1: L.layerArrays(snap.arrays, 1) === snap.arrays,
          depth: L.runDepth(state), chosen: L.selectedLayer(state),
          clamped: L.selectedLayer({ ...state, settings: { layer: 4 } }),
          one: L.stagesOf(stages, 1).map((s) => `${s.stage}@${s.step}`),
          two: L.stagesOf(stages, 2).map((s) => `${s.stage}@${s.step}`),
          name: [L.layerName('gf_norm', 1), L.layerName('gf_norm', 3)],
        };
    }""")
    assert got["names2"] == ["dominant", "spec"]  # no spec_u: layer 1's name has no twin here
    assert got["dom2"] == [2, 2, 1, 0]
    assert got["names3"] == [] and got["same1"]
    assert got["depth"] == 2 and got["chosen"] == 2 and got["clamped"] == 1
    # an event without `layer` (an old stored run) is layer 1's; outcomes close every layer
    assert got["one"] == ["lazy@0", "independent@30", "generalised@90"]
    assert got["two"] == ["lazy@0", "independent@50", "generalised@90"]
    assert got["name"] == ["gf_norm", "gf_norm@3"]


# the heatmap's rows against the stored snapshot's `spec@2`, normalised per node as drawn
HEATMAP_IS_LAYER_TWO = """async ([runId, step]) => {
    const { decodeSnapshot } = await import('/js/protocol.js');
    const res = await fetch(`/api/runs/${runId}/snapshot?step=${step}`);
    const a = decodeSnapshot(await res.arrayBuffer()).arrays;
    const trace = document.querySelector('#panel-spectrum .plot').data[0];
    const spec = a['spec@2'];
    const c = spec.shape[1];
    let worst = 0;
    let fromOne = 0;
    trace.customdata.forEach((cells, i) => {
      const j = cells[0];
      const row = Array.from(spec.data.subarray(j * c, (j + 1) * c));
      const one = Array.from(a.spec_u.data.subarray(j * c, (j + 1) * c));
      const sum = row.reduce((s, v) => s + v, 0);
      const sumOne = one.reduce((s, v) => s + v, 0);
      row.forEach((v, k) => {
        worst = Math.max(worst, Math.abs(trace.z[i][k] - (sum > 0 ? v / sum : 0)));
        fromOne = Math.max(fromOne, Math.abs(trace.z[i][k] - one[k] / sumOne));
      });
    });
    return { rows: trace.z.length, k: spec.shape[0], worst, fromOne };
}"""


# rows of the layers strip holding at least one stage band
ROWS_WITH_BANDS = ("(() => { const d = document.querySelector('#panel-layers .plot');"
                   " if (!d || !d.layout || d.closest('section').hidden) return 0;"
                   " return new Set(d.layout.shapes.filter(s => s.type === 'rect')"
                   ".map(s => Math.round((s.y0 + s.y1) / 2))).size; })()")


def test_a_deep_run_shows_every_layer(page, server):
    open_dashboard(page, server.url)
    presets = page.locator("#preset option").all_inner_texts()
    assert "deep" in presets and "deep-zero-init" in presets
    page.select_option("#preset", "deep")
    # the depth control comes from the schema, with the other network controls
    depth = int(page.locator("#input-depth").input_value())
    assert depth >= 2
    assert page.locator("#field-depth").evaluate(
        "e => e.closest('fieldset').querySelector('legend').textContent") == "network"
    # a depth-1 page has neither the strip nor a layer selector
    assert page.locator("#panel-layers").is_hidden()
    assert page.locator("#panel-spectrum .layer-pick").is_hidden()
    set_field(page, "max_steps_per_s", "150")  # a few seconds to watch it live
    page.click("#start")
    wait_for(page, "window.__li2.runId !== null && window.__li2.lastStep >= 0", 180)
    # live: the strip appears with a band in each layer's row while the run goes on
    wait_for(page, ROWS_WITH_BANDS + " >= 2", 60)
    assert li2(page, "status") == "running"
    wait_for(page, "window.__li2.status === 'completed'", 240)
    run_id = li2(page, "runId")
    stored = httpx.get(f"{server.url}/api/runs/{run_id}/stages").json()
    stored = stored.get("stages", stored) if isinstance(stored, dict) else stored
    own = {}
    for s in stored:
        if s["stage"] not in ("generalised", "memorised"):
            own.setdefault(s.get("layer", 1), []).append(s)
    assert len(own) >= 2, f"stage events for fewer than two layers: {stored}"

    strip = page.locator("#panel-layers .plot")
    assert int(strip.get_attribute("data-rows")) == depth
    # a band per stage event of each layer, inside that layer's row (layer 1 at the bottom)
    rects = strip.evaluate("d => d.layout.shapes.filter(s => s.type === 'rect')"
                           ".map(s => [(s.y0 + s.y1) / 2, s.fillcolor])")
    for layer, events in own.items():
        assert sum(1 for y, _ in rects if round(y) == layer) >= len(events)
    # under it, the measured order of the layers, as the run's summary has it
    summary = httpx.get(f"{server.url}/api/runs/{run_id}").json()["summary"]
    wait_for(page, "document.querySelector('#panel-layers .panel-meta').dataset.order === "
                   f"'{summary.get('layer_order') or ''}'", 10)
    ticks = strip.evaluate("d => d.layout.yaxis.ticktext")
    assert ticks[0] == "layer 1" and len(ticks) == depth
    # the stored run opened again (a reload: everything comes back from the store)
    page.reload()
    page.wait_for_function("window.__li2 && window.__li2.ready === true")
    wait_for(page, f"(document.querySelector('#panel-layers .plot').layout?.shapes ?? [])"
                   f".filter(s => s.type === 'rect').length === {len(rects)}", 30)

    # the layer selector: the spectrum heatmap switches to layer 2's own arrays
    pick = page.locator("#panel-spectrum .layer-pick")
    assert pick.is_visible()
    pick.locator("input[data-layer='2']").check()
    wait_for(page, "document.querySelector('#panel-spectrum .panel-meta').textContent"
                   ".includes('layer 2')", 10)
    assert "layer=2" in page.url
    step = page.evaluate("window.__li2.snapshotStep")
    got = page.evaluate(HEATMAP_IS_LAYER_TWO, [run_id, step])
    assert got["rows"] >= 1 and got["worst"] < 1e-5
    assert got["fromOne"] > 1e-3, "layer 2's heatmap shows layer 1's spectra"
    # every per-node panel follows the one setting
    wait_for(page, "document.querySelector(\"#panel-coverage .layer-pick input[data-layer='2']\")"
                   ".checked && document.querySelector('#panel-coverage .panel-meta')"
                   ".textContent.includes('layer 2')", 10)
    # the theory card says what the theory covers for depth ≥ 2, and what is open
    words = httpx.get(f"{server.url}/api/vocabulary").json()["depth_note"]
    note = page.locator("#theory-depth")
    assert note.get_attribute("data-depth") == str(depth)
    assert words["open"] in note.inner_text()
    assert page.errors == []
