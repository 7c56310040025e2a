/** restic's `--cacert` and `--insecure-tls`: how an HTTPS storage server's certificate is checked. */
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { TlsOptions } from '../backend/index.ts';
import { UsageError, fileErrorText } from '../errors/index.ts';

/** A certificate bundle larger than this is no certificate file (the system's whole bundle is about 200 KiB). */
const maxCertificateFile = 4 * 1024 * 1024;
const pemBlock = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** The TLS settings of `--cacert FILE…` and `--insecure-tls`; undefined when neither is given. */
export function tlsOptions(cacert: readonly string[] | undefined, insecure: boolean | undefined, flag = '--cacert'): TlsOptions | undefined {
  if (!cacert?.length && !insecure) return undefined;
  return { ...(cacert?.length ? { ca: cacert.flatMap((file) => certificatesIn(file, flag)) } : {}), ...(insecure ? { insecure: true } : {}) };
}

/** The PEM certificates in `file`, each checked to parse; a file without one is a usage error. */
function certificatesIn(file: string, flag: string): string[] {
  const hint = 'give a file of PEM certificates (-----BEGIN CERTIFICATE-----), such as the CA certificate of the S3 server';
  let text: string;
  try {
    if (statSync(file).size > maxCertificateFile) throw new UsageError(`${flag}: ${file} is too large to be a certificate file`, { hint });
    text = readFileSync(file, 'latin1');
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${flag}: cannot read ${file}: ${fileErrorText(err)}`, { hint: 'check the path given to --cacert or COFFER_CACERT' });
  }
  const blocks = text.match(pemBlock) ?? [];
  if (blocks.length === 0) throw new UsageError(`${flag}: ${file} holds no PEM certificate`, { hint });
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new UsageError(`${flag}: certificate ${i + 1} in ${file} cannot be read (${(err as Error).message})`, { hint });
    }
  }
  return blocks;
}
