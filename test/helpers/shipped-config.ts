import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/load';
import type { AppConfig } from '../../src/config/schema';

/** Repository root, from dist/test/helpers. */
const ROOT = path.resolve(__dirname, '..', '..', '..');

export const ROOT_APP_YAML = path.join(ROOT, 'app.yaml');

export interface ShippedConfig {
  /** Where it lives in the repository, as a reader would look for it. */
  name: string;
  /** An app.yaml the project's loader can read (the ConfigMap's is written out, as the pod gets it mounted). */
  file: string;
}

/**
 * Every app.yaml users run: the root one (`make run`, `make run-kafka`, the image), compose's
 * and the Kubernetes ConfigMap's. A new shipped config belongs here, so that the budget checks
 * and the outage e2e cover it.
 */
export function shippedConfigs(): ShippedConfig[] {
  const configMapPath = path.join(ROOT, 'deployment', 'k8s', 'configmap.yaml');
  const configMap = parseAllDocuments(readFileSync(configMapPath, 'utf8'))
    .map((d) => d.toJS() as { kind?: string; data?: Record<string, string> })
    .find((m) => m.kind === 'ConfigMap');
  const text = configMap?.data?.['app.yaml'];
  if (text === undefined) throw new Error(`${configMapPath}: no ConfigMap with an app.yaml key`);
  const k8sFile = path.join(mkdtempSync(path.join(tmpdir(), 'och-shipped-')), 'app.yaml');
  writeFileSync(k8sFile, text);
  return [
    { name: 'app.yaml', file: ROOT_APP_YAML },
    { name: 'deployment/local/app.yaml', file: path.join(ROOT, 'deployment', 'local', 'app.yaml') },
    { name: 'deployment/k8s/configmap.yaml', file: k8sFile },
  ];
}

/** A shipped file as the orchestrator reads it, without the host's POD_ID / OCH_* leaking in. */
export function loadShipped(file: string): Readonly<AppConfig> {
  return loadConfig(file, {});
}
