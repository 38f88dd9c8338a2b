// Standard Webhooks signature (https://www.standardwebhooks.com): lets a
// target know a forward came from its own storehook. Written here because it
// is three lines of node:crypto; the tests check it with the reference package.
import { createHmac } from 'node:crypto'

export function webhookHeaders (secret: string, id: string, timestampSeconds: number, body: Buffer): Record<string, string> {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64')
  const mac = createHmac('sha256', key)
    .update(`${id}.${timestampSeconds}.`)
    .update(body)
    .digest('base64')
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': `v1,${mac}`
  }
}
