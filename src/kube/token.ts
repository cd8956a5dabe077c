/**
 * The in-cluster service-account token, read from disk for every request. The kubelet rewrites
 * the projected token file before the token expires, and a legacy token Secret can be replaced at
 * any time; the API server then answers the old token with 401. The client library's own file
 * auth keeps a token for 60 s after reading it, so it could go on sending one the server no longer
 * accepts; this one cannot. Requests are few (a list and a watch every few minutes, and restarts),
 * the file is small, and a failed request is retried with backoff, each retry reading it afresh.
 */
import { readFile } from 'node:fs/promises';
import type { OutgoingHttpHeaders } from 'node:http';
import type { User } from '@kubernetes/client-node';

/** `authProvider.name` of a user authenticated by {@link TokenFileAuth}. */
const TOKEN_FILE_PROVIDER = 'execwatch-token-file';

/** The user of an in-cluster configuration whose token is read from `path` for every request. */
export function tokenFileUser(name: string, path: string): User {
  // Not `config.tokenFile`: that would select the library's caching FileAuth first.
  return { name, authProvider: { name: TOKEN_FILE_PROVIDER, config: { path } } };
}

/** The token file of a user made by {@link tokenFileUser}, or undefined for any other user. */
export function tokenFileOf(user: User | null): string | undefined {
  const provider = user?.authProvider as { name?: unknown; config?: { path?: string } } | undefined;
  return provider?.name === TOKEN_FILE_PROVIDER ? provider.config?.path : undefined;
}

/** A custom authenticator of the client library (`KubeConfig.addAuthenticator`). */
export class TokenFileAuth {
  isAuthProvider(user: User): boolean {
    return tokenFileOf(user) !== undefined;
  }

  async applyAuthentication(user: User, opts: { headers?: OutgoingHttpHeaders }): Promise<void> {
    const { path } = (user.authProvider as { config: { path: string } }).config;
    // A token written by hand often ends with a newline, which no header may hold.
    const token = (await readFile(path, 'utf8')).trim();
    (opts.headers ??= {}).Authorization = `Bearer ${token}`;
  }
}
