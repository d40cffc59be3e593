// Where explorer/identity.js keeps key pairs: IndexedDB, per origin, in numbered slots per storage name.
//
// One stored key pair must never be used by two explorers at once (two holders of one key would take the
// same ID from each other, over and over: docs/protocol.md, "Key-pair identity"). So a loader *claims* a
// slot: the first slot of its storage name that is free, or a new one. A slot is held by a claim that is
// renewed every HEARTBEAT_MS while the page lives and given back on `release()` or when the page goes
// away; a slot counts as free when it has no claim, when its claim was not renewed for STALE_MS (the page
// crashed), or when it was held by an earlier document of this same tab (a reload: the tab's name is kept
// in sessionStorage, which survives reloads, and every document has its own random realm name). So:
// - a reload gets its tab's slot, and its key, back;
// - two tabs, or two explorers in one page, get two slots (two keys);
// - a duplicated tab (its sessionStorage is copied) may take the original tab's slot: a known limit.
// Claims happen in one readwrite transaction, which IndexedDB runs one at a time per store across tabs.

const DB = 'browsercloud-identity'
const STORE = 'keys'
const HEARTBEAT_MS = 30 * 1000
const STALE_MS = 10 * 60 * 1000
const TAB_KEY = 'browsercloud-identity-tab'

function randomHex (n) {
  return Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, '0')).join('')
}

/** This document's name: a constant drawn once when the module loads (each document has its own). */
const REALM = randomHex(8)

/** This tab's name, kept across reloads in sessionStorage; null where there is none (workers). */
function tabName () {
  try {
    const storage = globalThis.sessionStorage
    if (!storage) return null
    let name = storage.getItem(TAB_KEY)
    if (!name) { name = randomHex(8); storage.setItem(TAB_KEY, name) }
    return name
  } catch (error) {
    return null   // storage refused (sandboxed frame, storage blocked): claims then rely on staleness only
  }
}

function committed (tx) {
  return new Promise((resolve, reject) => { tx.oncomplete = () => resolve(); tx.onerror = () => reject(tx.error); tx.onabort = () => reject(tx.error) })
}

function settle (request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
}

/** Opens the database (created at the first use). Rejects where IndexedDB is missing or refused. */
export function openStore () {
  if (!globalThis.indexedDB) return Promise.reject(new Error('IndexedDB is not available here'))
  const request = indexedDB.open(DB, 1)
  request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'id' })
  return settle(request)
}

function isFree (record, now, tab) {
  if (!record.claim) return true
  if (now - record.heartbeat > STALE_MS) return true
  return tab !== null && record.tab === tab && record.realm !== REALM
}

/**
 * Claims the first free slot of `name` (a new one if none is free). Resolves with the slot's record
 * `{ id, name, slot, claim, ... }`: the key material fields (`kind`, `privateKey`, `seed`, `publicKey`)
 * are those stored before, or absent for a new slot.
 */
export async function claimSlot (db, name) {
  const tab = tabName()
  const claim = randomHex(16)
  const tx = db.transaction(STORE, 'readwrite')
  const store = tx.objectStore(STORE)
  const records = await settle(store.getAll(IDBKeyRange.bound(`${name}#`, `${name}#\uffff`)))
  const now = Date.now()
  const free = records.filter((r) => isFree(r, now, tab)).sort((a, b) => a.slot - b.slot)[0]
  const slot = free ? free.slot : records.reduce((m, r) => Math.max(m, r.slot + 1), 0)
  const record = { ...(free ?? { id: `${name}#${slot}`, name, slot }), claim, tab, realm: REALM, heartbeat: now }
  store.put(record)
  await committed(tx)
  return record
}

/** Stores key material in a slot still held by `claim` (fields of `material` replace the old ones). */
export async function storeKey (db, id, claim, material) {
  const tx = db.transaction(STORE, 'readwrite')
  const store = tx.objectStore(STORE)
  const record = await settle(store.get(id))
  if (!record || record.claim !== claim) throw new Error(`the identity slot ${id} was taken over before its key was stored`)
  const { seed, privateKey, ...rest } = record
  store.put({ ...rest, ...material })
  await committed(tx)
}

/** Renews or gives back (`release`) the claim on a slot; a claim taken over meanwhile is left alone. */
async function touch (db, id, claim, release) {
  const tx = db.transaction(STORE, 'readwrite')
  const store = tx.objectStore(STORE)
  const record = await settle(store.get(id))
  if (!record || record.claim !== claim) return false
  store.put(release ? { ...record, claim: null } : { ...record, heartbeat: Date.now() })
  await committed(tx)
  return true
}

/** Gives a claimed slot back at once (resolves when stored). */
export function releaseSlot (db, id, claim) {
  return touch(db, id, claim, true).then(() => undefined)
}

/**
 * Keeps the claim alive while the document lives. Returns `release()`, which gives the slot back and
 * resolves when that is stored; the slot is also given back (best effort) when the page is hidden for good.
 */
export function holdSlot (db, id, claim) {
  let released = false
  const timer = setInterval(() => {
    touch(db, id, claim, false).then((held) => { if (!held) clearInterval(timer) }, () => clearInterval(timer))
  }, HEARTBEAT_MS)
  const onPageHide = (event) => { if (!event.persisted) release() }
  globalThis.addEventListener?.('pagehide', onPageHide)
  function release () {
    if (released) return Promise.resolve()
    released = true
    clearInterval(timer)
    globalThis.removeEventListener?.('pagehide', onPageHide)
    return releaseSlot(db, id, claim)
  }
  return release
}
