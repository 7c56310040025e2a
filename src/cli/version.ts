/** The program version, recorded in snapshots and shown by `--version`. */
export const version = '0.1.0';
