import assert from 'node:assert/strict';
import { existsSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
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

  it("gives the command hopper's outbound policy (its allow list and the module applying it), which a step env cannot replace", { timeout: 30_000 }, async () => {
    const h = harness({ wide: '["0.0.0.0/0"]' });
    // A plain node child (no tsx) imports the module and asks it about a few addresses.
    const script = `
      const { OutboundPolicy } = await import(process.env.HOPPER_OUTBOUND_MODULE);
      const allow = JSON.parse(process.env.HOPPER_OUTBOUND_ALLOW);
      const policy = new OutboundPolicy(allow);
      const why = (a) => policy.refusal(a, a) ?? null;
      let literal = null;
      try { policy.checkLiteral(new URL('http://169.254.169.254/latest/meta-data/')); } catch (err) { literal = err.code + ': ' + err.message; }
      require('fs').writeFileSync('policy.json', JSON.stringify({ allow, loopback: why('127.0.0.1'), other: why('127.0.0.2'), lan: why('10.0.0.1'), literal, module: process.env.HOPPER_OUTBOUND_MODULE }));`;
    await runStep(runOf([NODE, '-e', `(async () => { ${script} })().catch((e) => { console.error(e); process.exit(9); })`], { env: { HOPPER_OUTBOUND_ALLOW: '{{params.wide}}', HOPPER_OUTBOUND_MODULE: 'data:text/javascript,export class OutboundPolicy { refusal() {} checkLiteral() {} }' } }), h.env);
    const seen = JSON.parse(readFileSync(path.join(h.workDir, 'policy.json'), 'utf8')) as Record<string, string | null | string[]>;
    assert.deepEqual(seen.allow, ['127.0.0.1'], "the step's policy (the harness allows 127.0.0.1), not the step env's");
    assert.match(String(seen.module), /^file:\/\//);
    assert.equal(seen.loopback, null, 'allowed by the list');
    assert.match(String(seen.other), /^127\.0\.0\.2 is a loopback address; hopper reaches it only if hopper\.yaml's outbound\.allow names it$/);
    assert.match(String(seen.lan), /^10\.0\.0\.1 is a private address/);
    assert.match(String(seen.literal), /^E_OUTBOUND: 169\.254\.169\.254 is a link-local address/);
  });

  it('notes in job.log when the policy module cannot be made, and leaves HOPPER_OUTBOUND_MODULE unset (a script needing it refuses)', { timeout: 30_000 }, async () => {
    const h = harness();
    writeFileSync(path.join(h.root, 'state'), 'a file where the state folder should be');
    await runStep(runOf(nodeScript("require('fs').writeFileSync('vars.json', JSON.stringify([process.env.HOPPER_OUTBOUND_MODULE ?? null, process.env.HOPPER_OUTBOUND_ALLOW]))")), h.env);
    assert.deepEqual(JSON.parse(readFileSync(path.join(h.workDir, 'vars.json'), 'utf8')), [null, '["127.0.0.1"]']);
    assert.match(await h.logText(), /run: no outbound policy module for the command \(.+\); a script that checks URLs against it will refuse to run/);
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
