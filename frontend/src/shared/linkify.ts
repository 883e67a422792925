/**
 * Split untrusted text into plain-text and link segments. Only absolute http(s) URLs become links; the
 * caller renders every segment as text (never as HTML), so markup in the text stays inert.
 */
export type Segment = { kind: 'text'; text: string } | { kind: 'link'; text: string; href: string }

const URL_RE = /\bhttps?:\/\/[^\s<>"'`，。！？、；：（）【】《》「」]+/gi
const TRAILING = /[.,;:!?)\]}'"]+$/

/** Returns a normalized href when `raw` is an http(s) URL without credentials, otherwise null. */
export function safeHref(raw: string): string | null {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return null
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null
  if (url.username || url.password) return null
  return url.href
}

export function linkify(text: string): Segment[] {
  const out: Segment[] = []
  let last = 0
  for (const m of text.matchAll(URL_RE)) {
    const start = m.index ?? 0
    let candidate = m[0]
    const trail = TRAILING.exec(candidate)
    if (trail) candidate = candidate.slice(0, candidate.length - trail[0].length)
    const href = safeHref(candidate)
    if (!href) continue
    if (start > last) out.push({ kind: 'text', text: text.slice(last, start) })
    out.push({ kind: 'link', text: candidate, href })
    last = start + candidate.length
  }
  if (last < text.length) out.push({ kind: 'text', text: text.slice(last) })
  return out
}
