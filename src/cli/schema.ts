import type { Command } from 'commander';
import { SCHEMAS, type SchemaName } from '../schemas/validate.js';
import { CliError, EXIT } from './common.js';

/** The JSON Schema of a file kind, for editors (yaml-language-server) and other tools. */
export function schemaJson(kind: SchemaName): object {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'x-hint').map(([k, x]) => [k, strip(x)]));
    }
    return v;
  };
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', ...(strip(SCHEMAS[kind]) as object) };
}

export function registerSchema(program: Command): void {
  program
    .command('schema')
    .argument('<kind>', 'recipe, request, cancel or config')
    .description('print the JSON Schema of a file kind (for editors)')
    .action((kind: string) => {
      if (!Object.hasOwn(SCHEMAS, kind)) throw new CliError(`unknown kind "${kind}"; expected one of ${Object.keys(SCHEMAS).join(', ')}`, EXIT.usage);
      process.stdout.write(`${JSON.stringify(schemaJson(kind as SchemaName), null, 2)}\n`);
    });
}
