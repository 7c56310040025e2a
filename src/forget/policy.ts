import { AppError, ExitCode, UsageError } from '../errors/errors.ts';
import { localOffsetAt, utcMs } from '../model/index.ts';
import { type Duration, formatDuration, isZeroDuration, subtractDuration } from './duration.ts';
import {
  compareStrings,
  DEFAULT_GROUP_BY,
  formatGroupKey,
  type GroupBy,
  type GroupKey,
  groupSnapshots,
  type PolicySnapshot,
} from './group.ts';

/** A `--keep-*` count meaning "no limit" (`--keep-daily unlimited`). */
export const UNLIMITED = -1;

/**
 * What `coffer forget` keeps, field for field restic's `ExpirePolicy`. Counts are N ≥ 0 or
 * {@link UNLIMITED}; an absent count or duration, 0, or a zero duration means the rule is not set.
 */
export interface Policy {
  /** `--keep-last`: the N newest snapshots. */
  readonly last?: number;
  /** `--keep-hourly`: the newest snapshot of each of the N newest hours that have one. */
  readonly hourly?: number;
  readonly daily?: number;
  /** Weeks are ISO weeks (Monday to Sunday; the week of Dec 31 may belong to the next ISO year). */
  readonly weekly?: number;
  readonly monthly?: number;
  readonly yearly?: number;
  /** `--keep-within`: every snapshot newer than (latest − duration). */
  readonly within?: Duration;
  /** `--keep-within-hourly` etc.: the newest snapshot of each hour/day/… newer than (latest − duration). */
  readonly withinHourly?: Duration;
  readonly withinDaily?: Duration;
  readonly withinWeekly?: Duration;
  readonly withinMonthly?: Duration;
  readonly withinYearly?: Duration;
  /**
   * `--keep-tag`, one list per flag: a snapshot is kept if for ANY list it has ALL tags of that list.
   * A list holding `''` matches untagged snapshots (restic's `--keep-tag ''`).
   */
  readonly keepTags?: readonly (readonly string[])[];
}

/** Why one snapshot is kept: restic's reason strings, e.g. `daily snapshot`, `oldest daily snapshot`, `within 2d`. */
export interface KeepReason<T> {
  readonly snapshot: T;
  readonly matches: string[];
  /**
   * What is left of each count once this snapshot is decided (restic's `counters`): rules used up, or
   * never set, are absent; `unlimited` ones stay -1.
   */
  readonly counters: RuleCounters;
}

export type RuleCounters = Partial<Record<'last' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly', number>>;

/** The decision for one group (or one list of snapshots). Every list is newest first. */
export interface PolicyResult<T> {
  readonly keep: T[];
  readonly remove: T[];
  /** One entry per kept snapshot, in the order of `keep`. */
  readonly reasons: KeepReason<T>[];
}

/** The decision for one `--group-by` group. */
export interface GroupResult<T> extends PolicyResult<T> {
  readonly key: GroupKey;
}

/** Options for {@link applyPolicy} and {@link applyPolicyToList}. */
export interface ApplyOptions {
  /** How to group; default restic's `host,paths`. */
  readonly groupBy?: GroupBy;
  /**
   * The current time. Snapshots at or after it are "in the future" and are not used as the
   * reference for the `within` rules (restic's rule). Default: the clock at call time; pass it for
   * reproducible results.
   */
  readonly now?: Date;
}

// ---------------------------------------------------------------------------------------------
// Flag parsing and policy checks
// ---------------------------------------------------------------------------------------------

/**
 * Parses a `--keep-*` count like restic: `unlimited` → {@link UNLIMITED}, otherwise a base-10 integer
 * (optional sign, as Go's `ParseInt`) that must not be negative.
 *
 * @throws UsageError on anything else.
 */
export function parseKeepCount(s: string): number {
  if (s === 'unlimited') return UNLIMITED;
  const m = /^([+-]?)([0-9]+)$/.exec(s);
  if (m === null) {
    throw new UsageError(`invalid count ${JSON.stringify(s)}: expected a number or 'unlimited'`);
  }
  const n = Number(m[2]);
  if (!Number.isSafeInteger(n)) throw new UsageError(`invalid count ${JSON.stringify(s)}: value out of range`);
  if (m[1] === '-' && n !== 0) {
    throw new UsageError(`invalid count ${JSON.stringify(s)}: negative values not allowed, use 'unlimited' instead`);
  }
  return n;
}

/** Parses one `--keep-tag a,b` value into one tag list: split on commas, whitespace around each tag trimmed. */
export function parseTagList(s: string): string[] {
  return s.split(',').map((t) => t.trim());
}

const COUNT_FIELDS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
const DURATION_FIELDS = ['within', 'withinHourly', 'withinDaily', 'withinWeekly', 'withinMonthly', 'withinYearly'] as const;

/**
 * Checks field values the flag parsers cannot have produced.
 *
 * @throws UsageError for a count that is not an integer ≥ -1 or a duration part that is not a
 *   non-negative integer.
 */
export function validatePolicy(p: Policy): void {
  for (const f of COUNT_FIELDS) {
    const n = p[f];
    if (n !== undefined && (!Number.isSafeInteger(n) || n < UNLIMITED)) {
      throw new UsageError(`invalid --keep-${f} ${n}: negative values other than -1 are not allowed for --keep-*`);
    }
  }
  for (const f of DURATION_FIELDS) {
    const d = p[f];
    if (d === undefined) continue;
    for (const part of [d.years, d.months, d.days, d.hours]) {
      if (!Number.isSafeInteger(part) || part < 0) {
        throw new UsageError('durations containing negative values are not allowed for --keep-within*');
      }
    }
  }
}

/**
 * True when no rule is set (restic's `ExpirePolicy.Empty`): every count 0, every duration zero and
 * no `--keep-tag`. Applying such a policy would remove everything, so the cli must refuse it as
 * restic does ("no policy was specified, no snapshots will be removed").
 */
export function isEmptyPolicy(p: Policy): boolean {
  if (p.keepTags !== undefined && p.keepTags.length > 0) return false;
  for (const f of COUNT_FIELDS) if ((p[f] ?? 0) !== 0) return false;
  for (const f of DURATION_FIELDS) if (!isZeroDuration(p[f])) return false;
  return true;
}

/** restic's error text for an empty policy. */
export const EMPTY_POLICY_MESSAGE = 'no policy was specified, no snapshots will be removed';

function formatTagList(l: readonly string[]): string {
  return `[${l.join(', ')}]`;
}

/**
 * The policy in words, as restic prints after "Applying Policy: ", e.g.
 * `keep 7 daily, 5 weekly snapshots, daily snapshots within 7d and all snapshots within 2d of the newest`.
 */
export function describePolicy(p: Policy): string {
  const keeps: string[] = [];
  const names: Record<(typeof COUNT_FIELDS)[number], string> = {
    last: 'latest',
    hourly: 'hourly',
    daily: 'daily',
    weekly: 'weekly',
    monthly: 'monthly',
    yearly: 'yearly',
  };
  for (const f of COUNT_FIELDS) {
    const n = p[f] ?? 0;
    if (n > 0) keeps.push(`${n} ${names[f]}`);
    else if (n === UNLIMITED) keeps.push(`all ${names[f]}`);
  }
  const keepw: string[] = [];
  for (const [d, name] of [
    [p.withinHourly, 'hourly'],
    [p.withinDaily, 'daily'],
    [p.withinWeekly, 'weekly'],
    [p.withinMonthly, 'monthly'],
    [p.withinYearly, 'yearly'],
  ] as const) {
    if (!isZeroDuration(d)) keepw.push(`${name} snapshots within ${formatDuration(d!)}`);
  }
  let s = '';
  if (keeps.length > 0) s = `${keeps.join(', ')} snapshots`;
  if (keepw.length > 0) s += (s !== '' ? ', ' : '') + keepw.join(', ');
  if (p.keepTags !== undefined && p.keepTags.length > 0) {
    s += `${s !== '' ? ' and ' : ''}all snapshots with tags [${p.keepTags.map(formatTagList).join(' ')}]`;
  }
  if (!isZeroDuration(p.within)) {
    s += `${s !== '' ? ' and ' : ''}all snapshots within ${formatDuration(p.within!)} of the newest`;
  }
  return s === '' ? 'remove' : `keep ${s}`;
}

// ---------------------------------------------------------------------------------------------
// Buckets
// ---------------------------------------------------------------------------------------------

/**
 * Maps a snapshot (its wall-clock time where it was taken, as the UTC fields of a Date; its position
 * newest-first) to its bucket number for one rule.
 */
type Bucketer = (wall: Date, nr: number) => number;

const always: Bucketer = (_t, nr) => nr;
const hourBucket: Bucketer = (t) =>
  t.getUTCFullYear() * 1_000_000 + (t.getUTCMonth() + 1) * 10_000 + t.getUTCDate() * 100 + t.getUTCHours();
const dayBucket: Bucketer = (t) => t.getUTCFullYear() * 10_000 + (t.getUTCMonth() + 1) * 100 + t.getUTCDate();
const weekBucket: Bucketer = (t) => {
  const { year, week } = isoWeek(t);
  return year * 100 + week;
};
const monthBucket: Bucketer = (t) => t.getUTCFullYear() * 100 + (t.getUTCMonth() + 1);
const yearBucket: Bucketer = (t) => t.getUTCFullYear();

/** ISO 8601 year and week of the date in `wall`'s UTC fields (Go's `Time.ISOWeek`). */
export function isoWeek(wall: Date): { year: number; week: number } {
  const d = new Date(utcMs(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate()));
  const weekday = (d.getUTCDay() + 6) % 7; // Monday = 0
  // The ISO year of a week is the year of its Thursday.
  d.setUTCDate(d.getUTCDate() - weekday + 3);
  const year = d.getUTCFullYear();
  const week = Math.floor((d.getTime() - utcMs(year, 0, 1)) / 86_400_000 / 7) + 1;
  return { year, week };
}

/** The snapshot's wall-clock time where it was taken (else here), in the UTC fields of the result. */
function wallClock(sn: PolicySnapshot): Date {
  const ms = sn.time.getTime();
  return new Date(ms + (sn.utcOffset !== undefined ? sn.utcOffset * 60_000 : localOffsetAt(ms)));
}

// ---------------------------------------------------------------------------------------------
// Applying a policy
// ---------------------------------------------------------------------------------------------

/** Newest first; equal times by id, so the result does not depend on input order. */
function compareNewestFirst(a: PolicySnapshot, b: PolicySnapshot): number {
  const d = b.time.getTime() - a.time.getTime();
  return d !== 0 ? d : compareStrings(a.id, b.id);
}

/** restic's `HasTags`: has every tag of `l`; a `''` in `l` matches a snapshot without tags. */
function hasTags(sn: PolicySnapshot, l: readonly string[]): boolean {
  for (const tag of l) {
    if (tag === '' && sn.tags.length === 0) return true;
    if (!sn.tags.includes(tag)) return false;
  }
  return true;
}

/**
 * The snapshot the `within` rules count back from: the newest one strictly before `now` (restic's
 * `findLatestTimestamp`). `undefined` when every snapshot is in the future; restic then
 * counts back from Go's zero time (year 1, UTC), i.e. every snapshot is within.
 */
function latestSnapshot(list: readonly PolicySnapshot[], now: number): PolicySnapshot | undefined {
  let latest: PolicySnapshot | undefined;
  for (const sn of list) {
    const t = sn.time.getTime();
    if (t < now && (latest === undefined || t > latest.time.getTime())) latest = sn;
  }
  return latest;
}

/**
 * The `within` threshold counted back from `latest`, on the calendar restic would use. Go reads a time
 * written with an offset into the local zone when that offset is the local one at that instant (and not
 * UTC's `Z`), so its days and months follow the local DST rules: across a change, `2d` is 47 or 49 hours.
 * Otherwise (a snapshot taken in another zone, or in UTC) it counts on that fixed offset's wall clock. A
 * snapshot without an offset is in local time.
 */
function thresholdFrom(latest: PolicySnapshot | undefined, d: Duration): number {
  if (latest === undefined) return subtractDuration(GO_ZERO_TIME, d, true);
  const offset = latest.utcOffset;
  if (offset === undefined || (offset !== 0 && offset === -latest.time.getTimezoneOffset())) return subtractDuration(latest.time, d);
  const offsetMs = offset * 60_000;
  return subtractDuration(new Date(latest.time.getTime() + offsetMs), d, true) - offsetMs;
}

const GO_ZERO_TIME = new Date(utcMs(1, 0, 1));

/**
 * Applies `policy` to one list of snapshots (no grouping), exactly as restic's `ApplyPolicy`:
 *
 * - Snapshots are walked newest first (equal times: by id).
 * - `keepTags`: kept if it has all tags of any list (`has tags [a, b]`).
 * - `within`: kept if newer than the reference time (`within 2d`), see {@link subtractDuration}.
 * - Each count rule keeps a snapshot whose bucket (hour, day, ISO week, month, year on the wall clock
 *   where it was taken, see {@link PolicySnapshot.utcOffset};
 *   `last`: every snapshot its own bucket) differs from the bucket of the last snapshot this rule
 *   kept, while its count lasts (`daily snapshot`). Since restic 0.16.0 a rule whose count is not
 *   used up when the walk reaches the oldest snapshot also keeps that one, even in an already kept
 *   bucket (`oldest daily snapshot`); with `unlimited` that is always so.
 * - Each `within*` bucket rule does the same without a count, for snapshots newer than its own
 *   reference time (`daily within 7d`, `oldest daily within 7d`).
 *
 * A snapshot is kept if any rule keeps it; its reasons list every rule that did, in restic's order
 * (tags, within, last…yearly, within-hourly…within-yearly).
 *
 * @throws UsageError when the policy holds values no flag could have produced.
 */
export function applyPolicyToList<T extends PolicySnapshot>(
  snapshots: readonly T[],
  policy: Policy,
  options: Pick<ApplyOptions, 'now'> = {},
): PolicyResult<T> {
  validatePolicy(policy);
  const list = [...snapshots].sort(compareNewestFirst);
  const keep: T[] = [];
  const remove: T[] = [];
  const reasons: KeepReason<T>[] = [];
  if (list.length === 0) return { keep, remove, reasons };

  const counted = (
    [
      ['last', policy.last, always],
      ['hourly', policy.hourly, hourBucket],
      ['daily', policy.daily, dayBucket],
      ['weekly', policy.weekly, weekBucket],
      ['monthly', policy.monthly, monthBucket],
      ['yearly', policy.yearly, yearBucket],
    ] as const
  ).map(([name, count, bucket]) => ({ name, count: count ?? 0, bucket, reason: `${name} snapshot`, last: undefined as number | undefined }));

  const now = (options.now ?? new Date()).getTime();
  const latest = latestSnapshot(list, now);
  const thresholdFor = (d: Duration): number => thresholdFrom(latest, d);

  const within = isZeroDuration(policy.within) ? undefined : policy.within!;
  const withinThreshold = within === undefined ? 0 : thresholdFor(within);

  const bucketedWithin = (
    [
      [policy.withinHourly, hourBucket, 'hourly within'],
      [policy.withinDaily, dayBucket, 'daily within'],
      [policy.withinWeekly, weekBucket, 'weekly within'],
      [policy.withinMonthly, monthBucket, 'monthly within'],
      [policy.withinYearly, yearBucket, 'yearly within'],
    ] as const
  )
    .filter(([d]) => !isZeroDuration(d))
    .map(([d, bucket, reason]) => ({
      threshold: thresholdFor(d!),
      bucket,
      reason: `${reason} ${formatDuration(d!)}`,
      last: undefined as number | undefined,
    }));

  const oldest = list.length - 1;
  list.forEach((sn, nr) => {
    const matches: string[] = [];
    const t = sn.time.getTime();
    const wall = wallClock(sn);

    // Tags are not counted.
    for (const l of policy.keepTags ?? []) {
      if (hasTags(sn, l)) matches.push(`has tags ${formatTagList(l)}`);
    }

    if (within !== undefined && t > withinThreshold) matches.push(`within ${formatDuration(within)}`);

    for (const rule of counted) {
      if (rule.count === 0) continue;
      const val = rule.bucket(wall, nr);
      // The oldest snapshot is kept too while counts are left: it maximises the history kept.
      if (val !== rule.last || nr === oldest) {
        matches.push(val === rule.last ? `oldest ${rule.reason}` : rule.reason);
        rule.last = val;
        if (rule.count > 0) rule.count--;
      }
    }

    for (const rule of bucketedWithin) {
      if (!(t > rule.threshold)) continue;
      const val = rule.bucket(wall, nr);
      if (val !== rule.last || nr === oldest) {
        matches.push(val === rule.last ? `oldest ${rule.reason}` : rule.reason);
        rule.last = val;
      }
    }

    if (matches.length > 0) {
      keep.push(sn);
      const counters: RuleCounters = {};
      for (const rule of counted) if (rule.count !== 0) counters[rule.name] = rule.count;
      reasons.push({ snapshot: sn, matches, counters });
    } else {
      remove.push(sn);
    }
  });
  return { keep, remove, reasons };
}

/**
 * Groups `snapshots` by `options.groupBy` (default `host,paths`) and applies `policy` to each group
 * (see {@link applyPolicyToList}). Groups are ordered by key. The caller must refuse an empty
 * policy first ({@link isEmptyPolicy}): applied, it removes everything, as restic's `ApplyPolicy` would.
 *
 * @throws UsageError when the policy holds values no flag could have produced.
 */
export function applyPolicy<T extends PolicySnapshot>(
  snapshots: readonly T[],
  policy: Policy,
  options: ApplyOptions = {},
): GroupResult<T>[] {
  validatePolicy(policy);
  const now = options.now ?? new Date();
  return groupSnapshots(snapshots, options.groupBy ?? DEFAULT_GROUP_BY).map((g) => ({
    key: g.key,
    ...applyPolicyToList(g.snapshots, policy, { now }),
  }));
}

/**
 * restic refuses to run when a non-empty policy would remove every snapshot of a group (this
 * protects against `--keep-tag` with a mistyped tag). Returns the first such group, if any.
 */
export function findEmptiedGroup<T>(groups: readonly GroupResult<T>[], policy: Policy): GroupResult<T> | undefined {
  if (isEmptyPolicy(policy)) return undefined;
  return groups.find((g) => g.keep.length === 0);
}

/**
 * Throws restic's error if a non-empty policy would remove every snapshot of a group (see
 * {@link findEmptiedGroup}); the cli calls this before removing anything.
 *
 * @throws AppError `FORGET_REFUSED` (exit status 1), message as restic's.
 */
export function assertNoGroupEmptied<T>(groups: readonly GroupResult<T>[], policy: Policy): void {
  const g = findEmptiedGroup(groups, policy);
  if (g === undefined) return;
  throw new AppError(
    'FORGET_REFUSED',
    ExitCode.failure,
    `refusing to delete last snapshot of snapshot group ${JSON.stringify(formatGroupKey(g.key))}`,
    {
      hint: 'check the --keep-* options (a mistyped --keep-tag matches nothing); nothing was removed',
      data: { group: g.key },
    },
  );
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/** One group of `coffer forget --json`, field for field restic's `ForgetGroup`. */
export interface ForgetGroupJson<S> {
  tags: string[] | null;
  host: string;
  paths: string[] | null;
  keep: S[] | null;
  remove: S[] | null;
  reasons: { snapshot: S; matches: string[]; counters: RuleCounters }[] | null;
}

/**
 * Builds restic's `forget --json` structure (an array of groups) from the results; `serialize` turns a
 * snapshot into its JSON form (restic's snapshot object with `id` and `short_id`). Empty lists and
 * fields not grouped by are `null` and the host `""`, as Go's encoder writes them.
 */
export function forgetJson<T, S>(groups: readonly GroupResult<T>[], serialize: (sn: T) => S): ForgetGroupJson<S>[] {
  const orNull = <X>(l: X[]): X[] | null => (l.length === 0 ? null : l);
  return groups.map((g) => ({
    tags: g.key.tags === undefined ? null : [...g.key.tags],
    host: g.key.hostname ?? '',
    paths: g.key.paths === undefined ? null : [...g.key.paths],
    keep: orNull(g.keep.map(serialize)),
    remove: orNull(g.remove.map(serialize)),
    reasons: orNull(g.reasons.map((r) => ({ snapshot: serialize(r.snapshot), matches: [...r.matches], counters: { ...r.counters } }))),
  }));
}

/** The reasons of a result by snapshot id, for table output. */
export function reasonsById<T extends PolicySnapshot>(result: PolicyResult<T>): Map<string, string[]> {
  return new Map(result.reasons.map((r) => [r.snapshot.id, r.matches]));
}
