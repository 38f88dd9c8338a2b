// Drives the dashboard as a browser would: form posts, the session cookie,
// the CSRF token read from a page. No redirects are followed.
import { ADMIN_TOKEN } from './admin.ts'

const FORM = 'application/x-www-form-urlencoded'

export interface Page { status: number; text: string; headers: Headers }

export async function get (url: string, path: string, cookie?: string): Promise<Page> {
  const res = await fetch(url + path, { redirect: 'manual', headers: cookie !== undefined ? { cookie } : {} })
  return { status: res.status, text: await res.text(), headers: res.headers }
}

export async function postForm (url: string, path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Page> {
  const res = await fetch(url + path, { method: 'POST', redirect: 'manual', headers: { 'content-type': FORM, ...headers }, body: new URLSearchParams(form).toString() })
  return { status: res.status, text: await res.text(), headers: res.headers }
}

export async function login (url: string, token = ADMIN_TOKEN): Promise<{ cookie: string; csrf: string }> {
  const res = await postForm(url, '/admin/login', { token })
  const cookie = res.headers.get('set-cookie')!.split(';')[0]!
  const overview = await get(url, '/admin', cookie)
  return { cookie, csrf: /name="_csrf" value="([^"]+)"/.exec(overview.text)![1]! }
}
