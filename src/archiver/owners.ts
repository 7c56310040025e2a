/** User and group names by id, read once from /etc/passwd and /etc/group (Node has no getpwuid). */
import { readFileSync } from 'node:fs';

function readNames(file: string): Map<number, string> {
  const names = new Map<number, string>();
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const fields = line.split(':');
      if (fields.length >= 3 && /^\d+$/.test(fields[2]) && !names.has(Number(fields[2]))) names.set(Number(fields[2]), fields[0]);
    }
  } catch {
    // no such file (containers, other systems): names stay empty, ids still recorded
  }
  return names;
}

let users: Map<number, string> | undefined;
let groups: Map<number, string> | undefined;

export function userName(uid: number): string {
  users ??= readNames('/etc/passwd');
  return users.get(uid) ?? '';
}

export function groupName(gid: number): string {
  groups ??= readNames('/etc/group');
  return groups.get(gid) ?? '';
}

/** Ids by name, for restoring ownership by name when the ids differ between machines. */
export function userId(name: string): number | undefined {
  users ??= readNames('/etc/passwd');
  for (const [id, n] of users) if (n === name) return id;
  return undefined;
}

export function groupId(name: string): number | undefined {
  groups ??= readNames('/etc/group');
  for (const [id, n] of groups) if (n === name) return id;
  return undefined;
}
