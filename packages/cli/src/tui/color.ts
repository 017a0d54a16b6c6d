/** Terminal colours, or none when NO_COLOR is set (https://no-color.org) or FASTCOT_NO_COLOR. */
export const colorsEnabled = (): boolean => {
  const env = process.env
  return (env["NO_COLOR"] === undefined || env["NO_COLOR"] === "") && env["FASTCOT_NO_COLOR"] === undefined
}

export const color = (name: string): string | undefined => (colorsEnabled() ? name : undefined)
