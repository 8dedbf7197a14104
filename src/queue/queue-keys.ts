// Every Redis key of the waiting room. Keys of one concert share the hash tag {concertId}, so
// each concert's Lua scripts touch one cluster slot; a token's own key is tagged by the token,
// which lets the guard validate it with one GET without knowing the concert. The registry of
// concerts and the rebuild marker share the tag {registry}: on a Redis Cluster a node restarted
// empty then loses both or neither, and queue-mode.ts notices a lost marker (the ADMIT script a
// lost concert). No script or pipeline combines keys of two tags, and nothing scans the keyspace.

/** The eight keys every concert script receives, in this order (KEYS[1..8] in Lua). */
export interface ConcertKeys {
  /** INCR counter handing out FIFO sequence numbers. */
  seq: string;
  /** ZSET token → seq: the waiting line. */
  waiting: string;
  /** ZSET token → active expiry (epoch ms): admitted users. */
  active: string;
  /** ZSET token → last seen (epoch ms) of waiting users; polls and open streams refresh it. */
  seen: string;
  /** HASH userId → live token: makes JoinQueue idempotent. */
  users: string;
  /** HASH live token → userId: lets expiry clear `users`. */
  owners: string;
  /** HASH f (slots given back so far: leaves, expiries) and u (active ms they left unused), for the wait estimate. */
  rate: string;
  /** LIST of admissions and expiries not yet copied to PostgreSQL (queue-mirror.ts). */
  journal: string;
  /** LIST of journal entries a mirror has claimed and not yet acknowledged. */
  journalClaimed: string;
  /** STRING owner of the claim, with a lease (PX) after which the entries are claimed again. */
  journalLease: string;
  /**
   * STRING set before the first admission after a sale-start prequeue's opening (prequeue.ts):
   * from then on JOIN takes no prequeue place. Only JOIN reads it, as its KEYS[9].
   */
  prequeueOpened: string;
}

export interface QueueKeys {
  concert(concertId: string): ConcertKeys;
  /** STRING "<state digit>|concertId|userId|activeExpireMs" (see token-record.ts). */
  token(token: string): string;
  /** ZSET concertId → time of the last join (epoch ms): concerts the admission loop ticks. */
  concerts: string;
  /** Held (SET NX PX) by the process rebuilding Redis from PostgreSQL after an outage. */
  rebuildLock: string;
  /** Epoch ms at which the last rebuild finished. */
  rebuiltAt: string;
}

export function createQueueKeys(prefix: string): QueueKeys {
  return {
    concert(concertId) {
      const base = `${prefix}q:{${concertId}}:`;
      return {
        seq: `${base}seq`,
        waiting: `${base}waiting`,
        active: `${base}active`,
        seen: `${base}seen`,
        users: `${base}users`,
        owners: `${base}owners`,
        rate: `${base}rate`,
        journal: `${base}journal`,
        journalClaimed: `${base}journal-claimed`,
        journalLease: `${base}journal-lease`,
        prequeueOpened: `${base}prequeue-opened`,
      };
    },
    token: (token) => `${prefix}qt:{${token}}`,
    concerts: `${prefix}q:{registry}:concerts`,
    rebuildLock: `${prefix}q:{registry}:rebuild-lock`,
    rebuiltAt: `${prefix}q:{registry}:rebuilt-at`,
  };
}

export function concertKeyList(keys: ConcertKeys): string[] {
  return [keys.seq, keys.waiting, keys.active, keys.seen, keys.users, keys.owners, keys.rate, keys.journal];
}
