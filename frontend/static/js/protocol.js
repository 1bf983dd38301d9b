// Decodes binary snapshot frames (docs/protocol.md, server/protocol.py):
//   "LI2S" | uint16 version | uint16 flags | uint32 header length   (little-endian)
//   JSON header {type, run_id, seq, step, arrays: [{name, dtype, shape, offset, nbytes}]}
//   payload: arrays at 8-byte aligned offsets from the payload start, so they are viewed
//   in place as typed arrays, never copied.

const MAGIC = 'LI2S';
const VERSION = 1;
const PREFIX_BYTES = 12;
const TYPED = { float32: Float32Array, int32: Int32Array, uint8: Uint8Array };

export function decodeSnapshot(buffer) {
  if (buffer.byteLength < PREFIX_BYTES) throw new Error('snapshot frame shorter than its prefix');
  const view = new DataView(buffer);
  const magic = String.fromCharCode(...new Uint8Array(buffer, 0, 4));
  const version = view.getUint16(4, true);
  if (magic !== MAGIC || version !== VERSION) {
    throw new Error(`not a version-${VERSION} snapshot frame (${magic} v${version})`);
  }
  const headerLen = view.getUint32(8, true);
  const start = PREFIX_BYTES + headerLen;
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, PREFIX_BYTES,
    headerLen)));
  const arrays = {};
  for (const spec of header.arrays) {
    const Typed = TYPED[spec.dtype];
    if (!Typed) throw new Error(`snapshot array ${spec.name}: unknown dtype ${spec.dtype}`);
    const data = new Typed(buffer, start + spec.offset, spec.nbytes / Typed.BYTES_PER_ELEMENT);
    arrays[spec.name] = { shape: spec.shape, data };
  }
  return { runId: header.run_id, seq: header.seq, step: header.step, arrays };
}
