import { isIP } from 'node:net';

/** Names that resolve to this machine on every machine: no DNS answer can make them point elsewhere. */
const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1']);
/** Bound to one of these, the server listens on every address the machine has. */
const WILDCARDS = new Set(['0.0.0.0', '::', '']);

/**
 * Which Host headers the console answers. A browser sends the name its page was loaded from; a
 * page whose DNS name was rebound to this machine sends that name, so a name is accepted only when
 * it is http.host, a loopback name or listed in http.allowedHosts (`name`: any port, `name:port`:
 * that port). An IP address in Host cannot come from a rebound name: when the server is bound to
 * every address (0.0.0.0 or ::), any IP is one of its own and is accepted. Case and a trailing dot
 * do not matter. Answers the reason a host is refused, or undefined when it is accepted.
 */
export function hostPolicy(opts: { host: string; allowedHosts: readonly string[] }): (hostHeader: string | undefined) => string | undefined {
  const listen = normalise(opts.host);
  const wildcard = WILDCARDS.has(listen);
  const listed = opts.allowedHosts.map(parseHost).filter((h): h is NonNullable<typeof h> => h !== undefined);
  return (hostHeader) => {
    if (!hostHeader) return 'required';
    const parsed = parseHost(hostHeader);
    if (!parsed) return 'not a host[:port]';
    const { name, port } = parsed;
    if (LOOPBACK_NAMES.has(name) || (!wildcard && name === listen)) return undefined;
    if (wildcard && isIP(name) !== 0) return undefined;
    if (listed.some((l) => l.name === name && (l.port === undefined || l.port === port))) return undefined;
    return `not one this console answers (http.host ${opts.host}, localhost, or http.allowedHosts: ${opts.allowedHosts.length ? opts.allowedHosts.join(', ') : 'none listed'})`;
  };
}

/** `name`, `name:port`, `[v6]` or `[v6]:port`, the name lower-cased without a trailing dot; undefined when malformed. */
export function parseHost(value: string): { name: string; port?: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/@]+))(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return undefined;
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && port > 65535) return undefined;
  return { name: normalise(m[1] ?? m[2]), ...(port === undefined ? {} : { port }) };
}

function normalise(name: string): string {
  return name.toLowerCase().replace(/\.$/, '').replace(/^\[(.*)\]$/, '$1');
}
