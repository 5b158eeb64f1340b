// Live updates: one watch stream per team (ndjson.ts), fanned out to the pages that want to
// reload when something they show changes.
import { createContext, useContext, useEffect, useRef, useState, type ReactNode } from 'react';
import { api, paths, session, type List } from './api';
import { watchTeam, type WatchLine } from './ndjson';

type Sub = (line: WatchLine) => void;
interface Live {
  connected: boolean;
  subscribe: (fn: Sub) => () => void;
}
const LiveContext = createContext<Live>({ connected: false, subscribe: () => () => {} });

export function LiveProvider({ team, children }: { team: string; children: ReactNode }) {
  const subs = useRef(new Set<Sub>());
  const [connected, setConnected] = useState(false);
  const [live] = useState<Live>(() => ({
    connected: false,
    subscribe: (fn) => {
      subs.current.add(fn);
      return () => subs.current.delete(fn);
    },
  }));

  useEffect(() => {
    const ctl = new AbortController();
    const start = async () => {
      const listRevision = async () =>
        (await api.get<List<unknown>>(paths.apps(team) + '?limit=1')).revision;
      let from = 0;
      for (let attempt = 0; !ctl.signal.aborted; attempt++) {
        try {
          from = await listRevision();
          break;
        } catch {
          await new Promise((r) => setTimeout(r, Math.min(1000 * (attempt + 1), 5000)));
        }
      }
      const token = session.token();
      if (!token || ctl.signal.aborted) return;
      await watchTeam(
        {
          team,
          token,
          from,
          onChange: (line) => subs.current.forEach((fn) => fn(line)),
          onCompacted: async () => {
            const r = await listRevision();
            // Everything may have changed: tell every page to reload.
            subs.current.forEach((fn) => fn({ revision: r, type: 'put', kind: '*' }));
            return r;
          },
          onUnauthorized: () => session.expire(),
          onStatus: setConnected,
        },
        ctl.signal,
      );
    };
    start();
    return () => ctl.abort();
  }, [team]);

  return (
    <LiveContext.Provider value={{ connected, subscribe: live.subscribe }}>{children}</LiveContext.Provider>
  );
}

export const useLive = () => useContext(LiveContext);

// Loads data with `load` and loads it again (coalesced) whenever a change matching `matches`
// arrives on the team's watch stream.
export function useLiveResource<T>(
  load: () => Promise<T>,
  deps: unknown[],
  matches: (line: WatchLine) => boolean,
) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const { subscribe } = useLive();
  const loadRef = useRef(load);
  loadRef.current = load;
  const matchRef = useRef(matches);
  matchRef.current = matches;
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let cancelled = false;
    loadRef.current().then(
      (d) => {
        if (!cancelled) {
          setData(d);
          setError(null);
        }
      },
      (e) => {
        if (!cancelled) setError(e);
      },
    );
    return () => {
      cancelled = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const unsub = subscribe((line) => {
      if (line.kind !== '*' && !matchRef.current(line)) return;
      clearTimeout(timer);
      timer = setTimeout(() => setTick((n) => n + 1), 150);
    });
    return () => {
      clearTimeout(timer);
      unsub();
    };
  }, [subscribe]);

  const reload = () => setTick((n) => n + 1);
  return { data, error, reload, setData };
}
