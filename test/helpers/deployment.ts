import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import ts from 'typescript';

/** What the deployment tests (deployment.test.ts, deployment-k8s.test.ts) read: the image and the build. */

// This file runs as dist/test/helpers/deployment.js.
export const ROOT = path.resolve(__dirname, '../../..');
export const DOCKERFILE = path.join(ROOT, 'deployment', 'Dockerfile');

// --- deployment/Dockerfile ----------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}

/** Instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((l) => l.trim());
  return lines.filter((l) => l && !l.startsWith('#')).map((l) => {
    const [op, ...rest] = l.split(/\s+/);
    return { op: op.toUpperCase(), args: rest.join(' ') };
  });
}

const words = (args: string[]): string[] => args.flatMap((a) => a.split(/\s+/)).filter(Boolean);

/** What the tests need from the Dockerfile: ENV, EXPOSE, CMD and USER of the final (runtime) stage, and COPY sources. */
export function parseDockerfile(text: string) {
  const all = instructions(text);
  const runtime = all.slice(all.map((i) => i.op).lastIndexOf('FROM'));
  const argsOf = (list: Instruction[], op: string) => list.filter((i) => i.op === op).map((i) => i.args);
  const cmd = argsOf(runtime, 'CMD').pop();
  // From the build context, i.e. not `COPY --from=<stage>`; the last word is the destination.
  const contextCopies = argsOf(all, 'COPY').filter((a) => !a.includes('--from='));
  return {
    env: Object.fromEntries(words(argsOf(runtime, 'ENV')).map((kv) => kv.split('=', 2))) as Record<string, string>,
    expose: words(argsOf(runtime, 'EXPOSE')).map((p) => Number(p.split('/')[0])),
    cmd: cmd === undefined ? [] : (JSON.parse(cmd) as string[]),
    user: argsOf(runtime, 'USER').pop(),
    copySources: contextCopies.flatMap((a) => words([a]).filter((w) => !w.startsWith('--')).slice(0, -1)),
  };
}

export const dockerfile = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));

export function hostPort(address: string): { host: string; port: number } {
  const match = /^(.*):(\d+)$/.exec(address);
  if (!match) throw new Error(`not host:port: ${address}`);
  return { host: match[1], port: Number(match[2]) };
}

// --- the TypeScript build -----------------------------------------------------------------------

/** The .ts source that tsc compiles to `jsPath` (relative to the image's workdir, which mirrors the repo). */
export function sourceOf(jsPath: string): string {
  const tsconfigPath = path.join(ROOT, 'tsconfig.json');
  const { config } = ts.readConfigFile(tsconfigPath, (p) => ts.sys.readFile(p)) as { config: { compilerOptions: { outDir: string; rootDir: string } } };
  const outDir = path.resolve(ROOT, config.compilerOptions.outDir);
  const relative = path.relative(outDir, path.resolve(ROOT, jsPath));
  expect(relative, `${jsPath} is under the build output ${config.compilerOptions.outDir}/`).not.to.match(/^\.\./);
  return path.resolve(ROOT, config.compilerOptions.rootDir, relative.replace(/\.js$/, '.ts'));
}
