/** Building blocks shared by the recipe, request, cancel and config schemas. */
export const size = {
  type: ['string', 'integer'],
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
  format: 'size',
} as const;

export const duration = {
  type: ['string', 'integer'],
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
  format: 'duration',
} as const;

export const NAME_PATTERN = '^[a-z0-9][a-z0-9-]{0,62}$';

export const EVENTS = ['requested', 'started', 'retrying', 'succeeded', 'failed', 'canceled'] as const;
export type JobEvent = (typeof EVENTS)[number];

export const events = {
  type: 'array',
  items: { enum: EVENTS },
  uniqueItems: true,
} as const;

export const stringMap = {
  type: 'object',
  additionalProperties: { type: 'string' },
} as const;

export const nonEmptyString = { type: 'string', minLength: 1 } as const;
