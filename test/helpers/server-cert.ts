// A server certificate made in the test, valid for 127.0.0.1, for storehook's
// own HTTPS (TLS_CERT_PATH, TLS_KEY_PATH).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { makeCert, type Cert } from './apple-chain.ts'

// subjectAltName = IP:127.0.0.1 (SEQUENCE { [7] 7f000001 }), so the client
// checks the name for real instead of skipping the check.
const SAN_LOCALHOST_IP = { oid: '2.5.29.17', valueHex: '300687047f000001' }

export function serverCert (cn: string): Cert {
  return makeCert({ name: `/CN=${cn}`, extensions: [SAN_LOCALHOST_IP], notBefore: new Date(Date.now() - 86_400_000), notAfter: new Date(Date.now() + 86_400_000) })
}

export function keyPem (cert: Cert): string {
  return cert.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
}

// Writes a fresh pair into `dir`; returns the variables that serve it and the CA to trust.
export function tlsEnv (dir: string, cn = 'storehook-test'): { env: { TLS_CERT_PATH: string; TLS_KEY_PATH: string }; ca: string } {
  const cert = serverCert(cn)
  const env = { TLS_CERT_PATH: join(dir, 'fullchain.pem'), TLS_KEY_PATH: join(dir, 'privkey.pem') }
  writeFileSync(env.TLS_CERT_PATH, cert.pem)
  writeFileSync(env.TLS_KEY_PATH, keyPem(cert))
  return { env, ca: cert.pem }
}
