// Your backend as a storehook target with "payload": "decoded" (README, "Decoded forwarding").
import { createServer } from 'node:http'
import { Webhook } from 'standardwebhooks'

const webhook = new Webhook(process.env.STOREHOOK_SIGNING_SECRET) // the target's "signingSecret", whsec_...
createServer((req, res) => {
  const chunks = []
  req.on('data', (chunk) => chunks.push(chunk))
  req.on('end', () => {
    let doc
    try {
      doc = webhook.verify(Buffer.concat(chunks), req.headers) // signature and timestamp, or it throws
    } catch {
      return res.writeHead(401).end()
    }
    const renewal = doc.notification.data?.renewalInfo // decoded already; Apple's JWS checked by storehook
    console.log(doc.id, doc.notification.notificationType, doc.verification.status, renewal?.autoRenewStatus, renewal?.renewalDate)
    res.writeHead(200).end() // anything else is retried; deliveries are at-least-once: dedupe on doc.id
  })
}).listen(Number(process.env.PORT ?? 3000))
