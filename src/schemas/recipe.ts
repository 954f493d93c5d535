import { duration, events, NAME_PATTERN, nonEmptyString, size, stringMap } from './common.js';

const fetchStep = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'to'],
  properties: {
    url: nonEmptyString,
    to: nonEmptyString,
    maxBytes: size,
    timeout: duration,
    maxRedirects: { type: 'integer', minimum: 0, maximum: 20 },
    headers: stringMap,
  },
} as const;

const runStep = {
  type: 'object',
  additionalProperties: false,
  required: ['command'],
  properties: {
    command: { type: 'array', minItems: 1, items: { type: 'string' } },
    timeout: duration,
    env: stringMap,
  },
} as const;

const zipStep = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to'],
  properties: {
    from: nonEmptyString,
    to: nonEmptyString,
    level: { type: 'integer', minimum: 0, maximum: 9 },
  },
} as const;

const CAPABILITY = '^(?!ALL$)(CAP_)?[A-Z_]{2,32}$';

const containerStep = {
  type: 'object',
  additionalProperties: false,
  required: ['image'],
  properties: {
    image: nonEmptyString,
    command: { type: 'array', items: { type: 'string' } },
    entrypoint: { type: 'array', items: { type: 'string' } },
    env: stringMap,
    network: { enum: ['none', 'bridge'] },
    capAdd: {
      type: 'array',
      uniqueItems: true,
      items: { type: 'string', pattern: CAPABILITY, 'x-hint': 'must be one Linux capability like SYS_ADMIN (ALL is not allowed)' },
    },
    shm: size,
    user: { type: 'string', pattern: '^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$', 'x-hint': 'must be USER or USER:GROUP (names or numbers)' },
    pull: { enum: ['never', 'missing', 'always'] },
    idleTimeout: duration,
    timeout: duration,
  },
} as const;

const fetchPagesStep = {
  type: 'object',
  additionalProperties: false,
  required: ['url', 'records', 'to'],
  properties: {
    url: nonEmptyString,
    query: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean', 'object', 'array'] } },
    pageSize: { type: 'integer', minimum: 1, maximum: 100_000 },
    records: nonEmptyString,
    total: nonEmptyString,
    limit: { type: 'string' },
    offset: { type: 'string' },
    to: nonEmptyString,
    format: { enum: ['csv', 'jsonl'] },
    headers: stringMap,
    timeout: duration,
    maxPageBytes: size,
  },
} as const;

export const STEP_KINDS = ['fetch', 'fetchPages', 'run', 'zip', 'container'] as const;

const step = {
  type: 'object',
  minProperties: 1,
  maxProperties: 1,
  'x-hint': `a step is exactly one of: ${STEP_KINDS.join(', ')}`,
  additionalProperties: false,
  properties: { fetch: fetchStep, fetchPages: fetchPagesStep, run: runStep, zip: zipStep, container: containerStep },
} as const;

export const recipeSchema = {
  $id: 'https://hopper.dev/schemas/recipe.json',
  title: 'hopper recipe',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'name', 'steps'],
  properties: {
    kind: { const: 'recipe' },
    name: {
      type: 'string',
      pattern: NAME_PATTERN,
      'x-hint': 'must be 1 to 63 lowercase letters, digits or dashes, starting with a letter or digit',
    },
    description: { type: 'string' },
    params: { type: 'object', description: 'JSON Schema (draft 2020-12) for request params' },
    lane: { enum: ['fast', 'slow', 'auto'] },
    slowWhen: {
      type: 'object',
      additionalProperties: false,
      required: ['param', 'over'],
      properties: { param: nonEmptyString, minus: nonEmptyString, over: { type: 'number' } },
    },
    priority: { type: 'integer', minimum: -1000, maximum: 1000 },
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: { cpus: { type: 'number', exclusiveMinimum: 0 }, memory: size, disk: size },
    },
    concurrency: { type: 'integer', minimum: 1 },
    group: { type: 'string', pattern: NAME_PATTERN, 'x-hint': 'must be lowercase letters, digits or dashes' },
    rateLimit: {
      type: 'object',
      additionalProperties: false,
      required: ['count', 'per'],
      properties: { count: { type: 'integer', minimum: 1 }, per: duration },
    },
    timeout: duration,
    retries: {
      type: 'object',
      additionalProperties: false,
      properties: {
        attempts: { type: 'integer', minimum: 1, maximum: 100 },
        backoff: { enum: ['fixed', 'exponential'] },
        delay: duration,
      },
    },
    cache: duration,
    schedule: nonEmptyString,
    scheduleParams: { type: 'object' },
    steps: { type: 'array', minItems: 1, maxItems: 100, items: step },
    output: {
      type: 'object',
      additionalProperties: false,
      properties: {
        files: { type: 'array', minItems: 1, items: nonEmptyString },
        minBytes: size,
        upload: { enum: ['local', 's3'] },
        prefix: { type: 'string' },
        inlineBelow: size,
      },
    },
    notify: {
      type: 'object',
      additionalProperties: false,
      properties: {
        email: {
          type: 'object',
          additionalProperties: false,
          properties: {
            to: { type: ['string', 'array'], items: { type: 'string' } },
            subject: { type: 'string' },
            body: { type: 'string' },
            events,
          },
        },
        webhook: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: { url: nonEmptyString, events },
        },
      },
    },
  },
} as const;
