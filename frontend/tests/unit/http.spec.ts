import { describe, expect, it, vi } from 'vitest'
import { ApiError, SseParser, parseRetryAfter } from '@/api/http'
import { backoffDelay, withRetry } from '@/shared/retry'

describe('SseParser', () => {
  it('assembles events across chunk boundaries and drops keep-alive comments', () => {
    const p = new SseParser()
    expect(p.feed(': keep-alive\n\nevent: mess')).toEqual([])
    expect(p.feed('age\r\ndata: {"id":"1",\ndata: "text":"你好"}\n\n: ping\n\nevent: handoff\ndata: {"status":"active"}\n')).toEqual([
      { event: 'message', data: '{"id":"1",\n"text":"你好"}', id: undefined },
    ])
    expect(p.feed('\n')).toEqual([{ event: 'handoff', data: '{"status":"active"}', id: undefined }])
  })
})

describe('withRetry', () => {
  const opts = { retries: 3, baseMs: 100, maxMs: 1000, sleep: () => Promise.resolve() }

  it('retries transient errors then succeeds', async () => {
    const fn = vi
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(new ApiError(0, 'NETWORK', ''))
      .mockRejectedValueOnce(new ApiError(503, 'OVERLOADED', ''))
      .mockResolvedValue('ok')
    const onRetry = vi.fn()
    await expect(withRetry(fn, { ...opts, onRetry })).resolves.toBe('ok')
    expect(fn).toHaveBeenCalledTimes(3)
    expect(onRetry).toHaveBeenCalledTimes(2)
  })
  it('does not retry client errors', async () => {
    const fn = vi.fn().mockRejectedValue(new ApiError(422, 'MESSAGE_TOO_LONG', ''))
    await expect(withRetry(fn, opts)).rejects.toMatchObject({ code: 'MESSAGE_TOO_LONG' })
    expect(fn).toHaveBeenCalledTimes(1)
  })
  it('gives up after the configured retries', async () => {
    const fn = vi.fn().mockRejectedValue(new ApiError(0, 'NETWORK', ''))
    await expect(withRetry(fn, opts)).rejects.toBeInstanceOf(ApiError)
    expect(fn).toHaveBeenCalledTimes(4)
  })
  it('waits at least what Retry-After asks, and does not sit out a longer wait than allowed', async () => {
    const waits: number[] = []
    const fn = vi
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(new ApiError(503, 'OVERLOADED', '', null, 5000))
      .mockResolvedValue('ok')
    await expect(withRetry(fn, { ...opts, sleep: (ms) => (waits.push(ms), Promise.resolve()) })).resolves.toBe('ok')
    expect(waits[0]).toBe(5000)
    const long = vi.fn().mockRejectedValue(new ApiError(429, 'RATE_LIMITED', '', null, 60_000))
    await expect(withRetry(long, { ...opts, maxRetryAfterMs: 10_000 })).rejects.toMatchObject({ retryAfterMs: 60_000 })
    expect(long).toHaveBeenCalledTimes(1)
  })
  it('backs off exponentially within the cap', () => {
    expect(backoffDelay(0, 100, 1000, () => 1)).toBe(100)
    expect(backoffDelay(3, 100, 1000, () => 1)).toBe(800)
    expect(backoffDelay(10, 100, 1000, () => 0)).toBe(500)
  })
})

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-12-05T10:00:00Z')
  it('reads delta-seconds and HTTP-dates, and nothing else', () => {
    expect(parseRetryAfter('7', now)).toBe(7000)
    expect(parseRetryAfter(' 0 ', now)).toBe(0)
    expect(parseRetryAfter('Sat, 05 Dec 2026 10:00:30 GMT', now)).toBe(30_000)
    expect(parseRetryAfter('Sat, 05 Dec 2026 09:00:00 GMT', now)).toBe(0)
    expect(parseRetryAfter(null, now)).toBeNull()
    expect(parseRetryAfter('', now)).toBeNull()
    expect(parseRetryAfter('-3', now)).toBeNull()
    expect(parseRetryAfter('soon', now)).toBeNull()
  })
})
