// Which URLs and addresses Parley may send to, on behalf of a tenant or a user (webhook endpoints, Web Push
// endpoints): http(s) only, no credentials in the URL, a port that is not a privileged service's, and a host
// whose every address is public. Checked when a URL is stored (assertOutboundUrl) and again when the socket
// connects (send-outbound.ts), since DNS can answer differently the second time. docs/OUTBOUND.md.
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/** One address a host name resolved to, as `dns.lookup(…, { all: true })` gives it. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Resolves a host name to every address it has. Injectable so tests can answer without real DNS. */
export type OutboundLookup = (hostname: string) => Promise<readonly ResolvedAddress[]>;

/** The operator's rules for outbound requests; one object built from config, passed to every call. */
export interface OutboundPolicy {
  /**
   * Also allow loopback, private (RFC 1918), unique-local (fc00::/7) and carrier-grade NAT addresses:
   * for a deployment whose webhooks go to its own network. False by default. Link-local (cloud metadata),
   * multicast, reserved and the like stay refused whatever this says.
   */
  allowPrivateNetworks: boolean;
  /** How host names are resolved, at creation and at connect time. Default: the system resolver. */
  lookup?: OutboundLookup;
}

/** Why a URL was refused. */
export type OutboundUrlReason = 'invalid' | 'scheme' | 'credentials' | 'port' | 'address' | 'unresolvable';

/** A URL Parley will not send to. The message is fit for a 400 answer: it names no resolved address. */
export class OutboundUrlError extends Error {
  override readonly name = 'OutboundUrlError';
  constructor(
    readonly reason: OutboundUrlReason,
    message: string,
  ) {
    super(message);
  }
}

const MESSAGES: Record<OutboundUrlReason, string> = {
  invalid: 'The URL is not a valid absolute URL.',
  scheme: 'The URL must start with http:// or https://.',
  credentials: 'The URL must not carry a user name or password.',
  port: 'The URL may name port 80, port 443 or a port from 1024 to 65535.',
  address:
    'The URL must point to a public address: loopback, private, link-local and other non-public addresses are refused.',
  unresolvable: 'The URL’s host name does not resolve.',
};

/** Makes the error for one reason, with its standard message. */
export function refuseOutboundUrl(reason: OutboundUrlReason): OutboundUrlError {
  return new OutboundUrlError(reason, MESSAGES[reason]);
}

/** The system resolver: every address, in the order the system gives them. */
export const systemLookup: OutboundLookup = (hostname) => dnsLookup(hostname, { all: true });

/**
 * Checks the URL itself: that it parses, its scheme, credentials and port. Returns the parsed URL. Throws
 * OutboundUrlError. The host is judged by assertOutboundUrl (when stored) and by the connector (when sent).
 */
export function checkOutboundUrlShape(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Also where an IPv6 zone id (`[fe80::1%25eth0]`) ends: the URL standard does not accept one.
    throw refuseOutboundUrl('invalid');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw refuseOutboundUrl('scheme');
  if (parsed.username !== '' || parsed.password !== '') throw refuseOutboundUrl('credentials');
  // The URL parser drops a scheme's default port, so '' is 80 or 443.
  if (parsed.port !== '') {
    const port = Number(parsed.port);
    if (port !== 80 && port !== 443 && (port < 1024 || port > 65535)) throw refuseOutboundUrl('port');
  }
  return parsed;
}

/**
 * Checks a URL when it is stored (a webhook endpoint, a push subscription): its shape, and that its host
 * resolves only to allowed addresses. A hint, not a guarantee, since DNS may answer otherwise later: the
 * check that holds is the one at connect time. Throws OutboundUrlError.
 */
export async function assertOutboundUrl(url: string, policy: OutboundPolicy): Promise<URL> {
  const parsed = checkOutboundUrlShape(url);
  const host = bareHost(parsed.hostname);
  const isAllowed =
    judgeHostWithoutDns(host, policy) ??
    (await resolveHost(host, policy)).every((entry) => isAddressAllowed(entry.address, policy));
  if (!isAllowed) throw refuseOutboundUrl('address');
  return parsed;
}

/**
 * Whether an IP literal or a `localhost` name is allowed; undefined for any other name, which only its
 * addresses can judge. The URL parser has already turned decimal, octal and hex IPv4 forms
 * (http://2130706433/) into dotted quads.
 */
export function judgeHostWithoutDns(host: string, policy: OutboundPolicy): boolean | undefined {
  if (isIP(host) !== 0) return isAddressAllowed(host, policy);
  // `localhost` and its subdomains always mean this machine (RFC 6761), whatever a resolver says.
  const lower = host.toLowerCase();
  if (lower === 'localhost' || lower.endsWith('.localhost')) return policy.allowPrivateNetworks;
  return undefined;
}

/** Every address of a host name, or OutboundUrlError 'unresolvable'. */
export async function resolveHost(host: string, policy: OutboundPolicy): Promise<readonly ResolvedAddress[]> {
  let addresses: readonly ResolvedAddress[];
  try {
    addresses = await (policy.lookup ?? systemLookup)(host);
  } catch {
    throw refuseOutboundUrl('unresolvable');
  }
  if (addresses.length === 0) throw refuseOutboundUrl('unresolvable');
  return addresses;
}

/** A URL's hostname without the brackets of an IPv6 literal or the trailing dot of a fully qualified name. */
export function bareHost(hostname: string): string {
  const unbracketed = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return unbracketed.endsWith('.') ? unbracketed.slice(0, -1) : unbracketed;
}

/** Ranges refused unless the operator allows private networks. */
const PRIVATE_RANGES = new Set(['loopback', 'private', 'uniqueLocal', 'carrierGradeNat']);

/**
 * Cloud metadata services that sit inside otherwise private ranges (AWS's IPv6 ones in fd00:ec2::/32,
 * Alibaba's 100.100.100.200 in carrier-grade NAT): refused even when private networks are allowed.
 * 169.254.169.254 needs no entry: all of link-local is refused.
 */
const METADATA_RANGES = [ipaddr.parseCIDR('fd00:ec2::/32'), ipaddr.parseCIDR('100.100.100.200/32')] as const;

/** Whether an IP address may be connected to under a policy. Anything that does not parse is refused. */
export function isAddressAllowed(address: string, policy: OutboundPolicy): boolean {
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    // process() unwraps IPv4-mapped IPv6 (::ffff:127.0.0.1 is judged as 127.0.0.1).
    ip = ipaddr.process(bareHost(address));
  } catch {
    return false;
  }
  if (ip.kind() === 'ipv6') {
    const v6 = ip as ipaddr.IPv6;
    // A zone id is only meaningful for link-local addresses, which are refused anyway.
    if (v6.zoneId !== undefined) return false;
    const embedded = embeddedIPv4(v6);
    if (embedded !== undefined) return isAddressAllowed(embedded.toString(), policy);
    // IPv4-compatible ::a.b.c.d (deprecated; ipaddr.js calls it unicast): never a legitimate endpoint.
    if (v6.parts.slice(0, 6).every((part) => part === 0)) return false;
  }
  if (METADATA_RANGES.some(([net, bits]) => ip.kind() === net.kind() && ip.match(net, bits))) return false;
  const range = ip.range();
  if (range === 'unicast') return true;
  return policy.allowPrivateNetworks && PRIVATE_RANGES.has(range);
}

/**
 * The IPv4 address a NAT64 (64:ff9b::/96, 64:ff9b:1::/48 in its /96 form: the last 32 bits) or 6to4
 * (2002::/16) address stands for, which is where the packets end up; undefined for other addresses.
 */
function embeddedIPv4(ip: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const bytes = ip.toByteArray();
  const range = ip.range();
  if (range === 'rfc6052') return new ipaddr.IPv4(bytes.slice(12, 16));
  if (range === '6to4') return new ipaddr.IPv4(bytes.slice(2, 6));
  return undefined;
}
