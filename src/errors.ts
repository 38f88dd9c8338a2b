// One table of every error storehook answers with. Routes throw these; the
// single error handler in app.ts turns them into `{ "error": message, "code": code }`.
// 4xx messages are written for the sender (they say what is wrong with the
// request); 5xx messages never carry internals.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { MAX_JSON_DEPTH } from './apple/depth.ts'

export const errorTable = {
  BODY_NOT_JSON: { status: 400, message: 'Body is not valid JSON.' },
  BODY_EMPTY: { status: 400, message: 'Body is empty.' },
  BODY_NOT_NOTIFICATION: {
    status: 400,
    message: 'Body is neither a V2 notification ({"signedPayload": "<JWS>"}) nor a V1 notification (an object with "notification_type").'
  },
  // JSON.parse keeps the last of a repeated key, other parsers the first (or,
  // ignoring case, the last match): a target could act on a part never verified.
  BODY_DUPLICATE_KEY: {
    status: 400,
    message: 'A JSON object of the notification repeats a key (compared after unescaping, ignoring case): parsers disagree on which one counts.'
  },
  BODY_AMBIGUOUS_VERSION: {
    status: 400,
    message: 'Body carries both V2\'s "signedPayload" and V1\'s "notification_type" or "password": a target could read it as either.'
  },
  BODY_TOO_DEEP: { status: 400, message: `Body is nested deeper than ${MAX_JSON_DEPTH} levels of arrays and objects.` },
  PAYLOAD_NOT_JWS: { status: 400, message: 'signedPayload is not a compact JWS (three base64url parts).' },
  PAYLOAD_MALFORMED: { status: 400, message: 'signedPayload does not decode to a notification.' },
  BODY_TOO_LARGE: { status: 413, message: 'Body is larger than the limit.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Content-Type must be application/json.' },
  SIGNATURE_INVALID: { status: 403, message: 'Signature does not verify.' },
  ENVIRONMENT_NOT_TRUSTED: { status: 403, message: 'Environment is not trusted.' },
  BUNDLE_NOT_ALLOWED: { status: 403, message: 'Bundle ID is not accepted here.' },
  SHARED_SECRET_MISMATCH: { status: 403, message: 'V1 notification password does not match APPLE_SHARED_SECRET.' },
  // V1 carries no signature: under enforce only the shared secret can vouch for it.
  V1_UNAUTHENTICATED: {
    status: 403,
    message: 'V1 notifications are unsigned and cannot be checked: under VERIFY_SIGNATURES=enforce they are refused unless APPLE_SHARED_SECRET is set '
      + '(their password must then match it) or the operator accepts them unauthenticated with ALLOW_UNAUTHENTICATED_V1=true.'
  },
  SOURCE_NOT_ALLOWED: { status: 403, message: 'Sender address is not allowed.' },
  UNAUTHORIZED: { status: 401, message: 'Missing or wrong bearer token.' },
  LOGIN_FAILED: { status: 401, message: 'Wrong admin token.' },
  RATE_LIMITED: { status: 429, message: 'Too many wrong admin tokens from this address; retry later.' },
  CROSS_SITE_REFUSED: { status: 403, message: 'Refused: the form did not come from this dashboard (missing or stale CSRF token, or another origin). Reload the page and try again.' },
  NOT_FOUND: { status: 404, message: 'Not found.' },
  // The row is there but its stored bytes no longer give back what was
  // received (a chain row deleted, bytes damaged on disk): other bytes are
  // never sent in their place.
  BODY_UNREADABLE: { status: 409, message: 'The stored body cannot be read back, so it cannot be sent again; the row is kept as it is for inspection.' },
  BAD_REQUEST: { status: 400, message: 'Bad request.' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request was not received in time (REQUEST_TIMEOUT_MS, HEADERS_TIMEOUT_MS).' },
  HEADERS_TOO_LARGE: { status: 431, message: 'The request headers are too large.' },
  STORAGE_UNAVAILABLE: { status: 503, message: 'The notification could not be stored; retry later.' },
  NOT_READY: { status: 503, message: 'Not ready.' },
  INTERNAL: { status: 500, message: 'Internal error.' }
} as const satisfies Record<string, { status: number; message: string }>

export type ErrorCode = keyof typeof errorTable

export const MAX_QUOTED_CHARS = 100

// Every message that quotes a sender's value goes through this: messages are
// sent back in 4xx bodies, logged, and stored as refusal reasons, so what a
// sender put in must not grow them (a 700 KB bundle ID once came back as a
// 700 KB 403 and a 700 KB log line). The value is cut, never hidden: what
// is left is enough to recognise it.
export function quoteInput (value: unknown, max: number = MAX_QUOTED_CHARS): string {
  if (typeof value === 'string') {
    return value.length <= max ? JSON.stringify(value) : `${JSON.stringify(value.slice(0, max))}... (${value.length} characters)`
  }
  const json = JSON.stringify(value)
  if (json === undefined) return 'missing'
  return json.length <= max ? json : `${json.slice(0, max)}... (${json.length} characters of JSON)`
}

export class AppError extends Error {
  readonly code: ErrorCode
  readonly statusCode: number
  // Counted in an aggregate log line instead of one line per request (the
  // admin token's refusals: a flood of guesses must not flood the log).
  readonly quiet: boolean

  // `detail` refines the table's message for 4xx (e.g. which field is missing).
  constructor (code: ErrorCode, detail?: string, options?: { cause?: unknown; quiet?: boolean }) {
    super(detail ?? errorTable[code].message, options)
    this.name = 'AppError'
    this.code = code
    this.statusCode = errorTable[code].status
    this.quiet = options?.quiet ?? false
  }
}

export function isAppError (err: unknown): err is AppError {
  return err instanceof AppError
}

// Fastify's own client errors, mapped onto the one table.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BODY_EMPTY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BODY_NOT_JSON'
}

// What any thrown error is answered with: the JSON API and the dashboard's
// HTML pages say the same thing. A 5xx never carries the cause.
export function describeError (err: Error & { code?: string; statusCode?: number; validation?: unknown }): { status: number; code: string; message: string } {
  if (isAppError(err)) return { status: err.statusCode, code: err.code, message: err.message }
  const mapped = err.code !== undefined && Object.hasOwn(FASTIFY_CODES, err.code) ? FASTIFY_CODES[err.code] : undefined
  if (mapped !== undefined) return { status: errorTable[mapped].status, code: mapped, message: errorTable[mapped].message }
  if (err.validation !== undefined || (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)) {
    return { status: err.statusCode ?? 400, code: 'BAD_REQUEST', message: err.message }
  }
  return { status: 500, code: 'INTERNAL', message: errorTable.INTERNAL.message }
}

export function logRefusal (request: FastifyRequest, err: Error, status: number, code: string): void {
  if (isAppError(err) && err.quiet) return
  if (status >= 500) {
    // The cause is logged, never sent: a 5xx body hides internals.
    request.log.error({ err: isAppError(err) && err.cause !== undefined ? err.cause : err, code, url: request.routeOptions.url }, 'Request failed.')
  } else {
    request.log.info({ code, url: request.routeOptions.url, status }, 'Request refused.')
  }
}

// Errors Fastify raises before any route is found (a URL that does not
// decode, a path parameter over its length, a failed async constraint) skip
// the error handler and would answer in Fastify's own shape, echoing the
// path. They go through the one table instead; the path is neither sent nor
// logged (it is whatever a stranger typed).
const FRAMEWORK_CODES: Record<string, ErrorCode> = {
  FST_ERR_BAD_URL: 'BAD_REQUEST',
  FST_ERR_MAX_PARAM_LENGTH: 'BAD_REQUEST',
  FST_ERR_ASYNC_CONSTRAINT: 'INTERNAL'
}

export function answerFrameworkError (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const code = FRAMEWORK_CODES[err.code] ?? 'BAD_REQUEST'
  const { status, message } = errorTable[code]
  if (status >= 500) request.log.error({ code, fastifyCode: err.code }, 'Request failed.')
  else request.log.info({ code, fastifyCode: err.code, status }, 'Request refused.')
  void reply.code(status).send({ error: message, code })
}

// Every listener answers errors and unknown routes from the one table.
export function answerFromErrorTable (fastify: FastifyInstance): void {
  fastify.setErrorHandler((err: FastifyError | AppError, request, reply) => {
    const { status, code, message } = describeError(err)
    logRefusal(request, err, status, code)
    void reply.code(status).send({ error: message, code })
  })
  fastify.setNotFoundHandler((_request, reply) => {
    void reply.code(404).send({ error: errorTable.NOT_FOUND.message, code: 'NOT_FOUND' })
  })
}
