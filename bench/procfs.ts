/** Process figures from /proc: resident memory and CPU time. */
import { readdir, readFile } from 'node:fs/promises';

/** Resident set size of a process in MB, from VmRSS in /proc/<pid>/status; undefined once it is gone. */
export async function rssMb(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every `intervalMs` and keeps the peak since the last takePeak(). */
export class RssSampler {
  private peak = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly pid: number, private readonly intervalMs = 500) {}

  start(): void {
    // fire-and-forget: sample() never rejects (rssMb catches), and takePeak() samples once more, awaited
    void this.sample();
    // fire-and-forget, as above: each tick only raises the peak
    this.timer = setInterval(() => void this.sample(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The peak seen since the previous call (sampling once more first), then starts a new window. */
  async takePeak(): Promise<number> {
    await this.sample();
    const peak = this.peak;
    this.peak = 0;
    return peak;
  }

  private async sample(): Promise<void> {
    const mb = await rssMb(this.pid);
    if (mb !== undefined && mb > this.peak) this.peak = mb;
  }
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat; assumes 100 clock ticks/s. */
export async function cpuSeconds(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** Busy and total jiffies of the whole host, from the first line of /proc/stat. */
export async function hostCpuTicks(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0];
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  const idle = ticks[3] + (ticks[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/** CPU seconds used by every process whose command name (/proc/<pid>/comm) is `comm`, e.g. postgres. */
export async function cpuSecondsOfCommand(comm: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== comm) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime + stime, and cutime + cstime: the CPU of children that exited (Postgres backends whose
      // connection closed during the run count through the postmaster's).
      total += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
    } catch {
      // the process ended between readdir and readFile
    }
  }
  return total;
}
