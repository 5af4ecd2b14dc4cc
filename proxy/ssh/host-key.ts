// The gateway's own SSH host key: read from `ssh.host_key`, or generated there (ed25519, mode 0600)
// on first start so a gateway always presents the same key its agents pinned.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';

const { utils } = ssh2;

export type HostKeyResult = { ok: true; privateKey: string; publicKey: string; generated: boolean } | { ok: false; error: string };

export function loadOrCreateHostKey(file: string): HostKeyResult {
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return { ok: false, error: `ssh.host_key: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
  }
  let generated = false;
  if (text === undefined) {
    const pair = utils.generateKeyPairSync('ed25519', { comment: 'hoop-gateway' });
    try {
      mkdirSync(dirname(file), { recursive: true, mode: 0o750 });
      // `wx`: two gateways starting together on one state dir must not overwrite each other's key.
      writeFileSync(file, pair.private, { mode: 0o600, flag: 'wx' });
      writeFileSync(`${file}.pub`, `${pair.public}\n`, { mode: 0o644 });
      text = pair.private;
      generated = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') text = readFileSync(file, 'utf8');
      else return { ok: false, error: `ssh.host_key: cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` };
    }
  }
  const parsed = utils.parseKey(text);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (parsed instanceof Error || !key || !key.isPrivateKey()) {
    return { ok: false, error: `ssh.host_key: ${file} is not an unencrypted private key${parsed instanceof Error ? ` (${parsed.message})` : ''}` };
  }
  return { ok: true, privateKey: text, publicKey: `${key.type} ${key.getPublicSSH().toString('base64')}`, generated };
}
