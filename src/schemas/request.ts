import { NAME_PATTERN } from './common.js';

export const REQUEST_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$';

export const requestSchema = {
  $id: 'https://hopper.dev/schemas/request.json',
  title: 'hopper request',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'recipe'],
  properties: {
    kind: { const: 'request' },
    recipe: { type: 'string', pattern: NAME_PATTERN, 'x-hint': 'must be a recipe name (lowercase letters, digits, dashes)' },
    id: {
      type: 'string',
      pattern: REQUEST_ID_PATTERN,
      'x-hint': 'must be 1 to 128 letters, digits, dots, dashes, colons or underscores',
    },
    params: { type: 'object' },
    notify: {
      type: 'object',
      additionalProperties: false,
      properties: {
        email: { type: 'string', format: 'email', maxLength: 254 },
        webhook: { type: 'string', format: 'uri', maxLength: 2048, pattern: '^https?://', 'x-hint': 'must be an http or https URL' },
      },
    },
    priority: { type: 'integer', minimum: -1000, maximum: 1000 },
    notBefore: { type: 'string', format: 'date-time' },
  },
} as const;

export const cancelSchema = {
  $id: 'https://hopper.dev/schemas/cancel.json',
  title: 'hopper cancel',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'job'],
  properties: {
    kind: { const: 'cancel' },
    job: { type: 'string', minLength: 1, maxLength: 128 },
  },
} as const;
