import { expect } from 'chai';
import { ValidationError } from '../../src/engine/errors';
import { checkJsonTextSize, checkPayload, DEFAULT_MAX_PAYLOAD_BYTES } from '../../src/engine/payload';
import { jsonField, jsonObjectField } from '../../src/grpc/fields';

function problem(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ValidationError);
    expect((err as ValidationError).code).to.equal('INVALID_ARGUMENT');
    return (err as Error).message;
  }
  throw new Error('expected a ValidationError');
}

describe('payload checks (every JSON value the edge accepts)', () => {
  it('take valid Unicode of any plane, and values up to the limit', () => {
    checkPayload({ name: 'Zoë 😀 \u4e2d', list: [1, null, true, { deep: 'ok' }] }, 'payload', 1_000);
    checkPayload('x'.repeat(998), 'payload', 1_000); // 1000 bytes with its quotes
    checkPayload(undefined, 'output', 10);
  });

  it('refuse \\u0000 and lone surrogates anywhere, naming the path inside the JSON', () => {
    expect(problem(() => checkPayload({ note: 'a\u0000b' }, 'payload', 1_000))).to.match(/^payload\.note: contains \\u0000, which the saga store cannot keep/);
    expect(problem(() => checkPayload({ items: [{ n: 1 }, { name: 'x\ud800' }] }, 'payload', 1_000))).to.match(/^payload\.items\[1\]\.name: contains a lone surrogate \\ud800/);
    expect(problem(() => checkPayload({ 'a b': ['\udc00y'] }, 'input', 1_000))).to.match(/^input\["a b"\]\[0\]: contains a lone surrogate \\udc00/);
    expect(problem(() => checkPayload({ ['k\u0000']: 1 }, 'output', 1_000))).to.match(/^output \(a key\): contains \\u0000/);
    expect(problem(() => checkPayload('\ud83d', 'error', 1_000))).to.match(/^error: contains a lone surrogate/);
  });

  it('refuse a value over the limit, saying its size and the limit', () => {
    expect(problem(() => checkPayload({ pad: 'é'.repeat(600) }, 'payload', 1_000))).to.equal('payload: 1210 bytes of JSON, over the limit of 1000 bytes (limits.maxPayloadBytes)');
    expect(problem(() => checkJsonTextSize('x'.repeat(2_000), 'payload_json', 1_000))).to.match(/^payload_json: 2000 bytes/);
    expect(DEFAULT_MAX_PAYLOAD_BYTES).to.be.below(1_000_000);
  });

  it('at the gRPC edge: a *_json field over the limit is refused before it is parsed; bad text names the field\'s path', () => {
    expect(problem(() => jsonField(`"${'x'.repeat(2_000)}`, 'input_json', {}, 1_000))).to.match(/^input_json: 2001 bytes/);
    expect(problem(() => jsonObjectField('{"note":"\\u0000"}', 'payload_json', 1_000))).to.match(/^payload_json\.note: contains \\u0000/);
    expect(problem(() => jsonField('["\\udfff"]', 'output_json', null, 1_000))).to.match(/^output_json\[0\]: contains a lone surrogate \\udfff/);
    expect(jsonField('{"ok":"\\ud83d\\ude00"}', 'output_json', null, 1_000)).to.deep.equal({ ok: '😀' });
  });
});
