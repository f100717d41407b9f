import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
}

/** The certificate chain and key, read now (at start, and again on SIGHUP). Throws naming the file. */
export function readTls(tls: TlsFiles, configFile: string | undefined): { cert: Buffer; key: Buffer } {
  const base = configFile ? dirname(resolve(configFile)) : process.cwd();
  const read = (file: string, what: string) => {
    try {
      return readFileSync(resolve(base, file));
    } catch (err) {
      throw new Error(`tls.${what}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  };
  return { cert: read(tls.certFile, 'certFile'), key: read(tls.keyFile, 'keyFile') };
}
