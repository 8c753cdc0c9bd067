import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { ALL_TOPICS } from '../../topics/topics';

const ROOT = path.resolve(__dirname, '..', '..', '..');

function tsFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

describe('architecture', () => {
  it('the engine imports no kafkajs, pg, grpc, no OpenTelemetry SDK (the API only), nor any other layer of ours', () => {
    for (const file of tsFiles('src/engine')) {
      const imports = [...readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      for (const spec of imports) {
        expect(spec, `${path.relative(ROOT, file)} imports ${spec}`).to.match(/^(\.\/|node:|zod$|@opentelemetry\/api$)/);
      }
    }
  });

  it('the gRPC edge does not know the examples: src/grpc imports nothing from src/examples', () => {
    const examples = path.join(ROOT, 'src', 'examples');
    const files = tsFiles('src/grpc');
    expect(files.map((f) => path.basename(f))).to.include('orchestrator-service.ts'); // the walk found the edge
    for (const file of files) {
      const imports = [...readFileSync(file, 'utf8').matchAll(/(?:from|import|require\()\s*'([^']+)'/g)].map((m) => m[1]);
      for (const spec of imports.filter((s) => s.startsWith('.'))) {
        const target = path.resolve(path.dirname(file), spec);
        expect(path.relative(examples, target).startsWith('..'), `${path.relative(ROOT, file)} imports ${spec}`).to.equal(true);
      }
    }
  });

  it('no topic name is spelled outside topics/', () => {
    for (const file of tsFiles('src')) {
      const text = readFileSync(file, 'utf8');
      for (const topic of ALL_TOPICS) expect(text, `${path.relative(ROOT, file)} spells ${topic.name}`).not.to.contain(`'${topic.name}'`);
    }
  });
});
