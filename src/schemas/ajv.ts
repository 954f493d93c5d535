import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { DURATION_PATTERN, SIZE_PATTERN } from '../units.js';

// ajv-formats is CommonJS; under NodeNext its callable sits on `.default`.
const addFormats = addFormatsModule as unknown as { default: (ajv: Ajv2020) => void };

/**
 * An ajv for hopper's own file formats and for recipe param schemas (draft
 * 2020-12). `useDefaults`: a param's schema default is filled into the request.
 */
export function createAjv(): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: false, allowUnionTypes: true, useDefaults: true });
  addFormats.default(ajv);
  ajv.addFormat('size', new RegExp(SIZE_PATTERN));
  ajv.addFormat('duration', new RegExp(DURATION_PATTERN));
  ajv.addKeyword({ keyword: 'x-hint', schemaType: 'string' });
  return ajv;
}
