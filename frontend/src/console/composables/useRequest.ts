import { ref } from 'vue'
import { ElMessage } from 'element-plus'
import { errorMessage, useT } from '../context'

/** Run an API call with a loading flag; failures become one localized toast and `undefined`. */
export function useRequest() {
  const i18n = useT()
  const loading = ref(false)
  async function run<T>(fn: () => Promise<T>, success?: string): Promise<T | undefined> {
    loading.value = true
    try {
      const v = await fn()
      if (success) ElMessage.success(success)
      return v
    } catch (e) {
      ElMessage.error(errorMessage(i18n, e))
      return undefined
    } finally {
      loading.value = false
    }
  }
  return { loading, run }
}

export const pct = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`)

export function fmtTime(iso: string | null | undefined, locale: string): string {
  if (!iso) return '—'
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(locale, { hour12: false })
}

export function isoDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`
}

export function lastDays(n: number): [string, string] {
  const to = new Date()
  const from = new Date(to.getTime() - (n - 1) * 86_400_000)
  return [isoDate(from), isoDate(to)]
}
