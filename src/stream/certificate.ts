// RFC 5929 §4.1 tls-server-end-point needs the hash algorithm of the server
// certificate's signature, which node:crypto does not expose. A certificate is
// SEQUENCE { tbsCertificate, signatureAlgorithm, signature } (RFC 5280 §4.1);
// we read the OID of signatureAlgorithm with a minimal DER walk.

const OID_HASH: Record<string, 'sha256' | 'sha384' | 'sha512'> = {
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

interface Tlv {
  tag: number;
  start: number; // first content byte
  end: number; // one past the last content byte
}

function readTlv(der: Buffer, offset: number): Tlv {
  const tag = der[offset]!;
  let len = der[offset + 1]!;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  if (start + len > der.length) throw new Error('truncated DER');
  return { tag, start, end: start + len };
}

function decodeOid(bytes: Buffer): string {
  const first = bytes[0]!;
  const parts = [Math.floor(first / 40), first % 40];
  let v = 0;
  for (let i = 1; i < bytes.length; i++) {
    const b = bytes[i]!;
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** The OID of the certificate's signatureAlgorithm. */
export function signatureAlgorithmOid(der: Buffer): string {
  const cert = readTlv(der, 0);
  const tbs = readTlv(der, cert.start);
  const algId = readTlv(der, tbs.end);
  const oid = readTlv(der, algId.start);
  if (oid.tag !== 0x06) throw new Error('signatureAlgorithm without OID');
  return decodeOid(der.subarray(oid.start, oid.end));
}

/**
 * RFC 5929 §4.1: the signature's hash, except MD5 and SHA-1 become SHA-256; algorithms
 * without a single hash (RSASSA-PSS, EdDSA) also use SHA-256.
 */
export function certificateSignatureHash(der: Buffer): 'sha256' | 'sha384' | 'sha512' {
  try {
    return OID_HASH[signatureAlgorithmOid(der)] ?? 'sha256';
  } catch {
    return 'sha256';
  }
}
