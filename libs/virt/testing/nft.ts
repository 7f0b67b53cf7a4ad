import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether this test run may ask the kernel's nft parser (root, nft installed: ops/test.sh installs it). */
export const nftCanCheck: boolean = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v nft'], { stdio: 'ignore' });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();

/** `nft -c -f` of the script: the kernel's own parser checks it, nothing is loaded; throws nft's complaint. */
export function nftCheck(script: string): void {
  const dir = mkdtempSync(join(tmpdir(), 'novum-nft-'));
  try {
    writeFileSync(join(dir, 'rules.nft'), script);
    execFileSync('nft', ['-c', '-f', join(dir, 'rules.nft')], { stdio: 'pipe' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
