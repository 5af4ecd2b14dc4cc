// The gateway's own SSH host key: read from `ssh.host_key`, or generated there (ed25519, mode 0600)
// on first start so a gateway always presents the same key its agents pinned.

import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import sshpk from 'sshpk';

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
    const pair = newEd25519Pair('hoop-gateway');
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

/**
 * A fresh ed25519 pair in OpenSSH form. Not ssh2's `utils.generateKeyPairSync`: about one key in
 * 300 it writes a public half whose leading zero byte is dropped (31 bytes), which its own
 * `parseKey` then refuses as malformed, so a gateway would fail to start on its first run.
 */
export function newEd25519Pair(comment: string): { private: string; public: string } {
  // Node makes the pair; sshpk writes it from its parts (the public point A and the seed k) in the
  // OpenSSH format. Parsing Node's PKCS#8 with sshpk instead re-derives A in JavaScript (~13 ms).
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  const key = new sshpk.PrivateKey({
    type: 'ed25519',
    parts: [
      { name: 'A', data: Buffer.from(jwk.x!, 'base64url') },
      { name: 'k', data: Buffer.from(jwk.d!, 'base64url') },
    ],
  });
  key.comment = comment;
  const pub = key.toPublic();
  pub.comment = key.comment;
  return { private: key.toString('openssh'), public: pub.toString('ssh') };
}
