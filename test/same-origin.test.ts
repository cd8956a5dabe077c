// The events listener refuses requests a browser makes on another site's behalf: DNS rebinding
// (a Host that is not this agent's) and cross-site requests (Origin, Sec-Fetch-Site).
import { request } from 'node:http';
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { eventRecord } from '../src/events/record.js';
import { EventStore } from '../src/events/store.js';
import { EventHub } from '../src/events/stream.js';
import { buildApiApp } from '../src/http/api-app.js';
import { makeEvent } from './helpers/events.js';

async function setup(t: Test, allowedHosts?: string[]) {
  const store = new EventStore({ maxEvents: 10 });
  store.push(eventRecord(makeEvent({ seq: 1, argv: ['mysql', '-psecret'] })));
  const app = buildApiApp({ store, hub: new EventHub({ maxQueue: 10, onOverflow: () => undefined }), logLevel: 'fatal', allowedHosts });
  t.teardown(() => app.close());
  return app;
}

const cases: readonly { name: string; headers: Record<string, string>; status: number }[] = [
  { name: 'the address port-forward gives', headers: { host: '127.0.0.1:9465' }, status: 200 },
  { name: 'localhost', headers: { host: 'localhost:9465' }, status: 200 },
  { name: 'a name under .localhost', headers: { host: 'execwatch.localhost:9465' }, status: 200 },
  { name: 'IPv6 loopback', headers: { host: '[::1]:9465' }, status: 200 },
  { name: 'the pod IP (beyond loopback, with a token)', headers: { host: '10.1.2.3:9465' }, status: 200 },
  { name: 'a rebound name', headers: { host: 'evil.example:9465' }, status: 403 },
  { name: 'a rebound name without port', headers: { host: 'evil.example' }, status: 403 },
  { name: 'a malformed Host', headers: { host: 'a:b:c' }, status: 403 },
  { name: 'a configured name', headers: { host: 'Agent-1.Internal:9465' }, status: 200 },
  { name: 'same origin', headers: { host: 'localhost:9465', origin: 'http://localhost:9465', 'sec-fetch-site': 'same-origin' }, status: 200 },
  { name: 'typed in the address bar', headers: { host: 'localhost:9465', 'sec-fetch-site': 'none' }, status: 200 },
  { name: 'another origin', headers: { host: '127.0.0.1:9465', origin: 'http://evil.example' }, status: 403 },
  { name: 'another port of localhost', headers: { host: 'localhost:9465', origin: 'http://localhost:3000' }, status: 403 },
  { name: 'an opaque origin', headers: { host: '127.0.0.1:9465', origin: 'null' }, status: 403 },
  { name: 'cross-site', headers: { host: '127.0.0.1:9465', 'sec-fetch-site': 'cross-site' }, status: 403 },
  { name: 'same-site, another origin', headers: { host: 'localhost:9465', 'sec-fetch-site': 'same-site' }, status: 403 },
];

t.test('each request is answered or refused by what the browser says of it', async (t) => {
  const app = await setup(t, ['agent-1.internal']);
  for (const c of cases) {
    const res = await app.inject({ method: 'GET', url: '/api/events', headers: c.headers });
    t.equal(res.statusCode, c.status, `${c.name}: ${c.status}`);
    if (c.status === 403) {
      t.equal(res.json().error, 'Forbidden', `${c.name}: named`);
      t.notMatch(res.body, /secret/, `${c.name}: no argv`);
    }
  }
  const page = await app.inject({ method: 'GET', url: '/', headers: { host: 'evil.example:9465' } });
  t.equal(page.statusCode, 403, 'the page too: a rebinding page does not learn the agent is there');
});

t.test('over a real socket: curl -H "Host: evil.example:9465" is refused, the plain request answered', async (t) => {
  const app = await setup(t);
  const base = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
  const get = (host?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: base.hostname, port: base.port, path: '/api/events', headers: host ? { host } : {} }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode as number, body }));
      });
      req.on('error', reject);
      req.end();
    });
  const rebound = await get('evil.example:9465');
  t.equal(rebound.status, 403, 'a rebound Host: 403');
  t.match(rebound.body, /evil\.example:9465.*--api-allowed-hosts/, 'the message names the Host and the flag');
  const plain = await get();
  t.equal(plain.status, 200, 'the Host node sends for the address it connected to: 200');
  t.match(plain.body, /-psecret/, 'with the events');
});

t.test('an HTTP/1.0 request without Host is a client that is not a browser; with an Origin it is not', async (t) => {
  const app = await setup(t);
  const base = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
  const raw = (head: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(Number(base.port), base.hostname, () => socket.end(`${head}\r\n\r\n`));
      let reply = '';
      socket.on('data', (d: Buffer) => (reply += d));
      socket.on('end', () => resolve(reply));
      socket.on('error', reject);
    });
  t.match(await raw('GET /api/events HTTP/1.0'), /^HTTP\/1\.\d 200/, 'no Host: answered');
  t.match(await raw('GET /api/events HTTP/1.0\r\nOrigin: http://evil.example'), /^HTTP\/1\.\d 403/, 'no Host but an Origin: refused');
});
