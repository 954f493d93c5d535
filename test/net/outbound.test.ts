import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nonPublic, OutboundPolicy } from '../../src/net/outbound.js';
import { send } from '../../src/net/client.js';
import { httpServer } from '../helpers/http.js';

describe('outbound: which addresses steps and webhooks may reach', () => {
  it('calls loopback, private, link-local, CGNAT, multicast and their IPv6 kin non-public, in any spelling', () => {
    for (const a of ['127.0.0.1', '127.9.9.9', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '::1', '::', 'fe80::1', 'fd12:3456::1', 'fc00::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '64:ff9b::10.0.0.1', '[::1]', '::127.0.0.1', 'fec0::1', '64:ff9b:1::1', '::ffff:0:7f00:1']) {
      assert.ok(nonPublic(a), `${a} is not public`);
    }
    for (const a of ['93.184.215.14', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8']) {
      assert.equal(nonPublic(a), undefined, `${a} is public`);
    }
  });

  it('allows what hopper.yaml names: an address, a range or a host name', () => {
    const p = new OutboundPolicy(['127.0.0.1', '10.1.0.0/16', 'fd00::/8', 'ckan.internal']);
    assert.equal(p.refusal('127.0.0.1', '127.0.0.1'), undefined);
    assert.equal(p.refusal('x', '::ffff:127.0.0.1'), undefined, 'the mapped form of an allowed address');
    assert.match(p.refusal('127.0.0.2', '127.0.0.2') ?? '', /127\.0\.0\.2 is a loopback address; hopper reaches it only if hopper\.yaml's outbound\.allow names it/);
    assert.equal(p.refusal('db', '10.1.200.3'), undefined);
    assert.match(p.refusal('db', '10.2.0.1') ?? '', /db \(10\.2\.0\.1\) is a private address/);
    assert.equal(p.refusal('x', 'fd00::5'), undefined);
    assert.equal(p.refusal('CKAN.internal', '192.168.5.5'), undefined, 'host names match without case');
    assert.match(new OutboundPolicy([]).refusal('metadata', '169.254.169.254') ?? '', /link-local address \(where clouds serve instance metadata\)/);
  });

  it('refuses a request to a refused address before any byte is sent, whether named by address or by host name', { timeout: 10_000 }, async () => {
    const server = await httpServer((_req, res) => res.end('secret'));
    try {
      const port = new URL(server.url).port;
      const strict = new OutboundPolicy([]);
      for (const url of [`http://127.0.0.1:${port}/`, `http://localhost:${port}/`, `http://[::ffff:127.0.0.1]:${port}/`]) {
        await assert.rejects(send(new URL(url), { headers: {}, signal: AbortSignal.timeout(5000), policy: strict }), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'E_OUTBOUND', `${url}: ${err.message}`);
          return true;
        });
      }
      assert.equal(server.hits.length, 0, 'nothing reached the server');
      const res = await send(new URL(`http://localhost:${port}/`), { headers: {}, signal: AbortSignal.timeout(5000), policy: new OutboundPolicy(['127.0.0.1', '::1']) });
      res.resume();
      assert.equal(res.statusCode, 200, 'allowed once named');
    } finally {
      await server.close();
    }
  });
});
