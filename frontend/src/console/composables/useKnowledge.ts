import { reactive, ref, shallowRef } from 'vue'
import type { Category, Faq, FaqId, FaqWrite, ImportResult, IndexStatus } from '@/api/types'
import type { ConsoleApi } from '@/api/console'
import { useRequest } from './useRequest'

export const MAX_UPLOAD_BYTES = 5 * 1024 * 1024

/** FAQ list with search, category filter and paging, plus create / update / delete. */
export function useFaqs(api: ConsoleApi) {
  const { loading, run } = useRequest()
  const query = reactive({ q: '', category: '', page: 1, page_size: 20 })
  const items = ref<Faq[]>([])
  const total = ref(0)
  const categories = ref<Category[]>([])

  async function load() {
    const r = await run(() =>
      api.faqs({ q: query.q.trim() || undefined, category: query.category || undefined, page: query.page, page_size: query.page_size }),
    )
    if (r) {
      items.value = r.items
      total.value = r.total
    }
  }
  async function loadCategories() {
    const r = await run(() => api.categories())
    if (r) categories.value = r.items
  }
  function search() {
    query.page = 1
    return load()
  }
  /** Create (`current` null) or update; an update sends the version it edited so a concurrent edit is refused. */
  async function save(current: Faq | null, body: FaqWrite, okMsg: string): Promise<boolean> {
    const r = await run(
      () => (current === null ? api.createFaq(body) : api.updateFaq(current.id, { ...body, version: current.version })),
      okMsg,
    )
    if (r) {
      await Promise.all([load(), loadCategories()])
      return true
    }
    return false
  }
  async function remove(id: FaqId, okMsg: string) {
    const ok = await run(() => api.deleteFaq(id).then(() => true), okMsg)
    if (ok) await load()
  }
  return { loading, query, items, total, categories, load, loadCategories, search, save, remove }
}

/** Two-step import: a dry run shows totals and per-row errors; the real import runs on the same file. */
export function useFaqImport(api: ConsoleApi) {
  const { loading, run } = useRequest()
  const file = shallowRef<File | null>(null)
  const preview = ref<ImportResult | null>(null)
  const result = ref<ImportResult | null>(null)

  function choose(f: File | null) {
    file.value = f
    preview.value = null
    result.value = null
  }
  async function dryRun() {
    if (!file.value) return
    const f = file.value
    const r = await run(() => api.importFaqs(f, true))
    if (r) preview.value = r
  }
  async function commit(): Promise<ImportResult | undefined> {
    if (!file.value || !preview.value || preview.value.valid === 0) return
    const f = file.value
    const r = await run(() => api.importFaqs(f, false))
    if (r) result.value = r
    return r
  }
  function reset() {
    choose(null)
  }
  return { loading, file, preview, result, choose, dryRun, commit, reset }
}

/** The live FAQ index version, its history, publish and rollback. */
export function useIndex(api: ConsoleApi) {
  const { loading, run } = useRequest()
  const status = ref<IndexStatus | null>(null)
  async function load() {
    const r = await run(() => api.indexStatus())
    if (r) status.value = r
  }
  async function publish(okMsg: (v: string) => string) {
    const r = await run(() => api.publishIndex())
    if (r) {
      await load()
      return okMsg(r.version)
    }
    return null
  }
  async function activate(version: string, okMsg: string) {
    const r = await run(() => api.activateIndex(version), okMsg)
    if (r) await load()
  }
  return { loading, status, load, publish, activate }
}
