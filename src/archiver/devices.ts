/**
 * `backup --one-file-system`, with restic's rule: an entry is saved when it is on the device of the nearest
 * source path at or above it, so that every path given brings its own file system, one nested in another
 * too. A folder on another device whose parent is saved is a mount point, kept as an empty folder; folders
 * above a source path are walked whatever their device, so that the source is reached.
 */

/** Where a walk stands: passed from a folder to its entries. */
export interface DeviceBounds {
  /** The device of the nearest source path at or above the entry. */
  readonly sourceDevice: number;
  /** Whether the entry's folder is on its allowed device (a folder walked only to reach a source is not). */
  readonly parentAllowed: boolean;
}

export type DeviceVerdict =
  | { readonly action: 'save'; readonly bounds: DeviceBounds }
  | { readonly action: 'mount-point' }
  | { readonly action: 'skip' };

/** Paths are keys of their bytes as latin1 text, so names that are not UTF-8 compare exactly. */
export class SourceDevices {
  readonly #devices = new Map<string, number>();
  readonly #ancestors = new Set<string>();

  /** Notes source path `path` (absolute) and the device it is on. */
  add(path: string, device: number): void {
    this.#devices.set(path, device);
    for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) this.#ancestors.add(path.slice(0, slash));
  }

  /** The device of source path `path`, if it is one. */
  deviceOf(path: string): number | undefined {
    return this.#devices.get(path);
  }

  /** What to do with entry `path` on `device`; `bounds` are its folder's (none for a source path). */
  judge(path: string, device: number, isDir: boolean, bounds: DeviceBounds | undefined): DeviceVerdict {
    const sourceDevice = this.#devices.get(path) ?? bounds?.sourceDevice ?? device;
    const allowed = device === sourceDevice;
    if (allowed || this.#ancestors.has(path)) return { action: 'save', bounds: { sourceDevice, parentAllowed: allowed } };
    return isDir && bounds?.parentAllowed !== false ? { action: 'mount-point' } : { action: 'skip' };
  }
}
