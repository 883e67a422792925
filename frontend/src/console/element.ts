/** Register only the Element Plus components the console uses (keeps the console bundle lean). */
import type { App } from 'vue'
import {
  ElAlert,
  ElAside,
  ElButton,
  ElCard,
  ElCol,
  ElCollapse,
  ElCollapseItem,
  ElConfigProvider,
  ElContainer,
  ElDatePicker,
  ElDescriptions,
  ElDescriptionsItem,
  ElDialog,
  ElDrawer,
  ElDropdown,
  ElDropdownItem,
  ElDropdownMenu,
  ElEmpty,
  ElForm,
  ElFormItem,
  ElHeader,
  ElIcon,
  ElInput,
  ElLoading,
  ElMain,
  ElMenu,
  ElMenuItem,
  ElOption,
  ElPagination,
  ElProgress,
  ElRadio,
  ElRadioButton,
  ElRadioGroup,
  ElRow,
  ElSelect,
  ElSwitch,
  ElTable,
  ElTableColumn,
  ElTag,
} from 'element-plus'

const plugins = [
  ElAlert, ElAside, ElButton, ElCard, ElCol, ElCollapse, ElCollapseItem, ElConfigProvider, ElContainer, ElDatePicker,
  ElDescriptions, ElDescriptionsItem, ElDialog, ElDrawer, ElDropdown, ElDropdownItem, ElDropdownMenu, ElEmpty, ElForm,
  ElFormItem, ElHeader, ElIcon, ElInput, ElLoading, ElMain, ElMenu, ElMenuItem, ElOption, ElPagination, ElProgress,
  ElRadio, ElRadioButton, ElRadioGroup, ElRow, ElSelect, ElSwitch, ElTable, ElTableColumn, ElTag,
]

export function installElement(app: App): void {
  for (const p of plugins) app.use(p)
}
