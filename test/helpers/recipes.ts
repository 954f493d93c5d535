/** Small recipes for tests, built on `sh` and `sleep` (no network, no Docker). */
export function echoRecipe(name = 'echo', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    kind: 'recipe',
    name,
    params: {
      type: 'object',
      additionalProperties: false,
      properties: { text: { type: 'string', default: 'hello' }, seconds: { type: 'number', default: 0 } },
    },
    steps: [
      { run: { command: ['sh', '-c', 'sleep "$2"; mkdir -p out && printf %s "$1" > out/result.txt', 'sh', '{{params.text}}', '{{params.seconds}}'] } },
    ],
    output: { files: ['out/result.txt'], minBytes: 1 },
    ...extra,
  };
}

export function request(recipe: string, params: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { kind: 'request', recipe, params, ...extra };
}

/** A `run` step of a shell script given its arguments as params placeholders ($1, $2, ... in the script): `sh -c SCRIPT sh ARGS...`. */
export function shStep(script: string, ...args: string[]): Record<string, unknown> {
  return { run: { command: ['sh', '-c', script, 'sh', ...args] } };
}
