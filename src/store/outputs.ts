import { atomically } from './atomic.js';
import { BOUND, statements, type Db } from './db.js';

export interface Output {
  name: string;
  bytes: number;
  sha256: string;
  /** `local`: `ref` is a path relative to outputs/; `s3`: `ref` is the object key. */
  location: 'local' | 's3';
  ref: string;
}

/** A file a job's steps made, recorded when they succeed, with where it is to go. */
export interface ProducedOutput extends Output {
  /** Where it is until delivered: a path relative to the job's work dir. */
  file: string;
}

export class OutputStore {
  private readonly db: Db;
  private readonly sql: ReturnType<typeof statements>;
  constructor(db: Db) {
    this.db = db;
    this.sql = statements(db);
  }

  replace(jobId: string, outputs: readonly Output[]): void {
    atomically(this.db, () => {
      this.sql('DELETE FROM outputs WHERE job_id = ?').run(jobId);
      const insert = this.sql('INSERT INTO outputs (job_id, name, bytes, sha256, location, ref) VALUES (?, ?, ?, ?, ?, ?)');
      for (const o of outputs) insert.run(jobId, o.name, o.bytes, o.sha256, o.location, o.ref);
    });
  }

  forJob(jobId: string): Output[] {
    return this.sql<[string], Output>(`SELECT name, bytes, sha256, location, ref FROM outputs WHERE job_id = ${BOUND} ORDER BY name`)
      .all(jobId);
  }

  /** Records what a job's steps made (replacing an earlier run's record). */
  recordProduced(jobId: string, produced: readonly ProducedOutput[]): void {
    atomically(this.db, () => {
      this.sql('DELETE FROM produced WHERE job_id = ?').run(jobId);
      const insert = this.sql('INSERT INTO produced (job_id, name, file, bytes, sha256, location, ref) VALUES (?, ?, ?, ?, ?, ?, ?)');
      for (const p of produced) insert.run(jobId, p.name, p.file, p.bytes, p.sha256, p.location, p.ref);
    });
  }

  produced(jobId: string): ProducedOutput[] {
    return this.sql<[string], ProducedOutput>(`SELECT name, file, bytes, sha256, location, ref FROM produced WHERE job_id = ${BOUND} ORDER BY name`).all(jobId);
  }

  /** Delivered: the record of what waited is no longer needed. */
  clearProduced(jobId: string): void {
    this.sql('DELETE FROM produced WHERE job_id = ?').run(jobId);
  }
}
