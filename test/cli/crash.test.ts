import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { openStore } from '../../src/store/store.js';
import { startCli, type RunningDaemon } from '../helpers/cli.js';
import { drop, tempRoot } from '../helpers/daemon.js';
import { httpServer } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

// Issue 12's guarantee under load: kill -9 while a large batch of dropped
// files is being taken, and again while many jobs are settling. After the
// restarts every request is exactly one job, every job ends once, and every
// email is written once.

const N = 400;

interface Tally {
  jobs: number;
  ended: number;
  succeeded: number;
  /** Jobs with more than one ending event, or more than one `succeeded` email row. */
  twice: number;
}

function tally(root: string): Tally {
  const store = openStore(path.join(root, 'state', 'hopper.db'), { readonly: true });
  try {
    const one = (sql: string): number => (store.db.prepare(sql).get() as { n: number }).n;
    return {
      jobs: one('SELECT count(*) AS n FROM jobs'),
      ended: one("SELECT count(*) AS n FROM jobs WHERE state IN ('succeeded', 'failed', 'canceled')"),
      succeeded: one("SELECT count(*) AS n FROM jobs WHERE state = 'succeeded'"),
      twice:
        one("SELECT count(*) AS n FROM (SELECT job_id FROM events WHERE event IN ('succeeded', 'failed', 'canceled') GROUP BY job_id HAVING count(*) > 1)") +
        one("SELECT count(*) AS n FROM (SELECT job_id FROM notifications WHERE channel = 'email' AND event = 'succeeded' GROUP BY job_id HAVING count(*) > 1)"),
    };
  } catch {
    return { jobs: 0, ended: 0, succeeded: 0, twice: 0 }; // not made yet
  } finally {
    store.close();
  }
}

async function kill9(d: RunningDaemon): Promise<void> {
  d.child.kill('SIGKILL');
  await d.exited;
}

describe('cli: kill -9 under load', () => {
  it(`while ${N} dropped files are taken and while their jobs settle: each request becomes one job that ends once, with one email`, { timeout: 180_000 }, async () => {
    const { root, cleanup } = tempRoot();
    const server = await httpServer((_req, res) => res.end('id,value\n1,2\n'));
    mkdirSync(path.join(root, 'recipes'), { recursive: true });
    writeFileSync(
      path.join(root, 'recipes', 'small.yaml'),
      stringify({
        kind: 'recipe',
        name: 'small',
        params: { type: 'object', required: ['url'], properties: { url: { type: 'string' } } },
        steps: [{ fetch: { url: '{{params.url}}', to: 'in/data.csv' } }, { zip: { from: 'in', to: 'out.zip' } }],
        output: { files: ['out.zip'] },
      }),
    );
    writeFileSync(path.join(root, 'hopper.yaml'), stringify({ http: { port: 0 }, lanes: { fast: { concurrency: 8 } }, outbound: { allow: ['127.0.0.1'] }, shutdown: { grace: '2s' } }));
    let d: RunningDaemon | undefined;
    try {
      d = await startCli(root);
      const inbox = path.join(root, 'inbox');
      for (let i = 0; i < N; i++) {
        drop(inbox, `r${String(i).padStart(4, '0')}.yaml`, { kind: 'request', recipe: 'small', id: `r${i}`, params: { url: `${server.url}/data.csv` }, notify: { email: 'someone@example.org' } });
      }
      // 1. While the batch is being taken: some requests are jobs, not all.
      await waitFor('the first jobs', () => tally(root).jobs > 0, 30_000, 5);
      await kill9(d);
      const afterFirst = tally(root);
      d = await startCli(root);
      // 2. While jobs settle: some have ended, not all.
      await waitFor('jobs ending', () => tally(root).ended >= Math.min(afterFirst.ended + 50, N / 4), 60_000, 5);
      await kill9(d);
      const afterSecond = tally(root);
      d = await startCli(root);
      await waitFor('every job to end', () => tally(root).ended === N, 120_000, 100);
      const outbox = path.join(root, 'outbox');
      // A write cut off by kill -9 may leave its hidden temporary file (.NAME.RANDOM.tmp): no email.
      const succeededEmails = (): string[] => readdirSync(outbox).filter((n) => !n.startsWith('.') && n.endsWith('.eml') && n.includes('-succeeded-'));
      await waitFor('every email', () => succeededEmails().length >= N, 60_000, 100);
      d.child.kill('SIGTERM');
      await d.exited;
      d = undefined;

      console.log(`# killed with ${afterFirst.jobs} of ${N} requests taken, then with ${afterSecond.ended} of ${N} jobs ended`);
      const end = tally(root);
      assert.deepEqual(end, { jobs: N, ended: N, succeeded: N, twice: 0 }, `after the first kill ${JSON.stringify(afterFirst)}, after the second ${JSON.stringify(afterSecond)}`);
      assert.ok(afterSecond.ended < N, 'the second kill came while jobs were still settling');
      const left = readdirSync(inbox).filter((n) => n.endsWith('.yaml'));
      assert.deepEqual(left, [], 'no request is left in the inbox');
      assert.deepEqual(readdirSync(path.join(inbox, 'rejected')), [], 'none was rejected');
      const emails = succeededEmails();
      const perJob = new Map<string, number>();
      for (const name of emails) {
        const job = name.slice(0, name.indexOf('-succeeded-'));
        perJob.set(job, (perJob.get(job) ?? 0) + 1);
      }
      assert.equal(perJob.size, N, 'an email for every job');
      assert.deepEqual([...perJob.values()].filter((n) => n !== 1), [], 'no job emailed twice');
    } finally {
      if (d) await kill9(d);
      await server.close();
      cleanup();
    }
  });
});
