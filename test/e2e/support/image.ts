import { execFileSync } from 'node:child_process';
import { request } from 'node:http';

/** Helpers for tests of the image service: binary uploads and downloads, and disk images made by qemu-img. */
export async function putData(
  imageUrl: string,
  path: string,
  token: string,
  data: Buffer,
  contentType = 'application/octet-stream',
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${imageUrl}${path}`, {
    method: 'PUT',
    headers: { 'x-auth-token': token, 'content-type': contentType },
    body: data,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

export async function getData(
  imageUrl: string,
  path: string,
  token: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; data: Buffer; headers: Headers }> {
  const response = await fetch(`${imageUrl}${path}`, { headers: { 'x-auth-token': token, ...headers } });
  return {
    status: response.status,
    data: Buffer.from(await response.arrayBuffer()),
    headers: response.headers,
  };
}

/**
 * Sends the headers and `sent` bytes of an upload that announces `declared` bytes, then drops the
 * connection: a client that dies mid-stream.
 */
export function cutOffUpload(
  imageUrl: string,
  path: string,
  token: string,
  declared: number,
  sent: Buffer,
): Promise<void> {
  return new Promise((resolve) => {
    const url = new URL(`${imageUrl}${path}`);
    const req = request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'PUT',
      headers: {
        'x-auth-token': token,
        'content-type': 'application/octet-stream',
        'content-length': String(declared),
      },
    });
    req.on('error', () => resolve());
    req.on('response', () => resolve());
    req.write(sent, () =>
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 200),
    );
  });
}

/** Starts an upload that announces `declared` bytes and sends only `sent`, leaving it hanging; `abort` ends it. */
export function hangingUpload(
  imageUrl: string,
  path: string,
  token: string,
  declared: number,
  sent: Buffer,
): { abort(): void } {
  const url = new URL(`${imageUrl}${path}`);
  const req = request({
    host: url.hostname,
    port: url.port,
    path: url.pathname,
    method: 'PUT',
    headers: {
      'x-auth-token': token,
      'content-type': 'application/octet-stream',
      'content-length': String(declared),
    },
  });
  req.on('error', () => undefined);
  req.write(sent);
  return { abort: () => req.destroy() };
}

/** A disk image made by `qemu-img create` with extra options (`-b backing`, `-o data_file=...`). */
export function qemuImage(path: string, format: string, ...options: string[]): void {
  execFileSync('qemu-img', ['create', '-f', format, ...options, path, '1M'], { stdio: 'ignore' });
}
