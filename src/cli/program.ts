import { Command, CommanderError, Option } from 'commander';
import { address, integer, json, SAGA_STATUSES, sagaStatus, timestamp } from './args';
import { CallError, OrchestratorClient } from './client';
import type { Style } from './render';
import type { Facade, ListSagasResponse, Saga } from './types';
import { facadesView, sagaListView, sagaView } from './views';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** stdout is a terminal: colours and lines cut to `columns`. */
  tty: boolean;
  columns?: number;
}

export const DEFAULT_ADDR = '127.0.0.1:10000';
/** sysexits' EX_USAGE: outside 0-16, so that it never reads as a gRPC status. */
export const EXIT_USAGE = 64;
/** sysexits' EX_SOFTWARE: a bug of the CLI itself. */
export const EXIT_SOFTWARE = 70;
const EXIT_INVALID_ARGUMENT = 3;

interface GlobalOptions { addr: string; timeout: number; json?: boolean }

interface Context {
  client: OrchestratorClient;
  /** Prints the response: as JSON with --json, else as `text` renders it. */
  print: <T>(response: T, text: (response: T, style: Style) => string) => void;
}

const EXIT_CODES = `
Exit codes: 0 on success; a failed call exits with its gRPC status code (3 INVALID_ARGUMENT,
4 DEADLINE_EXCEEDED, 5 NOT_FOUND, 9 FAILED_PRECONDITION, 14 UNAVAILABLE: server unreachable, ...);
3 for an option value the CLI refuses itself (bad JSON, status, time); ${EXIT_USAGE} for a usage error
(unknown command or option, missing argument).`;

/** Runs one `och` command line (without the node and script arguments); resolves with the exit code. */
export async function run(argv: string[], io: Io): Promise<number> {
  let client: OrchestratorClient | undefined;
  const style: Style = { color: io.tty && !io.env.NO_COLOR && io.env.TERM !== 'dumb', width: io.tty ? io.columns : undefined };
  const program = new Command('och')
    .description('Operate the saga orchestrator over gRPC (orchestrator.v1.OrchestratorService).')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.out(text),
      writeErr: (text) => io.err(text),
      outputError: (text, write) => write(`och: ${text.replace(/^error: /, '')}`),
    })
    // Not commander's .env(): an empty OCH_ADDR means unset, as for the server's OCH_* variables.
    .addOption(new Option('-a, --addr <host:port>', 'the orchestrator\'s gRPC address (env: OCH_ADDR)').default(io.env.OCH_ADDR || DEFAULT_ADDR).argParser(address))
    .addOption(new Option('--timeout <ms>', 'deadline of each call').default(10_000).argParser(integer(1, 3_600_000)))
    .option('--json', 'print the response message as JSON (field names as in proto/orchestrator.proto)')
    .addHelpText('after', EXIT_CODES)
    .hook('preAction', (_, command) => {
      // A default is not parsed: OCH_ADDR is checked here, as --addr is by its parser.
      const addr = command.optsWithGlobals<GlobalOptions>().addr;
      try {
        address(addr);
      } catch (err) {
        command.error(`OCH_ADDR '${addr}' is invalid. ${(err as Error).message}`, { code: 'commander.invalidArgument', exitCode: EXIT_INVALID_ARGUMENT });
      }
    });

  const action = <A extends unknown[]>(fn: (ctx: Context, ...args: A) => Promise<void>) => async (...args: unknown[]) => {
    const command = args[args.length - 1] as Command;
    const opts = command.optsWithGlobals<GlobalOptions>();
    client = new OrchestratorClient(opts.addr, opts.timeout);
    const print: Context['print'] = (response, text) => io.out(`${opts.json ? JSON.stringify(response, null, 2) : text(response, style)}\n`);
    await fn({ client, print }, ...(args.slice(0, -1) as A));
  };

  program.command('facades')
    .description('every facade version: mode, unfinished sagas, nodes')
    .option('--graph', 'also print each graph as Mermaid flowchart text')
    .action(action(async ({ client, print }, opts: { graph?: boolean }) => {
      print(await client.call<{ facades: Facade[] }>('ListFacades', {}), (r, s) => facadesView(r.facades, s, opts.graph === true));
    }));

  const sagas = program.command('sagas').description('list and inspect sagas');
  sagas.command('list')
    .description('sagas, newest first (ListSagas)')
    .option('--facade <name>', 'only this facade')
    .option('--status <status>', `only this status: ${SAGA_STATUSES.join(', ')}`, sagaStatus)
    .option('--from <time>', 'created at or after: RFC 3339, or a duration before now (15m, 2h, 7d)', timestamp())
    .option('--to <time>', 'created before (same forms)', timestamp())
    .option('--page-size <n>', 'sagas per page (server default 50)', integer(1, 1_000))
    .option('--page-token <token>', 'the page after the one that printed it')
    .action(action(async ({ client, print }, opts: { facade?: string; status?: string; from?: string; to?: string; pageSize?: number; pageToken?: string }) => {
      const request = {
        facade: opts.facade ?? '', status: opts.status ?? 'SAGA_STATUS_UNSPECIFIED', created_from: opts.from ?? '', created_to: opts.to ?? '',
        page_size: opts.pageSize ?? 0, page_token: opts.pageToken ?? '',
      };
      print(await client.call<ListSagasResponse>('ListSagas', request), sagaListView);
    }));
  sagas.command('get')
    .description('one saga: status, input, output, error, the path it took, what it waits for')
    .argument('<request-id>')
    .action(action(async ({ client, print }, id: string) => print(await client.call<Saga>('GetSaga', { request_id: id }), sagaView)));

  program.command('start')
    .description('start a saga of a facade (StartSaga); prints its request id')
    .argument('<facade>')
    .option('--input <json>', 'the facade\'s input: JSON, @FILE, or @- for standard input', json(false), '{}')
    .option('--version <n>', 'the facade version (default: the newest)', integer(1, 2_147_483_647))
    .option('--request-id <id>', 'the saga\'s request id, its idempotency key (default: generated)')
    .action(action(async ({ client, print }, facade: string, opts: { input: string; version?: number; requestId?: string }) => {
      const metadata: Record<string, string> = opts.requestId ? { 'x-request-id': opts.requestId } : {};
      print(await client.call<{ request_id: string }>('StartSaga', { facade, input_json: opts.input, version: opts.version ?? 0 }, metadata), (r) => r.request_id);
    }));

  program.command('send-event')
    .description('send an event to a saga\'s waits (SendEvent)')
    .argument('<request-id>')
    .argument('<event>')
    .option('--payload <json>', 'a JSON object: inline, @FILE, or @- for standard input', json(true), '{}')
    .option('--idempotency-key <key>', 'a resent event with the same key counts once')
    .action(action(async ({ client, print }, id: string, event: string, opts: { payload: string; idempotencyKey?: string }) => {
      const response = await client.call<object>('SendEvent', { request_id: id, event, payload_json: opts.payload, idempotency_key: opts.idempotencyKey ?? '' });
      print(response, () => `event ${event} recorded for ${id}`);
    }));

  program.command('cancel')
    .description('compensate a running saga (CancelSaga)')
    .argument('<request-id>')
    .action(action(async ({ client, print }, id: string) => print(await client.call<Saga>('CancelSaga', { request_id: id }), sagaView)));

  program.command('retry')
    .description('resume the compensation of a COMPENSATION_FAILED saga (RetryCompensation)')
    .argument('<request-id>')
    .action(action(async ({ client, print }, id: string) => print(await client.call<Saga>('RetryCompensation', { request_id: id }), sagaView)));

  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    return failure(err, io, client);
  } finally {
    client?.close();
  }
}

function failure(err: unknown, io: Io, client: OrchestratorClient | undefined): number {
  if (err instanceof CommanderError) {
    // Commander has printed its message (or the help) already.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    return err.code === 'commander.invalidArgument' ? EXIT_INVALID_ARGUMENT : EXIT_USAGE;
  }
  if (err instanceof CallError) {
    const where = err.codeName === 'UNAVAILABLE' || err.codeName === 'DEADLINE_EXCEEDED' ? ` (orchestrator at ${client?.address})` : '';
    io.err(`och: ${err.codeName}: ${oneLine(err.details)}${where}\n`);
    return err.code;
  }
  io.err(`och: ${oneLine(err instanceof Error ? err.message : String(err))}\n`);
  return EXIT_SOFTWARE;
}

// grpc-js ends a failed connection's details with an empty "Resolution note:".
const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ').replace(/\s*Resolution note:\s*$/, '').trim();
