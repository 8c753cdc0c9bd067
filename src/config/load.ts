import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, ENV_OVERRIDES, type AppConfig } from './schema';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** The app.yaml to read: in $OCH_PATH when set (as in the reference), else in the working directory. */
export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.OCH_PATH ?? process.cwd(), 'app.yaml');
}

/**
 * Reads app.yaml, applies environment overrides, validates and freezes the result. Any problem
 * stops start-up with a ConfigError naming the file (or variable) and the key.
 */
export function loadConfig(file = configPath(), env: NodeJS.ProcessEnv = process.env): Readonly<AppConfig> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as Error).message}`);
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw new ConfigError(`${file}: invalid YAML: ${doc.errors[0].message}`);
  const raw = (doc.toJS() ?? {}) as Record<string, unknown>;
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${file}: expected a mapping at the top level`);

  const fromEnv = new Map<string, string>();
  for (const [name, { path: key, type }] of Object.entries(ENV_OVERRIDES)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    setPath(raw, key, type === 'number' ? Number(value) : type === 'list' ? value.split(',').map((s) => s.trim()) : type === 'boolean' ? booleanOf(value) : value);
    fromEnv.set(key, name);
  }

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => describe(issue, file, fromEnv)).join('\n'));
  }
  return deepFreeze(parsed.data);
}

function describe(issue: z.core.$ZodIssue, file: string, fromEnv: Map<string, string>): string {
  const key = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${file}: ${key ? `${key}.` : ''}${k}: unknown key`).join('\n');
  }
  const source = [...fromEnv].find(([p]) => key === p || key.startsWith(`${p}.`));
  const where = source ? `environment variable ${source[1]} (${key})` : `${file}: ${key || '(root)'}`;
  return `${where}: ${issue.message}`;
}

/** true/false (or 1/0); anything else is kept as text, for the schema to refuse naming the variable. */
function booleanOf(value: string): boolean | string {
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  return value;
}

function setPath(obj: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node = obj;
  for (const k of keys.slice(0, -1)) {
    if (typeof node[k] !== 'object' || node[k] === null) node[k] = {};
    node = node[k] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]] = value;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
