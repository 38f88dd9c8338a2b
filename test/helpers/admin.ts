// Calls the admin JSON API as a script would: with the bearer token.
export const ADMIN_TOKEN = 'an-admin-token-of-enough-length'

export async function api (url: string, path: string, init: RequestInit = {}, token: string | null = ADMIN_TOKEN): Promise<{ status: number; json: any }> {
  const headers = new Headers(init.headers)
  if (token !== null) headers.set('authorization', `Bearer ${token}`)
  const res = await fetch(`${url}/admin/api${path}`, { ...init, headers })
  return { status: res.status, json: await res.json() }
}
