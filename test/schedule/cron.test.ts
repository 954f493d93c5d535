import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { InvalidFileError } from '../../src/errors.js';
import { recipeFromFile } from '../../src/recipes/recipe.js';
import { CronError, parseCron } from '../../src/schedule/cron.js';
import { parseYaml } from '../../src/schemas/document.js';
import { echoRecipe } from '../helpers/recipes.js';

// Local times, as cron reads them: these hold in any TZ the tests run under.
const local = (y: number, mo: number, d: number, h = 0, mi = 0, s = 0): number => new Date(y, mo - 1, d, h, mi, s).getTime();

describe('parseCron', () => {
  it('gives the next slot strictly after a time and the latest at or before it', () => {
    const weekly = parseCron('0 3 * * 1'); // Mondays 03:00
    const mon = local(2026, 11, 30, 3);
    assert.equal(weekly.next(mon - 1), mon);
    assert.equal(weekly.next(mon), local(2026, 12, 7, 3));
    assert.equal(weekly.latest(mon), mon, 'the instant itself counts');
    assert.equal(weekly.latest(mon - 1), local(2026, 11, 23, 3));
  });

  it('reads nicknames, a seconds field, and day-of-month OR weekday as Vixie cron does', () => {
    assert.equal(parseCron('@daily').next(local(2026, 1, 1, 12)), local(2026, 1, 2));
    assert.equal(parseCron('*/10 * * * * *').next(local(2026, 1, 1, 0, 0, 5)), local(2026, 1, 1, 0, 0, 10));
    const firstOrMonday = parseCron('0 0 1 * 1');
    assert.equal(firstOrMonday.next(local(2026, 11, 28)), local(2026, 11, 30), 'a Monday');
    assert.equal(firstOrMonday.next(local(2026, 11, 30)), local(2026, 12, 1), 'the 1st, a Tuesday');
  });

  it('refuses a bad pattern with a stable code and words', () => {
    for (const [pattern, words] of [
      ['61 * * * *', /minute/],
      ['every monday', /five, six, or seven/],
      ['', /./],
      ['* * * * * * * *', /./],
      ['0 3 * * 1'.repeat(500), /./],
    ] as const) {
      assert.throws(() => parseCron(pattern), (e: unknown) => e instanceof CronError && e.code === 'E_CRON' && words.test(e.message), pattern.slice(0, 40));
    }
  });
});

describe('recipes with a schedule', () => {
  const load = (doc: Record<string, unknown>) => recipeFromFile(parseYaml(stringify(doc)));
  const problems = (doc: Record<string, unknown>): string => {
    try {
      load(doc);
    } catch (err) {
      assert.ok(err instanceof InvalidFileError);
      return err.message;
    }
    assert.fail('the recipe loaded');
  };

  it('loads with its cron and its params', () => {
    const r = load(echoRecipe('weekly', { schedule: '0 3 * * 1', scheduleParams: { text: 'report' } }));
    assert.equal(r.schedule?.cron.pattern, '0 3 * * 1');
    assert.deepEqual(r.schedule?.params, { text: 'report' });
  });

  it('is refused, with the line, when the schedule does not parse', () => {
    assert.match(problems(echoRecipe('bad', { schedule: '0 25 * * *' })), /line \d+, col \d+: schedule: "0 25 \* \* \*" is no cron schedule: .*hour/);
  });

  it('is refused when its scheduleParams are no valid request', () => {
    assert.match(problems(echoRecipe('bad', { schedule: '@daily', scheduleParams: { text: 5 } })), /scheduleParams\.text: must be a string/);
    assert.match(problems(echoRecipe('bad', { schedule: '@daily', scheduleParams: { nope: 1 } })), /scheduleParams/);
    const needsUrl = { ...echoRecipe('bad'), params: { type: 'object', required: ['url'], properties: { url: { type: 'string' } } }, schedule: '@daily' };
    assert.match(problems(needsUrl), /schedule.*url/s);
    const escapes = { ...echoRecipe('bad'), params: { type: 'object', properties: { to: { type: 'string' } } }, steps: [{ fetch: { url: 'http://127.0.0.1/', to: '{{params.to}}' } }], schedule: '@daily', scheduleParams: { to: '../../etc/x' } };
    assert.match(problems(escapes), /scheduleParams: steps\[0\]\.fetch\.to: must not contain "\.\."/);
  });

  it('is refused when scheduleParams come without a schedule', () => {
    assert.match(problems(echoRecipe('bad', { scheduleParams: { text: 'x' } })), /scheduleParams: needs a schedule/);
  });
});
