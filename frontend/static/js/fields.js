// The one table of page settings (TensorFlow Playground style): every control lives in the URL
// through this table. Bounds and choices of config fields come from GET /api/config/schema;
// this table only says where a field goes, how to label it and how to read it from a URL.
//   scope 'config' → RunConfig body of POST /api/runs; 'query' → query param of that POST;
//   'view' → display only (panel toggles, the attached run, hidden controls).

// Config fields come from the server's schema (labels, symbols, units, help, bounds: pydantic
// metadata in li2core/config.py); this table adds only what a page needs beyond it.
const CONFIG_EXTRAS = {
  group_table: { widget: 'json', showIf: (cfg) => cfg.group === 'custom' },
};

export const FIELDS = [
  { name: 'max_steps_per_s', scope: 'query', section: 'run', label: 'speed cap',
    unit: 'steps/s', type: 'number', hint: 'empty = as fast as the machine goes' },
  { name: 'preset', scope: 'view', type: 'string', default: 'lecture' }, // a cold start groks
  { name: 'run', scope: 'view', type: 'string', default: '' },
  { name: 'at', scope: 'view', type: 'int' }, // pinned step (scrub); absent = live
  { name: 'node', scope: 'view', type: 'int' }, // hidden node in the inspector
  { name: 'layer', scope: 'view', type: 'int' }, // layer the per-node panels show (depth ≥ 2)
  { name: 'present', scope: 'view', type: 'bool', default: false }, // projector mode
  { name: 'log_loss', scope: 'view', type: 'bool', default: true },
  { name: 'log_steps', scope: 'view', type: 'bool', default: false },
  { name: 'spec_rows', scope: 'view', type: 'enum', options: ['u', 'v', 'V'], default: 'u' },
  { name: 'active_only', scope: 'view', type: 'bool', default: true },
  { name: 'hide', scope: 'view', type: 'list', default: [] },
];

export const SECTIONS = ['task', 'network', 'training', 'measuring', 'run'];

/** "η · weight decay": a field's label with its symbol first, as the controls show it. */
export function fieldLabel(f) {
  return f.symbol ? `${f.symbol} · ${f.label}` : f.label ?? f.name;
}

/** The table completed by the server's schema: every RunConfig field gets a control, in the
 *  schema's order, labelled by the schema's own words. */
export function completeFields(schema) {
  const config = Object.entries(schema).map(([name, s]) => {
    const extra = CONFIG_EXTRAS[name] ?? {};
    const type = s.enum ? 'enum' : extra.widget === 'json' || s.nullable ? 'json'
      : s.type === 'integer' ? 'int' : s.type === 'number' ? 'number' : 'string';
    return { name, scope: 'config', ...extra, type, options: s.enum, default: s.default,
      bounds: s, label: s.label ?? name, symbol: s.symbol ?? '', unit: s.unit ?? '',
      section: SECTIONS.includes(s.section) ? s.section : 'measuring', hint: s.description };
  });
  return [...config, ...FIELDS];
}
