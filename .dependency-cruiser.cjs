/**
 * The import rules `npm test` checks (npm run check:deps): no module imports itself through
 * others, and no folder of a package does either (align/ may use pipeline-independent shared
 * code, but not pipeline/ while pipeline/ uses align/).
 */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "A module reaches itself through its imports.",
      from: {},
      to: { circular: true }
    },
    {
      name: "no-circular-folders",
      severity: "error",
      scope: "folder",
      comment: "A folder reaches itself through the imports of its modules: move what both need to a lower folder.",
      from: {},
      to: { circular: true }
    }
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: ["/dist/", "node_modules", "\\.test\\.tsx?$", "test-support/"] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.base.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"]
    }
  }
}
