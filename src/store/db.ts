import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { PRIVATE_FILE } from '../fs/owndir.js';
import path from 'node:path';

export type Db = Database.Database;

/**
 * A run time (ms) to three significant figures, rounded down, in SQL: exact
 * below a second, within 1 % above. run_times counts runs per such value. The
 * digits are counted in the number's text: exact for whole numbers, where
 * log10() would be a float.
 */
export function runTimeBucket(ms: string): string {
  const unit = `CAST(substr('1000000000000000000', 1, length(${ms}) - 2) AS INTEGER)`;
  return `(CASE WHEN (${ms}) < 1000 THEN (${ms}) ELSE (${ms}) / ${unit} * ${unit} END)`;
}

const SUCCEEDED_RUN = `outcome = 'succeeded' AND finished_at IS NOT NULL AND recipe IS NOT NULL`;

/**
 * What the tables recipe_totals, recipe_emails and run_times hold, counted
 * from the rows themselves: their first fill in the migration that makes them,
 * and what a reader of a database older than them (the CLI, read-only, before
 * the daemon has migrated it) counts instead (store/stats.ts). Part of a
 * migration: change it only together with a new one.
 */
export const COUNTED = {
  recipe_totals: `SELECT recipe, sum(cache_hits) AS cache_hits, sum(bytes) AS bytes, sum(runs) AS runs, sum(run_ms) AS run_ms FROM (
      SELECT recipe, count(cached_from) AS cache_hits, 0 AS bytes, 0 AS runs, 0 AS run_ms FROM jobs GROUP BY recipe
      UNION ALL SELECT recipe, 0, sum(bytes), 0, 0 FROM outputs WHERE recipe IS NOT NULL GROUP BY recipe
      UNION ALL SELECT recipe, 0, 0, count(*), sum(finished_at - started_at) FROM attempts WHERE ${SUCCEEDED_RUN} GROUP BY recipe
    ) GROUP BY recipe`,
  recipe_emails: 'SELECT recipe, lower(email) AS email, count(*) AS n FROM jobs WHERE email IS NOT NULL GROUP BY recipe, lower(email)',
  run_times: `SELECT recipe, ${runTimeBucket('finished_at - started_at')} AS ms, count(*) AS n FROM attempts WHERE ${SUCCEEDED_RUN} GROUP BY 1, 2`,
} as const;

/**
 * Migrations, in order; `PRAGMA user_version` records how many ran. Never edit
 * one that has shipped: add the next.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    request_id TEXT UNIQUE,
    request_hash TEXT NOT NULL,
    recipe TEXT NOT NULL,
    recipe_version TEXT NOT NULL,
    recipe_json TEXT NOT NULL,
    params_json TEXT NOT NULL,
    notify_json TEXT NOT NULL,
    email TEXT,
    lane TEXT NOT NULL,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL,
    not_before INTEGER,
    next_attempt_at INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    wait_reason TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    error_code TEXT,
    error_message TEXT,
    source_file TEXT
  );
  CREATE INDEX jobs_pending ON jobs(state, lane, priority DESC, created_at);
  CREATE INDEX jobs_recipe ON jobs(recipe, created_at);
  CREATE INDEX jobs_created ON jobs(created_at);

  CREATE TABLE intake (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    job_id TEXT,
    file TEXT NOT NULL,
    at INTEGER NOT NULL
  );

  CREATE TABLE attempts (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    n INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    outcome TEXT,
    error_code TEXT,
    error_message TEXT,
    PRIMARY KEY (job_id, n)
  );

  CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    at INTEGER NOT NULL,
    detail TEXT
  );
  CREATE INDEX events_job ON events(job_id, id);

  CREATE TABLE outputs (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    location TEXT NOT NULL,
    ref TEXT NOT NULL,
    PRIMARY KEY (job_id, name)
  );

  CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
  );
  CREATE INDEX notifications_due ON notifications(state, next_at);
  `,
  `
  CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    notification_id INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    status INTEGER,
    error TEXT
  );
  CREATE INDEX deliveries_notification ON deliveries(notification_id, id);
  CREATE INDEX attempts_started ON attempts(started_at);
  `,
  `
  ALTER TABLE jobs ADD COLUMN cache_key TEXT;
  ALTER TABLE jobs ADD COLUMN cached_from TEXT;
  CREATE INDEX jobs_cache ON jobs(cache_key, state, finished_at);
  `,
  // Read views (store/views.ts, store/stats.ts, store/metrics.ts): each list, count and
  // statistic answers from an index, so none reads the wide rows (recipe snapshots).
  // attempts.recipe and outputs.recipe (copies of their job's, kept by triggers) let run
  // times and bytes be summed per recipe from an index, without a join per row.
  `
  ALTER TABLE attempts ADD COLUMN recipe TEXT;
  UPDATE attempts SET recipe = (SELECT recipe FROM jobs WHERE jobs.id = attempts.job_id);
  CREATE TRIGGER attempts_recipe AFTER INSERT ON attempts BEGIN
    UPDATE attempts SET recipe = (SELECT recipe FROM jobs WHERE jobs.id = NEW.job_id) WHERE job_id = NEW.job_id AND n = NEW.n;
  END;
  ALTER TABLE outputs ADD COLUMN recipe TEXT;
  UPDATE outputs SET recipe = (SELECT recipe FROM jobs WHERE jobs.id = outputs.job_id);
  CREATE TRIGGER outputs_recipe AFTER INSERT ON outputs BEGIN
    UPDATE outputs SET recipe = (SELECT recipe FROM jobs WHERE jobs.id = NEW.job_id) WHERE job_id = NEW.job_id AND name = NEW.name;
  END;
  CREATE INDEX attempts_runs ON attempts(outcome, recipe, (finished_at - started_at));
  CREATE INDEX attempts_runs_all ON attempts(outcome, (finished_at - started_at));
  CREATE INDEX outputs_recipe ON outputs(recipe, bytes);
  CREATE INDEX jobs_state_created ON jobs(state, created_at);
  CREATE INDEX jobs_state_finished ON jobs(state, finished_at);
  CREATE INDEX jobs_recipe_state ON jobs(recipe, state, created_at, cached_from);
  CREATE INDEX jobs_recipe_email ON jobs(recipe, lower(email));
  CREATE INDEX jobs_recipe_finished ON jobs(recipe, state, finished_at);
  CREATE INDEX jobs_email ON jobs(lower(email), created_at);
  CREATE INDEX jobs_timing ON jobs(id, recipe, lane, created_at, started_at);
  CREATE INDEX notifications_state ON notifications(channel, state);
  CREATE INDEX deliveries_failed ON deliveries(notification_id) WHERE error IS NOT NULL;
  `,
  // Schedules: the last slot handled per recipe is what makes a missed run happen
  // once at start (and never twice); next_at is kept for status readers.
  `
  CREATE TABLE schedules (
    recipe TEXT PRIMARY KEY,
    pattern TEXT NOT NULL,
    last_slot INTEGER NOT NULL,
    next_at INTEGER,
    last_run_at INTEGER,
    last_job_id TEXT
  );
  `,
  // One row that a sync (store/durable.ts) rewrote, a FULL commit, so SQLite wrote the
  // WAL to disk; syncs now fsync the WAL file themselves, off the main thread. Kept:
  // databases made meanwhile have it, and a migration is never taken back.
  `
  CREATE TABLE syncs (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
  INSERT INTO syncs (id, n) VALUES (1, 0);
  `,
  // Delivery as a stage of its own (queue/delivering.ts): what a job's steps produced is
  // recorded when they succeed, with where it goes, so a delivery that waits out an S3
  // outage, or a restart, resumes from it and never runs the steps again.
  // delivery_since: when the job began waiting in delivery (retryFor counts from it).
  `
  CREATE TABLE produced (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    file TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    location TEXT NOT NULL,
    ref TEXT NOT NULL,
    PRIMARY KEY (job_id, name)
  );
  ALTER TABLE jobs ADD COLUMN delivery_since INTEGER;
  ALTER TABLE jobs ADD COLUMN delivery_tries INTEGER NOT NULL DEFAULT 0;
  `,
  // Only jobs of recipes with a cache have a cache key: the others need no entry
  // there, and each state change of theirs rewrote one (WAL pages per job).
  `
  DROP INDEX jobs_cache;
  CREATE INDEX jobs_cache ON jobs(cache_key, state, finished_at) WHERE cache_key IS NOT NULL;
  `,
  // Statistics per CKAN resource (store/resources.ts, ckanpackager's API): only jobs
  // with a \`resource\` param have an entry, so other jobs' writes never touch it.
  `
  CREATE INDEX jobs_resource ON jobs(recipe, json_extract(params_json, '$.resource'), created_at)
    WHERE json_extract(params_json, '$.resource') IS NOT NULL;
  `,
  // ...and its totals from the index alone (requests, unique emails, errors per
  // resource): at 40,000 such jobs they read every row and took ~250 ms.
  `
  CREATE INDEX jobs_resource_totals ON jobs(recipe, json_extract(params_json, '$.resource'), lower(email), state)
    WHERE json_extract(params_json, '$.resource') IS NOT NULL;
  `,
  // Jobs per recipe, lane and state, kept by the writes themselves: /status, the
  // dashboard and /metrics read a few rows instead of counting index entries over
  // every job kept (11-13 ms per /status with 100,000 queued and 100,000 ended).
  // Never INSERT OR REPLACE into jobs: the row it replaces goes without its delete trigger.
  `
  CREATE TABLE job_counts (
    recipe TEXT NOT NULL,
    lane TEXT NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (recipe, lane, state)
  ) WITHOUT ROWID;
  INSERT INTO job_counts (recipe, lane, state, n) SELECT recipe, lane, state, count(*) FROM jobs GROUP BY recipe, lane, state;
  CREATE TRIGGER job_counts_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO job_counts (recipe, lane, state, n) VALUES (NEW.recipe, NEW.lane, NEW.state, 1)
      ON CONFLICT DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER job_counts_update AFTER UPDATE OF state, lane, recipe ON jobs
    WHEN OLD.state IS NOT NEW.state OR OLD.lane IS NOT NEW.lane OR OLD.recipe IS NOT NEW.recipe BEGIN
    UPDATE job_counts SET n = n - 1 WHERE recipe = OLD.recipe AND lane = OLD.lane AND state = OLD.state;
    INSERT INTO job_counts (recipe, lane, state, n) VALUES (NEW.recipe, NEW.lane, NEW.state, 1)
      ON CONFLICT DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs BEGIN
    UPDATE job_counts SET n = n - 1 WHERE recipe = OLD.recipe AND lane = OLD.lane AND state = OLD.state;
  END;
  `,
  // What retention deletes per job was found by reading whole tables: the job's
  // notifications (its ON DELETE CASCADE), its intake record, and the cache hits
  // that name it. At 100,000 jobs a batch of 100 held the main thread ~6 s.
  `
  CREATE INDEX notifications_job ON notifications(job_id);
  CREATE INDEX intake_job ON intake(job_id) WHERE job_id IS NOT NULL;
  CREATE INDEX jobs_cached_from ON jobs(cached_from) WHERE cached_from IS NOT NULL;
  `,
  // Indexes that hold only the jobs their queries ask for: the waiting ones (the
  // start's load and a job's place in its lane), and the ended ones (retention,
  // the dashboard's activity). A job's start and end no longer move its entries
  // in them: replaying the trivial job's writes (.scratch/walx.ts), ~15 % fewer
  // bytes written per job lifecycle, ~10 % fewer per accept.
  `
  DROP INDEX jobs_pending;
  CREATE INDEX jobs_waiting ON jobs(lane, priority DESC, created_at) WHERE state IN ('queued', 'retrying');
  DROP INDEX jobs_state_finished;
  CREATE INDEX jobs_state_finished ON jobs(state, finished_at) WHERE finished_at IS NOT NULL;
  DROP INDEX jobs_recipe_finished;
  CREATE INDEX jobs_recipe_finished ON jobs(recipe, state, finished_at) WHERE finished_at IS NOT NULL;
  `,
  // Statistics kept by the writes themselves, as job_counts is (store/stats.ts): /statistics
  // and the dashboard read a few rows per recipe instead of every job's index entries, which
  // grew with the jobs kept (at 1,000,000 jobs /statistics took 452 ms of the main thread,
  // the dashboard's poll 83 ms). Run times are counted per value to three significant
  // figures (runTimeBucket), so a percentile is a walk over a few hundred rows. The
  // indexes those scans used go: no query reads them now, and every job wrote them.
  // A job's recipe and email are never updated; outputs and attempts keep their recipe
  // (the triggers above), which a cascaded delete still finds in OLD.
  `
  CREATE TABLE recipe_totals (
    recipe TEXT PRIMARY KEY,
    cache_hits INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    runs INTEGER NOT NULL DEFAULT 0,
    run_ms INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE TABLE recipe_emails (
    recipe TEXT NOT NULL,
    email TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (recipe, email)
  ) WITHOUT ROWID;
  CREATE TABLE run_times (
    recipe TEXT NOT NULL,
    ms INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (recipe, ms)
  ) WITHOUT ROWID;

  INSERT INTO recipe_totals (recipe, cache_hits, bytes, runs, run_ms) ${COUNTED.recipe_totals};
  INSERT INTO recipe_emails (recipe, email, n) ${COUNTED.recipe_emails};
  INSERT INTO run_times (recipe, ms, n) ${COUNTED.run_times};

  CREATE TRIGGER recipe_totals_job_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO recipe_totals (recipe, cache_hits) VALUES (NEW.recipe, NEW.cached_from IS NOT NULL)
      ON CONFLICT DO UPDATE SET cache_hits = cache_hits + (NEW.cached_from IS NOT NULL);
    INSERT INTO recipe_emails (recipe, email, n) SELECT NEW.recipe, lower(NEW.email), 1 WHERE NEW.email IS NOT NULL
      ON CONFLICT DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER recipe_totals_cache_hit AFTER UPDATE OF cached_from ON jobs
    WHEN (OLD.cached_from IS NULL) IS NOT (NEW.cached_from IS NULL) BEGIN
    UPDATE recipe_totals SET cache_hits = cache_hits + (NEW.cached_from IS NOT NULL) - (OLD.cached_from IS NOT NULL) WHERE recipe = NEW.recipe;
  END;
  CREATE TRIGGER recipe_totals_job_delete AFTER DELETE ON jobs BEGIN
    UPDATE recipe_totals SET cache_hits = cache_hits - 1 WHERE recipe = OLD.recipe AND OLD.cached_from IS NOT NULL;
    UPDATE recipe_emails SET n = n - 1 WHERE recipe = OLD.recipe AND email = lower(OLD.email);
    DELETE FROM recipe_emails WHERE recipe = OLD.recipe AND email = lower(OLD.email) AND n <= 0;
  END;

  CREATE TRIGGER recipe_totals_output_insert AFTER INSERT ON outputs BEGIN
    INSERT INTO recipe_totals (recipe, bytes) SELECT recipe, NEW.bytes FROM jobs WHERE id = NEW.job_id
      ON CONFLICT DO UPDATE SET bytes = bytes + NEW.bytes;
  END;
  CREATE TRIGGER recipe_totals_output_delete AFTER DELETE ON outputs BEGIN
    UPDATE recipe_totals SET bytes = bytes - OLD.bytes WHERE recipe = OLD.recipe;
  END;

  CREATE TRIGGER run_times_attempt_insert AFTER INSERT ON attempts
    WHEN NEW.outcome = 'succeeded' AND NEW.finished_at IS NOT NULL BEGIN
    INSERT INTO recipe_totals (recipe, runs, run_ms) SELECT recipe, 1, NEW.finished_at - NEW.started_at FROM jobs WHERE id = NEW.job_id
      ON CONFLICT DO UPDATE SET runs = runs + 1, run_ms = run_ms + NEW.finished_at - NEW.started_at;
    INSERT INTO run_times (recipe, ms, n) SELECT recipe, ${runTimeBucket('NEW.finished_at - NEW.started_at')}, 1 FROM jobs WHERE id = NEW.job_id
      ON CONFLICT DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER run_times_attempt_update AFTER UPDATE OF outcome, started_at, finished_at ON attempts BEGIN
    UPDATE recipe_totals SET runs = runs - 1, run_ms = run_ms - (OLD.finished_at - OLD.started_at)
      WHERE recipe = OLD.recipe AND OLD.outcome = 'succeeded' AND OLD.finished_at IS NOT NULL;
    UPDATE run_times SET n = n - 1
      WHERE recipe = OLD.recipe AND ms = ${runTimeBucket('OLD.finished_at - OLD.started_at')} AND OLD.outcome = 'succeeded' AND OLD.finished_at IS NOT NULL;
    INSERT INTO recipe_totals (recipe, runs, run_ms) SELECT NEW.recipe, 1, NEW.finished_at - NEW.started_at
      WHERE NEW.outcome = 'succeeded' AND NEW.finished_at IS NOT NULL
      ON CONFLICT DO UPDATE SET runs = runs + 1, run_ms = run_ms + NEW.finished_at - NEW.started_at;
    INSERT INTO run_times (recipe, ms, n) SELECT NEW.recipe, ${runTimeBucket('NEW.finished_at - NEW.started_at')}, 1
      WHERE NEW.outcome = 'succeeded' AND NEW.finished_at IS NOT NULL
      ON CONFLICT DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER run_times_attempt_delete AFTER DELETE ON attempts
    WHEN OLD.outcome = 'succeeded' AND OLD.finished_at IS NOT NULL BEGIN
    UPDATE recipe_totals SET runs = runs - 1, run_ms = run_ms - (OLD.finished_at - OLD.started_at) WHERE recipe = OLD.recipe;
    UPDATE run_times SET n = n - 1 WHERE recipe = OLD.recipe AND ms = ${runTimeBucket('OLD.finished_at - OLD.started_at')};
  END;

  DROP INDEX attempts_runs;
  DROP INDEX attempts_runs_all;
  DROP INDEX outputs_recipe;
  DROP INDEX jobs_recipe_email;
  `,
  // Notifications per channel and state, kept by the writes as job_counts is: /metrics
  // read them at each scrape by counting the entries of notifications_state, one or two
  // per job kept (21 ms a scrape at 100,000 jobs, growing with them). That index served
  // only this count; the row the triggers keep replaces it.
  `
  CREATE TABLE notification_counts (
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (channel, state)
  ) WITHOUT ROWID;
  INSERT INTO notification_counts (channel, state, n) SELECT channel, state, count(*) FROM notifications GROUP BY channel, state;
  CREATE TRIGGER notification_counts_insert AFTER INSERT ON notifications BEGIN
    INSERT INTO notification_counts (channel, state, n) VALUES (NEW.channel, NEW.state, 1)
      ON CONFLICT DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER notification_counts_update AFTER UPDATE OF channel, state ON notifications
    WHEN OLD.channel IS NOT NEW.channel OR OLD.state IS NOT NEW.state BEGIN
    UPDATE notification_counts SET n = n - 1 WHERE channel = OLD.channel AND state = OLD.state;
    INSERT INTO notification_counts (channel, state, n) VALUES (NEW.channel, NEW.state, 1)
      ON CONFLICT DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER notification_counts_delete AFTER DELETE ON notifications BEGIN
    UPDATE notification_counts SET n = n - 1 WHERE channel = OLD.channel AND state = OLD.state;
  END;
  DROP INDEX notifications_state;
  `,
];

export interface OpenOptions {
  readonly?: boolean;
  /**
   * 'full' (the default): every commit is on disk before it returns, power loss
   * included. 'deferred' (the daemon): a commit survives the process being
   * killed, and is on disk after the next `sync` (store/durable.ts), which
   * hopper calls before anything leaves it that depends on the commit.
   */
  durability?: 'full' | 'deferred';
}

export function openDb(file: string, options: OpenOptions = {}): Db {
  if (!options.readonly) {
    mkdirSync(path.dirname(file), { recursive: true });
    // Made readable by hopper's user alone before SQLite opens it: the WAL and
    // shared-memory files SQLite makes take the database file's mode.
    closeSync(openSync(file, 'a', PRIVATE_FILE));
  }
  const db = new Database(file, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  db.pragma('busy_timeout = 5000');
  if (options.readonly) return db;
  db.pragma('journal_mode = WAL');
  // Whatever the umask, and for a database made by an older hopper: it holds writeOnly params.
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, PRIVATE_FILE);
  // FULL: a commit survives power loss too. NORMAL, in WAL mode, survives a
  // killed process (the WAL is written at commit) and waits for the next sync
  // to reach the disk itself.
  db.pragma(`synchronous = ${options.durability === 'deferred' ? 'NORMAL' : 'FULL'}`);
  db.pragma('foreign_keys = ON');
  // The statement journals the job_counts triggers need stay in memory: on disk
  // they spilled into a temp file past 64 KiB and were written on, ~75 KiB more
  // written per trivial job. (No query sorts unbounded rows in a temp table but
  // the start's read of the waiting jobs, which it holds in memory anyway.)
  db.pragma('temp_store = MEMORY');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(`the database was written by a newer hopper (schema ${current}, this one knows ${MIGRATIONS.length})`);
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

/**
 * A bound value the query planner does not look at, for `col = ${BOUND}` in a
 * statement with ORDER BY. Where an index gives the order for `col = ?`, this
 * SQLite (built with STAT4) marks the statement to be prepared again whenever
 * that `?` is bound to a new value, i.e. at every call: a job's attempts by
 * `job_id = ? ORDER BY n` took 13.8 µs a call, 2.7 with `(SELECT ?)`, which
 * finds the same rows by the same index. (nextRun and closeAttempt in jobs.ts
 * met the same with max(n).)
 */
export const BOUND = '(SELECT ?)';

const caches = new WeakMap<Db, Map<string, Database.Statement>>();

/**
 * Prepares each SQL text once per connection: preparing costs more than
 * running most of these statements.
 */
export function statements(db: Db): <P extends unknown[] = unknown[], R = unknown>(sql: string) => Database.Statement<P, R> {
  // One cache per connection, whichever store or view asks for it.
  let cache = caches.get(db);
  if (!cache) caches.set(db, (cache = new Map()));
  const prepared = cache;
  return <P extends unknown[], R>(sql: string) => {
    let s = prepared.get(sql);
    if (!s) {
      s = db.prepare(sql);
      prepared.set(sql, s);
    }
    return s as unknown as Database.Statement<P, R>;
  };
}

/** Trouble of the database (busy, I/O, full, read-only), not of one write: a later try may succeed. */
export function isDatabaseTrouble(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_FULL' || code === 'SQLITE_READONLY';
}
