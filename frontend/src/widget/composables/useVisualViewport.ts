import { onBeforeUnmount, onMounted, shallowRef, type Ref } from 'vue'

/** Where the panel fills the whole screen: keep in step with the `max-width: 480px` block of widget.css. */
export const FULL_SCREEN_QUERY = '(max-width: 480px)'

/** The part of the page the visitor actually sees, in CSS pixels of the layout viewport. */
export interface ViewportBox {
  height: number
  top: number
}

/**
 * The visual viewport while the panel fills a phone screen; null on wider screens and where the browser has no
 * `window.visualViewport`. Follows its `resize` (keyboard opens or closes, rotation) and `scroll` (iOS scrolls the
 * visual viewport over the layout one to show the focused field) events from mount to unmount.
 *
 * iOS Safari opens the on-screen keyboard over the page without shrinking the layout viewport, so a fixed panel of
 * the layout's full height keeps its composer under the keyboard; sizing the panel to this box keeps it in view.
 * Android Chrome with `interactive-widget=resizes-content` shrinks the layout viewport itself: the visual viewport
 * then equals it (offsetTop 0) and the box is exactly what the panel had anyway. The box is absolute, never "the
 * layout height minus the keyboard", so a browser that resizes the layout is not compensated twice.
 */
export function useVisualViewport(): Readonly<Ref<ViewportBox | null>> {
  const box = shallowRef<ViewportBox | null>(null)
  const vv = typeof window === 'undefined' ? null : window.visualViewport
  if (!vv) return box
  const fullScreen = typeof window.matchMedia === 'function' ? window.matchMedia(FULL_SCREEN_QUERY) : null // `matches` is live
  const update = () => {
    if (!fullScreen?.matches) {
      box.value = null
      return
    }
    const { height, offsetTop: top } = vv
    const was = box.value
    if (!was || was.height !== height || was.top !== top) box.value = { height, top }
  }
  onMounted(() => {
    update()
    vv.addEventListener('resize', update)
    vv.addEventListener('scroll', update)
  })
  onBeforeUnmount(() => {
    vv.removeEventListener('resize', update)
    vv.removeEventListener('scroll', update)
  })
  return box
}
