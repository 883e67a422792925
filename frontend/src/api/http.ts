/**
 * The one HTTP layer: an openapi-fetch client over the generated `paths`, one error type, and an SSE reader
 * (fetch streaming, because EventSource cannot send our auth headers).
 */
import createClient, { type Client } from 'openapi-fetch'
import type { paths } from './paths'

export type ApiClient = Client<paths>

/** Every failure leaves the API layer as an ApiError; `status` 0 means the API could not be reached. */
export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly requestId: string | null
  /** The server's `Retry-After` (429 / 503) in milliseconds; null when it sent none. */
  readonly retryAfterMs: number | null

  constructor(status: number, code: string, message: string, requestId: string | null = null, retryAfterMs: number | null = null) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.requestId = requestId
    this.retryAfterMs = retryAfterMs
  }

  /** Worth retrying: unreachable, overloaded, rate limited or a server-side failure. */
  get transient(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500
  }
}

export interface ClientOptions {
  baseUrl: string
  /** Extra headers per request (auth); read on every call. */
  headers?: () => Record<string, string>
  /** Called on 401 (console: drop the token and show the login page). */
  onUnauthorized?: () => void
  fetch?: typeof fetch
}

export function createApiClient(opts: ClientOptions): ApiClient {
  const client = createClient<paths>({
    baseUrl: opts.baseUrl.replace(/\/+$/, ''),
    fetch: (req: Request) => (opts.fetch ?? globalThis.fetch)(req),
  })
  client.use({
    onRequest({ request }) {
      for (const [k, v] of Object.entries(opts.headers?.() ?? {})) request.headers.set(k, v)
      return request
    },
    onResponse({ response }) {
      if (response.status === 401) opts.onUnauthorized?.()
      return response
    },
  })
  return client
}

interface ErrorShape {
  error?: { code?: string; message?: string; request_id?: string | null }
}

/** `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); null if absent
 *  or unreadable. A date in the past means "now" (0). */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | null {
  const v = value?.trim()
  if (!v) return null
  if (/^\d+$/.test(v)) return Number(v) * 1000
  if (!/^[A-Za-z]{3}, .* GMT$/.test(v)) return null // IMF-fixdate; Date.parse alone takes "-3" for a year
  const at = Date.parse(v)
  return Number.isNaN(at) ? null : Math.max(0, at - now)
}

export function toApiError(status: number, body: unknown, headers?: Headers): ApiError {
  const err = (body as ErrorShape | undefined)?.error
  return new ApiError(
    status,
    err?.code ?? `HTTP_${status}`,
    err?.message ?? '',
    err?.request_id ?? null,
    parseRetryAfter(headers?.get('Retry-After')),
  )
}

/** Await an openapi-fetch call: returns `data` or throws ApiError (network failures get status 0). */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response }
  try {
    result = await call
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e
    throw new ApiError(0, 'NETWORK', '')
  }
  if (!result.response.ok) throw toApiError(result.response.status, result.error, result.response.headers)
  return result.data as T
}

export interface SseEvent {
  event: string
  data: string
  id?: string
}

/** Incremental text/event-stream parser: feed chunks, get complete events (comments are dropped). */
export class SseParser {
  private buffer = ''

  feed(chunk: string): SseEvent[] {
    this.buffer += chunk.replace(/\r\n?/g, '\n')
    const out: SseEvent[] = []
    let idx: number
    while ((idx = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, idx)
      this.buffer = this.buffer.slice(idx + 2)
      let event = 'message'
      let id: string | undefined
      const data: string[] = []
      for (const line of block.split('\n')) {
        if (!line || line.startsWith(':')) continue
        const colon = line.indexOf(':')
        const field = colon < 0 ? line : line.slice(0, colon)
        let value = colon < 0 ? '' : line.slice(colon + 1)
        if (value.startsWith(' ')) value = value.slice(1)
        if (field === 'event') event = value
        else if (field === 'data') data.push(value)
        else if (field === 'id') id = value
      }
      if (data.length) out.push({ event, data: data.join('\n'), id })
    }
    return out
  }
}

/**
 * Open an SSE stream with fetch and call `onEvent` per event until the server closes it or `signal` aborts.
 * Resolves when the stream ends normally; rejects with ApiError when it cannot be opened or breaks.
 * `onOpen` runs once the stream is accepted (the server keeps no backlog: callers catch up from there).
 */
export async function streamSse(
  url: string,
  headers: Record<string, string>,
  onEvent: (e: SseEvent) => void,
  signal: AbortSignal,
  fetchImpl: typeof fetch = globalThis.fetch,
  onOpen?: () => void,
): Promise<void> {
  let response: Response
  try {
    response = await fetchImpl(url, { headers: { Accept: 'text/event-stream', ...headers }, signal, cache: 'no-store' })
  } catch (e) {
    if (signal.aborted) return
    void e
    throw new ApiError(0, 'NETWORK', '')
  }
  if (!response.ok || !response.body) {
    let body: unknown = undefined
    try {
      body = await response.json()
    } catch {
      /* not JSON */
    }
    throw toApiError(response.status, body, response.headers)
  }
  const reader = response.body.getReader()
  onOpen?.()
  const decoder = new TextDecoder()
  const parser = new SseParser()
  try {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) break
      for (const ev of parser.feed(decoder.decode(value, { stream: true }))) onEvent(ev)
    }
  } catch (e) {
    if (signal.aborted) return
    void e
    throw new ApiError(0, 'NETWORK', '')
  }
}
