import type { Command } from 'commander';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pathsFor, rootFrom } from '../paths.js';
import { globals } from './common.js';

const EXAMPLES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'recipes');

export const CONFIG_TEMPLATE = `# hopper.yaml: every key is optional; the values shown are the defaults (or examples, where a comment gives the default).
# A value "env:NAME" reads an environment variable, "file:PATH" a file
# (systemd credentials: file:$CREDENTIALS_DIRECTORY/smtp-url).

# lanes: { fast: { concurrency: 4 }, slow: { concurrency: 1 } }
# threads: 2                                           # worker threads that run steps; default: cores - 1 (at least 1), 0: none
# resources: { cpus: 2, memory: 4GiB, disk: 20GiB }   # default: what the host has
# groups: { youtube: 2 }                               # limits shared by recipes naming the group
# http: { host: 127.0.0.1, port: 8765, token: env:HOPPER_TOKEN, publicUrl: http://localhost:8765 }
#                                                      # beyond loopback only with a token (16+ characters);
#                                                      # POST /requests needs the token (or allowAnonymousSubmit: true)
# smtp: { url: env:HOPPER_SMTP_URL, from: hopper@example.org, retryFor: 24h }   # absent: emails go to outbox/*.eml
# s3:                                                  # absent: outputs are served from outputs/ by signed links
#   endpoint: http://127.0.0.1:9000                    # absent: AWS S3 in the region
#   region: us-east-1
#   bucket: outputs                                    # required when s3 is set
#   accessKeyId: env:AWS_ACCESS_KEY_ID
#   secretAccessKey: env:AWS_SECRET_ACCESS_KEY
#   forcePathStyle: true
#   linkExpiry: 7d                                     # presigned links: at most 7d
#   retryFor: 24h                                      # an upload that fails is tried again this long (S3 down), then the job fails
# docker: { socketPath: /var/run/docker.sock }
# webhooks: { secret: env:HOPPER_WEBHOOK_SECRET, retryFor: 24h }   # absent secret: state/webhook.key
# outbound: { allow: [] }      # non-public addresses fetch steps and webhooks may reach, e.g. [127.0.0.1, 10.0.0.0/8]
# inbox: { acceptRecipes: true, maxFileBytes: 1MiB }   # acceptRecipes: false where inbox writers may not run code
# retention: { outputs: 7d, jobs: 90d }                # local download links last as long as outputs
# outputs: { retryFor: 24h }                           # a full disk under outputs/: delivery waits this long for space
# shutdown: { grace: 30s }                             # running jobs get this long on SIGTERM
# compat:                                              # answer ckanpackager's API under /ckanpackager (a CKAN portal's
#   ckanpackager: { secret: env:CKANPACKAGER_SECRET, datastore: package-datastore, url: package-url }   # ckanpackager.url)
`;

export function initRoot(root: string): string[] {
  const paths = pathsFor(root);
  const made: string[] = [];
  for (const dir of [paths.recipes, paths.inbox, paths.state, paths.outputs, paths.outbox]) {
    if (!existsSync(dir)) made.push(path.relative(root, dir) + '/');
    mkdirSync(dir, { recursive: true });
  }
  const config = path.join(paths.root, 'hopper.yaml');
  if (!existsSync(config)) {
    writeFileSync(config, CONFIG_TEMPLATE);
    made.push('hopper.yaml');
  }
  if (path.resolve(EXAMPLES) !== path.resolve(paths.recipes) && existsSync(EXAMPLES)) {
    for (const name of readdirSync(EXAMPLES).filter((n) => /\.ya?ml$/.test(n))) {
      const target = path.join(paths.recipes, name);
      if (existsSync(target)) continue;
      copyFileSync(path.join(EXAMPLES, name), target);
      made.push(path.join('recipes', name));
      // A recipe's scripts and lists live in a folder of its name ({{recipe.dir}}/NAME/).
      const folder = path.join(EXAMPLES, name.replace(/\.ya?ml$/, ''));
      const folderTarget = path.join(paths.recipes, path.basename(folder));
      if (existsSync(folder) && !existsSync(folderTarget)) {
        cpSync(folder, folderTarget, { recursive: true });
        made.push(path.join('recipes', path.basename(folder), ''));
      }
    }
  }
  return made;
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .argument('[dir]', 'the root to set up (default: --root, HOPPER_ROOT or the current directory)')
    .description('make the folders, a commented hopper.yaml and example recipes (never overwrites)')
    .action((dir: string | undefined, _opts: unknown, cmd: Command) => {
      const root = rootFrom(dir ?? globals(cmd).root);
      const made = initRoot(root);
      process.stdout.write(made.length ? `in ${root}:\n${made.map((m) => `  made ${m}`).join('\n')}\n` : `${root} is already set up\n`);
    });
}
