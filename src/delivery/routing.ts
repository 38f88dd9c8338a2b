// Pure: which targets get a delivery row for a notification, by its content.
import type { TargetConfig } from '../config.ts'

export interface Routable {
  environment: string | null
  notificationType: string
  bundleId: string | null
}

function matches (allowed: string[] | null, value: string | null): boolean {
  return allowed === null || (value !== null && allowed.includes(value))
}

export function targetsFor (targets: readonly TargetConfig[], n: Routable): string[] {
  return targets
    .filter((t) => matches(t.filters.environments, n.environment) &&
      matches(t.filters.notificationTypes, n.notificationType) &&
      matches(t.filters.bundleIds, n.bundleId))
    .map((t) => t.name)
}
