import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hopper } from '../helpers/cli.js';
import { ended, testDaemon } from '../helpers/daemon.js';
import { echoRecipe, request } from '../helpers/recipes.js';

describe('cli: status, jobs, show, stats', () => {
  it('read the state while the daemon runs and after it stopped, as tables or JSON, secrets masked', { timeout: 90_000 }, async () => {
    const recipe = echoRecipe('echo');
    (recipe.params as { properties: Record<string, unknown> }).properties.apiKey = { type: 'string', writeOnly: true };
    const d = await testDaemon({ recipes: { echo: recipe } });
    let stopped = false;
    try {
      d.drop('a.yaml', request('echo', { text: 'one', apiKey: 'key-secret-4711' }, { id: 'read-1', notify: { email: 'a@example.org' } }));
      d.drop('b.yaml', request('echo', { text: 'two' }, { id: 'read-2', notify: { email: 'A@example.org' } }));
      const job = await d.job('read-1', ended);
      await d.job('read-2', ended);

      const status = await hopper(['status', '--root', d.root, '--json']);
      assert.equal(status.code, 0, status.stderr);
      const s = JSON.parse(status.stdout) as { processed: number; running: boolean; lanes: { fast: { concurrency: number } } };
      assert.equal(s.processed, 2);
      assert.equal(s.running, true);
      assert.equal(s.lanes.fast.concurrency, 4);

      const jobs = await hopper(['jobs', '--root', d.root]);
      assert.equal(jobs.code, 0);
      assert.match(jobs.stderr, /hopper is running \(pid \d+\)/);
      assert.match(jobs.stdout, /read-1/);
      assert.match(jobs.stdout, /read-2/);

      const show = await hopper(['show', '--root', d.root, 'read-1']);
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, new RegExp(`job ${job.id} \\(request read-1\\): echo, succeeded`));
      assert.match(show.stdout, /result\.txt .*\/downloads\//);
      assert.match(show.stdout, /job\.log \(last \d+ lines\)/);
      assert.ok(!show.stdout.includes('key-secret-4711'), 'the secret is masked');
      assert.match(show.stdout, /"apiKey":"\*\*\*"/);

      await d.stop();
      stopped = true;
      const after = await hopper(['stats', '--root', d.root, '--json']);
      assert.equal(after.code, 0, after.stderr);
      assert.equal(after.stderr, '', 'JSON mode says nothing on stderr');
      const stats = JSON.parse(after.stdout) as { totals: Record<string, { requests: number; emails: number }> };
      assert.equal(stats.totals['*'].requests, 2);
      assert.equal(stats.totals['*'].emails, 1, 'one unique address, whatever its case');
      const human = await hopper(['jobs', '--root', d.root, '--state', 'succeeded']);
      assert.match(human.stderr, /hopper is not running/);

      assert.equal((await hopper(['jobs', '--root', d.root, '--state', 'bogus'])).code, 2);
      assert.equal((await hopper(['jobs', '--root', d.root, '--limit', '-1'])).code, 2);
      assert.equal((await hopper(['show', '--root', d.root, 'nope'])).code, 1);
    } finally {
      if (!stopped) await d.stop();
      await d.cleanup().catch(() => {});
    }
  });

  it('control characters from a command, a server or a requester are shown as escapes, never sent raw to the terminal', { timeout: 60_000 }, async () => {
    const ESC = '\x1b';
    const recipe = echoRecipe('loud', { steps: [{ run: { command: ['sh', '-c', `printf '${ESC}]52;c;cHduZWQ=\\a${ESC}[2J\\r'; echo "$1"; exit 4`, 'sh', '{{params.text}}'] } }] });
    const d = await testDaemon({ recipes: { loud: recipe } });
    try {
      d.drop('esc.yaml', request('loud', { text: `clear ${ESC}[2J title ${ESC}]0;owned\u0007` }, { id: 'esc-1' }));
      const job = await d.job('esc-1', ended);
      assert.equal(job.state, 'failed');
      for (const args of [['show', 'esc-1'], ['jobs'], ['jobs', '--state', 'failed']]) {
        const out = await hopper([...args, '--root', d.root]);
        assert.equal(out.code, 0, out.stderr);
        assert.ok(!/[\u0000-\u0008\u000b-\u001f\u007f]/.test(out.stdout), `hopper ${args.join(' ')} printed a raw control character`);
      }
      const show = await hopper(['show', 'esc-1', '--root', d.root]);
      assert.match(show.stdout, /\\x1b\[2J/, 'the sequence is shown as text');
    } finally {
      await d.cleanup();
    }
  });
});
