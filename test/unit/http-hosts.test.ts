import { expect } from 'chai';
import { hostPolicy, parseHost } from '../../src/http/hosts';

/** Which Host headers the console answers (the rest is the e2e test console-hosts.test.ts). */
describe('hostPolicy: the Host headers the console answers', () => {
  const accepts = (policy: ReturnType<typeof hostPolicy>, host: string | undefined) => policy(host) === undefined;

  it('bound to loopback (make run): the loopback names on any port (port-forwards, docker -p); no other name, no other IP', () => {
    const policy = hostPolicy({ host: '127.0.0.1', allowedHosts: [] });
    for (const host of ['127.0.0.1:10090', 'localhost:10090', 'LocalHost.:8080', '[::1]:10090', 'localhost']) expect(accepts(policy, host), host).to.equal(true);
    for (const host of ['evil.example:10090', '127.0.0.1.nip.io:10090', 'localhost.evil.example', '10.0.0.5:10090', '', undefined, 'a b', 'x:99999', 'user@localhost']) {
      expect(accepts(policy, host), String(host)).to.equal(false);
    }
  });

  it('bound to every address (compose, Kubernetes): any IP literal (a rebound name is never one), and names only when listed', () => {
    const policy = hostPolicy({ host: '0.0.0.0', allowedHosts: ['console.example.org', 'orchestrator.ops.svc:10090'] });
    for (const host of ['10.1.2.3:10090', '[fd00::5]:10090', '192.168.1.20', 'console.example.org', 'Console.Example.Org:443', 'orchestrator.ops.svc:10090', 'localhost:18080']) {
      expect(accepts(policy, host), host).to.equal(true);
    }
    for (const host of ['orchestrator.ops.svc:80', 'orchestrator:10090', 'evil.example:10090', '0.0.0.0.evil.example']) expect(accepts(policy, host), host).to.equal(false);
  });

  it('bound to a name: that name on any port', () => {
    const policy = hostPolicy({ host: 'ops-box.internal', allowedHosts: [] });
    expect(accepts(policy, 'ops-box.internal:10090')).to.equal(true);
    expect(accepts(policy, '10.0.0.5:10090'), 'an IP, but the server listens on one address only').to.equal(false);
  });

  it('parseHost: name, port, brackets, case and a trailing dot', () => {
    expect(parseHost('Example.ORG.:80')).to.deep.equal({ name: 'example.org', port: 80 });
    expect(parseHost('[::1]')).to.deep.equal({ name: '::1' });
    expect(parseHost('::1')).to.equal(undefined);
    expect(parseHost('a/b')).to.equal(undefined);
  });
});
