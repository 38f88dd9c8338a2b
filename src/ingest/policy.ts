// Decides, before anything is written, whether a decoded notification may be
// accepted, and with which verification status. Refusals throw a 403 AppError.
import type { DecodedNotification } from '../apple/payload.ts'
import type { Config, VerifyMode } from '../config.ts'
import type { VerificationStatus } from '../db/vocabulary.ts'
import { AppError, quoteInput, type ErrorCode } from '../errors.ts'
import { sameSecret } from '../secrets.ts'

export interface Verdict {
  verification: VerificationStatus
  // Why it is not verified, in words an operator understands.
  reason: string | null
}

export interface SignatureCheck {
  verify: (signedPayload: string, decodedPayload?: Record<string, unknown>) => { ok: true } | { ok: false; reason: string; message: string }
}

export interface PolicyOptions {
  mode: VerifyMode
  bundleIds: readonly string[] | null
  sharedSecret: string | null
  // Under enforce, a V1 with no secret to check it is refused unless this is true.
  allowUnauthenticatedV1: boolean
  signatures: SignatureCheck
}

// Whether anyone on the internet can post a V1 that is stored and forwarded
// although the operator asked for enforce: the start-up log, /readyz and the
// dashboard say so, with the same words, for as long as it holds.
export function acceptsUnauthenticatedV1 (c: Pick<Config, 'verify' | 'sharedSecret' | 'allowUnauthenticatedV1'>): boolean {
  return c.verify === 'enforce' && c.sharedSecret === null && c.allowUnauthenticatedV1
}

export const UNAUTHENTICATED_V1_WARNING = 'ALLOW_UNAUTHENTICATED_V1=true: V1 notifications are unsigned and are accepted and forwarded without any check, '
  + 'so anyone who can reach this URL can forge one. Set APPLE_SHARED_SECRET to check their password, or switch the app to V2 notifications.'

export const ANY_BUNDLE_WARNING = 'APPLE_BUNDLE_IDS is not set: a notification Apple signed for any app is accepted and forwarded, '
  + 'and anyone can point their own app\'s notification URL here to have Apple send one. Set APPLE_BUNDLE_IDS to your apps\' bundle IDs.'

// Holes the operator's configuration leaves open although it asked for
// enforce. Said in the same words at start (log), by /readyz (its detail, still
// 200: routing traffic away would lose notifications) and on every dashboard
// page, for as long as they hold.
export function exposureWarnings (c: Pick<Config, 'verify' | 'sharedSecret' | 'allowUnauthenticatedV1' | 'bundleIds'>): string[] {
  const warnings: string[] = []
  if (acceptsUnauthenticatedV1(c)) warnings.push(UNAUTHENTICATED_V1_WARNING)
  if (c.verify === 'enforce' && c.bundleIds === null) warnings.push(ANY_BUNDLE_WARNING)
  return warnings
}

function refuseOrMark (mode: VerifyMode, code: ErrorCode, message: string): Verdict {
  if (mode === 'enforce') throw new AppError(code, message)
  return { verification: 'unverified', reason: message }
}

export function judge (n: DecodedNotification, opts: PolicyOptions): Verdict {
  // The allow-list is configuration, not verification: it holds in every mode.
  const { bundleId } = n.indexed
  if (opts.bundleIds !== null && (bundleId === null || !opts.bundleIds.includes(bundleId))) {
    throw new AppError('BUNDLE_NOT_ALLOWED', `Bundle ID ${quoteInput(bundleId)} is not in APPLE_BUNDLE_IDS.`)
  }
  if (opts.mode === 'off') return { verification: 'unchecked', reason: 'VERIFY_SIGNATURES=off' }
  if (n.version === 1) {
    if (opts.sharedSecret === null) {
      // Nothing can vouch for it. Under log the operator asked to accept and
      // mark everything (a forged V2 passes too), so it is marked unchecked;
      // under enforce only the explicit opt-in lets it through.
      if (opts.mode === 'enforce' && !opts.allowUnauthenticatedV1) throw new AppError('V1_UNAUTHENTICATED')
      return {
        verification: 'unchecked',
        reason: opts.mode === 'enforce'
          ? 'V1 notifications are unsigned; accepted unchecked because ALLOW_UNAUTHENTICATED_V1=true'
          : 'V1 notifications are unsigned and APPLE_SHARED_SECRET is not set'
      }
    }
    if (n.password === null || !sameSecret(n.password, opts.sharedSecret)) {
      return refuseOrMark(opts.mode, 'SHARED_SECRET_MISMATCH', 'V1 notification password does not match APPLE_SHARED_SECRET.')
    }
    return { verification: 'verified', reason: null }
  }
  if (n.jws === null) return refuseOrMark(opts.mode, 'SIGNATURE_INVALID', 'The notification is not signed.')
  const result = opts.signatures.verify(`${n.jws.signingInput}.${n.jws.signatureB64}`, n.payload)
  if (!result.ok) {
    const code: ErrorCode = result.reason === 'environment_untrusted' ? 'ENVIRONMENT_NOT_TRUSTED' : 'SIGNATURE_INVALID'
    return refuseOrMark(opts.mode, code, `${result.message} (${result.reason})`)
  }
  return { verification: 'verified', reason: null }
}
