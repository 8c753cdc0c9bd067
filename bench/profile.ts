/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, top N.
 * CLI: node dist/bench/profile.js <file.cpuprofile> [top=15]
 *      node dist/bench/profile.js <file.cpuprofile> --callers <functionName>   (who calls it)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

export interface SelfTime { name: string; where: string; ms: number; percent: number }

/** Where a frame lives: node_modules/<package>/..., node:internal, or the path under the repo. */
function location(frame: CallFrame): string {
  if (!frame.url) return '';
  const url = frame.url.replace(/^file:\/\//, '');
  const nm = url.lastIndexOf('node_modules/');
  const short = nm >= 0 ? url.slice(nm + 'node_modules/'.length) : url.includes('/dist/') ? url.slice(url.indexOf('/dist/') + 1) : url;
  return `${short}:${frame.lineNumber + 1}`;
}

/** Self time per function (same name and location merged), sorted, as a share of the profile's wall time. */
export function selfTimes(profile: CpuProfile): { total: number; entries: SelfTime[] } {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const ms = new Map<string, { name: string; where: string; us: number }>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    // timeDeltas[i] is the time since the previous sample; attribute it to this sample's node.
    const us = profile.timeDeltas[i] ?? 0;
    total += us;
    const frame = byNode.get(id)!.callFrame;
    const name = frame.functionName || '(anonymous)';
    const where = location(frame);
    const key = `${name}@${where}`;
    const entry = ms.get(key) ?? ms.set(key, { name, where, us: 0 }).get(key)!;
    entry.us += us;
  });
  const entries = [...ms.values()].sort((a, b) => b.us - a.us).map((e) => ({ name: e.name, where: e.where, ms: e.us / 1000, percent: (100 * e.us) / total }));
  return { total: total / 1000, entries };
}

const PSEUDO = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

/** The package a frame belongs to (`pg`, `@grpc/grpc-js`), `orchestrator code` for dist/, else undefined. */
function packageOf(frame: CallFrame): string | undefined {
  const nm = frame.url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = frame.url.slice(nm + 'node_modules/'.length).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  return frame.url.includes('/dist/') ? 'orchestrator code (dist/)' : undefined;
}

/**
 * Busy time by the nearest package on the stack: a sample in node internals or native code (a
 * socket write, say) counts for the first caller frame that belongs to a package or to our code.
 * GC and "(program)" stay apart; idle is left out. Percentages of the busy time.
 */
export function byPackage(profile: CpuProfile): [string, number][] {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const areas = new Map<string, number>();
  let busy = 0;
  profile.samples.forEach((id, i) => {
    const frame = byNode.get(id)!.callFrame;
    if (frame.functionName === '(idle)') return;
    const us = profile.timeDeltas[i] ?? 0;
    busy += us;
    let area = PSEUDO.has(frame.functionName) ? frame.functionName : undefined;
    for (let cur: number | undefined = id; !area && cur !== undefined; cur = parent.get(cur)) area = packageOf(byNode.get(cur)!.callFrame);
    area ??= 'node internals (no package caller)';
    areas.set(area, (areas.get(area) ?? 0) + us);
  });
  return [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([a, us]) => [a, (100 * us) / busy]);
}

/** Who calls `functionName`: the stack above it (`depth` frames), with the time spent under each. */
export function callersOf(profile: CpuProfile, functionName: string, depth = 6): [string, number][] {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stacks = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    if (byNode.get(id)!.callFrame.functionName !== functionName) return;
    const chain: string[] = [];
    for (let cur = parent.get(id); cur !== undefined && chain.length < depth; cur = parent.get(cur)) {
      const f = byNode.get(cur)!.callFrame;
      chain.push(`${f.functionName || '(anonymous)'} ${location(f)}`);
    }
    const key = chain.join(' < ');
    stacks.set(key, (stacks.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  return [...stacks.entries()].sort((a, b) => b[1] - a[1]);
}

export function formatSummary(file: string, top = 15): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const { total, entries } = selfTimes(profile);
  const idle = entries.find((e) => e.name === '(idle)')?.ms ?? 0;
  const lines = [`${path.basename(file)}: ${(total / 1000).toFixed(1)} s sampled, ${((100 * idle) / total).toFixed(1)}% idle`, 'top self time (% of all samples):'];
  for (const e of entries.slice(0, top)) lines.push(`  ${e.percent.toFixed(1).padStart(5)}%  ${e.ms.toFixed(0).padStart(7)} ms  ${e.name}  ${e.where}`);
  lines.push('busy time by nearest package on the stack (% of non-idle samples):');
  for (const [area, pct] of byPackage(profile).slice(0, 12)) lines.push(`  ${pct.toFixed(1).padStart(5)}%  ${area}`);
  return lines.join('\n');
}

if (require.main === module) {
  const [file, top, fn] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node dist/bench/profile.js <file.cpuprofile> [top | --callers <functionName>]');
    process.exit(2);
  }
  if (top === '--callers' && fn) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    for (const [stack, ms] of callersOf(profile, fn).slice(0, 10)) console.log(`${ms.toFixed(0).padStart(7)} ms  ${stack}`);
  } else {
    console.log(formatSummary(file, top ? Number(top) : 15));
  }
}
