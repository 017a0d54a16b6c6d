import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"
import { LocalEngine, type OnnxProviderOptions } from "./engine.js"
import { LocalModel, type LocalModelError } from "./localModel.js"
import type { ModelFolderError } from "./modelFolder.js"

type LoadError = ModelFolderError | LocalModelError

/** What a load does (no q4Compute is the default, int8; no f16Compute, auto; no fuseRotary, fused). */
const keyOf = (o: OnnxProviderOptions): string =>
  `${o.path}#${o.variant ?? ""}#${o.threads ?? ""}#${o.q4Compute ?? "int8"}#${o.f16Compute ?? "auto"}` +
  `#${o.packProducts === true ? "packed" : ""}#${o.fuseRotary === false ? "rotary-as-exported" : ""}`

/**
 * The local models a run has loaded: one engine per folder, variant, thread count and arithmetic,
 * shared by every role that names it, loaded on first use. Made in a Scope (`LocalEngines.make`):
 * closing it releases every session. A load that fails is forgotten, so the next call tries again.
 */
export class LocalEngines {
  private readonly engines = new Map<string, Deferred.Deferred<LocalEngine, LoadError>>()
  private constructor() {}

  /** A registry released with the scope that makes it. */
  static readonly make: Effect.Effect<LocalEngines, never, Scope.Scope> = Effect.acquireRelease(
    Effect.sync(() => new LocalEngines()),
    (engines) => engines.release
  )

  /** A registry nobody releases: for a short-lived process or a test that releases it itself. */
  static unscoped(): LocalEngines {
    return new LocalEngines()
  }

  /** The engine for these options, loading the model on first use. */
  acquire(options: OnnxProviderOptions): Effect.Effect<LocalEngine, LoadError> {
    return Effect.suspend(() => {
      const key = keyOf(options)
      const found = this.engines.get(key)
      if (found !== undefined) return Deferred.await(found)
      const loaded = Deferred.unsafeMake<LocalEngine, LoadError>(FiberId.none)
      this.engines.set(key, loaded)
      // The load finishes even if its first caller is interrupted: others may be waiting on it.
      return LocalModel.load(options.path, options).pipe(
        Effect.map((model) => new LocalEngine(model, options.maxBatch ?? 8)),
        Effect.tapError(() => Effect.sync(() => this.engines.delete(key))),
        Effect.exit,
        Effect.flatMap((exit) => Deferred.done(loaded, exit)),
        Effect.uninterruptible,
        Effect.zipRight(Deferred.await(loaded))
      )
    })
  }

  /** Releases every loaded session; later calls load again. */
  get release(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const all = [...this.engines.values()]
      this.engines.clear()
      return Effect.forEach(
        all,
        (d) =>
          Deferred.await(d).pipe(
            Effect.flatMap((engine) => Effect.promise(() => engine.model.release())),
            Effect.ignore
          ),
        { discard: true }
      )
    })
  }
}
