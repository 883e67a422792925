/**
 * The `paths` the client is typed with: exactly what the API's OpenAPI document declares (generated into
 * ./schema.d.ts by `npm run gen:api`). Named types in ./types.ts derive from these paths only.
 */
export type { paths } from './schema'
