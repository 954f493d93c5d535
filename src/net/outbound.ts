import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { HopperError } from '../errors.js';

// Requesters name URLs (a file to fetch, an API to page, a webhook to call).
// Without a rule, one could name http://169.254.169.254/ (a cloud's metadata,
// with credentials) or a service on this host's loopback, and get the answer
// back in the zip. So steps and webhooks reach only public addresses, unless
// hopper.yaml's `outbound.allow` names the address, range or host.

type Family = 'ipv4' | 'ipv6';

const RANGES: ReadonlyArray<readonly [string, number, Family, string]> = [
  ['0.0.0.0', 8, 'ipv4', 'a "this network" address'],
  ['10.0.0.0', 8, 'ipv4', 'a private address'],
  ['100.64.0.0', 10, 'ipv4', 'a shared (carrier-grade NAT) address'],
  ['127.0.0.0', 8, 'ipv4', 'a loopback address'],
  ['169.254.0.0', 16, 'ipv4', 'a link-local address (where clouds serve instance metadata)'],
  ['172.16.0.0', 12, 'ipv4', 'a private address'],
  ['192.0.0.0', 24, 'ipv4', 'a protocol-assignment address'],
  ['192.168.0.0', 16, 'ipv4', 'a private address'],
  ['198.18.0.0', 15, 'ipv4', 'a benchmarking address'],
  ['224.0.0.0', 3, 'ipv4', 'a multicast or reserved address'],
  ['::', 128, 'ipv6', 'the unspecified address'],
  ['::1', 128, 'ipv6', 'a loopback address'],
  ['::', 96, 'ipv6', 'an IPv4-compatible address'],
  ['::ffff:0:0:0', 96, 'ipv6', 'an IPv4-translated address'],
  ['64:ff9b:1::', 48, 'ipv6', 'a local-use translation address'],
  ['fc00::', 7, 'ipv6', 'a unique-local (private) address'],
  ['fe80::', 10, 'ipv6', 'a link-local address'],
  ['fec0::', 10, 'ipv6', 'a site-local address'],
  ['ff00::', 8, 'ipv6', 'a multicast address'],
];

const BLOCKED = RANGES.map(([net, prefix, family, what]) => {
  const list = new BlockList();
  list.addSubnet(net, prefix, family);
  return { list, family, what };
});

/** An IPv6 address that carries an IPv4 one (mapped ::ffff:a.b.c.d, or NAT64 64:ff9b::/96) stands for that. */
function effective(address: string): { address: string; family: Family } {
  const bare = address.replace(/^\[|\]$/g, '');
  if (isIP(bare) === 4) return { address: bare, family: 'ipv4' };
  const mapped = /^(?:::ffff:|64:ff9b::)(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return { address: mapped[1], family: 'ipv4' };
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(bare);
  if (hex) {
    const n = (parseInt(hex[1], 16) << 16) | parseInt(hex[2], 16);
    return { address: [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'), family: 'ipv4' };
  }
  return { address: bare, family: 'ipv6' };
}

/** What kind of non-public address this is, or undefined for a public one. */
export function nonPublic(address: string): string | undefined {
  const a = effective(address);
  return BLOCKED.find((b) => b.family === a.family && b.list.check(a.address, a.family))?.what;
}

export class OutboundError extends HopperError {
  constructor(message: string) {
    super('E_OUTBOUND', message);
  }
}

/** Which addresses steps and webhooks may connect to: public ones, and those `allow` names. */
export class OutboundPolicy {
  private readonly allowed = new BlockList();
  private readonly hosts = new Set<string>();

  /** `allow`: addresses, CIDR ranges (10.1.0.0/16, fd00::/8) or host names (exact). Throws RangeError on a bad range. */
  constructor(readonly allow: readonly string[]) {
    for (const entry of allow) {
      const slash = entry.indexOf('/');
      if (slash < 0) {
        const a = effective(entry);
        if (isIP(a.address) === 0 && /^[0-9.]+$/.test(entry)) throw new RangeError(`not an address: ${entry}`);
        if (isIP(a.address) === 0) this.hosts.add(entry.toLowerCase());
        else this.allowed.addAddress(a.address, a.family);
        continue;
      }
      const net = entry.slice(0, slash);
      const prefix = Number(entry.slice(slash + 1));
      const family = isIP(net);
      if (family === 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) throw new RangeError(`not an address range: ${entry}`);
      this.allowed.addSubnet(net, prefix, family === 4 ? 'ipv4' : 'ipv6');
    }
  }

  /** Why `host` (resolved to `address`) may not be reached, or undefined when it may. */
  refusal(host: string, address: string): string | undefined {
    if (this.hosts.has(host.toLowerCase().replace(/^\[|\]$/g, ''))) return undefined;
    const what = nonPublic(address);
    if (!what) return undefined;
    const a = effective(address);
    if (this.allowed.check(a.address, a.family)) return undefined;
    const shown = host === address ? address : `${host} (${address})`;
    return `${shown} is ${what}; hopper reaches it only if hopper.yaml's outbound.allow names it`;
  }

  /** For a URL whose host is an address, where no lookup happens: throws when refused. */
  checkLiteral(url: URL): void {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) === 0) return;
    const why = this.refusal(host, host);
    if (why) throw new OutboundError(why);
  }

  /**
   * A `lookup` for http(s) requests: resolves, and passes on only the
   * addresses the policy allows, at connect time (no DNS rebinding window).
   * localhost may answer 127.0.0.1 and ::1 with only the first allowed.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const all = addresses as dns.LookupAddress[];
      const allowed = all.filter((a) => this.refusal(hostname, a.address) === undefined);
      if (allowed.length === 0) return callback(new OutboundError(this.refusal(hostname, all[0].address) ?? `${hostname} has no address`), '', 0);
      if (options.all) return (callback as unknown as (e: null, all: dns.LookupAddress[]) => void)(null, allowed);
      return callback(null, allowed[0].address, allowed[0].family);
    });
  };

  private readonly agents = {
    http: new http.Agent({ keepAlive: true, timeout: 15_000 }),
    https: new https.Agent({ keepAlive: true, timeout: 15_000 }),
  };

  /** Connections kept alive belong to one policy: after a reload narrows it, none made under the old one is reused. */
  agent(url: URL): http.Agent {
    return url.protocol === 'https:' ? this.agents.https : this.agents.http;
  }
}

const policies = new WeakMap<object, OutboundPolicy>();

/** The policy of a config (built once per config: a reload brings a new one). */
export function policyFor(config: { outbound: { allow: readonly string[] } }): OutboundPolicy {
  let policy = policies.get(config);
  if (!policy) policies.set(config, (policy = new OutboundPolicy(config.outbound.allow)));
  return policy;
}

/** Everything allowed: for code paths with no requester-named URLs, and tests of other things. */
export const ANYWHERE = new OutboundPolicy(['0.0.0.0/0', '::/0']);
