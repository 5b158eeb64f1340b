// Parsing of the "create component" form's text inputs into the API's shapes; errors name
// the form field they belong to, like the API's `field`.
import type { MessageKey } from './i18n';
import type { Port } from './api';

export interface FormProblem {
  field: string;
  key: MessageKey;
  vars?: Record<string, string | number>;
}

export function parsePorts(text: string): Port[] | FormProblem {
  const out: Port[] = [];
  for (const raw of text.split(/[,\s]+/).filter(Boolean)) {
    const m = /^(\d{1,5})(?:\/(http|tcp|udp|grpc))?$/.exec(raw);
    const n = m ? Number(m[1]) : 0;
    if (!m || n < 1 || n > 65535) return { field: 'ports', key: 'comp.badPort', vars: { value: raw } };
    out.push({ port: n, protocol: (m[2] as Port['protocol']) ?? 'http', inner: true, outer: true, name: '' });
  }
  return out;
}

export function parseEnv(text: string): Record<string, string> | FormProblem {
  const env: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) return { field: 'env', key: 'comp.badEnvLine', vars: { line: i + 1 } };
    env[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return env;
}

export function isProblem(x: unknown): x is FormProblem {
  return typeof x === 'object' && x !== null && 'key' in x && 'field' in x;
}
