/**
 * What the dashboard (GET /ui) shows beyond the other views: running jobs,
 * each recipe's median run time, and jobs finished per minute over the last
 * hour. Each query reads an index or the totals the writes keep, so a
 * database of 100,000 jobs answers in milliseconds (test/http/scale.test.ts).
 */
import type { Lane } from '../recipes/recipe.js';
import { runTimeAtRank } from './stats.js';
import { iso, sqlOf } from './views.js';
import type { Store } from './store.js';

/** Minutes the activity chart covers. */
export const ACTIVITY_MINUTES = 60;
const MINUTE = 60_000;
/** The most running jobs one answer lists (lanes are far smaller; a bigger table is a broken config). */
export const MAX_RUNNING = 100;

export interface RunningRow {
  id: string;
  requestId: string | null;
  recipe: string;
  lane: Lane;
  startedAt: string | null;
  /** Which attempt this is (1 for the first). */
  attempt: number;
  /** For scrubbing what the job printed: its params and its recipe snapshot's params schema (JSON). */
  paramsJson: string;
  schemaJson: string | null;
}

/** Running jobs, the longest running first (at most `limit`), and how many run in all. */
export function runningJobs(store: Store, limit = MAX_RUNNING): { jobs: RunningRow[]; total: number } {
  const sql = sqlOf(store);
  const total = sql<[], { n: number }>(`SELECT count(*) AS n FROM jobs INDEXED BY jobs_state_created WHERE state = 'running'`).get()?.n ?? 0;
  const rows = sql<[number], { id: string; request_id: string | null; recipe: string; lane: Lane; started_at: number | null; attempts: number; params_json: string; schema_json: string | null }>(
    `SELECT id, request_id, recipe, lane, started_at, attempts, params_json, json_extract(recipe_json, '$.params') AS schema_json
     FROM jobs INDEXED BY jobs_state_created WHERE state = 'running' ORDER BY created_at, rowid LIMIT ?`,
  ).all(limit);
  const jobs = rows.map((r) => ({
    id: r.id,
    requestId: r.request_id,
    recipe: r.recipe,
    lane: r.lane,
    startedAt: iso(r.started_at),
    attempt: Math.max(r.attempts, 1),
    paramsJson: r.params_json,
    schemaJson: r.schema_json,
  }));
  jobs.sort((a, b) => (a.startedAt ?? '').localeCompare(b.startedAt ?? ''));
  return { jobs, total };
}

export interface RecipeActivity {
  /** Median run time of the attempt that succeeded, per succeeded job (the lower middle of an even count; to three significant figures in ms); null without one. */
  medianRunSeconds: number | null;
  /** Jobs that ended (succeeded, failed or canceled) in each minute of the window, oldest first. */
  finishedPerMinute: number[];
  /** Of those, the ones that failed. */
  failedPerMinute: number[];
}

export interface Activity {
  /** Start of the window (a whole minute); the last slot is the minute under way. */
  since: string;
  minutes: number;
  recipes: Record<string, RecipeActivity>;
}

/** The recipes that have jobs, read by skipping through the recipe index (one seek per recipe, not a scan). */
function recipeNames(store: Store): string[] {
  return sqlOf(store)<[], { name: string }>(
    `WITH RECURSIVE r(name) AS (
       SELECT (SELECT min(recipe) FROM jobs INDEXED BY jobs_recipe)
       UNION ALL
       SELECT (SELECT min(recipe) FROM jobs INDEXED BY jobs_recipe WHERE recipe > r.name) FROM r WHERE r.name IS NOT NULL
     ) SELECT name FROM r WHERE name IS NOT NULL`,
  )
    .all()
    .map((r) => r.name);
}

/** Per recipe: median run time and what ended in each minute of the last hour before `now`. */
export function recipeActivity(store: Store, now: number): Activity {
  const sql = sqlOf(store);
  // Whole minutes, so a chart drawn every few seconds does not shift its bars.
  const since = (Math.floor(now / MINUTE) - (ACTIVITY_MINUTES - 1)) * MINUTE;
  const recipes: Record<string, RecipeActivity> = {};
  for (const name of recipeNames(store)) {
    recipes[name] = { medianRunSeconds: null, finishedPerMinute: new Array<number>(ACTIVITY_MINUTES).fill(0), failedPerMinute: new Array<number>(ACTIVITY_MINUTES).fill(0) };
  }
  // The lower middle of the succeeded runs' times, from the counts the writes keep (see db.ts).
  for (const r of sql<[], { recipe: string; runs: number }>('SELECT recipe, runs FROM recipe_totals WHERE runs > 0').all()) {
    const into = recipes[r.recipe];
    const median = into ? runTimeAtRank(store, r.recipe, Math.floor((r.runs - 1) / 2) + 1) : null;
    if (into && median !== null) into.medianRunSeconds = Math.round(median) / 1000;
  }
  const names = Object.keys(recipes);
  if (names.length > 0) {
    // better-sqlite3 binds a number as a REAL: the CAST makes the slot a whole minute.
    const rows = sql<[number, string, number], { recipe: string; state: string; slot: number; n: number }>(
      `SELECT recipe, state, CAST((finished_at - ?) / ${MINUTE} AS INTEGER) AS slot, count(*) AS n FROM jobs INDEXED BY jobs_recipe_finished
       WHERE recipe IN (SELECT value FROM json_each(?)) AND state IN ('succeeded', 'failed', 'canceled') AND finished_at >= ? AND finished_at IS NOT NULL
       GROUP BY recipe, state, slot`,
    );
    for (const r of rows.all(since, JSON.stringify(names), since)) {
      const into = recipes[r.recipe];
      if (!into || r.slot < 0 || r.slot >= ACTIVITY_MINUTES) continue;
      into.finishedPerMinute[r.slot] += r.n;
      if (r.state === 'failed') into.failedPerMinute[r.slot] += r.n;
    }
  }
  return { since: iso(since)!, minutes: ACTIVITY_MINUTES, recipes };
}
