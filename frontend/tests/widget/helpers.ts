import { createI18n } from '@/shared/i18n'
import zhCN from '@/locales/widget/zh-CN'
import enUS from '@/locales/widget/en-US'

export const i18n = () => createI18n({ 'zh-CN': zhCN, 'en-US': enUS }, 'zh-CN')

export type Route = (url: URL, init: { method: string; headers: Headers; body: string | null }) => Response | Promise<Response>

/** A fetch double that routes by "METHOD /path" and records every call. */
export function fakeFetch(routes: Record<string, Route>) {
  const calls: { method: string; path: string; headers: Headers; body: unknown }[] = []
  const impl = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const req = input instanceof Request ? input : new Request(String(input), init)
    const url = new URL(req.url)
    const body = req.method === 'GET' ? null : await req.text()
    calls.push({ method: req.method, path: url.pathname, headers: req.headers, body: body ? JSON.parse(body) : null })
    const route = routes[`${req.method} ${url.pathname}`]
    if (!route) throw new TypeError('Failed to fetch')
    return route(url, { method: req.method, headers: req.headers, body })
  }
  return { impl: impl as typeof fetch, calls }
}

export const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })

export function memoryStorage() {
  const m = new Map<string, string>()
  return {
    getItem: (k: string) => m.get(k) ?? null,
    setItem: (k: string, v: string) => void m.set(k, v),
    removeItem: (k: string) => void m.delete(k),
    map: m,
  }
}

/** A text/event-stream response that emits `chunks` then stays open until aborted. */
export function sseResponse(chunks: string[]): Response {
  const enc = new TextEncoder()
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(enc.encode(c))
    },
  })
  return new Response(stream, { status: 200, headers: { 'Content-Type': 'text/event-stream' } })
}
