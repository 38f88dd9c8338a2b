// The configured targets as the operator sees them, shared by the admin API,
// the dashboard and the CLI.
import type { TargetConfig } from '../config.ts'
import type { TargetHealth, UnorderedReads } from '../outbox/engine.ts'

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
export async function targetsWithHealth (store: Pick<UnorderedReads, 'targetHealth'>, targets: readonly TargetConfig[], now: number): Promise<TargetStatus[]> {
  return await Promise.all(targets.map(async (t) => {
    const h = await store.targetHealth(t.name)
    return {
      name: t.name,
      host: new URL(t.url).host,
      ...h,
      oldestPendingSeconds: h.oldestPendingAt === null ? 0 : Math.round((now - h.oldestPendingAt) / 1000)
    }
  }))
}
