// The configured targets as the operator sees them, shared by the admin API,
// the dashboard and the CLI.
import type { TargetConfig } from '../config.ts'
import type { Db } from '../db/client.ts'
import { targetHealth, type TargetHealth } from '../outbox/queries.ts'

// Of the target names asked for, those not configured (each door words its own refusal).
export function unknownTargets (configured: readonly string[], wanted: readonly string[] | undefined): string[] {
  return (wanted ?? []).filter((name) => !configured.includes(name))
}

export interface TargetStatus extends TargetHealth {
  name: string
  host: string
  oldestPendingSeconds: number
}

// Each target's health, in the configured order.
export async function targetsWithHealth (db: Db, targets: readonly TargetConfig[], now: number): Promise<TargetStatus[]> {
  return targets.map((t) => {
    const h = targetHealth(db, t.name)
    return {
      name: t.name,
      host: new URL(t.url).host,
      ...h,
      oldestPendingSeconds: h.oldestPendingAt === null ? 0 : Math.round((now - h.oldestPendingAt) / 1000)
    }
  })
}
