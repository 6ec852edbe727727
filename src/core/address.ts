// Who a client is, as far as limits go: its address, with IPv4-mapped IPv6
// written as IPv4 and IPv6 taken by /64 (one host commonly has a whole /64 to
// pick addresses from). Used by login rate limits and connection caps alike.
import { isIPv6 } from 'node:net';

/**
 * The key for an address: IPv4-mapped IPv6 addresses as IPv4, and IPv6 by /64,
 * since one host commonly has a whole /64 to pick addresses from.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16)).join(':')}::/64`;
}
