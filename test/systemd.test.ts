import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

const unitFile = new URL('../systemd/hopper.service', import.meta.url).pathname;
const unit = readFileSync(unitFile, 'utf8');
const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('systemd unit', () => {
  it('passes systemd-analyze verify', { skip: analyze ? false : 'systemd-analyze is not installed here' }, () => {
    const out = execFileSync('systemd-analyze', ['verify', unitFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(out.trim(), '');
  });

  it('runs hopper start as its own user with the docker group, sandboxed, with credentials', () => {
    for (const line of [
      'User=hopper',
      'SupplementaryGroups=docker',
      'StateDirectory=hopper',
      'Restart=on-failure',
      'ProtectSystem=strict',
      'ProtectHome=yes',
      'NoNewPrivileges=yes',
      'PrivateTmp=yes',
      'ReadWritePaths=/var/lib/hopper',
      'ExecReload=/bin/kill -HUP $MAINPID',
      'LoadCredential=smtp-url:/etc/hopper/credentials/smtp-url',
      'LoadCredential=webhook-secret:/etc/hopper/credentials/webhook-secret',
    ]) {
      assert.ok(unit.split('\n').includes(line), `missing: ${line}`);
    }
    assert.match(unit, /^ExecStart=.* start --root \/var\/lib\/hopper/m);
  });

  it('gives the stop more time than the default grace period', () => {
    const stop = Number(/^TimeoutStopSec=(\d+)s$/m.exec(unit)?.[1]);
    assert.ok(stop > 30, 'TimeoutStopSec covers shutdown.grace (30s by default)');
  });
});
