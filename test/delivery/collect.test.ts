import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ended, testDaemon, type TestDaemon } from '../helpers/daemon.js';
import { emlFiles, readEml } from '../helpers/mail.js';
import { request } from '../helpers/recipes.js';
import { waitFor } from '../helpers/wait.js';
import path from 'node:path';

function emptyOutput(name: string, output: Record<string, unknown>): Record<string, unknown> {
  return {
    kind: 'recipe',
    name,
    steps: [{ run: { command: ['sh', '-c', ': > empty.txt'] } }],
    output: { files: ['empty.txt'], ...output },
    notify: { email: { to: 'someone@example.org' } },
  };
}

describe('outputs: output.minBytes', () => {
  let d: TestDaemon;
  before(async () => {
    d = await testDaemon({ recipes: { 'empty-default': emptyOutput('empty-default', {}), 'empty-allowed': emptyOutput('empty-allowed', { minBytes: 0 }) } });
  });
  after(() => d.cleanup());

  it('a job whose only output is an empty file fails by default (minBytes is 1), and its email says no result was made', async () => {
    d.drop('e.yaml', request('empty-default', {}, { id: 'empty-1' }));
    const job = await d.job('empty-1', ended);
    assert.equal(job.state, 'failed');
    assert.equal(job.errorCode, 'E_NO_OUTPUT');
    const mail = await waitFor('the email', () => emlFiles(path.join(d.root, 'outbox')).map(readEml).find((m) => m.body.includes(job.id)));
    assert.match(mail.body, /the work finished but produced no result/);
  });

  it('a recipe may allow empty outputs with minBytes: 0', async () => {
    d.drop('a.yaml', request('empty-allowed', {}, { id: 'empty-2' }));
    assert.equal((await d.job('empty-2', ended)).state, 'succeeded');
  });
});
