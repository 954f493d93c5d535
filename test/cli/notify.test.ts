import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { openStore } from '../../src/store/store.js';
import { hopper, startCli } from '../helpers/cli.js';
import { drop, tempRoot } from '../helpers/daemon.js';
import { httpServer } from '../helpers/http.js';
import { echoRecipe, request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';

function read<T>(root: string, fn: (s: ReturnType<typeof openStore>) => T): T {
  const store = openStore(path.join(root, 'state', 'hopper.db'), { readonly: true });
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

/**
 * A webhook receiver that records every arrival. `up: false` answers 503;
 * `hold(event)` keeps the first delivery of that event unanswered, as if the
 * daemon died between sending and hearing back.
 */
async function receiver() {
  const deliveries: Array<{ id: string; event: string }> = [];
  let up = true;
  let holdEvent: string | null = null;
  let held = false;
  const server = await httpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const event = String(req.headers['x-hopper-event']);
      if (up) deliveries.push({ id: String(req.headers['x-hopper-delivery']), event });
      if (event === holdEvent && !held) {
        held = true;
        return;
      }
      res.writeHead(up ? 200 : 503).end();
    });
  });
  return { ...server, deliveries, setUp: (v: boolean) => (up = v), hold: (event: string) => (holdEvent = event) };
}

function setUp(root: string, hookUrl: string, config = ''): void {
  mkdirSync(path.join(root, 'recipes'), { recursive: true });
  const recipe = echoRecipe('hooked', { notify: { webhook: { url: hookUrl } } });
  writeFileSync(path.join(root, 'recipes', 'hooked.yaml'), stringify(recipe));
  writeFileSync(path.join(root, 'hopper.yaml'), `http: { port: 0 }\noutbound: { allow: [127.0.0.1] }\n${config}`);
}

describe('cli: webhooks across a crash, and notify resend', () => {
  it('a delivery recorded as sent is never sent again after kill -9 and a restart', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    const rx = await receiver();
    setUp(root, `${rx.url}/hook`);
    try {
      let d = await startCli(root);
      drop(path.join(root, 'inbox'), 'r.yaml', request('hooked', { text: 'x', seconds: 3 }, { id: 'crashy' }));
      await waitFor('the started webhook, recorded as sent', () => read(root, (s) => {
        const job = s.jobs.find('crashy');
        return job !== undefined && s.notifications.forJob(job.id).some((n) => n.event === 'started' && n.state === 'sent');
      }), 20_000, 50);
      d.child.kill('SIGKILL');
      await d.exited;
      d = await startCli(root);
      try {
        await waitFor('the succeeded webhook', () => rx.deliveries.some((x) => x.event === 'succeeded'), 30_000, 100);
        const ids = rx.deliveries.map((x) => x.id);
        assert.equal(new Set(ids).size, ids.length, `a delivery came twice: ${JSON.stringify(rx.deliveries)}`);
        assert.deepEqual(rx.deliveries.map((x) => x.event), ['requested', 'started', 'started', 'succeeded'], 'one started per run');
      } finally {
        d.child.kill('SIGTERM');
        await d.exited;
      }
    } finally {
      await rx.close();
      cleanup();
    }
  });

  it('a delivery cut off by kill -9 before it was recorded comes again with the same X-Hopper-Delivery id', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    const rx = await receiver();
    rx.hold('started');
    setUp(root, `${rx.url}/hook`);
    try {
      let d = await startCli(root);
      drop(path.join(root, 'inbox'), 'r.yaml', request('hooked', { text: 'x', seconds: 2 }, { id: 'cut-off' }));
      await waitFor('the started webhook to arrive (unanswered)', () => rx.deliveries.some((x) => x.event === 'started'), 20_000);
      d.child.kill('SIGKILL');
      await d.exited;
      const cut = rx.deliveries.find((x) => x.event === 'started')!;
      d = await startCli(root);
      try {
        await waitFor('the succeeded webhook', () => rx.deliveries.some((x) => x.event === 'succeeded'), 30_000, 100);
        assert.equal(rx.deliveries.filter((x) => x.id === cut.id).length, 2, `the cut-off delivery is sent again: ${JSON.stringify(rx.deliveries)}`);
        const unique = new Map(rx.deliveries.map((x) => [x.id, x.event]));
        assert.deepEqual([...unique.values()].sort(), ['requested', 'started', 'started', 'succeeded'], 'after dropping repeats by id, one of each');
      } finally {
        d.child.kill('SIGTERM');
        await d.exited;
      }
    } finally {
      await rx.close();
      cleanup();
    }
  });

  it('hopper notify resend sends a dead notification again', { timeout: 60_000 }, async () => {
    const { root, cleanup } = tempRoot();
    const rx = await receiver();
    rx.setUp(false);
    setUp(root, `${rx.url}/hook`, 'webhooks: { retryFor: 1s }\n');
    const d = await startCli(root);
    try {
      drop(path.join(root, 'inbox'), 'r.yaml', request('hooked', { text: 'x' }, { id: 'resend-me' }));
      await waitFor('dead notifications', () => read(root, (s) => {
        const job = s.jobs.find('resend-me');
        const ns = job ? s.notifications.forJob(job.id) : [];
        return ns.length === 3 && ns.every((n) => n.state === 'dead');
      }), 30_000, 200);
      rx.setUp(true);
      const bad = await hopper(['notify', 'resend', '--root', root, 'no-such-job']);
      assert.equal(bad.code, 1);
      const r = await hopper(['notify', 'resend', '--root', root, 'resend-me']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /3 notifications queued/);
      await waitFor('the resent deliveries', () => rx.deliveries.length === 3, 20_000, 100);
      assert.deepEqual(rx.deliveries.map((x) => x.event), ['requested', 'started', 'succeeded']);
    } finally {
      d.child.kill('SIGTERM');
      await d.exited;
      await rx.close();
      cleanup();
    }
  });
});
