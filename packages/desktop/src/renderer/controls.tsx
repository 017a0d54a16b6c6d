import type { ReactNode } from "react"
import {
  Button,
  type ButtonProps,
  Checkbox,
  CheckboxGroup,
  Input,
  Label,
  ListBox,
  ListBoxItem,
  Popover,
  Select,
  SelectValue,
  Text,
  TextArea,
  TextField
} from "react-aria-components"

/**
 * The app's form controls: React Aria Components (labels, focus rings, keyboard and screen-reader
 * behaviour from the library), styled by the app's CSS through the classes and `data-*` states
 * the components set. Every field has a visible label that names it.
 */

/** A button; `onPress` works the same for mouse, touch, Enter and Space. */
export const Action = ({ className, ...props }: ButtonProps & { readonly className?: string }) => (
  <Button {...props} className={className ?? "button"} />
)

/** A one-line text field with its label (and an optional description under it). */
export const TextInput = (props: {
  readonly label: string
  readonly value: string
  readonly onChange: (value: string) => void
  readonly placeholder?: string
  readonly description?: string
  readonly type?: "text" | "search" | "number"
  readonly isRequired?: boolean
  readonly autoComplete?: string
  readonly inputMode?: "numeric" | "decimal"
  readonly autoFocus?: boolean
  readonly className?: string
}) => (
  <TextField
    className={props.className ?? "field"}
    value={props.value}
    onChange={props.onChange}
    type={props.type ?? "text"}
    isRequired={props.isRequired ?? false}
    autoFocus={props.autoFocus ?? false}
    {...(props.autoComplete !== undefined ? { autoComplete: props.autoComplete } : {})}
    {...(props.inputMode !== undefined ? { inputMode: props.inputMode } : {})}
  >
    <Label>{props.label}</Label>
    <Input {...(props.placeholder !== undefined ? { placeholder: props.placeholder } : {})} />
    {props.description !== undefined ? (
      <Text slot="description" className="description">
        {props.description}
      </Text>
    ) : null}
  </TextField>
)

/** A multi-line text field with its label. */
export const TextBox = (props: {
  readonly label: string
  readonly value: string
  readonly onChange: (value: string) => void
  readonly rows?: number
  readonly inputRef?: React.Ref<HTMLTextAreaElement>
}) => (
  <TextField className="field wide" value={props.value} onChange={props.onChange}>
    <Label>{props.label}</Label>
    <TextArea rows={props.rows ?? 8} ref={props.inputRef ?? null} />
  </TextField>
)

/** The empty value of a choice ("all", "any") travels as this key: React Aria's keys are never empty. */
const NONE = "__none"

/** A choice from a fixed list, each [value] or [value, label]; a listbox opens under the button. */
export const Choice = <V extends string>(props: {
  readonly label: string
  readonly value: V
  readonly options: ReadonlyArray<readonly [V] | readonly [V, string]>
  readonly onChange: (value: V) => void
}) => (
  <Select
    className="field choice"
    value={props.value === "" ? NONE : props.value}
    onChange={(key) => props.onChange((key === NONE ? "" : String(key)) as V)}
  >
    <Label>{props.label}</Label>
    <Button className="button choice-button">
      <SelectValue />
      <span aria-hidden="true" className="chevron">
        ▾
      </span>
    </Button>
    <Popover className="popover">
      <ListBox className="listbox">
        {props.options.map(([value, label]) => (
          <ListBoxItem key={value === "" ? NONE : value} id={value === "" ? NONE : value} className="option">
            {label ?? value}
          </ListBoxItem>
        ))}
      </ListBox>
    </Popover>
  </Select>
)

/** A row of fields that wrap on narrow windows. */
export const FieldRow = ({ children, label }: { readonly children: ReactNode; readonly label?: string }) => (
  <div className="field-row" role={label !== undefined ? "group" : undefined} aria-label={label}>
    {children}
  </div>
)

/** Several choices, each a checkbox, under one label. */
export const Checks = <V extends string>(props: {
  readonly label: string
  readonly value: ReadonlyArray<V>
  readonly options: ReadonlyArray<V>
  readonly onChange: (value: Array<V>) => void
}) => (
  <CheckboxGroup className="field checks" value={[...props.value]} onChange={(v) => props.onChange(v as Array<V>)}>
    <Label>{props.label}</Label>
    {props.options.map((o) => (
      <Checkbox key={o} value={o} className="check">
        <span className="box" aria-hidden="true" />
        {o}
      </Checkbox>
    ))}
  </CheckboxGroup>
)
