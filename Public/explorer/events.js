// A small event emitter: the developer interface of webrtc-explorer (thesis: "interface" module).

export class Events {
  #handlers = new Map()

  /** Calls `handler(payload)` on every `name` event. Returns a function that removes it. */
  on (name, handler) {
    if (!this.#handlers.has(name)) this.#handlers.set(name, new Set())
    this.#handlers.get(name).add(handler)
    return () => this.off(name, handler)
  }

  off (name, handler) { this.#handlers.get(name)?.delete(handler) }

  /** Resolves with the payload of the next `name` event. */
  once (name) {
    return new Promise((resolve) => {
      const off = this.on(name, (payload) => { off(); resolve(payload) })
    })
  }

  emit (name, payload) {
    for (const handler of [...(this.#handlers.get(name) ?? [])]) {
      try { handler(payload) } catch (error) { console.error(`webrtc-explorer: '${name}' handler threw`, error) }
    }
  }
}
