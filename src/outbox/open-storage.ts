// The one place that chooses the storage engine: PostgreSQL when
// DATABASE_URL is set (src/outbox/pg/), otherwise the SQLite file of
// DATABASE_PATH (outbox.ts). Everything above gets a Storage and never asks
// which engine it is. Only the engine in use is loaded: a SQLite deployment
// never loads the PostgreSQL client, nor the other way round.
import { maskedUrl, type Config } from '../config.ts'
import type { Storage } from './engine.ts'
import type { Log } from './pg/coordination.ts'

export interface OpenOptions {
  busyTimeoutMs: number
  // SQLite: the read connection's page cache (KiB).
  cacheKb?: number
  onCrash?: (err: unknown) => void
  // PostgreSQL: where the wake-up listener reports losing its connection.
  log?: Log
}

// Opens the storage and applies pending migrations (counted in `applied`).
export async function openStorage (config: Pick<Config, 'databasePath' | 'databaseUrl'>, options: OpenOptions): Promise<{ outbox: Storage; applied: number }> {
  if (config.databaseUrl !== null) {
    const { openPgStorage } = await import('./pg/engine.ts')
    return await openPgStorage({ url: config.databaseUrl, ...(options.log !== undefined ? { log: options.log } : {}) })
  }
  const { openOutbox } = await import('./outbox.ts')
  return openOutbox({ path: config.databasePath, ...options })
}

// Where the data is, as it may be shown to a person (the password masked).
export function storageName (config: Pick<Config, 'databasePath' | 'databaseUrl'>): string {
  return config.databaseUrl !== null ? maskedUrl(config.databaseUrl) : config.databasePath
}
