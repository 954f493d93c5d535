import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { parseDuration, parseSize } from '../units.js';

// ajv-formats is CommonJS; under NodeNext its callable sits on `.default`.
const addFormats = addFormatsModule as unknown as { default: (ajv: Ajv2020) => void };

function parses(parse: (s: string) => number, s: string): boolean {
  try {
    parse(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * An ajv for hopper's own file formats and for recipe param schemas (draft
 * 2020-12). `useDefaults`: a param's schema default is filled into the request.
 */
export function createAjv(): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: false, allowUnionTypes: true, useDefaults: true });
  addFormats.default(ajv);
  // The formats are what the parsers accept, so a valid file never fails to convert later.
  ajv.addFormat('size', { type: 'string', validate: (s: string) => parses(parseSize, s) });
  ajv.addFormat('duration', { type: 'string', validate: (s: string) => parses(parseDuration, s) });
  ajv.addKeyword({ keyword: 'x-hint', schemaType: 'string' });
  return ajv;
}
