import { describe, expect, it } from 'vitest';
import {
  covers, expiryOf, formFieldOf, httpDraftOf, httpRuleBody, httpRulesFor, newHttpDraft, newTcpDraft, ruleLabel, setShare,
  shares, splitEvenly, tcpRuleBody, type HttpRule,
} from './gateway';

const rule = (over: Partial<HttpRule> = {}): HttpRule => ({
  name: 'r', team: 'default', app: 'shop', domain: 'shop.example.com', path_prefix: '/', headers: [], cookies: [],
  backends: [{ component: 'web', port: 8080, version: '', weight: 90 }, { component: 'web', port: 8080, version: 'v7', weight: 10 }],
  balance: 'round_robin', hash_cookie: 'berth_affinity', certificate: '', redirect_https: false,
  rate_limit: { requests_per_second: 0, burst: 0 }, max_body_bytes: 0,
  timeouts: { connect_ms: 5000, header_ms: 30000, idle_ms: 60000, total_ms: 0 },
  revision: 3, created_at: '', updated_at: '', ...over,
});

describe('HTTP rule form', () => {
  it('turns a prefilled draft into the API body (port 0 = first HTTP port)', () => {
    const d = { ...newHttpDraft('shop', 'web', ''), domain: ' Shop.Example.com ' };
    const r = httpRuleBody(d);
    expect('body' in r && r.body).toMatchObject({
      domain: 'shop.example.com', path_prefix: '/', backends: [{ component: 'web', port: 0, version: '', weight: 100 }],
      rate_limit: { requests_per_second: 0, burst: 0 }, timeouts: { connect_ms: 5000, header_ms: 30000, idle_ms: 60000, total_ms: 0 },
    });
    expect('body' in r && 'name' in r.body).toBe(false);
  });
  it('round-trips a stored rule', () => {
    const r = httpRuleBody(httpDraftOf(rule({ rate_limit: { requests_per_second: 2.5, burst: 5 } })));
    expect('body' in r && r.body).toMatchObject({ name: 'r', backends: rule().backends, rate_limit: { requests_per_second: 2.5, burst: 5 } });
  });
  it('names the input of the first problem with the API field name', () => {
    const base = { ...newHttpDraft('shop', 'web', '8080'), domain: 'a.example.com' };
    const problem = (d: Partial<typeof base>) => {
      const r = httpRuleBody({ ...base, ...d });
      return 'problem' in r ? r.problem.field : null;
    };
    expect(problem({ domain: ' ' })).toBe('domain');
    expect(problem({ path_prefix: 'api' })).toBe('path_prefix');
    expect(problem({ backends: [] })).toBe('backends');
    expect(problem({ backends: [...base.backends, { component: 'api', port: 'x', version: '', weight: '1' }] })).toBe('backends[1].port');
    expect(problem({ backends: [{ component: 'web', port: '', version: '', weight: '1001' }] })).toBe('backends[0].weight');
    expect(problem({ backends: [{ component: 'web', port: '', version: '', weight: '0' }] })).toBe('backends');
    expect(problem({ backends: [{ component: '', port: '', version: '', weight: '1' }] })).toBe('backends[0].component');
    expect(problem({ headers: [{ name: ' ', value: '1' }] })).toBe('headers[0].name');
    expect(problem({ redirect_https: true })).toBe('redirect_https');
    expect(problem({ rps: '-1' })).toBe('rate_limit.requests_per_second');
    expect(problem({ burst: '1.5' })).toBe('rate_limit.burst');
    expect(problem({ idle_ms: '0' })).toBe('timeouts.idle_ms');
    expect(problem({ app: '' })).toBe('app');
    expect(problem({})).toBeNull();
  });
  it('maps API error fields to form locations', () => {
    expect(formFieldOf('backends[2].version')).toBe('backends[2]');
    expect(formFieldOf('headers[0].name')).toBe('headers[0]');
    expect(formFieldOf('rate_limit.burst')).toBe('rate_limit.burst');
    expect(formFieldOf('timeouts.connect_ms')).toBe('timeouts.connect_ms');
    expect(formFieldOf('domain')).toBe('domain');
    expect(formFieldOf('backends')).toBe('backends');
    expect(formFieldOf(undefined)).toBeNull();
  });
});

describe('canary weights', () => {
  it('computes shares of relative weights', () => {
    expect(shares(['90', '10'])).toEqual([90, 10]);
    expect(shares(['1', '2'])).toEqual([33.3, 66.7]);
    expect(shares(['0', '0'])).toEqual([0, 0]);
    expect(shares(['x', '5'])).toEqual([0, 100]);
  });
  it('sets one share and keeps the others in proportion, summing to 100', () => {
    expect(setShare(['100', '0'], 1, 10)).toEqual(['90', '10']);
    expect(setShare(['50', '30', '20'], 0, 0)).toEqual(['0', '60', '40']);
    expect(setShare(['1', '1', '1'], 2, 50)).toEqual(['25', '25', '50']);
    expect(setShare(['1', '1', '1', '0'], 3, 1)).toEqual(['33', '33', '33', '1']);
    expect(setShare(['3', '0', '0'], 0, 100)).toEqual(['100', '0', '0']);
    // The others all at 0: the rest is split evenly.
    expect(setShare(['7', '0', '0'], 0, 40)).toEqual(['40', '30', '30']);
    expect(setShare(['5'], 0, 30)).toEqual(['100']);
    for (const w of [['3', '7', '11'], ['0', '1', '0', '9'], ['1000', '1']]) {
      for (let p = 0; p <= 100; p += 7) {
        const out = setShare(w, 1, p);
        expect(out.reduce((a, b) => a + Number(b), 0)).toBe(100);
        expect(out[1]).toBe(String(p));
      }
    }
  });
  it('splits evenly', () => {
    expect(splitEvenly(3)).toEqual(['34', '33', '33']);
    expect(splitEvenly(2)).toEqual(['50', '50']);
    expect(splitEvenly(0)).toEqual([]);
  });
  it("finds the rules that send a component traffic, with its share", () => {
    const rules = [rule(), rule({ name: 'other', backends: [{ component: 'api', port: 80, version: '', weight: 1 }] }), rule({ name: 'x', app: 'blog' })];
    expect(httpRulesFor(rules, 'shop', 'web').map((x) => [x.rule.name, x.share])).toEqual([['r', 100]]);
    expect(httpRulesFor(rules, 'shop', 'api').map((x) => x.rule.name)).toEqual(['other']);
    expect(ruleLabel({ domain: 'a.b', path_prefix: '/api' })).toBe('a.b/api');
    expect(ruleLabel({ domain: 'a.b', path_prefix: '/' })).toBe('a.b');
  });
});

describe('TCP rule form', () => {
  it('checks the listen port and fills the body', () => {
    const d = { ...newTcpDraft('shop', 'db', '5432'), listen_port: '15432' };
    expect(tcpRuleBody(d)).toEqual({ body: { listen_port: 15432, component: 'db', port: 5432, balance: 'round_robin', connect_timeout_ms: 5000, idle_timeout_ms: 3600000 } });
    const idle = tcpRuleBody({ ...d, idle_timeout_ms: '999' });
    expect('problem' in idle && idle.problem.field).toBe('idle_timeout_ms');
    const bad = tcpRuleBody({ ...d, listen_port: '70000' });
    expect('problem' in bad && bad.problem.field).toBe('listen_port');
    const noComp = tcpRuleBody({ ...d, component: '' });
    expect('problem' in noComp && noComp.problem.field).toBe('component');
  });
});

describe('certificate expiry', () => {
  const now = new Date('2026-11-29T12:00:00Z');
  it('classifies expired, expiring within 30 days and fine', () => {
    expect(expiryOf({ not_after: '2026-11-01T00:00:00Z', expired: false }, now).state).toBe('expired');
    expect(expiryOf({ not_after: '2027-11-01T00:00:00Z', expired: true }, now).state).toBe('expired');
    expect(expiryOf({ not_after: '2026-12-10T00:00:00Z', expired: false }, now)).toEqual({ state: 'expiring', days: 10 });
    expect(expiryOf({ not_after: '2026-12-29T11:00:00Z', expired: false }, now)).toEqual({ state: 'expiring', days: 29 });
    expect(expiryOf({ not_after: '2026-12-29T13:00:00Z', expired: false }, now)).toEqual({ state: 'ok', days: 30 });
    expect(expiryOf({ not_after: 'garbage', expired: false }, now).state).toBe('unknown');
  });
  it('knows which domains a certificate covers', () => {
    expect(covers(['shop.example.com'], 'Shop.example.com')).toBe(true);
    expect(covers(['*.example.com'], 'a.example.com')).toBe(true);
    expect(covers(['*.example.com'], 'a.b.example.com')).toBe(false);
    expect(covers(['*.example.com'], 'example.com')).toBe(false);
    expect(covers(['*.example.com'], '*.example.com')).toBe(true);
  });
});
