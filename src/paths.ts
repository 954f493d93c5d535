import path from 'node:path';

/** The folders of SPEC.md, all under one root. */
export interface Paths {
  root: string;
  recipes: string;
  inbox: string;
  rejected: string;
  state: string;
  db: string;
  jobs: string;
  archive: string;
  outputs: string;
  outbox: string;
  linkKey: string;
}

export function pathsFor(root: string): Paths {
  const r = path.resolve(root);
  const state = path.join(r, 'state');
  return {
    root: r,
    recipes: path.join(r, 'recipes'),
    inbox: path.join(r, 'inbox'),
    rejected: path.join(r, 'inbox', 'rejected'),
    state,
    db: path.join(state, 'hopper.db'),
    jobs: path.join(state, 'jobs'),
    archive: path.join(state, 'archive'),
    outputs: path.join(r, 'outputs'),
    outbox: path.join(r, 'outbox'),
    linkKey: path.join(state, 'link.key'),
  };
}

/** The root a command works on: --root, else HOPPER_ROOT, else the current directory. */
export function rootFrom(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(option ?? env.HOPPER_ROOT ?? process.cwd());
}

/** A job's work dir, in the jobs folder (state/jobs): where its steps work and its outputs wait. */
export function workDirIn(jobs: string, jobId: string): string {
  return path.join(jobs, jobId, 'work');
}
