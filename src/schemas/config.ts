import { duration, NAME_PATTERN, size } from './common.js';

const lane = {
  type: 'object',
  additionalProperties: false,
  properties: { concurrency: { type: 'integer', minimum: 1, maximum: 256 } },
} as const;

export const configSchema = {
  $id: 'https://hopper.dev/schemas/config.json',
  title: 'hopper configuration (hopper.yaml)',
  type: 'object',
  additionalProperties: false,
  properties: {
    lanes: {
      type: 'object',
      additionalProperties: false,
      properties: { fast: lane, slow: lane },
    },
    threads: { type: 'integer', minimum: 0, maximum: 64, description: 'worker threads that run steps (0: the main thread); read at start' },
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: { cpus: { type: 'number', exclusiveMinimum: 0 }, memory: size, disk: size },
    },
    groups: {
      type: 'object',
      propertyNames: { pattern: NAME_PATTERN },
      additionalProperties: { type: 'integer', minimum: 1 },
    },
    http: {
      type: 'object',
      additionalProperties: false,
      properties: {
        host: { type: 'string', minLength: 1 },
        port: { type: 'integer', minimum: 0, maximum: 65535 },
        token: { type: 'string', minLength: 16, 'x-hint': 'must be at least 16 characters' },
        publicUrl: { type: 'string', format: 'uri', pattern: '^https?://', 'x-hint': 'must be an http or https URL' },
        allowAnonymousSubmit: { type: 'boolean' },
      },
    },
    smtp: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: { type: 'string', pattern: '^smtps?://', 'x-hint': 'must be an smtp:// or smtps:// URL' },
        from: { type: 'string', minLength: 3 },
        retryFor: duration,
      },
    },
    s3: {
      type: 'object',
      additionalProperties: false,
      required: ['bucket'],
      properties: {
        endpoint: { type: 'string', format: 'uri' },
        region: { type: 'string' },
        bucket: { type: 'string', minLength: 1 },
        accessKeyId: { type: 'string' },
        secretAccessKey: { type: 'string' },
        forcePathStyle: { type: 'boolean' },
        linkExpiry: duration,
        retryFor: duration,
      },
    },
    docker: {
      type: 'object',
      additionalProperties: false,
      properties: {
        socketPath: { type: 'string', minLength: 1 },
        swarm: {
          type: 'object',
          additionalProperties: false,
          description: 'present (even {}): container steps run as Docker Swarm services; the engine must be a manager',
          properties: {
            workDir: {
              type: 'string',
              maxLength: 1000,
              // nfs://SERVER/EXPORT/PATH: SERVER a name, an IPv4 address or [IPv6]; the path absolute, without .. or commas.
              pattern: '^nfs://([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])(/(?!\\.\\.?(/|$))[A-Za-z0-9._~+@=-]+)+/?$',
              'x-hint': 'must be nfs://SERVER/EXPORTED/PATH (how every node reaches state/jobs)',
            },
            constraints: {
              type: 'array',
              maxItems: 50,
              items: { type: 'string', minLength: 3, maxLength: 300, pattern: '^[A-Za-z0-9._-]+\\s*(==|!=)\\s*\\S.*$', 'x-hint': 'must be a Swarm placement constraint like node.labels.hopper == true' },
            },
          },
        },
      },
    },
    webhooks: {
      type: 'object',
      additionalProperties: false,
      properties: { secret: { type: 'string', minLength: 1 }, retryFor: duration },
    },
    outbound: {
      type: 'object',
      additionalProperties: false,
      description: 'which non-public addresses steps and webhooks may reach (public ones always)',
      properties: {
        allow: {
          type: 'array',
          maxItems: 1000,
          items: {
            type: 'string',
            // Checked further where the policy is built (src/config/config.ts).
            pattern: '^[A-Za-z0-9.:_-]+(/[0-9]{1,3})?$',
            'x-hint': 'must be an address (127.0.0.1), a range (10.0.0.0/8, fd00::/8) or a host name (ckan.internal)',
          },
        },
      },
    },
    inbox: {
      type: 'object',
      additionalProperties: false,
      properties: { acceptRecipes: { type: 'boolean' }, maxFileBytes: size },
    },
    retention: {
      type: 'object',
      additionalProperties: false,
      properties: { outputs: duration, jobs: duration },
    },
    outputs: {
      type: 'object',
      additionalProperties: false,
      properties: { retryFor: duration },
    },
    shutdown: {
      type: 'object',
      additionalProperties: false,
      properties: { grace: duration },
    },
    compat: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ckanpackager: {
          type: 'object',
          additionalProperties: false,
          required: ['secret'],
          properties: {
            secret: { type: 'string', minLength: 8, 'x-hint': 'must be at least 8 characters' },
            datastore: { type: 'string', pattern: NAME_PATTERN, 'x-hint': 'must be a recipe name' },
            url: { type: 'string', pattern: NAME_PATTERN, 'x-hint': 'must be a recipe name' },
          },
        },
      },
    },
  },
} as const;
