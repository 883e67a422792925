import { ApiError } from '@/api/http'

export interface RetryOptions {
  retries: number
  baseMs: number
  maxMs: number
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

/** Retry `fn` on transient ApiErrors (unreachable, 429, 5xx); anything else is thrown at once. */
export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions): Promise<T> {
  const wait = opts.sleep ?? sleep
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn()
    } catch (e) {
      const transient = e instanceof ApiError && e.transient
      if (!transient || attempt >= opts.retries) throw e
      const delay = backoffDelay(attempt, opts.baseMs, opts.maxMs)
      opts.onRetry?.(attempt + 1, delay)
      await wait(delay)
    }
  }
}
