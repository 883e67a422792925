import { ApiError } from '@/api/http'

export interface RetryOptions {
  retries: number
  baseMs: number
  maxMs: number
  /** The longest server-requested wait (`Retry-After`) worth sitting out; a longer one fails at once so the
   *  caller can tell the user instead of hanging. Default 30 s. */
  maxRetryAfterMs?: number
  /** Injected for tests. */
  sleep?: (ms: number) => Promise<void>
  onRetry?: (attempt: number, delayMs: number) => void
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Exponential backoff with full jitter: 0..min(maxMs, baseMs * 2^attempt). */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, rand: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** attempt)
  return Math.round(cap / 2 + (rand() * cap) / 2)
}

/**
 * Retry `fn` on transient ApiErrors (unreachable, 429, 5xx); anything else is thrown at once. When the server
 * says how long to wait (`Retry-After`), the next attempt waits at least that long (a rate-limited client
 * that retries sooner only gets limited again); a wait longer than `maxRetryAfterMs` is not sat out.
 */
export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const wait = opts.sleep ?? sleep
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn()
    } catch (e) {
      const transient = e instanceof ApiError && e.transient
      if (!transient || attempt >= opts.retries) throw e
      const asked = e.retryAfterMs
      if (asked !== null && asked > (opts.maxRetryAfterMs ?? 30_000)) throw e
      const delay = Math.max(asked ?? 0, backoffDelay(attempt, opts.baseMs, opts.maxMs))
      opts.onRetry?.(attempt + 1, delay)
      await wait(delay)
    }
  }
}
