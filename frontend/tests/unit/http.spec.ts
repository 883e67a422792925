import { describe, expect, it, vi } from 'vitest'
import { ApiError, SseParser } from '@/api/http'
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
  it('backs off exponentially within the cap', () => {
    expect(backoffDelay(0, 100, 1000, () => 1)).toBe(100)
    expect(backoffDelay(3, 100, 1000, () => 1)).toBe(800)
    expect(backoffDelay(10, 100, 1000, () => 0)).toBe(500)
  })
})
