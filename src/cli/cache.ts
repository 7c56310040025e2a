/**
 * Where the local metadata cache lives (docs/design.md §Local cache), and wiring it around a backend:
 * `--cache-dir DIR` / COFFER_CACHE_DIR, else `$XDG_CACHE_HOME/coffer`, else `~/.cache/coffer`; `--no-cache`
 * turns it off. Each repository gets the folder `<root>/<config id>`.
 */
import { rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import * as path from 'node:path';
import { CachingBackend, listCacheFolders, prepareCacheRoot, type Backend, type CacheFolder } from '../backend/index.ts';
import { fileErrorText } from '../errors/index.ts';

export const dayMs = 24 * 60 * 60 * 1000;

/** A cache not used for this many days is old (restic's default for `cache --cleanup`). */
export const defaultMaxCacheAgeDays = 30;

/**
 * Removes the cache folders given, each on its own: one that cannot be removed (a folder without
 * permissions) is told to `warn` and the others are still removed. Returns those removed.
 */
export async function removeCaches(folders: readonly CacheFolder[], warn: (message: string) => void): Promise<CacheFolder[]> {
  const removed: CacheFolder[] = [];
  for (const f of folders) {
    try {
      await rm(f.path, { recursive: true, force: true });
      removed.push(f);
    } catch (err) {
      warn(`cannot remove old cache ${f.path}: ${fileErrorText(err)}`);
    }
  }
  return removed;
}

/** The cache folders in `root` (all of them, with `withSize`, their sizes) and which of them are old. */
export async function cacheFolders(root: string, options: { withSize?: boolean; maxAgeDays?: number; now?: number } = {}): Promise<Array<CacheFolder & { old: boolean }>> {
  const now = options.now ?? Date.now();
  const maxAgeMs = (options.maxAgeDays ?? defaultMaxCacheAgeDays) * dayMs;
  return (await listCacheFolders(root, { withSize: options.withSize })).map((f) => ({ ...f, old: now - f.lastUsed.getTime() > maxAgeMs }));
}

export interface CacheSettings {
  cacheDir?: string;
  /** false with --no-cache. */
  cache?: boolean;
}

/** The cache root, or undefined when the cache is off (or there is no home folder to put it in). */
export function cacheRoot(settings: CacheSettings, env: NodeJS.ProcessEnv): string | undefined {
  if (settings.cache === false) return undefined;
  const explicit = settings.cacheDir ?? env.COFFER_CACHE_DIR;
  if (explicit) return path.resolve(explicit);
  if (env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME)) return path.join(env.XDG_CACHE_HOME, 'coffer');
  let home = env.HOME;
  if (!home) {
    try {
      home = homedir();
    } catch {
      return undefined;
    }
  }
  return home ? path.join(home, '.cache', 'coffer') : undefined;
}

/** Wraps `backend` in an inactive cache when the cache is on; {@link attachCache} activates it. */
export function withCache(backend: Backend, settings: CacheSettings, env: NodeJS.ProcessEnv, onError: (error: Error) => void): Backend {
  if (cacheRoot(settings, env) === undefined) return backend;
  return new CachingBackend(backend, undefined, { onError });
}

/**
 * Activates the cache of `backend` (if it is a CachingBackend) in `<root>/<config id>`, creating the root
 * with its CACHEDIR.TAG. Returns the folder, or undefined when the cache is off; throws when it cannot be
 * made (the caller goes on without it).
 */
export async function attachCache(backend: Backend, configId: string, settings: CacheSettings, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const root = cacheRoot(settings, env);
  if (!(backend instanceof CachingBackend) || root === undefined) return undefined;
  if (!/^[0-9a-f]{64}$/.test(configId)) return undefined;
  await prepareCacheRoot(root);
  const dir = path.join(root, configId);
  await backend.attach(dir);
  return dir;
}
