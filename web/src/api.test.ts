import { describe, expect, it } from 'vitest';
import { ApiError, errorFromBody, fieldOf } from './api';
import { isProblem, parseEnv, parsePorts } from './component_form';
import { componentStatus, statusOf } from './status';
import type { Component, Instance, Version } from './api';

describe('API errors', () => {
  it('parses the JSON error body', () => {
    const e = errorFromBody(400, '{"code":"invalid_name","message":"bad","field":"name"}');
    expect(e).toBeInstanceOf(ApiError);
    expect([e.status, e.code, e.message, e.field]).toEqual([400, 'invalid_name', 'bad', 'name']);
  });
  it('survives a body that is not JSON', () => {
    const e = errorFromBody(502, '<html>bad gateway</html>');
    expect(e.code).toBe('http_502');
    expect(e.field).toBeUndefined();
  });
  it('maps the field the API names to the form field', () => {
    const f = ['name', 'ports', 'env', 'replicas'];
    expect(fieldOf(new ApiError(400, 'invalid_argument', 'x', 'ports[0].port'), f)).toBe('ports');
    expect(fieldOf(new ApiError(400, 'invalid_argument', 'x', 'env.1BAD'), f)).toBe('env');
    expect(fieldOf(new ApiError(400, 'invalid_name', 'x', 'name'), f)).toBe('name');
    expect(fieldOf(new ApiError(400, 'unknown_field', 'x', 'health'), f)).toBeNull();
    expect(fieldOf(new ApiError(409, 'already_exists', 'x'), f)).toBeNull();
    expect(fieldOf(new Error('x'), f)).toBeNull();
  });
});

describe('component form', () => {
  it('parses ports', () => {
    expect(parsePorts('8080, 9000/tcp')).toEqual([
      { port: 8080, protocol: 'http', inner: true, outer: true, name: '' },
      { port: 9000, protocol: 'tcp', inner: true, outer: true, name: '' },
    ]);
    expect(parsePorts('')).toEqual([]);
    const bad = parsePorts('80, 70000');
    expect(isProblem(bad) && bad.field).toBe('ports');
  });
  it('parses env lines', () => {
    expect(parseEnv('A=1\n# comment\n\nB = x=y')).toEqual({ A: '1', 'B': ' x=y' });
    const bad = parseEnv('A=1\nnope');
    expect(isProblem(bad) && [bad.field, bad.vars]).toEqual(['env', { line: 2 }]);
  });
});

describe('componentStatus', () => {
  const c = { replicas: 2, desired_state: 'running' } as Component;
  const inst = (ready: boolean, state = 'running') => ({ name: 'i', ready, state }) as unknown as Instance;
  it('derives the status', () => {
    expect(componentStatus({ ...c, desired_state: 'stopped' }, [], true)).toBe('stopped');
    expect(componentStatus(c, [], false)).toBe('noVersion');
    expect(componentStatus(c, [inst(true)], true)).toBe('starting');
    expect(componentStatus(c, [inst(true), inst(true)], true)).toBe('running');
    expect(componentStatus(c, [inst(false, 'crashloop')], true)).toBe('degraded');
    expect(componentStatus(c, [], false, 'failed')).toBe('buildFailed');
    expect(componentStatus(c, [], false, 'building')).toBe('noVersion');
    const v = (number: number, status: string) => ({ name: 'v' + number, number, status }) as Version;
    expect(statusOf(c, [], [v(1, 'failed'), v(2, 'building')])).toBe('noVersion');
    expect(statusOf(c, [], [v(2, 'failed'), v(1, 'building')])).toBe('buildFailed');
    expect(statusOf(c, [inst(true)], [v(2, 'failed'), v(1, 'ready')])).toBe('starting');
  });
});
