// Runs hopper's own main() for many argument lists in one process (a --help each costs a
// second of start-up as a process of its own). Usage: tsx cli-help.ts OUT.json '[["submit","--help"],...]'
// Writes [{args, code, stdout, stderr}] to OUT.json: what `hopper ARGS` prints and its exit code.
import { writeFileSync } from 'node:fs';

const [out, list] = process.argv.slice(2);
const argvs = JSON.parse(list) as string[][];
// main.ts runs itself on import: let that be the harmless --version.
process.argv = [process.argv[0], 'hopper', '--version'];
const { main } = (await import('../../src/cli/main.js')) as { main(argv: string[]): Promise<number> };

const results: Array<{ args: string[]; code: number; stdout: string; stderr: string }> = [];
const write = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };
for (const args of argvs) {
  let stdout = '';
  let stderr = '';
  process.stdout.write = ((c: string | Uint8Array) => ((stdout += c.toString()), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => ((stderr += c.toString()), true)) as typeof process.stderr.write;
  let code: number;
  try {
    process.exitCode = undefined;
    code = await main(args);
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
  }
  results.push({ args, code, stdout, stderr });
}
process.exitCode = 0;
writeFileSync(out, JSON.stringify(results));
