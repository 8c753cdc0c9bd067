import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { run } from '../../src/cli/program';
import type { Facade, ListSagasResponse, Saga } from '../../src/cli/types';
import { call, freePort, ROOT, Stack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

interface Result { code: number | null; stdout: string; stderr: string }

/** `och ARGS` as a user would run it: the compiled bin in its own process, stdout a pipe (not a terminal). */
function spawnOch(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['dist/src/cli/main.js', ...args], { cwd: ROOT, env: { ...process.env, OCH_ADDR: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Rows of a text table (the header's first column names the table), each cut into its columns. */
function rows(text: string, header: string): string[][] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trimStart().startsWith(header));
  expect(start, `a table headed ${header} in:\n${text}`).to.be.at.least(0);
  const end = lines.findIndex((l, i) => i > start && l.trim() === '');
  return lines.slice(start, end === -1 ? undefined : end).map((l) => l.trim().split(/\s{2,}/));
}

describe('och, the CLI, against a running orchestrator (embedded transport)', function () {
  this.timeout(90_000);
  let stack: Stack;
  const och = (...args: string[]) => spawnOch(['--addr', stack.address, ...args]);
  /** Succeeds (exit 0, nothing on stderr) and parses its --json output. */
  async function json<T>(...args: string[]): Promise<T> {
    const result = await och('--json', ...args);
    expect(result, `och --json ${args.join(' ')}`).to.include({ code: 0, stderr: '' });
    return JSON.parse(result.stdout) as T;
  }
  /** Fails with `code`, saying why in one line on stderr that starts with the status name. */
  async function fails(code: number, status: string, ...args: string[]): Promise<string> {
    const result = await och(...args);
    expect(result.code, `och ${args.join(' ')}: ${result.stderr}`).to.equal(code);
    expect(result.stdout).to.equal('');
    expect(result.stderr).to.match(new RegExp(`^och: ${status}[^\\n]*\\n$`));
    return result.stderr;
  }
  const transfer = (webhookTimeoutMs = 600_000) => JSON.stringify({ from: 'alice', to: 'bob', amount: 500, webhookTimeoutMs });
  const waitingForWebhook = (id: string) => waitFor(async () => {
    const saga = await stack.saga(id);
    return (saga as unknown as Saga).waiting?.some((w) => w.node === 'webhook');
  }, 30_000, `${id} to wait for its webhook`);

  before(async () => {
    // A compensation budget of seconds, so that 'cli-stuck' reaches COMPENSATION_FAILED within the test; it outlasts
    // the upstream channel's reconnect backoff (1 s): once the order service is back, retry reaches it.
    stack = await Stack.start({ transport: 'memory', transfer: {}, saga: { compensation: { maxAttempts: 4, initialBackoffMs: 400, jitter: 0 } } });
  });
  after(async () => {
    await stack?.stop();
  });

  it('facades: every facade version as JSON, and as a table', async () => {
    const { facades } = await json<{ facades: Facade[] }>('facades');
    const transferFacade = facades.find((f) => f.name === 'Transfer');
    expect(transferFacade).to.include({ version: 1, mode: 'async' });
    expect(transferFacade?.nodes.map((n) => n.name)).to.deep.equal(['debit', 'gateway', 'webhook', 'credit']);
    expect(facades.map((f) => f.name)).to.include.members(['SyncBooking', 'AsyncBooking', 'Transfer']);

    const text = await och('facades');
    expect(text.code).to.equal(0);
    expect(text.stdout, 'no colours in a pipe').not.to.contain('\x1b[');
    const table = rows(text.stdout, 'FACADE');
    expect(table[0]).to.deep.equal(['FACADE', 'VERSION', 'MODE', 'UNFINISHED', 'NODES']);
    expect(table).to.deep.include(['Transfer', '1', 'async', '0', 'debit, gateway, webhook, credit']);
    expect(table).to.have.length(facades.length + 1);

    const graphs = await och('facades', '--graph');
    expect(graphs.stdout).to.contain('\nTransfer v1\nflowchart LR');
  });

  it('start prints the request id; sagas get shows the saga with its path, as text and as JSON', async () => {
    const started = await och('start', 'SyncBooking', '--input', '{"ProductID":7}', '--request-id', 'cli-ok');
    expect(started).to.deep.equal({ code: 0, stdout: 'cli-ok\n', stderr: '' });
    await stack.sagaReaches('cli-ok', 'COMPLETED');

    const saga = await json<Saga>('sagas', 'get', 'cli-ok');
    expect(saga).to.include({ request_id: 'cli-ok', facade: 'SyncBooking', status: 'COMPLETED' });
    expect(JSON.parse(saga.input_json)).to.include({ productId: 7 });
    expect(JSON.parse(saga.output_json)).to.have.property('orderId');

    const text = (await och('sagas', 'get', 'cli-ok')).stdout;
    expect(text).to.match(/^saga\s+cli-ok {2}SyncBooking v1 \(sync\)\nstatus\s+COMPLETED\n/);
    expect(text).to.match(/\ninput\s+\{"productId":7,/);
    const path = rows(text, '#');
    expect(path[0]).to.deep.equal(['#', 'NODE', 'KIND', 'STATUS', 'ATTEMPTS', 'STARTED', 'TOOK', 'ERROR']);
    expect(path.slice(1).map((r) => r.slice(0, 5))).to.deep.equal([['1', 'createOrder', 'step', 'SUCCEEDED', '1'], ['2', 'createPayment', 'step', 'SUCCEEDED', '1']]);
    expect(path[1][6]).to.match(/^\d+ ms$/);
    expect(text).not.to.contain('waiting for');
  });

  it('start --json and --version; a waiting saga shows what it waits for; send-event moves it on', async () => {
    expect(await json('start', 'Transfer', '--input', transfer(), '--version', '1', '--request-id', 'cli-tr')).to.deep.equal({ request_id: 'cli-tr' });
    await waitingForWebhook('cli-tr');

    const saga = await json<Saga>('sagas', 'get', 'cli-tr');
    expect(saga.status).to.equal('RUNNING');
    expect(saga.waiting.map((w) => [w.node, w.events])).to.deep.equal([['webhook', ['webhook']]]);
    const text = (await och('sagas', 'get', 'cli-tr')).stdout;
    expect(text).to.contain(`\nwaiting for\n  webhook: event webhook, until ${saga.waiting[0].until}`);
    expect(rows(text, '#').slice(1).map((r) => [r[1], r[3]])).to.deep.equal([['debit', 'SUCCEEDED'], ['gateway', 'SUCCEEDED'], ['webhook', 'WAITING']]);

    const sent = await och('send-event', 'cli-tr', 'webhook', '--payload', '{"status":"CONFIRMED"}', '--idempotency-key', 'cli-tr:1');
    expect(sent).to.deep.equal({ code: 0, stdout: 'event webhook recorded for cli-tr\n', stderr: '' });
    await stack.sagaReaches('cli-tr', 'COMPLETED');
    const done = await json<Saga>('sagas', 'get', 'cli-tr');
    expect(done.nodes.map((n) => [n.name, n.visits.map((v) => v.status)])).to.deep.include(['credit', ['SUCCEEDED']]);
  });

  it('sagas list: the filters of ListSagas, paging, JSON and a table', async () => {
    await och('start', 'SyncBooking', '--input', '{"ProductID":8}', '--request-id', 'cli-ok-2');
    await stack.sagaReaches('cli-ok-2', 'COMPLETED');
    const ids = async (...args: string[]) => (await json<ListSagasResponse>('sagas', 'list', ...args)).sagas.map((s) => s.request_id);

    expect(await ids('--facade', 'SyncBooking')).to.deep.equal(['cli-ok-2', 'cli-ok']);
    expect(await ids('--facade', 'Transfer', '--status', 'completed')).to.include('cli-tr');
    expect(await ids('--facade', 'Transfer', '--status', 'RUNNING')).not.to.include('cli-tr');
    expect(await ids('--facade', 'SyncBooking', '--from', '1h')).to.have.length(2);
    expect(await ids('--facade', 'SyncBooking', '--to', '2000-01-01T00:00:00Z')).to.deep.equal([]);

    const first = await json<ListSagasResponse>('sagas', 'list', '--facade', 'SyncBooking', '--page-size', '1');
    expect(first.sagas.map((s) => s.request_id)).to.deep.equal(['cli-ok-2']);
    expect(first.next_page_token).not.to.equal('');
    expect(await ids('--facade', 'SyncBooking', '--page-size', '1', '--page-token', first.next_page_token)).to.deep.equal(['cli-ok']);

    const text = await och('sagas', 'list', '--facade', 'SyncBooking', '--page-size', '1');
    const table = rows(text.stdout, 'REQUEST ID');
    expect(table[0]).to.deep.equal(['REQUEST ID', 'FACADE', 'VERSION', 'STATUS', 'CREATED', 'UPDATED', 'ERROR']);
    expect(table.slice(1).map((r) => r.slice(0, 4))).to.deep.equal([['cli-ok-2', 'SyncBooking', '1', 'COMPLETED']]);
    expect(text.stdout).to.contain(`\n\nmore: --page-token ${first.next_page_token}\n`);
    expect((await och('sagas', 'list', '--facade', 'NoSuchFacade')).stdout).to.equal('no sagas\n');
  });

  it('cancel compensates a waiting saga; cancelling it again is FAILED_PRECONDITION (9)', async () => {
    await och('start', 'Transfer', '--input', transfer(), '--request-id', 'cli-cancel');
    await waitingForWebhook('cli-cancel');
    const cancelled = await och('cancel', 'cli-cancel');
    expect(cancelled.code, cancelled.stderr).to.equal(0);
    expect(cancelled.stdout).to.match(/\nstatus\s+COMPENSAT(ING|ED)/);
    await stack.sagaReaches('cli-cancel', 'COMPENSATED');
    const saga = await json<Saga>('sagas', 'get', 'cli-cancel');
    expect(saga.nodes.find((n) => n.name === 'debit')?.visits.map((v) => v.status)).to.deep.equal(['STEP_COMPENSATED']);
    expect(await fails(9, 'FAILED_PRECONDITION', 'cancel', 'cli-cancel')).to.contain('cli-cancel');
  });

  it('exit codes follow the gRPC status: NOT_FOUND 5, INVALID_ARGUMENT 3, FAILED_PRECONDITION 9; usage errors 64', async () => {
    expect(await fails(5, 'NOT_FOUND', 'sagas', 'get', 'no-such-saga')).to.equal('och: NOT_FOUND: saga no-such-saga not found: finished sagas are deleted after saga.retentionMs (7d, unless its facade sets its own)\n');
    await fails(5, 'NOT_FOUND', 'start', 'NoSuchFacade');
    await fails(5, 'NOT_FOUND', 'send-event', 'no-such-saga', 'webhook');
    // The server's check of the facade's input names the field...
    expect(await fails(3, 'INVALID_ARGUMENT', 'start', 'Transfer', '--input', '{"from":"alice","to":"bob"}')).to.contain('amount');
    // ...and the CLI's own checks name the option.
    const badJson = await och('start', 'Transfer', '--input', '{"from":');
    expect(badJson.code).to.equal(3);
    expect(badJson.stderr).to.match(/^och: option '--input <json>' argument .* is invalid\. not JSON[^\n]*\n$/);
    expect((await och('send-event', 'cli-ok', 'webhook', '--payload', '[1]')).stderr).to.contain('expected a JSON object');
    expect((await och('sagas', 'list', '--status', 'DONE')).code).to.equal(3);
    expect((await och('sagas', 'list', '--from', 'yesterday')).code).to.equal(3);
    await fails(9, 'FAILED_PRECONDITION', 'retry', 'cli-ok');

    for (const args of [['bogus'], ['sagas', 'get'], ['start'], ['sagas', 'list', '--nope'], []]) {
      const result = await och(...args);
      expect(result.code, `och ${args.join(' ')}`).to.equal(64);
      expect(result.stderr).to.match(/^(och: |Usage: )/);
    }
  });

  it('an unreachable server is UNAVAILABLE (14), naming the address; OCH_ADDR names the server', async () => {
    const nowhere = `127.0.0.1:${await freePort()}`;
    const result = await spawnOch(['sagas', 'get', 'cli-ok', '--addr', nowhere]);
    expect(result.code).to.equal(14);
    expect(result.stderr).to.match(new RegExp(`^och: UNAVAILABLE: .*\\(orchestrator at ${nowhere}\\)\\n$`));
    expect((await spawnOch(['sagas', 'get', 'cli-ok'], { OCH_ADDR: nowhere })).code).to.equal(14);
    const viaEnv = await spawnOch(['--json', 'sagas', 'get', 'cli-ok'], { OCH_ADDR: stack.address });
    expect(viaEnv.code, viaEnv.stderr).to.equal(0);
    expect((JSON.parse(viaEnv.stdout) as Saga).status).to.equal('COMPLETED');
    expect((await spawnOch(['facades'], { OCH_ADDR: 'no-port' })).code).to.equal(3);
  });

  it('on a terminal: statuses coloured, long lines cut to its width (in process, with a terminal\'s io)', async () => {
    let out = '';
    const io = { out: (t: string) => { out += t; }, err: (t: string) => { out += t; }, env: {}, tty: true, columns: 120 };
    expect(await run(['--addr', stack.address, 'sagas', 'list', '--facade', 'Transfer'], io)).to.equal(0);
    const esc = String.fromCharCode(27);
    expect(out).to.contain(`${esc}[32mCOMPLETED  ${esc}[0m`).and.contain(`${esc}[33mCOMPENSATED${esc}[0m`);
    const lines = out.trimEnd().split('\n');
    // The cancelled saga's error is longer than what is left of the line.
    expect(lines.some((l) => l.endsWith('…'))).to.equal(true);
    for (const line of lines) expect(line.split(esc).map((part, i) => (i === 0 ? part : part.replace(/^\[\d+m/, ''))).join('').length, line).to.be.at.most(120);
  });

  it('retry resumes a COMPENSATION_FAILED saga once its upstream is back', async () => {
    // The payment declines after 3 s; by then the order service is down, so the order's cancellation fails.
    await och('start', 'AsyncBooking', '--input', '{"ProductID":9,"DelayMs":3000,"FaultInject":true}', '--request-id', 'cli-stuck');
    await waitFor(async () => (await stack.saga('cli-stuck')).steps.some((s) => s.name === 'createOrder' && s.status === 'SUCCEEDED'), 10_000, 'the order to be created');
    await stack.stopOrder();
    const stuck = await stack.sagaReaches('cli-stuck', 'COMPENSATION_FAILED', 20_000);
    expect(stuck.steps.map((s) => [s.name, s.status])).to.deep.equal([['createOrder', 'STEP_COMPENSATION_FAILED'], ['createPayment', 'STEP_COMPENSATED']]);
    await stack.startOrder();
    const retried = await och('--json', 'retry', 'cli-stuck');
    expect(retried.code, retried.stderr).to.equal(0);
    expect((JSON.parse(retried.stdout) as Saga).request_id).to.equal('cli-stuck');
    await stack.sagaReaches('cli-stuck', 'COMPENSATED', 20_000);
    expect((await call<{ status: string }>(stack.orders, 'GetOrder', { request_id: 'cli-stuck' })).response.status).to.equal('CANCELLED');
  });
});
