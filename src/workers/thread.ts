import { serveTasks } from './pool.js';
import { taskRunner, type Task, type TaskResults } from './tasks.js';

// One thread of hopper's pool (workers/offload.ts): runs jobs' steps and writes outbox mail.

serveTasks<Task, TaskResults[Task['kind']]>(taskRunner());
