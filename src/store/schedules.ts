import { statements, type Db } from './db.js';

export interface ScheduleRow {
  recipe: string;
  pattern: string;
  /** The latest slot handled: run, or the moment the schedule was first seen (nothing before it runs). */
  lastSlot: number;
  nextAt: number | null;
  lastRunAt: number | null;
  lastJobId: string | null;
}

interface Row {
  recipe: string;
  pattern: string;
  last_slot: number;
  next_at: number | null;
  last_run_at: number | null;
  last_job_id: string | null;
}

const fromRow = (r: Row): ScheduleRow => ({
  recipe: r.recipe,
  pattern: r.pattern,
  lastSlot: r.last_slot,
  nextAt: r.next_at,
  lastRunAt: r.last_run_at,
  lastJobId: r.last_job_id,
});

/** Where each recipe's schedule stands. */
export class ScheduleStore {
  private readonly sql: ReturnType<typeof statements>;
  constructor(db: Db) {
    this.sql = statements(db);
  }

  all(): ScheduleRow[] {
    return this.sql<[], Row>('SELECT * FROM schedules ORDER BY recipe').all().map(fromRow);
  }

  put(s: ScheduleRow): void {
    this.sql(
      `INSERT INTO schedules (recipe, pattern, last_slot, next_at, last_run_at, last_job_id) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (recipe) DO UPDATE SET pattern = excluded.pattern, last_slot = excluded.last_slot, next_at = excluded.next_at,
         last_run_at = excluded.last_run_at, last_job_id = excluded.last_job_id`,
    ).run(s.recipe, s.pattern, s.lastSlot, s.nextAt, s.lastRunAt, s.lastJobId);
  }

  remove(recipe: string): void {
    this.sql('DELETE FROM schedules WHERE recipe = ?').run(recipe);
  }
}
