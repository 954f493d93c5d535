import assert from 'node:assert/strict';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { HopperError } from '../../src/errors.js';
import type { Step } from '../../src/recipes/recipe.js';
import { runStep } from '../../src/steps/run.js';
import { afterStep, cleanupStepHarnesses, isCode, stepHarness, type StepHarness } from '../helpers/steps.js';
import { waitFor } from '../helpers/wait.js';

type RunStep = Extract<Step, { kind: 'run' }>;

const NODE = process.execPath;
const SECRET = 'sekrit-Token-4711';

afterEach(cleanupStepHarnesses);

const harness = (params: Record<string, unknown> = {}, secrets: string[] = []): StepHarness => stepHarness({ scope: { params }, secrets });

function runOf(command: string[], o: Partial<RunStep> = {}): RunStep {
  return { kind: 'run', command, timeoutMs: 20_000, env: {}, ...o };
}

/** A node one-liner as argv: no shell involved. */
const nodeScript = (script: string, ...args: string[]): string[] => [NODE, '-e', script, ...args];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('runStep', () => {
  describe('argv without a shell', () => {
    const hostile = ['; rm -rf /', '$(id)', '`id`', "a b 'c' \"d\"", '*', '${HOME}', 'line1\nline2', '--help', '| cat /etc/passwd', '> clobbered.txt', ''];

    it('passes each parameter as exactly one literal argument', async () => {
      const params = Object.fromEntries(hostile.map((v, i) => [`p${i}`, v]));
      const h = harness(params);
      await runStep(
        runOf(nodeScript("require('fs').writeFileSync('argv.json', JSON.stringify(process.argv.slice(1)))", ...hostile.map((_v, i) => `{{params.p${i}}}`))),
        h.env,
      );
      assert.deepEqual(JSON.parse(readFileSync(path.join(h.workDir, 'argv.json'), 'utf8')), hostile);
      assert.equal(existsSync(path.join(h.workDir, 'clobbered.txt')), false);
    });

    it('keeps a parameter literal even when a shell script receives it as $1', async () => {
      const value = '$(touch pwned); `touch pwned2`; rm -rf nothing';
      const h = harness({ x: value });
      await runStep(runOf(['sh', '-c', 'printf %s "$1" > out.txt', 'sh', '{{params.x}}']), h.env);
      assert.equal(readFileSync(path.join(h.workDir, 'out.txt'), 'utf8'), value);
      assert.equal(existsSync(path.join(h.workDir, 'pwned')), false);
      assert.equal(existsSync(path.join(h.workDir, 'pwned2')), false);
    });

    it('runs in the work dir with HOME and HOPPER_WORK set to it; a step env cannot move HOPPER_WORK', async () => {
      const h = harness();
      const step = { ...runOf(nodeScript("require('fs').writeFileSync('where.json', JSON.stringify([process.cwd(), process.env.HOME, process.env.HOPPER_WORK]))")), env: { HOPPER_WORK: '/elsewhere' } };
      await runStep(step, h.env);
      const [cwd, home, work] = JSON.parse(readFileSync(path.join(h.workDir, 'where.json'), 'utf8')) as string[];
      assert.equal(realpathSync(cwd), realpathSync(h.workDir));
      assert.equal(home, h.workDir);
      assert.equal(work, realpathSync(h.workDir), 'how a restart finds commands left by a crash');
    });

    it('fails with E_TEMPLATE, running nothing, when a placeholder has no value', async () => {
      const h = harness();
      await assert.rejects(runStep(runOf(nodeScript("require('fs').writeFileSync('ran', '')", '{{params.missing}}')), h.env), isCode('E_TEMPLATE'));
      assert.equal(existsSync(path.join(h.workDir, 'ran')), false);
    });
  });

  it("writes the command line and the command's stdout and stderr into job.log", async () => {
    const h = harness();
    await runStep(runOf(nodeScript("console.log('to stdout'); console.error('to stderr')")), h.env);
    const log = await h.logText();
    assert.match(log, /run: .*node/);
    assert.match(log, /^to stdout$/m);
    assert.match(log, /^to stderr$/m);
    assert.match(log, /run: done in/);
  });

  it('writes a last output line that has no trailing newline into job.log', async () => {
    const h = harness();
    await runStep(runOf(nodeScript("process.stdout.write('first\\nno newline at end')")), h.env);
    const log = await h.logText();
    assert.match(log, /^first$/m);
    assert.match(log, /^no newline at end$/m);
  });

  it('fails with E_RUN_EXIT naming the exit code and quoting the last output lines', async () => {
    const h = harness();
    const script = "for (let i = 1; i <= 8; i++) console.log('line' + i); console.error('fatal: disk full'); process.exit(3)";
    await assert.rejects(runStep(runOf(nodeScript(script)), h.env), (err: unknown) => {
      isCode('E_RUN_EXIT', /exited with code 3/, /fatal: disk full/, /line8/)(err);
      const message = (err as Error).message;
      assert.ok(!/line1\b/.test(message), `only the last lines are quoted: ${message}`);
      return true;
    });
  });

  it('quotes a last output line that has no trailing newline in the E_RUN_EXIT message', async () => {
    const h = harness();
    await assert.rejects(runStep(runOf(nodeScript("process.stderr.write('error: no trailing newline'); process.exitCode = 2")), h.env), isCode('E_RUN_EXIT', /code 2/, /no trailing newline/));
  });

  it('fails with E_RUN_NOT_FOUND for an unknown command', async () => {
    const h = harness();
    await assert.rejects(runStep(runOf(['hopper-no-such-command-4711', '--x']), h.env), isCode('E_RUN_NOT_FOUND', /hopper-no-such-command-4711/));
  });

  it('fails with E_RUN_TIMEOUT and stops the command when the step timeout passes', async () => {
    const h = harness();
    const started = Date.now();
    await assert.rejects(
      runStep(runOf(nodeScript("require('fs').writeFileSync('pid', String(process.pid)); console.log('started'); setTimeout(() => {}, 60000)"), { timeoutMs: 500 }), h.env),
      isCode('E_RUN_TIMEOUT', /500ms/),
    );
    const took = Date.now() - started;
    assert.ok(took >= 450 && took < 5000, `took ${took} ms`);
    const pid = Number(readFileSync(path.join(h.workDir, 'pid'), 'utf8'));
    await waitFor('the timed-out process to be gone', () => !alive(pid), 5000);
  });

  it("kills the command and rethrows the reason when the job's signal aborts", async () => {
    const h = harness();
    const reason = new HopperError('E_CANCELED', 'canceled by request');
    const started = Date.now();
    const p = runStep(runOf(nodeScript("require('fs').writeFileSync('pid', String(process.pid)); setTimeout(() => {}, 60000)")), h.env);
    const pidFile = path.join(h.workDir, 'pid');
    const pid = await waitFor('the command to start', () => existsSync(pidFile) && Number(readFileSync(pidFile, 'utf8')), 10_000);
    h.abort.abort(reason);
    await assert.rejects(p, (err) => err === reason);
    assert.ok(Date.now() - started < 10_000);
    await waitFor('the aborted process to be gone', () => !alive(pid), 5000);
  });

  it('rethrows the reason without running when the signal is already aborted', async () => {
    const h = harness();
    const reason = new Error('shutdown');
    h.abort.abort(reason);
    await assert.rejects(runStep(runOf(nodeScript("require('fs').writeFileSync('ran', '')")), h.env), (err) => err === reason);
    assert.equal(existsSync(path.join(h.workDir, 'ran')), false);
  });

  it("hides the daemon's environment from the command but passes the step's env values", async () => {
    process.env.HOPPER_TOKEN_TEST_SECRET = 'daemon-only-value';
    afterStep(() => {
      delete process.env.HOPPER_TOKEN_TEST_SECRET;
    });
    const h = harness({ name: 'Ada; $(id)' });
    await runStep(
      runOf(nodeScript("require('fs').writeFileSync('env.json', JSON.stringify(process.env))"), { env: { GREETING: 'hello {{params.name}}', PLAIN: 'x' } }),
      h.env,
    );
    const seen = JSON.parse(readFileSync(path.join(h.workDir, 'env.json'), 'utf8')) as Record<string, string>;
    assert.equal(seen.HOPPER_TOKEN_TEST_SECRET, undefined);
    assert.ok(!Object.values(seen).includes('daemon-only-value'));
    assert.equal(seen.GREETING, 'hello Ada; $(id)');
    assert.equal(seen.PLAIN, 'x');
    assert.equal(seen.PATH, process.env.PATH);
  });

  it('scrubs secrets from job.log (the command line and its output) and from the error message', async () => {
    const h = harness({ key: SECRET }, [SECRET]);
    const script = "console.log('key is ' + process.argv[1]); console.error('stderr ' + process.env.API_KEY); process.exit(4)";
    await assert.rejects(runStep(runOf(nodeScript(script, '{{params.key}}'), { env: { API_KEY: '{{params.key}}' } }), h.env), (err: unknown) => {
      isCode('E_RUN_EXIT', /key is \*\*\*/)(err);
      assert.ok(!(err as Error).message.includes(SECRET), (err as Error).message);
      return true;
    });
    const log = await h.logText();
    assert.match(log, /^key is \*\*\*$/m);
    assert.match(log, /^stderr \*\*\*$/m);
    assert.match(log, /run: .*\*\*\*/);
    assert.ok(!log.includes(SECRET), log);
  });

  it('scrubs a secret containing a quote or space from the logged command line', async () => {
    const secret = 'pa"ss word 4711';
    const h = harness({ key: secret }, [secret]);
    await runStep(runOf(nodeScript('0', 'key={{params.key}}')), h.env);
    const log = await h.logText();
    assert.ok(!log.includes('pa\\"ss word 4711') && !log.includes(secret), log);
    assert.match(log, /run: .*key=\*\*\*/);
  });
});
