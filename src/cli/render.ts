/** How text output looks: colours and the width to fit, on a terminal only (never in a pipe or a file). */
export interface Style {
  color: boolean;
  /** Columns of the terminal; undefined: lines are never cut. */
  width?: number;
}

const GREEN = 32;
const YELLOW = 33;
const RED = 31;
const CYAN = 36;
const DIM = 2;

/** Statuses of sagas and of visits (the proto's STEP_ prefix dropped or not). */
const STATUS_COLOUR: Record<string, number> = {
  COMPLETED: GREEN,
  SUCCEEDED: GREEN,
  RUNNING: CYAN,
  WAITING: CYAN,
  RETRYING: YELLOW,
  COMPENSATING: YELLOW,
  COMPENSATED: YELLOW,
  FAILED: RED,
  COMPENSATION_FAILED: RED,
  SKIPPED: DIM,
  PENDING: DIM,
};

/** STEP_COMPENSATED → COMPENSATED: the prefix only keeps the proto's enum values apart. */
export function stepStatus(status: string): string {
  return status.replace(/^STEP_/, '');
}

export function paint(text: string, status: string, style: Style): string {
  const code = STATUS_COLOUR[stepStatus(status)];
  return style.color && code ? `\x1b[${code}m${text}\x1b[0m` : text;
}

/**
 * Columns padded to their widest cell; cells of `statusColumn` coloured by their status. On a
 * terminal, the last column is cut to fit its width (an error message can be long).
 */
export function table(headers: string[], rows: string[][], style: Style, statusColumn = -1): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, c) => Math.max(...all.map((r) => (r[c] ?? '').length)));
  const last = headers.length - 1;
  const lead = widths.slice(0, last).reduce((sum, w) => sum + w + 2, 0);
  const lastWidth = style.width === undefined ? widths[last] : Math.max(10, Math.min(widths[last], style.width - lead));
  const line = (cells: string[], isHeader: boolean) => cells.map((cell, c) => {
    const text = c === last ? cut(cell ?? '', lastWidth) : (cell ?? '').padEnd(widths[c]);
    return !isHeader && c === statusColumn ? paint(text, cell, style) : text;
  }).join('  ').trimEnd();
  return [line(headers, true), ...rows.map((r) => line(r, false))].join('\n');
}

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/** A duration between two RFC 3339 times: 850 ms, 12.3 s, 4 min 5 s; empty when either is missing. */
export function duration(from: string, to: string): string {
  if (!from || !to) return '';
  const ms = Date.parse(to) - Date.parse(from);
  if (Number.isNaN(ms)) return '';
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1_000)} s`;
}

/** Empty values show as "-", so that a column never looks shifted. */
export function orDash(text: string | number | undefined): string {
  return text === undefined || text === '' ? '-' : String(text);
}
