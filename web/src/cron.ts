// A cronjob's next firing, computed in the browser because the API does not report it. A port
// of the server's parser and NextAfter (src/model/model.cc): 5 fields, UTC, numbers, ranges,
// lists and steps ("*/15", "1-30/2", "5/15" = 5-max/15), day-of-week 0 or 7 = Sunday; when
// both day fields are restricted (do not start with '*') either one matching is enough.

export interface CronSchedule {
  minutes: boolean[];
  hours: boolean[];
  days: boolean[];
  months: boolean[];
  weekdays: boolean[];
  daysRestricted: boolean;
  weekdaysRestricted: boolean;
}

function parseField(f: string, lo: number, hi: number): boolean[] | null {
  if (!f) return null;
  const mask = new Array<boolean>(hi + 1).fill(false);
  for (const item of f.split(',')) {
    if (!item) return null;
    const [range, st, extra] = item.split('/');
    if (extra !== undefined) return null;
    let step = 1;
    if (st !== undefined) {
      if (!/^\d{1,3}$/.test(st) || Number(st) === 0) return null;
      step = Number(st);
    }
    let x = lo, y = hi;
    if (range !== '*') {
      const parts = range.split('-');
      if (parts.length > 2 || parts.some((p) => !/^\d{1,2}$/.test(p))) return null;
      x = Number(parts[0]);
      y = Number(parts[parts.length - 1]);
      if (x < lo || y > hi || x > y) return null;
      if (st !== undefined && parts.length === 1) y = hi;
    }
    for (let v = x; v <= y; v += step) mask[v] = true;
  }
  return mask;
}

export function parseCron(expr: string): CronSchedule | null {
  const parts = expr.trim().split(/[ \t]+/);
  if (parts.length !== 5) return null;
  const lo = [0, 0, 1, 1, 0], hi = [59, 23, 31, 12, 7];
  const m = parts.map((p, k) => parseField(p, lo[k], hi[k]));
  if (m.some((x) => x === null)) return null;
  const weekdays = m[4]!;
  if (weekdays[7]) weekdays[0] = true;
  return {
    minutes: m[0]!, hours: m[1]!, days: m[2]!, months: m[3]!, weekdays: weekdays.slice(0, 7),
    daysRestricted: parts[2][0] !== '*', weekdaysRestricted: parts[4][0] !== '*',
  };
}

// The first firing strictly after `afterMs` (Unix milliseconds), or null when it never fires
// within eight years (e.g. "0 0 30 2 *").
export function nextFiring(c: CronSchedule, afterMs: number): Date | null {
  let t = Math.floor(afterMs / 60000) * 60000 + 60000;
  const limit = t + 8 * 366 * 86400000;
  while (t <= limit) {
    const d = new Date(t);
    if (!c.months[d.getUTCMonth() + 1]) {
      t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
      continue;
    }
    const dom = c.days[d.getUTCDate()], dow = c.weekdays[d.getUTCDay()];
    const dayOk = c.daysRestricted && c.weekdaysRestricted ? dom || dow : dom && dow;
    if (!dayOk) {
      t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
      continue;
    }
    if (!c.hours[d.getUTCHours()]) {
      t += (60 - d.getUTCMinutes()) * 60000;
      continue;
    }
    if (!c.minutes[d.getUTCMinutes()]) {
      t += 60000;
      continue;
    }
    return d;
  }
  return null;
}

// nextFiring of an expression; null when it does not parse or never fires.
export function nextFiringOf(expr: string, afterMs: number): Date | null {
  const c = parseCron(expr);
  return c ? nextFiring(c, afterMs) : null;
}
