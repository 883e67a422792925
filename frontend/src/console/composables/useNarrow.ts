import { onBeforeUnmount, ref, type Ref } from 'vue'

/** Phone-sized viewport: the sidebar becomes a drawer and pagers use their small layout. */
export const NARROW_QUERY = '(max-width: 767px)'

type MatchMedia = (query: string) => Pick<MediaQueryList, 'matches' | 'addEventListener' | 'removeEventListener'>

/** Reactive `matchMedia(query).matches`, following viewport changes; false where matchMedia is unavailable. */
export function useNarrow(query: string = NARROW_QUERY, matchMedia?: MatchMedia): Ref<boolean> {
  const mm: MatchMedia | undefined = matchMedia ?? (typeof window !== 'undefined' && window.matchMedia ? (q) => window.matchMedia(q) : undefined)
  const narrow = ref(false)
  if (!mm) return narrow
  const list = mm(query)
  narrow.value = list.matches
  const onChange = (e: { matches: boolean }) => (narrow.value = e.matches)
  list.addEventListener('change', onChange as (e: MediaQueryListEvent) => void)
  onBeforeUnmount(() => list.removeEventListener('change', onChange as (e: MediaQueryListEvent) => void))
  return narrow
}

/** Element Plus pagination props for the viewport: the full layout on desktops, a compact one that fits 390 px. */
export function pagerProps(narrow: boolean) {
  return narrow
    ? { layout: 'total, prev, pager, next', pagerCount: 5, size: 'small' as const }
    : { layout: 'total, sizes, prev, pager, next', pagerCount: 7, size: 'default' as const }
}
