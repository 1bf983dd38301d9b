// The one table of page settings (TensorFlow Playground style): every control lives in the URL
// through this table. Bounds and choices of config fields come from GET /api/config/schema;
// this table only says where a field goes, how to label it and how to read it from a URL.
//   scope 'config' → RunConfig body of POST /api/runs; 'query' → query param of that POST;
//   'view' → display only (panel toggles, the attached run, hidden controls).

export const FIELDS = [
  { name: 'group', scope: 'config', section: 'task', label: 'group spec' },
  { name: 'group_table', scope: 'config', section: 'task', label: 'Cayley table (JSON)',
    widget: 'json', showIf: (cfg) => cfg.group === 'custom' },
  { name: 'train_fraction', scope: 'config', section: 'task', label: 'p · train fraction' },
  { name: 'hidden', scope: 'config', section: 'network', label: 'K · hidden width' },
  { name: 'activation', scope: 'config', section: 'network', label: 'activation σ' },
  { name: 'top_layer', scope: 'config', section: 'network', label: 'top layer V' },
  { name: 'top_init_scale', scope: 'config', section: 'network', label: 'V(0) scale' },
  { name: 'loss', scope: 'config', section: 'training', label: 'loss' },
  { name: 'optimizer', scope: 'config', section: 'training', label: 'optimizer' },
  { name: 'lr', scope: 'config', section: 'training', label: 'learning rate' },
  { name: 'weight_decay', scope: 'config', section: 'training', label: 'η · weight decay' },
  { name: 'steps', scope: 'config', section: 'training', label: 'steps' },
  { name: 'seed', scope: 'config', section: 'training', label: 'seed' },
  { name: 'eval_every', scope: 'config', section: 'measuring', label: 'metrics every' },
  { name: 'snapshot_every', scope: 'config', section: 'measuring', label: 'snapshot every' },
  { name: 'device', scope: 'config', section: 'measuring', label: 'device' },
  { name: 'max_steps_per_s', scope: 'query', section: 'run', label: 'speed cap (steps/s)',
    type: 'number', hint: 'empty = as fast as the machine goes' },
  { name: 'preset', scope: 'view', type: 'string', default: 'lecture' }, // a cold start groks
  { name: 'run', scope: 'view', type: 'string', default: '' },
  { name: 'at', scope: 'view', type: 'int' }, // pinned step (scrub); absent = live
  { name: 'node', scope: 'view', type: 'int' }, // hidden node in the inspector
  { name: 'present', scope: 'view', type: 'bool', default: false }, // projector mode
  { name: 'log_loss', scope: 'view', type: 'bool', default: true },
  { name: 'log_steps', scope: 'view', type: 'bool', default: false },
  { name: 'spec_rows', scope: 'view', type: 'enum', options: ['u', 'v', 'V'], default: 'u' },
  { name: 'active_only', scope: 'view', type: 'bool', default: true },
  { name: 'hide', scope: 'view', type: 'list', default: [] },
];

export const SECTIONS = ['task', 'network', 'training', 'measuring', 'run'];

/** The table completed by the server's schema: a config field the table lacks still gets a
 *  control, so the page always covers the whole RunConfig. */
export function completeFields(schema) {
  const known = new Set(FIELDS.map((f) => f.name));
  const extra = Object.keys(schema)
    .filter((name) => !known.has(name))
    .map((name) => ({ name, scope: 'config', section: 'measuring', label: name }));
  return [...FIELDS, ...extra].map((f) => {
    if (f.scope !== 'config') return f;
    const s = schema[f.name];
    if (!s) return null; // the server no longer has this field
    const type = s.enum ? 'enum' : f.widget === 'json' || s.nullable ? 'json'
      : s.type === 'integer' ? 'int' : s.type === 'number' ? 'number' : 'string';
    return { ...f, type, options: s.enum, default: s.default, bounds: s,
      hint: f.hint ?? s.description };
  }).filter(Boolean);
}
