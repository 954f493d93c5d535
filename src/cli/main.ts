import { Command, CommanderError } from 'commander';
import { HopperError } from '../errors.js';
import { VERSION } from '../version.js';
import { CliError, EXIT } from './common.js';
import { registerCache } from './cache.js';
import { registerControl } from './control.js';
import { registerRead } from './read.js';
import { registerInit } from './init.js';
import { registerNotify } from './notify.js';
import { registerSchema } from './schema.js';
import { registerStart } from './start.js';
import { registerSubmit } from './submit.js';
import { registerValidate } from './validate.js';

export function buildProgram(): Command {
  const program = new Command('hopper')
    .description('turns files dropped into a folder into finished work')
    .option('--root <dir>', 'the root folder (default: HOPPER_ROOT, else the current directory)')
    .option('--config <file>', 'the config file (default: ROOT/hopper.yaml)')
    .version(VERSION, '-V, --version', 'print the version')
    .showHelpAfterError()
    .exitOverride();
  registerStart(program);
  registerInit(program);
  registerValidate(program);
  registerSubmit(program);
  registerSchema(program);
  registerNotify(program);
  registerCache(program);
  registerControl(program);
  registerRead(program);
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const cmd of all(program)) cmd.exitOverride().showHelpAfterError();
  return program;
}

/** Runs the CLI; exit codes: 0 success, 1 failure, 2 bad usage or config. */
export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, successfully.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof CliError) {
      process.stderr.write(`hopper: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof HopperError) {
      process.stderr.write(`hopper: ${err.message}\n`);
      return EXIT.failure;
    }
    const fsError = err as NodeJS.ErrnoException;
    if (fsError.syscall && fsError.code && FS_WORDS[fsError.code]) {
      // A folder or file the command cannot use: one line saying which and why, no trace.
      process.stderr.write(`hopper: cannot ${fsError.syscall} ${fsError.path ?? ''}: ${FS_WORDS[fsError.code]}\n`);
      return EXIT.failure;
    }
    process.stderr.write(`hopper: unexpected error: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.failure;
  }
}

/** File system errors a person can act on, in words. */
const FS_WORDS: Record<string, string> = {
  EACCES: "permission denied (run it as the user who owns the folder, or create the folder for that user first)",
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the disk',
  ENOTDIR: 'a part of the path is not a folder',
  ENOENT: 'no such file or folder',
};

const code = await main(process.argv.slice(2));
process.exitCode = code;
